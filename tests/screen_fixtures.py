"""Fixed pictures of the dashboard: a known machine, hand-made runs, and the screen as text.

The runs are made here rather than measured, so a screen drawn from them is the same on
every machine and every run of the tests.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import (
    CpuSample,
    RepeatDone,
    RunFinished,
    RunStarted,
    Span,
    SpanDone,
)
from partui.profiles.records.results import RunResult
from partui.profiles.service.engine import EngineThread
from partui.profiles.system.machine import MachineInfo
from partui.tui.dashboard.app import PartuiApp

MACHINE = MachineInfo(
    cpu_model="Test CPU @ 2.00GHz",
    logical_cores=2,
    physical_cores=2,
    caches=[
        {"level": 1, "type": "Data", "size": 48 * 1024, "line": 64},
        {"level": 2, "type": "Unified", "size": 2 * 1024**2, "line": 64},
        {"level": 3, "type": "Unified", "size": 32 * 1024**2, "line": 64},
    ],
    blas=[{"internal_api": "openblas", "version": "0.3", "num_threads": 2}],
)
FOLDER = Path("/nonexistent/partui-snapshots")  # shown on screen: the same on every run


def fixed_app(config: RunConfig | None = None, folder: Path = FOLDER) -> PartuiApp:
    return PartuiApp(
        snapshot_dir=folder,
        config=config or RunConfig("conv2", workers=2),
        engine_factory=EngineThread,
        live_loop=False,
        machine=MACHINE,
    )


def fixed_result(config: RunConfig, median_ms: float, run: int) -> RunResult:
    """A run of `config` with made-up, plausible figures: its tasks split evenly per worker."""
    w = config.workers
    times = [median_ms * f for f in (0.97, 0.99, 1.0, 1.02, 1.06)]
    spans, t0 = [], 1_000_000_000 * run
    per_task = int(median_ms * 1e6 / 2)
    for repeat in range(len(times)):
        base = t0 + repeat * int(2 * median_ms * 1e6)
        for task in range(2 * w):
            worker = task % w
            start = base + (task // w) * per_task
            spans.append(
                Span(
                    worker,
                    1000 + worker,
                    start,
                    start + per_task - 20_000,
                    1_000_000,
                    task=task,
                    repeat=repeat,
                    run=run,
                )
            )
    samples = [
        CpuSample(t0 + i * 100_000_000, [90.0 - 10 * (i % 3), 40.0 + 20 * w], {}, 5.0, 70.0)
        for i in range(10)
    ]
    return RunResult(
        config,
        1,
        times,
        median_ms,
        min(times),
        max(times),
        times[1],
        times[3],
        2.4e-7,
        1e-4,
        True,
        2 * w,
        285_000_000,
        spans,
        [median_ms * 0.95] * w,
        0.0,
        on_cpu_ratio=[0.99] * w,
        cpu_samples=samples,
    )


def add_fixed_runs(app: PartuiApp) -> None:
    """Two finished runs of the session's layer: 1 worker, then the session's worker count."""
    config = app.session.config
    events = []
    for run, (workers, median) in enumerate([(1, 6.4), (config.workers, 3.6)], start=1):
        cfg = RunConfig(**{**config.to_dict(), "workers": workers})
        result = fixed_result(cfg, median, run)
        events.append(RunStarted(run, cfg, 0.0))
        events += [SpanDone(s) for s in result.spans]
        events += [
            RepeatDone(run, i, int(t * 1e6), result.spans[0].start_ns)
            for i, t in enumerate(result.times_ms)
        ]
        events += result.cpu_samples
        events.append(RunFinished(run, result))
    app.handle_events(events)
    app.redraw(force=True)


def screen_text(app: PartuiApp) -> str:
    """What the terminal shows, as plain text (the same picture as a screenshot)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False)


def fixed_memlab_result():
    """A traversal-like experiment: two series over sizes 4 KiB .. 64 MiB, cache markers."""
    from partui.profiles.lab.measure import ExperimentResult, MemPoint

    points = []
    for size in (2**p for p in range(12, 27)):
        for series, base in (("row order", 0.3), ("column order", 0.5)):
            level = 1 + (size > 48 * 1024) + (size > 2 * 1024**2) + (size > 32 * 1024**2)
            med = base * level * (1.5 if series == "column order" else 1.0)
            points.append(
                MemPoint.of(
                    "traversal",
                    series,
                    size,
                    "data size (bytes)",
                    "ns per element",
                    [med * 0.9, med, med * 1.2],
                )
            )
    markers = [(48 * 1024, "L1 48 KiB"), (2 * 1024**2, "L2 2 MiB"), (32 * 1024**2, "L3 32 MiB")]
    return ExperimentResult("traversal", points, {}, "what the traversal shows", markers)


def show_memlab_result(app: PartuiApp) -> None:
    from partui.tui.dashboard.tabs.lab import MemLabTab

    tab = app.query_one(MemLabTab)
    tab.experiment = "traversal"
    tab.result = fixed_memlab_result()
    tab.points = list(tab.result.points)
    tab._draw()
