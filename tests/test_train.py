"""`partui train`: sync and Hogwild! SGD on threads and processes, the report, the snapshot,
Ctrl+C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from partui.kernels.grad import jobs as passes
from partui.kernels.plan.pass_axes import phase_name
from partui.profiles.records.events import StepDone
from partui.profiles.records.train_config import TrainConfig
from partui.profiles.store import snapshot
from partui.profiles.store.snapshot_validation import SnapshotError
from partui.profiles.train import datasets
from partui.profiles.train.trainer import EpochReport, Trainer
from partui.tui.cli import main as cli
from partui.tui.cli.commands.train import train_report


@pytest.fixture(scope="module")
def data():
    return datasets.builtin_letters(320, 64, 0)


def run(data, **kw):
    kw = {"epochs": 3, "batch": 32, "train_size": 320, "test_size": 64, **kw}
    events = []
    result = Trainer(TrainConfig(**kw), data, emit=events.append).run()
    return result, events


def falls(result):
    losses = [p[2] for p in result.loss_curve]
    return np.mean(losses[-5:]) < losses[0] - 0.3


@pytest.mark.parametrize(
    "update,combine", [("sync", "reduce"), ("sync", "locked"), ("hogwild", "reduce")]
)
def test_training_on_threads_lowers_the_loss(data, update, combine):
    result, events = run(data, update=update, combine=combine, workers=2, executor="threads")
    assert falls(result), result.loss_curve
    assert len(result.epochs) == 3 and not result.interrupted
    assert result.config == TrainConfig(3, 32, update=update, combine=combine, workers=2,
                                        train_size=320, test_size=64)  # fmt: skip
    assert result.to_dict()["config"] == result.config.to_dict()  # the record's JSON as ever
    e = result.epochs[-1]
    assert e.steps == 10 and e.images == 320 and e.images_per_s > 0
    assert 0 <= e.test_accuracy <= 1 and sum(e.worker_busy_share) == pytest.approx(1.0)
    expected = {"forward", "backward", "update"} | ({"combine"} if update == "sync" else set())
    assert set(e.phase_ms) == expected
    assert {s.worker for s in result.spans} == {0, 1}  # both workers trained
    steps = [p[0] for p in result.loss_curve]
    assert steps == list(range(1, 31))
    times = [p[1] for p in result.loss_curve]
    assert times == sorted(times) and times[-1] <= result.epochs[-1].elapsed_s
    assert [type(ev) for ev in events].count(EpochReport) == 3
    assert sum(isinstance(ev, StepDone) for ev in events) == 30


def test_hogwild_on_one_worker_is_plain_sgd(data):
    sync, _ = run(data, epochs=1, update="sync", workers=1, executor="inline")
    hog, _ = run(data, epochs=1, update="hogwild", workers=1, executor="inline")
    assert [p[2] for p in sync.loss_curve] == [p[2] for p in hog.loss_curve]


def test_data_parallel_steps_match_one_worker(data):
    """Two workers' partial gradients, reduced, give the one-worker step (up to float32
    rounding)."""
    one = Trainer(
        TrainConfig(epochs=1, batch=32, train_size=96, test_size=64, workers=1, executor="inline"),
        data,
    )
    two = Trainer(
        TrainConfig(epochs=1, batch=32, train_size=96, test_size=64, workers=2, executor="threads"),
        data,
    )
    small = datasets.DataSet(
        data.train_x[:96], data.train_y[:96], data.test_x, data.test_y, "small"
    )
    one.data = two.data = small
    one.run(), two.run()
    np.testing.assert_allclose(two.params, one.params, rtol=0, atol=1e-4 * np.abs(one.params).max())


def test_processes_share_the_weights(data):
    """Hogwild! across processes: every worker writes into one shared-memory copy of the weights,
    so the weights this process reads at the end are the learned ones. (Sync steps on processes
    are verified against float64 in test_passes.) Five epochs: over three, two momentum buffers
    overshoot early and the last steps' loss falls by no clear margin over the 0.3 asked."""
    from partui.kernels.grad import reference as grad_reference
    from partui.kernels.grad import training
    from partui.profiles.train.trainer import initial_params

    def loss_of(flat):  # float64, on the whole training set, here in the parent
        params = training.views(flat, training.NETWORK_LAYOUT)
        return grad_reference.network_loss_and_grads(data.train_x, data.train_y, params)[0]

    cfg = TrainConfig(epochs=5, batch=32, train_size=320, test_size=64, update="hogwild",
                      workers=2, executor="processes")  # fmt: skip
    trainer = Trainer(cfg, data)
    result = trainer.run()
    assert falls(result), result.loss_curve
    assert loss_of(trainer.params) < loss_of(initial_params(cfg.seed)) - 0.5
    updates = [s for s in result.spans if s.phase == passes.UPDATE]
    assert len({s.tid for s in updates}) == 2  # both worker processes wrote updates


