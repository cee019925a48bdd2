"""The pass axis: backward and training passes under every strategy that applies, verified."""

from __future__ import annotations

import json

import numpy as np
import pytest

from partui.kernels.grad import jobs as passes
from partui.kernels.grad import reference as grad_reference
from partui.kernels.grad import training
from partui.kernels.grad.execution import run_job
from partui.kernels.model.layers import LAYERS
from partui.kernels.plan.pass_axes import BACKWARD_BY_KIND, phase_name
from partui.kernels.plan.strategies import NotApplicable
from partui.profiles.records.config import RunConfig
from partui.profiles.run.engine import Engine
from partui.tui.cli import main as cli


def cfg(layer, strategy="batch", executor="threads", workers=2, batch=3, **kw):
    return RunConfig(
        layer,
        strategy=strategy,
        kernel=kw.pop("kernel", "vectorized"),
        executor=executor,
        workers=workers,
        batch=batch,
        repeats=1,
        warmup=0,
        **kw,
    )


@pytest.fixture(scope="module")
def engine():
    with Engine(sample_hz=0) as e:
        yield e


CASES = [
    (name, strategy)
    for name in ("conv1", "conv2", "pool1", "gelu2", "linear1", "linear3", "logsoftmax")
    for strategy in BACKWARD_BY_KIND[LAYERS[name].kind]
]


@pytest.mark.parametrize("combine", ["reduce", "locked"])
@pytest.mark.parametrize("layer,strategy", CASES)
def test_backward_pass_is_verified(engine, layer, strategy, combine):
    result = engine.run(cfg(layer, strategy, pass_kind="backward", combine=combine))
    assert result.ok, result.error
    names = {phase_name("backward", s.phase) for s in result.spans}
    assert "backward" in names
    if LAYERS[layer].has_params and strategy in ("batch", "channel"):
        assert "combine" in names  # partial gradients met, and it was timed


def test_backward_with_loops_kernel(engine):
    assert engine.run(cfg("conv3", "channel", batch=2, kernel="loops", pass_kind="backward")).ok


@pytest.mark.parametrize("combine", ["reduce", "locked"])
@pytest.mark.parametrize(
    "strategy,executor,workers", [("batch", "threads", 2), ("none", "inline", 1)]
)
def test_train_pass_is_verified_with_named_phases(engine, strategy, executor, workers, combine):
    result = engine.run(
        cfg("network", strategy, executor, workers, batch=4, pass_kind="train", combine=combine)
    )
    assert result.ok, result.error
    names = [phase_name("train", s.phase) for s in result.spans]
    assert {"forward", "backward", "update"} <= set(names)
    if strategy == "batch":
        # the combine shared out (or, when one task came late, done by the other), or the
        # adds under the lock
        assert "combine" in names
        assert {s.worker for s in result.spans if s.phase == passes.BACKWARD} == {0, 1}


def test_processes_share_the_gradients(engine):
    for c in (
        cfg("conv2", "batch", "processes", pass_kind="backward", combine="locked"),
        cfg("network", "batch", "processes", batch=4, pass_kind="train"),
    ):
        result = engine.run(c)
        assert result.ok, result.error


class _WrongGrads:
    """Vectorized backward kernels, with the convolution's weight gradient off by a little."""

    def __getattr__(self, name):
        from partui.kernels.grad import vectorized as grad_vectorized

        return getattr(grad_vectorized, name)

    @staticmethod
    def conv_backward(x, w, gy, gx, gw, gb, scratch, cancel=None):
        from partui.kernels.grad import vectorized as grad_vectorized

        grad_vectorized.conv_backward(x, w, gy, gx, gw, gb, scratch, cancel)
        gw[0, 0, 0, 0] += 0.01 * float(np.abs(gw).max())


