"""The Dask executor: runs verified against float64 on a LocalCluster of two workers, spans
from Dask's task stream mapped onto partui's clock with transfer phases, an external
scheduler and workers started here, a lost worker, an unreachable scheduler, and no
process left behind.

One LocalCluster for the module (it takes seconds to start), closed at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import psutil
import pytest
from waiting import budget, wait_until, wait_until_async

from partui.kernels.model import reference
from partui.kernels.model.layers import LAYERS, make_input, make_params
from partui.kernels.plan.pass_axes import TRANSFER
from partui.kernels.plan.strategies import NotApplicable, plan
from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import RepeatDone
from partui.profiles.records.limits import ConfigError
from partui.profiles.run.engine import Engine

MAX_UNREACHABLE_S = 10.0


def _mine() -> set[int]:
    """This process's descendants, but for multiprocessing's resource tracker (one per
    interpreter, which ends with it)."""
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(p.cmdline()):
                out.add(p.pid)
        except psutil.Error:
            pass
    return out


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _gone(pids, timeout: float = 15.0) -> set[int]:
    """The pids of `pids` still running after `timeout` (zombies count as gone)."""
    left = set(pids)
    try:
        wait_until(lambda: not {p for p in left if _running(p)}, timeout, interval=0.1)
    except AssertionError:
        pass
    return {p for p in left if _running(p)}


@pytest.fixture(scope="module")
def engine():
    from partui.kernels.warmup import compile_kernels

    compile_kernels(["network", "conv2"])  # here once (to the disk cache), not in each worker
    before = _mine()
    eng = Engine(sample_hz=0)
    try:
        yield eng
    finally:
        eng.close()
    # closing the engine stops the LocalCluster it started: no scheduler, nanny or worker left
    left = _gone(_mine() - before)
    assert not left, [" ".join(psutil.Process(p).cmdline())[:200] for p in left]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _partui(*args, env=None, timeout=120, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "partui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def check_spans(result, name: str, batch: int, workers: int) -> None:
    """Compute spans: one per task per repeat, on the Dask workers' processes; transfer
    spans: each task's input out and output back, sized in bytes, around its compute.

    What is guaranteed, and so asserted exactly: a task computed after its shard was sent
    (the task is submitted only then) and before its fetch began (the fetch waits for Dask
    to say it finished), so its compute, a duration on the worker's own clock that needs
    no mapping, fits between the two. Where the mapped compute sits is asserted only to
    within the stated clock uncertainty plus a load-scaled margin: Dask stamps its task
    stream with the worker's clock plus its estimate of the worker's lag behind the
    scheduler, renewed at each heartbeat; partui reads that estimate before and after the
    run, but a heartbeat in between can move it and back unseen, by up to half a heartbeat's
    round trip, which on a loaded machine is longer than the stated uncertainty."""
    layer = LAYERS[name]
    tasks = plan(layer, "batch", batch, workers).tasks
    repeats = len(result.times_ms)
    compute = [s for s in result.spans if s.phase != TRANSFER]
    moved = [s for s in result.spans if s.phase == TRANSFER]
    assert Counter((s.repeat, s.task) for s in compute) == {
        (r, t.index): 1 for r in range(repeats) for t in tasks
    }
    assert sum(s.units for s in compute) == layer.flops(batch) * repeats
    pids = {w["pid"] for w in result.dask["workers"]}
    assert {s.tid for s in compute} <= pids and os.getpid() not in pids
    x_bytes = make_input(layer, 1, 0).nbytes
    out_bytes = 4 * int(np.prod(layer.out_array_shape(1)))
    margin = budget(0.05) * 1e9  # a lag estimate moved by a heartbeat partui did not see
    slack = {
        i: w["clock_uncertainty_ms"] * 1e6 + margin for i, w in enumerate(result.dask["workers"])
    }
    for c in compute:
        # this side's moves (worker-to-worker ones from the task stream carry no size)
        mine = [s for s in moved if (s.repeat, s.task) == (c.repeat, c.task) and s.units]
        n = next(t for t in tasks if t.index == c.task).batch
        n = n[1] - n[0]
        assert sorted(s.units for s in mine) == sorted([n * x_bytes, n * out_bytes])
        sent = min(mine, key=lambda s: s.start_ns)
        back = max(mine, key=lambda s: s.end_ns)
        # it computed between the two moves: its length fits, on any clock (+1 us: Dask's
        # stamps are float seconds since 1970, which resolve about 0.2 us)
        assert 0 < c.end_ns - c.start_ns <= back.start_ns - sent.end_ns + 1000
        # the worker's clock, mapped onto ours, puts it there too (see the docstring)
        assert sent.end_ns - slack[c.worker] <= c.start_ns
        assert c.end_ns <= back.start_ns + slack[c.worker]


def test_network_forward_on_two_dask_workers(engine):
    cfg = RunConfig("network", executor="dask", workers=2, batch=8, repeats=2, warmup=1)
    result = engine.run(cfg, keep_arrays=True)
    layer = LAYERS["network"]
    want = reference.forward(layer, make_input(layer, 8, 0), make_params(layer, 0))
    err = float(np.abs(result.arrays["output"].astype(np.float64) - want).max())
    assert result.ok and err <= 1e-4 * np.abs(want).max()
    assert result.tasks == 2 and len(result.worker_busy_ms) == 2
    d = result.dask
    assert d["cluster"] == "local" and d["scheduler"].startswith("tcp://127.0.0.1:")
    assert len(d["workers"]) == 2 and len({w["pid"] for w in d["workers"]}) == 2
    for w in d["workers"]:  # one machine: the true offset is 0, inside the estimate's bounds
        assert 0 < w["clock_uncertainty_ms"] < 1000
        assert abs(w["clock_offset_ms"]) <= w["clock_uncertainty_ms"] + 1.0
    assert d["bytes_out_per_repeat"] == make_input(layer, 8, 0).nbytes
    assert d["bytes_back_per_repeat"] == want.astype(np.float32).nbytes
    params_bytes = sum(v.nbytes for v in make_params(layer, 0).values())
    assert d["params_bytes"] == 2 * params_bytes  # sent once to each worker
    assert d["task_compute_ms"] > 0 and d["notes"] == []
    check_spans(result, "network", 8, 2)
    # BLAS runs one thread inside each Dask worker
    client = engine.executor("dask", 2).client

    def blas_threads():
        from threadpoolctl import threadpool_info

        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    assert all(t == [1] or t == [1, 1] for t in client.run(blas_threads).values())


def test_every_layer_shards_verified(engine):
    """Every layer on the loops kernel (test_combinations runs them on the vectorized one),
    conv2 on both, on an uneven split (5 samples over 2 workers)."""
    runs = [(name, "loops") for name in LAYERS if name != "network"] + [("conv2", "vectorized")]
    for name, kernel in runs:
        cfg = RunConfig(
            name, kernel=kernel, executor="dask", workers=2, batch=5, repeats=1, warmup=0
        )
        result = engine.run(cfg, keep_arrays=True)
        layer = LAYERS[name]
        want = reference.forward(layer, make_input(layer, 5, 0), make_params(layer, 0))
        got = result.arrays["output"].astype(np.float64)
        assert result.ok and np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), name
        check_spans(result, name, 5, 2)


def test_what_dask_refuses():
    layer_cfg = RunConfig("conv2", strategy="channel", executor="dask", workers=2)
    with pytest.raises(NotApplicable, match="use --strategy batch"):
        layer_cfg.check()
    with pytest.raises(NotApplicable, match="dask"):
        RunConfig("conv2", executor="dask", workers=2, pass_kind="backward").check()


def test_without_the_extra_dask_is_refused_in_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "distributed" else real(n, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'partui\[dask\]'"):
        RunConfig("conv2", executor="dask", workers=2).check()


def test_unreachable_scheduler_exits_2_naming_address_and_reason(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    t0 = time.monotonic()
    proc = _partui(
        "run",
        "--layer",
        "linear1",
        "--executor",
        "dask",
        "--scheduler",
        address,
        cwd=tmp_path,
        timeout=60,
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "cannot reach" in lines[0], lines
    assert "Traceback" not in proc.stderr
    assert elapsed < MAX_UNREACHABLE_S, elapsed


def test_scheduler_from_environment_and_flag_checks(tmp_path):
    env = {**os.environ, "PARTUI_DASK_SCHEDULER": "tcp://127.0.0.1:9"}
    proc = _partui("run", "--layer", "linear1", "--executor", "dask", env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "tcp://127.0.0.1:9" in proc.stderr
    proc = _partui("run", "--layer", "linear1", "--scheduler", "tcp://127.0.0.1:9", cwd=tmp_path)
    assert proc.returncode == 2 and "--scheduler applies to --executor dask" in proc.stderr


def _dask_cli(*args, cwd):
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    return subprocess.Popen(
        [dask, *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # ours to stop, apart from pytest's process group
    )


def test_external_scheduler_and_workers(tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []
    try:
        procs.append(
            _dask_cli(
                "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                cwd=tmp_path,
            )
        )  # fmt: skip
        for name in ("ext-a", "ext-b"):
            procs.append(
                _dask_cli(
                    "worker", address, "--nthreads", "1", "--nworkers", "1", "--name", name,
                    "--no-dashboard", "--no-nanny", cwd=tmp_path,
                )
            )  # fmt: skip
        from distributed import Client

        def listening():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        # the scheduler listens, then both workers join
        wait_until(listening, 60, interval=0.2, message="dask scheduler did not start")
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        proc = _partui(
            "run",
            "--layer",
            "network",
            "--executor",
            "dask",
            "--scheduler",
            address,
            "--workers",
            "2",
            "--batch",
            "8",
            "--repeat",
            "2",
            "--json",
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = json.loads(proc.stdout)
        assert out["ok"] and out["dask"]["cluster"] == "external"
        assert out["dask"]["scheduler"] == address
        names = ["ext-a", "ext-b"]
        assert [w["name"] for w in out["dask"]["workers"]] == names
        assert len({s["worker"] for s in out["spans"] if s["phase"] == 0}) == 2
        phases = Counter(s["phase"] for s in out["spans"])
        assert phases[0] == 2 * 2 and phases[TRANSFER] >= 2 * 2 * 2  # each task's out and back
        # partui train on the same cluster: the weights kept on its workers, the cluster left
        proc = _partui(
            "train", "--executor", "dask", "--scheduler", address, "--workers", "2",
            "--epochs", "1", "--batch", "16", "--train-size", "64", "--test-size", "16",
            "--json", "--out", "t.json", cwd=tmp_path, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        d = json.loads(proc.stdout)["dask"]
        assert d["cluster"] == "external" and [w["name"] for w in d["workers"]] == names
        assert d["training"]["steps"] == 4 and d["error"] == ""
        # partui never stops a cluster it did not start
        time.sleep(0.5)
        assert all(p.poll() is None for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_lost_worker_task_sent_again(engine, sig):
    """A Dask worker killed (or stopped by TERM, which it answers by closing) while it
    computes: its task (whose input died with it) is sent to the other worker, the run says
    so in one line and is still verified."""
    # tasks of 8 samples on the loops kernel take ~0.8 s: the kill 0.3 s into the timed
    # repeat lands while both compute (with 4 samples, ~0.4 s, a quiet machine could
    # finish the repeat first: no worker lost, and the next tests would meet the dead one)
    cfg = RunConfig(
        "conv2", kernel="loops", executor="dask", workers=2, batch=16, repeats=1, warmup=1
    )
    ex = engine.executor("dask", 2)
    ex.start()
    victim = ex.lanes[0].pid

    def emit(event):
        if isinstance(event, RepeatDone) and event.repeat == -1:  # the timed repeat starts
            threading.Timer(0.3, os.kill, (victim, sig)).start()

    t0 = time.monotonic()
    result = engine.run(cfg, emit=emit)
    assert time.monotonic() - t0 < 120
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == "zombie"
    assert result.ok
    notes = result.dask["notes"]
    assert len(notes) == 1 and "\n" not in notes[0]
    assert "worker 0 was lost" in notes[0] and "sent it again to worker 1" in notes[0]
    # the next run finds the restarted worker
    again = engine.run(RunConfig("linear1", executor="dask", workers=2, batch=4, repeats=1))
    assert (
        again.ok
        and again.dask["notes"] == []
        and victim not in {w["pid"] for w in again.dask["workers"]}
    )


def test_snapshot_and_chrome_trace_hold_one_track_per_dask_worker(engine, tmp_path):
    from partui.profiles.store.export import chrome_trace
    from partui.profiles.store.snapshot import Snapshot, load, save
    from partui.tui.dashboard.charts.timeline import phase_names, view_of_result

    result = engine.run(RunConfig("linear1", executor="dask", workers=2, batch=6, repeats=2))
    path = save(Snapshot(runs=[result]), tmp_path / "dask.json")
    back = load(path)  # the loader checks every field, the dask figures and spans included
    (r,) = back.runs
    assert r.dask == json.loads(json.dumps(result.dask, allow_nan=False))
    assert r.spans == result.spans
    trace = chrome_trace(back)["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in trace if e["name"] == "process_name"}
    for w in result.dask["workers"]:
        assert names[w["pid"]] == f"Dask worker {w['name']} ({w['address']}, pid {w['pid']})"
    tasks = [e for e in trace if e["ph"] == "X" and e.get("cat") == "batch"]
    moves = [e for e in trace if e["ph"] == "X" and e.get("cat") == "transfer"]
    pids = {w["pid"] for w in result.dask["workers"]}
    assert len(tasks) == 2 * 2 and {e["pid"] for e in tasks} == pids
    assert len(moves) >= 2 * 2 * 2 and all(e["args"]["bytes"] >= 0 for e in moves)
    assert all(e["name"].startswith("transfer task") for e in moves)
    # the dashboard's timeline: a lane per Dask worker, compute and transfer, where it ran
    view = view_of_result(r, 1, None)
    assert len(view.lanes) == 2 and all(lane.spans for lane in view.lanes)
    assert phase_names(r.config) == {0: "compute", TRANSFER: "transfer"}
    assert {s.phase for lane in view.lanes for s in lane.spans} == {0, TRANSFER}
    assert result.dask["scheduler"] in view.note and "LocalCluster" in view.note


def train_losing_worker_1(engine, train_size: int, epochs: int, kill_at: int, wait_gone=False):
    """Train the letter CNN on the module's cluster (batch 16, 2 workers) and SIGKILL worker
    1 once step `kill_at` is done (`wait_gone`: then wait until the scheduler has let it
    go). Returns (trainer, its weights at the start, result, the killed worker's pid)."""
    from partui.profiles.records.events import StepDone
    from partui.profiles.records.train_config import TrainConfig
    from partui.profiles.train.datasets import builtin_letters
    from partui.profiles.train.trainer import Trainer

    ex = engine.executor("dask", 2)
    ex.start()
    if ex.stale:
        ex.refresh_workers()
    victim, address = ex.lanes[1].pid, ex.lanes[1].address
    data = builtin_letters(train_size, 32, 0)
    cfg = TrainConfig(
        epochs=epochs, batch=16, train_size=train_size, test_size=32, executor="dask", workers=2
    )

    def gone() -> bool:
        return address not in ex.client.scheduler_info(n_workers=-1)["workers"]

    def emit(event):
        if isinstance(event, StepDone) and event.step == kill_at:
            os.kill(victim, signal.SIGKILL)
            if wait_gone:
                wait_until(gone, 30, message="the killed worker is still known to the scheduler")

    tr = Trainer(cfg, data, emit=emit, executor=ex)
    start = tr.params.copy()
    return tr, start, tr.run(), victim


def test_training_stops_in_one_line_when_a_worker_is_lost(engine):
    """A Dask worker killed during `partui train`: the step's tasks were pinned to it (its
    weights died with it), so the run stops within seconds, says which worker in one line
    and keeps the weights of the last epoch; the next run finds the restarted worker."""
    t0 = time.monotonic()
    tr, start, res, victim = train_losing_worker_1(engine, 512, 1, kill_at=3)
    assert time.monotonic() - t0 < 60
    err = res.dask["error"]
    assert res.interrupted and "Dask worker 1 was lost" in err and "\n" not in err, err
    assert len(res.loss_curve) < 32 and np.isfinite(tr.params).all()
    assert not np.array_equal(tr.params, start)  # what the finished steps learned
    again = engine.run(RunConfig("linear1", executor="dask", workers=2, batch=4, repeats=1))
    assert again.ok and victim not in {w["pid"] for w in again.dask["workers"]}


def test_training_stops_in_one_line_when_a_worker_is_lost_as_an_epoch_ends(engine):
    """A Dask worker killed right after an epoch's last step and gone from the scheduler as
    the weights' digests are asked of every worker: those tasks are pinned to it, so the run
    stops within seconds and says which worker."""
    tr, _, res, victim = train_losing_worker_1(engine, 128, 2, kill_at=128 // 16, wait_gone=True)
    err = res.dask["error"]
    assert res.interrupted and "Dask worker 1 was lost" in err and "\n" not in err, err
    assert "epoch 1, as it ended" in err and np.isfinite(tr.params).all()
    again = engine.run(RunConfig("linear1", executor="dask", workers=2, batch=4, repeats=1))
    assert again.ok and victim not in {w["pid"] for w in again.dask["workers"]}


async def test_dashboard_key_e_reaches_dask_and_runs_there(engine, tmp_path):
    """The dashboard on the module's cluster (as --scheduler would give it): `e` reaches dask,
    a run has a lane per Dask worker, and quitting leaves that cluster running (closing an
    engine stops only a LocalCluster it started: the fixture and the train CLI test check)."""

    from partui.profiles.service.engine import EngineThread
    from partui.tui.dashboard.app import PartuiApp
    from partui.tui.dashboard.widgets.settings import SettingsPane

    ours = engine.executor("dask", 2)
    ours.start()
    address, pids = ours.address, {w.pid for w in ours.lanes}
    cfg = RunConfig("linear1", workers=2, batch=4, repeats=2, warmup=0, scheduler=address)
    app = PartuiApp(snapshot_dir=tmp_path, config=cfg, engine_factory=EngineThread, live_loop=False)
    before = _mine()
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(6):
            if app.session.config.executor == "dask":
                break
            await pilot.press("e")
        assert app.session.config.executor == "dask"
        assert "dask" in str(app.query_one(SettingsPane).render())
        await pilot.press("r")
        await wait_until_async(
            lambda: app.session.runs and app.session.running is None,
            120,
            interval=0.05,
            between=app.tick,
            message="the Dask run did not finish",
        )
        run = app.session.runs[-1]
        assert run.ok and run.dask and len(run.dask["workers"]) == 2
        view = app.session.timeline_view()
        assert len(view.lanes) == 2 and f"Dask {address}" in view.note
        assert {w["pid"] for w in run.dask["workers"]} == pids
    assert not _gone(_mine() - before)  # nothing of its own left
    assert all(psutil.pid_exists(p) for p in pids)  # and the cluster it did not start runs on


def test_data_parallel_training_step_by_tree_reduction(engine):
    """--pass train on Dask: each worker's shard gradient, summed by an add task on a worker
    (one gradient moves between the workers), back here, the update here; checked against
    a float64 loss and gradients computed here."""
    from partui.kernels.grad import reference as grad_reference
    from partui.kernels.grad import training
    from partui.kernels.plan.pass_axes import BACKWARD, COMBINE, FORWARD, UPDATE
    from partui.profiles.run.inputs import make_labels

    cfg = RunConfig(
        "network", executor="dask", workers=2, batch=8, repeats=2, warmup=1, pass_kind="train"
    )
    result = engine.run(cfg, keep_arrays=True)
    layer = LAYERS["network"]
    x, labels, params = make_input(layer, 8, 0), make_labels(8, 0), make_params(layer, 0)
    loss, grads = grad_reference.network_loss_and_grads(x, labels, params)
    assert result.ok, result.error
    assert abs(float(result.arrays["loss"]) - loss) <= 1e-4 * abs(loss)
    for k, g in grads.items():
        got = result.arrays[f"{k}.grad"].astype(np.float64)
        assert np.abs(got - g).max() <= 1e-3 * max(np.abs(g).max(), 1e-6), k
    t = result.dask["training"]
    grad_bytes = 4 * training.NETWORK_PARAMS
    assert (
        t["gradient_bytes"] == grad_bytes and t["gradient_bytes_to_partui_per_step"] == grad_bytes
    )
    assert t["gradient_bytes_between_workers_per_step"] == grad_bytes  # W - 1 = 1 moved
    assert "tree reduction" in t["combine"]
    phases = Counter(s.phase for s in result.spans)
    for phase in (FORWARD, BACKWARD):
        assert phases[phase] == 2 * 2  # per shard, per timed step
    assert phases[COMBINE] == 2 and phases[UPDATE] == 2 and phases[TRANSFER] >= 2 * 4
    # gather and average: both gradients here, summed here, none between the workers
    gathered = engine.run(replace_cfg(cfg, combine="gather", repeats=1, warmup=0))
    assert gathered.ok, gathered.error
    t = gathered.dask["training"]
    assert t["gradient_bytes_to_partui_per_step"] == 2 * grad_bytes
    assert t["gradient_bytes_between_workers_per_step"] == 0 and "gather" in t["combine"]
    assert Counter(s.phase for s in gathered.spans)[COMBINE] == 1  # the sum, here
    with pytest.raises(NotApplicable, match="tree of adds"):
        RunConfig(
            "network", executor="dask", workers=2, pass_kind="train", combine="locked"
        ).check()


# ---- partui train --executor dask ----------------------------------------------------


def _one_step_reference(data, cfg):
    """The weights after the run's first SGD step, in float64: the batch the trainer draws
    first (its seeded order), the float64 loss and gradients, v = g, p -= lr * v."""
    from partui.kernels.grad import reference as grad_reference
    from partui.kernels.grad import training
    from partui.profiles.train.trainer import initial_params

    order = np.random.default_rng([cfg.seed, 7]).permutation(len(data.train_y))
    rows = order[: cfg.batch]
    flat = initial_params(cfg.seed)
    params = training.views(flat, training.NETWORK_LAYOUT)
    loss, grads = grad_reference.network_loss_and_grads(
        data.train_x[rows], data.train_y[rows], params
    )
    want = {k: params[k].astype(np.float64) - cfg.lr * grads[k] for k in params}
    return loss, want


def _weights_close(flat, want, tol=1e-5) -> None:
    from partui.kernels.grad import training

    got = training.views(flat, training.NETWORK_LAYOUT)
    for k, w in want.items():
        err = np.abs(got[k].astype(np.float64) - w).max()
        assert err <= tol * max(1.0, np.abs(w).max()), (k, err)


def test_dask_training_step_equals_inline_and_float64(engine):
    """One SGD step of `partui train` on Dask (weights kept on the workers): on one worker
    it equals the inline trainer's step; on two, with either combine, the float64 step; the
    gradient bytes per step are what each combine moves."""
    from partui.profiles.records.train_config import TrainConfig
    from partui.profiles.train.datasets import builtin_letters
    from partui.profiles.train.trainer import Trainer

    data = builtin_letters(8, 8, 0)
    base = TrainConfig(epochs=1, batch=8, train_size=8, test_size=8, executor="inline", workers=1)
    loss, want = _one_step_reference(data, base)
    inline = Trainer(base, data)
    inline.run()
    _weights_close(inline.params, want)
    ex = engine.executor("dask", 2)
    ex.start()
    one = Trainer(replace_cfg(base, executor="dask"), data, executor=ex)
    res = one.run()
    assert np.abs(one.params - inline.params).max() <= 1e-6
    assert abs(res.loss_curve[0][2] - loss) <= 1e-4 * loss
    assert len(res.dask["workers"]) == 1 and res.dask["training"]["steps"] == 1
    g = 4 * one.params.size
    moved = {
        "reduce": (2 * g, 0, 0),  # W-1 into the add, the sum to the other worker
        "gather": (0, 2 * g, 2 * g),  # both here, the sum to both
    }
    for combine, (between, to_here, from_here) in moved.items():
        cfg = replace_cfg(base, executor="dask", workers=2, combine=combine)
        tr = Trainer(cfg, data, executor=ex)
        res = tr.run()
        _weights_close(tr.params, want)
        t = res.dask["training"]
        assert t["gradient_bytes"] == g
        assert t["gradient_bytes_between_workers_per_step"] == between, combine
        assert t["gradient_bytes_to_partui_per_step"] == to_here
        assert t["gradient_bytes_from_partui_per_step"] == from_here
        assert t["step_ms"] > 0 and t["exchange_ms"] >= 0
        phases = {s.phase for s in res.spans}
        assert {0, 1, 3} <= phases  # forward, backward, update on the workers
        assert {s.tid for s in res.spans if s.phase in (0, 1)} == {
            w["pid"] for w in res.dask["workers"]
        }
    assert ex.client is not None  # a cluster handed in is left open


def replace_cfg(cfg, **changes):
    from dataclasses import replace

    return replace(cfg, **changes)


def test_cli_train_on_dask_learns_and_leaves_nothing(tmp_path):
    """The command a user runs, on a LocalCluster it starts: it learns, reports the Dask
    figures, saves the weights, and stops the cluster (checked with psutil)."""
    proc = _partui(
        "train", "--executor", "dask", "--workers", "2", "--epochs", "2", "--batch", "32",
        "--train-size", "256", "--test-size", "32", "--json", "--out", "t.json",
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    losses = [p[2] for p in out["loss_curve"]]
    assert len(losses) == 16 and np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.2
    assert {s["phase"] for s in out["spans"]} >= {0, 1, 2, 3, TRANSFER}
    d = out["dask"]
    assert d["cluster"] == "local" and len(d["workers"]) == 2 and d["error"] == ""
    assert d["training"]["gradient_bytes_between_workers_per_step"] == 2 * 4 * 296_730
    assert (tmp_path / "t.json.weights.npz").exists()
    assert not _gone(w["pid"] for w in d["workers"])  # the LocalCluster it started is stopped


def test_train_on_dask_refusals_in_one_line(tmp_path, capsys, monkeypatch):
    from partui.profiles.executors import dask_connect as dask_executor
    from partui.tui.cli.main import main

    address = f"tcp://127.0.0.1:{_free_port()}"
    cases = {
        ("--update", "hogwild"): "Dask workers share none",
        ("--combine", "locked"): "Dask workers share no memory",
        ("--scheduler", address): f"cannot reach the Dask scheduler at {address}",
    }
    for extra, message in cases.items():
        t0 = time.monotonic()
        code = main(["train", "--executor", "dask", "--out", str(tmp_path / "t.json"), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], (extra, err)
        assert time.monotonic() - t0 < MAX_UNREACHABLE_S
    code = main(["train", "--combine", "gather", "--out", str(tmp_path / "t.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "gather applies to executor dask" in err[-1]
    code = main(["train", "--scheduler", address, "--out", str(tmp_path / "t.json")])
    assert code == 2 and "--scheduler applies to --executor dask" in capsys.readouterr().err
    monkeypatch.setattr(dask_executor, "available", lambda: False)
    code = main(["train", "--executor", "dask", "--out", str(tmp_path / "t.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'partui[dask]'" in err[0]
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_while_the_local_cluster_starts_ends_in_one_line(tmp_path, sig):
    """A signal while LocalCluster() is still starting its workers: partui's one line and
    the signal's exit code, no traceback from Dask's exit hook, no process left behind."""
    env = {**os.environ, "PARTUI_SNAPSHOT_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "partui.tui.cli.main", "run", "--layer", "gelu3"]
        + ["--executor", "dask", "--workers", "2", "--batch", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        parent = psutil.Process(proc.pid)
        # the first worker process under partui: the cluster is on its way up
        wait_until(lambda: any(parent.children(recursive=True)), budget(60))
        family = {p.pid for p in parent.children(recursive=True)}
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=budget(60))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    said = [line for line in err.splitlines() if line and "compil" not in line]
    assert "Traceback" not in err and len(said) == 1, err
    assert not _gone(family), "left behind"


@pytest.mark.parametrize("quiet", [False, True])
def test_the_resource_tracker_of_a_dask_start_keeps_its_warnings_to_itself(quiet):
    """A semaphore left registered (a worker process killed as a stop ends the cluster's
    start) makes multiprocessing's resource tracker warn at exit, after partui's one line;
    the tracker partui starts before a LocalCluster keeps quiet (and still frees it)."""
    script = (
        "import os, multiprocessing\n"
        "from partui.profiles.executors.dask_connect import quiet_resource_tracker\n"
        f"if {quiet}: quiet_resource_tracker()\n"
        "lock = multiprocessing.get_context('spawn').Lock()\n"
        "os._exit(0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=budget(60)
    )
    assert proc.returncode == 0
    # the tracker ends after this process: its stderr closes when it does
    assert ("leaked semaphore" in proc.stderr) is not quiet, proc.stderr


def test_a_worker_gone_mid_conversation_is_said_in_words():
    """Dask's errors of a lost worker become WorkerLost naming what partui was doing; a
    signal, a refusal and partui's own WorkerLost pass through unchanged."""
    import concurrent.futures

    from distributed.comm.core import CommClosedError

    from partui.profiles.executors.base import WorkerLost
    from partui.profiles.executors.dask_cluster import worker_lost_means

    for exc in (
        CommClosedError("in <TCP (closed) Scheduler Broadcast>: ConnectionResetError"),
        RuntimeError("Nanny failed to start."),
        concurrent.futures.CancelledError(),
        ConnectionRefusedError(111, "refused"),
    ):
        with pytest.raises(WorkerLost, match="^the weights did not arrive: a Dask worker was lost"):
            with worker_lost_means("the weights did not arrive"):
                raise exc
    for exc in (KeyboardInterrupt(), ConfigError("no"), WorkerLost("worker 1 was lost")):
        with pytest.raises(type(exc)) as got:
            with worker_lost_means("x"):
                raise exc
        assert got.value is exc