def test_stop_keeps_what_was_learned(data):
    stop = threading.Event()

    def emit(ev):
        if isinstance(ev, StepDone) and ev.step >= 3:
            stop.set()

    trainer = Trainer(
        TrainConfig(epochs=5, batch=32, train_size=320, test_size=64, workers=2),
        data,
        emit=emit,
        stop=stop,
    )
    result = trainer.run()
    assert result.interrupted and len(result.epochs) == 1
    assert 3 <= result.epochs[0].steps < 10 and len(result.loss_curve) == result.epochs[0].steps
    assert not np.array_equal(trainer.params, Trainer(TrainConfig(), data).params)
    # the stopped epoch reports what its finished steps measured
    partial = result.epochs[0]
    assert partial.phase_ms["forward"] > 0 and partial.phase_ms["backward"] > 0
    assert sum(partial.worker_busy_share) == pytest.approx(1.0)
    row = train_report(result).split("\n\n")[1].splitlines()[-1]  # the epoch table's last row
    assert "forward" in row and "0/0" not in row and " - " not in row


def test_report_of_hogwild_and_of_an_epoch_stopped_before_a_step(data):
    from partui.profiles.train.trainer import TrainResult

    cfg = TrainConfig(update="hogwild", workers=2)
    report = EpochReport(1, 1, 32, 0.5, 0.6, 3.2, 0.05, 0.04, 64.0, {}, [])
    result = TrainResult(cfg, "letters", epochs=[report], interrupted=True)
    text = train_report(result)
    assert "combine" not in text.splitlines()[1].replace("no combine", "")
    assert "update hogwild  (no combine: workers update alone)" in text
    assert "none measured: stopped before a full step" in text.splitlines()[-1]
    assert "combine reduce" in train_report(TrainResult(TrainConfig(), "letters"))


def partui(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "partui.tui.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


SMALL = ["--train-size", "192", "--test-size", "64", "--batch", "32"]


def test_cli_train_json_and_snapshot(tmp_path):
    out = tmp_path / "t.json"
    assert (
        cli.main(["train", "--epochs", "1", *SMALL, "--workers", "2", "--json", "--out", str(out)])
        == 0
    )
    snap = snapshot.load(out)
    (run_,) = snap.training
    assert run_["config"]["update"] == "sync" and len(run_["epochs"]) == 1
    assert len(run_["loss_curve"]) == 6 and run_["spans"]
    weights = np.load(f"{out}.weights.npz")
    assert weights["conv1.weight"].shape == (32, 1, 3, 3) and weights["linear3.bias"].shape == (26,)


@pytest.mark.parametrize(
    "signum,code,words",
    [
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGTERM, 143, "stopped by SIGTERM"),
        (signal.SIGHUP, 129, "stopped by SIGHUP"),
    ],
)
def test_cli_train_stopped_by_a_signal_saves_and_exits_128_plus_it(tmp_path, signum, code, words):
    """Ctrl+C, SIGTERM or SIGHUP after an epoch: the snapshot and weights hold what was
    learned, one line says which signal stopped it, and the exit code is 128 + its number."""
    out = tmp_path / "t.json"
    proc = partui("train", "--epochs", "50", *SMALL, "--out", str(out))
    deadline = time.monotonic() + 60
    line = ""
    while "epoch 1/50:" not in line and time.monotonic() < deadline:  # wait for a learned epoch
        line = proc.stderr.readline()
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and f"partui: {words}: the snapshot holds" in stderr
    run_ = snapshot.load(out).training[0]
    assert run_["interrupted"] is True and run_["epochs"] and run_["loss_curve"]
    assert os.path.exists(f"{out}.weights.npz")


