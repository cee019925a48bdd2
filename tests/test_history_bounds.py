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
