"""A saved run whose timed repeats differ from one another, to replay repeat by repeat.

Each repeat has its own time, its own start and spans of its own length, and the CPU is
sampled every 10 ms across the run with a load that changes from repeat to repeat: a view
that showed one repeat's spans or CPU for another's would be caught.
"""

from __future__ import annotations

from screen_fixtures import MACHINE

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import CpuSample, Span
from partui.profiles.records.results import RunResult
from partui.profiles.records.stats import summarize
from partui.profiles.store.snapshot import Snapshot

MS = 1_000_000
T0 = 5_000 * 1_000_000_000
TIMES = [12.0, 9.0, 15.0, 11.0, 10.0]  # fastest: repeat 2 (index 1), slowest 3, median 4
GAP_MS = 20  # between repeat starts


def replay_result(workers: int = 2, times=TIMES, start: int = T0, run: int = 1) -> RunResult:
    """Repeat i starts at start + i * GAP_MS; worker w's one task ends (w + 1) / workers of
    the way through it, so the busiest worker's span is the repeat's time less 0.1 ms."""
    spans, starts = [], []
    for i, t in enumerate(times):
        s0 = start + i * GAP_MS * MS
        starts.append(s0)
        for w in range(workers):
            end = s0 + int((t - 0.1) * MS * (w + 1) / workers)
            spans.append(Span(w, 100 + w, s0 + 50_000, end, 1, task=w, repeat=i, run=run))
    samples = [
        CpuSample(
            start + k * 10 * MS,
            [10.0 * (k % 10), 50.0],
            {},
            1.0,
            20.0,
            window_ns=10 * MS,
            others_cpu=4.0,
        )
        for k in range(1, len(times) * GAP_MS // 10 + 1)
    ]
    st = summarize(times)
    return RunResult(
        RunConfig("conv2", strategy="batch", workers=workers, batch=8, repeats=len(times)),
        1,
        list(times),
        st.median,
        st.min,
        st.max,
        st.q1,
        st.q3,
        1e-7,
        1e-4,
        True,
        workers,
        1_000_000,
        spans,
        [t * 0.9 for t in [st.median] * workers],
        0.0,
        on_cpu_ratio=[0.95] * workers,
        cpu_samples=samples,
        repeat_start_ns=starts,
    )


def replay_snapshot() -> Snapshot:
    """Run 1 at 1 worker (the baseline, 20 ms each), run 2 at 2 workers (TIMES)."""
    one = replay_result(1, [20.0, 21.0, 19.0], start=T0 - 10**9)
    return Snapshot(runs=[one, replay_result(2, run=2)], note="replay", machine=MACHINE)