@pytest.mark.parametrize(
    "args",
    [
        ["--layer", "conv2", "--pass", "backward", "--strategy", "channel"],
        ["--layer", "network", "--pass", "train"],
    ],
)
def test_a_wrong_gradient_exits_1(monkeypatch, capsys, args):
    from partui.kernels.grad import network as grad_network

    monkeypatch.setitem(training.GRAD_MODULES, "vectorized", _WrongGrads())
    native_step = grad_network.step

    def wrong_native_step(x, labels, params, grads, *rest):  # the training step's native path
        got = native_step(x, labels, params, grads, *rest)
        gw = grads["conv2.weight"]
        gw[0, 0, 0, 0] += 0.01 * float(np.abs(gw).max())
        return got

    monkeypatch.setattr(grad_network, "step", wrong_native_step)
    assert (
        cli.main(
            [
                "run",
                *args,
                "--batch",
                "2",
                "--repeat",
                "1",
                "--warmup",
                "0",
                "--workers",
                "2",
                "--json",
            ]
        )
        == 1
    )
    d = json.loads(capsys.readouterr().out)
    assert d["ok"] is False and "exceeds tolerance" in d["error"]


@pytest.mark.parametrize(
    "args,words",
    [
        (
            ["--layer", "conv2", "--pass", "backward", "--strategy", "spatial"],
            ["spatial", "backward", "channel"],
        ),
        (
            ["--layer", "logsoftmax", "--pass", "backward", "--strategy", "channel"],
            ["channel", "batch"],
        ),
        (["--layer", "network", "--pass", "backward"], ["--pass train"]),
        (["--layer", "conv2", "--pass", "train"], ["--layer network"]),
        (
            ["--layer", "network", "--pass", "train", "--strategy", "pipeline"],
            ["pipeline", "batch"],
        ),
    ],
)
def test_not_applicable_passes_exit_2(capsys, args, words):
    assert cli.main(["run", *args, "--batch", "2", "--repeat", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not applicable" in err
    for word in words:
        assert word in err
    with pytest.raises(NotApplicable):
        RunConfig(**{**cfg("conv2").to_dict(), "pass_kind": "train"}).check()


def test_save_arrays_of_a_backward_pass(tmp_path, capsys):
    assert (
        cli.main(
            [
                "run",
                "--layer",
                "conv2",
                "--pass",
                "backward",
                "--strategy",
                "channel",
                "--workers",
                "2",
                "--batch",
                "3",
                "--repeat",
                "1",
                "--save-arrays",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            f"{n}.npy"
            for n in (
                "input",
                "weight",
                "bias",
                "output_grad",
                "input_grad",
                "weight_grad",
                "bias_grad",
            )
        ]
        + ["README.txt"]
    )
    readme = (tmp_path / "README.txt").read_text()
    assert "pass     backward" in readme and "L = sum(output * output_grad)" in readme
    assert "weight_grad.npy float32  64x32x3x3" in readme
    a = {p.stem: np.load(p) for p in tmp_path.glob("*.npy")}
    assert a["weight"].shape == (64, 32, 3, 3) and a["input"].shape == (3, 32, 13, 13)
    gx, gw, gb = grad_reference.conv2d_backward(a["input"], a["weight"], a["output_grad"])
    for got, want in ((a["input_grad"], gx), (a["weight_grad"], gw), (a["bias_grad"], gb)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())
    # a layer without parameters writes no parameter files
    out = tmp_path / "pool"
    assert (
        cli.main(
            [
                "run",
                "--layer",
                "pool2",
                "--pass",
                "backward",
                "--batch",
                "2",
                "--repeat",
                "1",
                "--save-arrays",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "README.txt",
        "input.npy",
        "input_grad.npy",
        "output_grad.npy",
    ]


def test_save_arrays_of_a_training_step(tmp_path, capsys):
    assert (
        cli.main(
            [
                "run",
                "--layer",
                "network",
                "--pass",
                "train",
                "--strategy",
                "batch",
                "--executor",
                "threads",
                "--workers",
                "2",
                "--batch",
                "4",
                "--repeat",
                "1",
                "--save-arrays",
                str(tmp_path),
            ]
        )
        == 0
    )
    layers = ("conv1", "conv2", "conv3", "linear1", "linear2", "linear3")
    want = {"input.npy", "labels.npy", "loss.npy", "README.txt"} | {
        f"{n}.{p}{g}.npy" for n in layers for p in ("weight", "bias") for g in ("", ".grad")
    }
    assert {p.name for p in tmp_path.iterdir()} == want
    readme = (tmp_path / "README.txt").read_text()
    assert "pass     train" in readme and "linear2    output = GELU_tanh(" in readme
    assert "labels.npy              int64    4" in readme
    a = {p.name[:-4]: np.load(p) for p in tmp_path.glob("*.npy")}
    assert a["input"].shape == (4, 1, 28, 28) and a["input"].dtype == np.float32
    assert a["labels"].dtype == np.int64 and a["labels"].shape == (4,)
    assert a["loss"].shape == () and a["conv1.weight"].shape == (32, 1, 3, 3)
    params = {f"{n}.{p}": a[f"{n}.{p}"] for n in layers for p in ("weight", "bias")}
    loss, grads = grad_reference.network_loss_and_grads(a["input"], a["labels"], params)
    assert float(a["loss"]) == pytest.approx(loss, rel=1e-5)
    for k, g in grads.items():
        np.testing.assert_allclose(a[f"{k}.grad"], g, rtol=0, atol=1e-4 * np.abs(g).max())


def _step_arrays(p, batch, seed=0):
    from partui.kernels.model.layers import make_input, make_params
    from partui.profiles.run.inputs import make_labels

    net = LAYERS["network"]
    params = make_params(net, seed)
    arrays = {k: np.full(s, np.nan, np.float32) for k, s in p.shapes.items()}
    arrays["x"][...] = make_input(net, batch, seed)
    labels = make_labels(batch, seed)
    arrays["labels"][...] = labels
    arrays["params"][...] = training.flat_params(seed)
    for k in p.zero:
        arrays[k].fill(0.0)
    return arrays, params, labels


@pytest.mark.parametrize("combine", ["reduce", "locked"])
def test_a_step_in_three_phases_or_in_one_gives_the_reference(tmp_path, combine):
    """Without `together`, forward+backward, combine and update are phases; with it, one phase
    whose tasks wait for each other, then combine and update their own ranges. Both give the
    float64 reference's gradients and updated weights."""
    from concurrent.futures import ThreadPoolExecutor

    from partui.kernels.runtime.scratch import Scratch

    net, batch, lr = LAYERS["network"], 6, passes.DEFAULT_LR
    lock = str(tmp_path / "combine.lock")
    for together in (False, True):
        p = passes.plan(net, "train", "batch", batch, 2, combine, lr, lock, together=together)
        assert len(p.phases) == (1 if together else 3 if combine == "reduce" else 2)
        arrays, params, labels = _step_arrays(p, batch)
        if together:
            with ThreadPoolExecutor(2) as pool:  # the two tasks at once
                futures = [
                    pool.submit(run_job, j, "network", "vectorized", arrays, Scratch())
                    for j in p.jobs
                ]
                spans = [s for f in futures for s in f.result()]
            # every parameter updated once, whichever task did it
            units = {
                ph: sum(s[3] for s in spans if s[0] == ph) for ph in (passes.COMBINE, passes.UPDATE)
            }
            assert units[passes.UPDATE] == 2 * training.NETWORK_PARAMS
            if combine == "reduce":
                assert units[passes.COMBINE] == 2 * training.NETWORK_PARAMS
        else:
            scratch = Scratch()
            for phase in p.phases:
                for j in phase:
                    run_job(j, "network", "vectorized", arrays, scratch)
        ref_loss, ref = grad_reference.network_loss_and_grads(arrays["x"], labels, params)
        grads = training.views(arrays["grad"], training.NETWORK_LAYOUT)
        new = training.views(arrays["params.new"], training.NETWORK_LAYOUT)
        for k in ref:
            scale = float(np.abs(ref[k]).max())
            assert np.abs(grads[k] - ref[k]).max() <= 1e-4 * scale, (together, k)
            want = params[k].astype(np.float64) - lr * ref[k]
            assert np.abs(new[k] - want).max() <= 1e-5 * float(np.abs(want).max()), (together, k)
        assert float(arrays["stats"][:, 0].sum()) / batch == pytest.approx(ref_loss, rel=1e-5)


def test_a_step_whose_tasks_run_one_after_the_other_still_ends_right():
    """A worker may run both tasks of a step in turn: the first stops waiting for the
    second, which then does the whole combine and update itself."""
    from partui.kernels.runtime.scratch import Scratch

    net, batch, lr = LAYERS["network"], 4, passes.DEFAULT_LR
    p = passes.plan(net, "train", "batch", batch, 2, together=True)
    arrays, params, labels = _step_arrays(p, batch)
    scratch = Scratch()
    first = run_job(p.jobs[0], "network", "vectorized", arrays, scratch)
    second = run_job(p.jobs[1], "network", "vectorized", arrays, scratch)
    assert {s[0] for s in first} == {passes.FORWARD, passes.BACKWARD}
    assert {s[0] for s in second} == {
        passes.FORWARD,
        passes.BACKWARD,
        passes.COMBINE,
        passes.UPDATE,
    }
    ref_loss, ref = grad_reference.network_loss_and_grads(arrays["x"], labels, params)
    new = training.views(arrays["params.new"], training.NETWORK_LAYOUT)
    for k in ref:
        want = params[k].astype(np.float64) - lr * ref[k]
        assert np.abs(new[k] - want).max() <= 1e-5 * float(np.abs(want).max()), k


def test_report_says_when_phase_walls_overlap(engine, monkeypatch):
    """Phase walls that add up to more than a repeat (Dask: transfers while shards compute)
    come with a sentence saying they overlap; walls that fit say nothing more."""
    from partui.profiles.run import passes as profile_passes
    from partui.tui.cli.commands.run_report import run_report

    result = engine.run(cfg("network", "batch", "threads", 2, batch=4, pass_kind="train"))
    m = result.median_ms
    monkeypatch.setattr(
        profile_passes,
        "phase_walls",
        lambda spans, kind: {"forward": 0.28 * m, "backward": 0.35 * m, "transfer": 0.9 * m},
    )
    text = run_report(result)
    assert "the phases overlap in time: their walls add up to" in text
    monkeypatch.setattr(
        profile_passes, "phase_walls", lambda spans, kind: {"forward": 0.4 * m, "update": 0.5 * m}
    )
    assert "overlap" not in run_report(result)


@pytest.mark.parametrize(
    "layer,pass_kind", [("conv2", "forward"), ("conv2", "backward"), ("network", "train")]
)
def test_the_arrays_a_run_will_save_are_known_before_it_runs(layer, pass_kind):
    """saved_names (checked before any work) names exactly the arrays the run keeps."""
    from partui.profiles.records.config import RunConfig
    from partui.profiles.run.engine import Engine
    from partui.profiles.run.passes import saved_names

    strategy = "none" if pass_kind == "forward" else "batch"
    cfg = RunConfig(
        layer, strategy=strategy, executor="inline", workers=1, batch=2, repeats=1,
        warmup=0, pass_kind=pass_kind,
    )  # fmt: skip
    with Engine(sample_hz=0) as engine:
        kept = engine.run(cfg, keep_arrays=True).arrays
    assert saved_names(cfg) == list(kept)


def test_save_arrays_refuses_before_any_work_when_one_file_of_the_pass_exists(
    tmp_path, capsys, monkeypatch
):
    """A stale weight_grad.npy in the folder: a backward run's --save-arrays is refused up
    front (exit 2, no run, nothing written), not half-way through saving."""
    from partui.profiles.run.engine import Engine

    def no_run(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(Engine, "run", no_run)
    stale = tmp_path / "weight_grad.npy"
    stale.write_bytes(b"old")
    args = ["run", "--layer", "conv2", "--pass", "backward", "--batch", "2", "--repeat", "1"]
    assert cli.main([*args, "--save-arrays", str(tmp_path)]) == 2
    assert "weight_grad.npy" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["weight_grad.npy"]
    assert stale.read_bytes() == b"old"
