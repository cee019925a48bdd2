"""A long live session's memory levels off: the dashboard keeps every run's figures but the
spans and CPU samples of only the latest RUN_DETAIL runs (tests/benchmarks/soak_live.py
watches the whole dashboard's memory over a long soak)."""

from dataclasses import replace

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import RunFinished
from partui.profiles.run.engine import Engine
from partui.tui.dashboard.model import RUN_DETAIL, Model


def test_only_the_latest_runs_keep_their_spans_and_samples():
    with Engine() as engine:
        # long enough (~0.2 s) to carry CPU samples: the first comes after 0.1 s
        result = engine.run(RunConfig("conv2", workers=2, batch=8, repeats=300, warmup=0))
    assert result.spans and result.cpu_samples
    model = Model(RunConfig("conv2"), max_workers=2)
    for i in range(3 * RUN_DETAIL):
        model.apply(
            [
                RunFinished(
                    i + 1,
                    replace(result, spans=list(result.spans), cpu_samples=list(result.cpu_samples)),
                )
            ]
        )
    assert len(model.runs) == 3 * RUN_DETAIL  # the figures of every run are kept...
    detailed = [r for r in model.runs if r.spans or r.cpu_samples]
    assert len(detailed) == RUN_DETAIL  # ...their spans and samples only for the latest
    assert model.runs[-1].spans == result.spans
    assert all(r.median_ms == result.median_ms for r in model.runs)


def test_the_engine_keeps_a_bounded_number_of_idle_executors(monkeypatch):
    """Each (executor, workers) pair is a pool of its own: a session visiting many worker
    counts keeps only the latest few warm, and the threads of the others end."""
    import threading

    from partui.profiles.run import engine as engine_module

    monkeypatch.setattr(engine_module, "KEPT_EXECUTORS", 3)
    monkeypatch.setattr(engine_module, "KEPT_WORKERS", 6)

    def pool_threads() -> int:
        return sum(t.name.startswith("partui-worker") for t in threading.enumerate())

    with Engine(sample_hz=0) as engine:
        for executor in ("threads", "threads-dynamic"):
            for workers in (1, 2, 3, 1, 2, 4):
                engine.run(RunConfig("conv2", executor=executor, workers=workers, batch=4,
                                     repeats=1, warmup=0))  # fmt: skip
                kept = engine.kept
                assert (kept[-1].name, kept[-1].workers) == (executor, workers)
                assert len(kept) <= 3
                assert len(kept) == 1 or sum(ex.workers for ex in kept) <= 6
                assert pool_threads() <= max(6, workers)
        # the least recently used went first: 3 (one too many executors), then 1 (7 workers)
        assert [(ex.name, ex.workers) for ex in engine.kept] == [
            ("threads-dynamic", 2),
            ("threads-dynamic", 4),
        ]
        latest = engine.kept[-1]
        engine.run(RunConfig("conv2", executor="threads-dynamic", workers=4, batch=4, repeats=1))
        assert engine.kept[-1] is latest  # a pool kept is used again, not made anew
        engine.run(RunConfig("conv2", executor="threads", workers=2, batch=4, repeats=1))
        assert [(ex.name, ex.workers) for ex in engine.kept] == [
            ("threads-dynamic", 4),
            ("threads", 2),
        ]
    assert pool_threads() == 0
