"""The event stream: on a thread and in a child process."""

import os
import time

import psutil
import pytest
from waiting import budget, wait_until

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import (
    CpuSample,
    RepeatDone,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SpanDone,
)
from partui.profiles.service.engine import EngineProcess, EngineThread

TERMINAL = (RunFinished, RunFailed, RunCancelled)
# minutes if not stopped
LONG_LOOPS = RunConfig("conv2", kernel="loops", workers=2, repeats=20, warmup=0)


def collect(engine, ends: int, timeout: float = 60.0, on_event=None) -> list:
    """Drain until `ends` terminal events arrived; each event gets its arrival time."""
    events: list = []

    def drain():
        for e in engine.drain():
            events.append((e, time.monotonic()))
            if on_event:
                on_event(e)

    wait_until(
        lambda: sum(isinstance(e, TERMINAL) for e, _ in events) >= ends,
        timeout,
        interval=0.005,
        between=drain,
        message=lambda: f"got {[type(e).__name__ for e, _ in events]}",
    )
    return events


@pytest.fixture(params=["thread", "process"])
def engine(request):
    e = EngineThread() if request.param == "thread" else EngineProcess(stderr=None)
    e.start()
    yield e
    e.close()


def test_events_arrive_in_order_with_samples_and_failures(engine):
    engine.submit(RunConfig("conv2", workers=2, batch=16, repeats=3))
    engine.submit(RunConfig("nope"))
    engine.submit(RunConfig("conv2", strategy="pipeline", workers=2, batch=16, repeats=1, warmup=0))
    engine.submit("not a config")
    engine.submit(RunConfig("conv2", kernel="loops", workers=2, batch=2, repeats=2, warmup=0))
    events = [e for e, _ in collect(engine, 5)]
    ends = [e for e in events if isinstance(e, TERMINAL)]
    assert [type(e) for e in ends] == [RunFinished, RunFailed, RunFailed, RunFailed, RunFinished]
    assert "unknown layer 'nope'" in ends[1].error and ends[1].run == 0
    assert ends[2].error.startswith("not applicable") and "\n" not in ends[2].error
    assert "RunConfig" in ends[3].error
    first = ends[0].result
    assert first.ok and len(first.on_cpu_ratio) == 2
    # spans and samples travel once: streamed as they came, not again in the run's end
    assert first.spans == [] and first.cpu_samples == []
    spans = [e.span for e in events if isinstance(e, SpanDone) and e.span.run == ends[0].run]
    assert len(spans) == (3 + 1) * 2 and sum(s.repeat >= 0 for s in spans) == 3 * 2
    assert [e.repeat for e in events if isinstance(e, RepeatDone) and e.run == ends[0].run] == [
        -1,
        0,
        1,
        2,
    ]
    samples = [e for e in events if isinstance(e, CpuSample)]
    assert samples and all(len(s.per_core) == psutil.cpu_count() for s in samples)
    assert all(0 <= v <= 100 for s in samples for v in s.per_core if v == v)
    cores = psutil.cpu_count()
    assert all(
        0 <= s.engine_cpu <= 100 * cores and 0 <= s.partui_cpu <= 100 * cores for s in samples
    )


def test_cpu_is_sampled_with_no_run_at_all(engine):
    """The monitor samples between runs: a chart of the last 30 s has something idle too."""
    events: list = []
    wait_until(
        lambda: sum(isinstance(e, CpuSample) for e in events) >= 3,
        5,
        interval=0.05,
        between=lambda: events.extend(engine.drain()),
        message="no CPU samples while idle",
    )
    samples = [e for e in events if isinstance(e, CpuSample)]
    assert not any(isinstance(e, (RunStarted, SpanDone)) for e in events)
    # idle: a low rate, each sample says the stretch it covers, and the first is not a 0%
    assert all(s.window_ns >= 0.02e9 for s in samples)
    assert all(s.others_cpu is not None and s.others_cpu >= 0 for s in samples)