@pytest.mark.parametrize(
    "args,words",
    [
        (["--batch", "0"], ["batch"]),
        (["--lr", "-1"], ["learning rate"]),
        (["--executor", "inline", "--workers", "2"], ["inline"]),
        (["--data", "/nonexistent-partui-dir"], ["not a folder"]),
        (["--momentum", "1.5"], ["momentum"]),
    ],
)
def test_cli_train_bad_input_exits_2(tmp_path, capsys, args, words):
    assert cli.main(["train", *args, "--out", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and all(w in err[-1] for w in words)


def test_cli_train_on_emnist_idx_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("test", 32)):
        datasets.write_idx(
            tmp_path / f"emnist-letters-{split}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        )
        datasets.write_idx(
            tmp_path / f"emnist-letters-{split}-labels-idx1-ubyte.gz",
            rng.integers(1, 27, n).astype(np.uint8),
        )
    out = tmp_path / "t.json"
    assert (
        cli.main(
            [
                "train",
                "--data",
                str(tmp_path),
                "--epochs",
                "1",
                "--batch",
                "32",
                "--json",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert "EMNIST" in d["data"] and d["epochs"][0]["images"] == 64


def test_snapshot_refuses_a_malformed_training_record(tmp_path):
    snap = snapshot.Snapshot(
        training=[
            {
                "config": {},
                "data": "x",
                "epochs": [],
                "loss_curve": [[1, 2]],
                "accuracy_curve": [],
                "spans": [],
                "interrupted": False,
            }
        ]
    )
    path = snapshot.save(snap, tmp_path / "s.json")
    with pytest.raises(SnapshotError, match=r"training\[0\].loss_curve\[0\]"):
        snapshot.load(path)


def test_phase_names():
    assert [phase_name("train", i) for i in range(4)] == [
        "forward",
        "backward",
        "combine",
        "update",
    ]
    assert phase_name("forward", 1) == "reduce"


def test_cli_train_runs_saved_under_one_name_pair_their_weights(tmp_path, monkeypatch, capsys):
    """Two runs saved under the same default name: each snapshot names the weights file that
    carries its own number, and that file exists beside it."""
    monkeypatch.setattr(
        snapshot, "default_snapshot_path", lambda folder=None, stem="": tmp_path / "t.json"
    )
    for _ in range(2):
        assert cli.main(["train", "--epochs", "1", *SMALL]) == 0
    capsys.readouterr()
    for name in ("t.json", "t-2.json"):
        (run_,) = snapshot.load(tmp_path / name).training
        assert run_["weights"] == str(tmp_path / f"{name}.weights.npz")
        assert np.load(run_["weights"])["linear3.bias"].shape == (26,)


def test_cli_train_that_cannot_save_still_prints_its_report(tmp_path, monkeypatch, capsys):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(snapshot, "save", full)
    code = cli.main(["train", "--epochs", "1", *SMALL, "--out", str(tmp_path / "t.json")])
    out, err = capsys.readouterr()
    assert code == 2
    assert "train loss" in out or "epoch" in out
    assert "not saved" in err and "No space left on device" in err and "report above" in err


def test_a_data_set_too_big_for_memory_is_refused_before_it_is_made(capsys):
    code = cli.main(["train", "--train-size", "10000000", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "--train-size 10000000" in err and "the data set needs" in err
    assert "MemoryError" not in err and err.count("\n") == 1