def test_spans_stream_while_the_run_works(engine):
    # a loops run of about a second: its first spans must arrive well before it ends
    engine.submit(RunConfig("conv2", kernel="loops", workers=2, batch=4, repeats=8, warmup=0))
    events = collect(engine, 1)
    end, end_t = next((e, t) for e, t in events if isinstance(e, TERMINAL))
    assert isinstance(end, RunFinished)  # a CPU sample taken as it ended can follow it
    span_ts = [t for e, t in events if isinstance(e, SpanDone)]
    assert len(span_ts) == 16 and span_ts[0] < end_t - 0.3
    # CPU samples at >= 10 Hz while it works
    sample_ts = [e.t_ns for e, _ in events if isinstance(e, CpuSample)]
    gaps = [(b - a) / 1e9 for a, b in zip(sample_ts, sample_ts[1:])]
    assert len(sample_ts) >= 5 and sorted(gaps)[len(gaps) // 2] <= 0.1


def test_cancel_stops_a_long_run_within_200ms(engine):
    engine.submit(LONG_LOOPS)
    engine.submit(RunConfig("conv2", workers=2, batch=4, repeats=1, warmup=0))
    sent: dict = {}

    def on_event(e):
        # the work has really started: the run's workers have used CPU (a task's span would
        # come only when it ends, many seconds in)
        if isinstance(e, RunStarted):
            sent["started"] = True
        busy = isinstance(e, CpuSample) and sum(e.workers.values()) > 0.05
        if busy and "started" in sent and "t" not in sent:
            sent["t"] = time.monotonic()
            engine.cancel()

    events = collect(engine, 2, on_event=on_event)
    ends = [(e, t) for e, t in events if isinstance(e, TERMINAL)]
    assert isinstance(ends[0][0], RunCancelled) and isinstance(ends[1][0], RunFinished)
    assert ends[0][1] - sent["t"] < budget(0.2) + 0.05  # + one drain interval of this test
    assert ends[0][0].config.kernel == "loops"


def test_cancel_can_drop_queued_runs(engine):
    engine.submit(LONG_LOOPS)
    engine.submit(RunConfig("conv2", workers=2, batch=4, repeats=1, warmup=0))
    started = collect_until(engine, RunStarted)
    engine.cancel(drop_queued=True)
    events = started + [e for e, _ in collect(engine, 2)]
    ends = [e for e in events if isinstance(e, TERMINAL)]
    assert [type(e) for e in ends] == [RunCancelled, RunCancelled]
    assert ends[0].run > 0 and ends[1].run == 0 and ends[1].config.kernel == "vectorized"


def collect_until(engine, kind, timeout=30.0):
    got: list = []
    wait_until(
        lambda: any(isinstance(e, kind) for e in got),
        timeout,
        interval=0.005,
        between=lambda: got.extend(engine.drain()),
        message=f"no {kind.__name__}",
    )
    return got


def test_process_child_never_imports_textual_and_close_leaves_no_process():
    import textual  # noqa: F401 - the parent has it loaded, as the dashboard does

    e = EngineProcess(stderr=None)
    e.start()
    assert e.wait_ready()
    assert e.child_info["textual"] is False and e.child_info["hello"] == e.pid != os.getpid()
    e.submit(RunConfig("conv2", executor="processes", workers=2, batch=8, repeats=1, warmup=0))
    collect(e, 1)
    family = psutil.Process(e.pid).children(recursive=True)
    assert len(family) >= 2  # the pool's workers (and its fork server)
    e.close()
    e.close()  # safe twice
    assert not e.alive
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_lost_worker_process_is_a_failed_run_and_the_child_keeps_serving():
    with EngineProcess(stderr=None) as e:
        e.submit(
            RunConfig("conv2", kernel="loops", executor="processes", workers=2, repeats=3, warmup=0)
        )
        collect_until(e, RunStarted)
        # a pool worker at work: a process of the engine's that keeps using CPU (the
        # resource tracker does not); found by CPU time used, not by a rate that a loaded
        # machine would hold down
        seen: dict = {}

        def busy():
            for p in psutil.Process(e.pid).children(recursive=True):
                seen.setdefault(p.pid, (p, cpu_s(p)))
            return [p for p, t0 in seen.values() if cpu_s(p) - t0 > 0.2]

        workers = wait_until(busy, 30, interval=0.05, message="no busy worker process found")
        workers[0].kill()
        e.submit(RunConfig("conv2", workers=2, batch=4, repeats=1, warmup=0))
        ends = [ev for ev, _ in collect(e, 2) if isinstance(ev, TERMINAL)]
        assert isinstance(ends[0], RunFailed) and "lost" in ends[0].error
        assert isinstance(ends[1], RunFinished) and e.alive


def cpu_s(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def test_submit_after_close_is_an_event_not_an_exception():
    e = EngineProcess()
    e.start()
    e.close()
    e.submit(RunConfig("conv2"))
    (event,) = e.drain()
    assert isinstance(event, RunFailed) and "not running" in event.error


def test_live_config_runs_back_to_back_and_stops():
    cfg = RunConfig("gelu1", workers=2, batch=4, repeats=2, warmup=0)
    with EngineThread() as eng:
        eng.set_live(cfg)
        events: list = []
        wait_until(
            lambda: sum(isinstance(e, RunFinished) for e in events) >= 3,
            20,
            interval=0.01,
            between=lambda: events.extend(eng.drain()),
        )
        eng.set_live(None)
        ended_before = {e.run for e in events if isinstance(e, TERMINAL)}

        def since():  # the runs started and not ended when live mode stopped, or started since
            return {e.run for e in events if isinstance(e, RunStarted)} - ended_before

        def settled():
            return not since() - {e.run for e in events if isinstance(e, TERMINAL)}

        def drain():
            events.extend(eng.drain())

        # the run under way when live mode stopped ends (one the engine had taken may say
        # RunStarted only now); then, over a window, nothing more starts
        wait_until(settled, 20, between=drain)
        time.sleep(budget(0.3))
        wait_until(settled, 20, between=drain)
        assert len(since()) <= 1, sorted(since())


def test_live_config_that_cannot_run_stops_live_mode():
    with EngineThread() as eng:
        eng.set_live(RunConfig("linear1", strategy="spatial", workers=2))
        events: list = []
        wait_until(
            lambda: any(isinstance(e, RunFailed) for e in events),
            10,
            between=lambda: events.extend(eng.drain()),
        )
        time.sleep(0.3)  # a window to see that live mode does not try again
        failed = [e for e in events + eng.drain() if isinstance(e, RunFailed)]
        assert len(failed) == 1 and "not applicable" in failed[0].error


def run_beside_a_shadow(tmp_path, script: str):
    """Run `script` (given WAIT_S, a deadline in seconds, as a format field) in a child
    interpreter whose current folder holds a `partui` package of its own (a clone's parent,
    say) that fails if imported; -P so that the child itself does not import it."""
    import subprocess
    import sys

    shadow = tmp_path / "partui" / "profiles"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise SystemExit('the shadow was imported')\n")
    return subprocess.run(
        [sys.executable, "-P", "-c", script.format(WAIT_S=budget(120))],
        cwd=tmp_path, capture_output=True, text=True, timeout=budget(180),
    )  # fmt: skip


def test_a_partui_folder_in_the_current_directory_does_not_shadow_the_engine(tmp_path):
    """Started from a folder holding a `partui` package of its own, the engine's child still
    runs the installed partui."""
    proc = run_beside_a_shadow(
        tmp_path,
        "from partui.profiles.records.config import RunConfig\n"
        "from partui.profiles.records.events import RunFinished\n"
        "from partui.profiles.service.engine import EngineProcess\n"
        "import time\n"
        "with EngineProcess(stderr=None) as e:\n"
        "    e.start()\n"
        "    e.submit(RunConfig(layer='pool3', batch=2, repeats=1, warmup=0))\n"
        "    deadline = time.monotonic() + {WAIT_S}\n"
        "    while time.monotonic() < deadline:\n"
        "        done = [x for x in e.drain() if isinstance(x, RunFinished)]\n"
        "        if done:\n"
        "            print('verified', done[0].result.ok)\n"
        "            break\n"
        "        time.sleep(0.01)\n",
    )
    assert proc.stdout.strip() == "verified True", proc.stderr


def test_a_partui_folder_in_the_current_directory_does_not_shadow_the_training(tmp_path):
    """The same for the dashboard's training child: a short run trains with the installed
    partui and ends done."""
    proc = run_beside_a_shadow(
        tmp_path,
        "from partui.profiles.records.train_config import TrainConfig\n"
        "from partui.profiles.service.training import TrainProcess\n"
        "import time\n"
        "t = TrainProcess()\n"
        "t.start(TrainConfig(epochs=1, batch=16, workers=1, executor='threads',\n"
        "                    train_size=64, test_size=16))\n"
        "deadline, kinds = time.monotonic() + {WAIT_S}, []\n"
        "while time.monotonic() < deadline and not {{'done', 'error'}} & set(kinds):\n"
        "    kinds += [e[0] for e in t.drain()]\n"
        "    time.sleep(0.01)\n"
        "t.close()\n"
        "print(' '.join(k for k in kinds if k in ('epoch', 'done', 'error')))\n",
    )
    assert proc.stdout.strip() == "epoch done", proc.stdout + proc.stderr


def test_an_engine_child_that_cannot_start_says_why_in_one_line(tmp_path, monkeypatch):
    """A child that dies before it serves (here: an import that fails in it) is reported
    with its own last line, not only an exit code."""
    import partui.profiles.service.engine as service

    monkeypatch.setattr(service, "_CHILD", "raise SystemExit('partui: cannot start: a test')")
    e = EngineProcess()
    e.start()
    try:
        e.submit(RunConfig(layer="pool3", batch=2, repeats=1, warmup=0))
        (failed,) = [x for x, _ in collect(e, 1) if isinstance(x, RunFailed)]
    finally:
        e.close()
    assert "exited unexpectedly" in failed.error
    assert failed.error.endswith("partui: cannot start: a test")


def test_a_settled_thread_engine_has_handed_over_every_end():
    """`settled` (what a test waits on before it counts) holds only once nothing runs, waits
    or is live, and every event has been drained: the live runs made before a stop included."""
    engine = EngineThread(sample_hz=0)
    with engine:
        cfg = RunConfig("conv2", workers=1, batch=2, repeats=1, warmup=0)
        engine.submit(cfg)
        engine.set_live(cfg)
        assert not engine.settled
        events: list = []
        wait_until(
            lambda: sum(isinstance(e, RunFinished) for e in events) >= 5,
            60,
            between=lambda: events.extend(engine.drain()),
        )
        engine.set_live(None)
        engine.submit(cfg)
        engine.cancel(drop_queued=True)
        wait_until(lambda: engine.settled, 60, between=lambda: events.extend(engine.drain()))
        assert engine.drain() == []
        running = False  # each start is followed by its end before the next start
        for e in events:
            if isinstance(e, RunStarted):
                assert not running
                running = True
            elif isinstance(e, TERMINAL):
                running = False
        assert not running, "settled while a run had not ended"
        assert isinstance(events[-1], TERMINAL)
