"""False sharing: per-thread counters in one cache line against padded, plain and atomic."""

from __future__ import annotations

from functools import partial

from partui.kernels.lab import counters
from partui.profiles.lab.experiments.common import (
    GOOD_SHARE,
    RETAKE_BELOW,
    KiB,
    retake_note,
    share_note,
    ys,
)
from partui.profiles.lab.measure import Lab, compare, split_calls

FS_SERIES = {
    "plain, adjacent": ("plain", False),
    "plain, padded": ("plain", True),
    "atomic, adjacent": ("atomic", False),
    "atomic, padded": ("atomic", True),
}


def plan(quick: bool, cores: int = 2) -> dict:
    threads = sorted({1, 2} | {t for t in (4, 8) if t <= cores} | {max(2, cores)})
    return {
        "threads": threads,
        "repeats": 5 if quick else 9,
        "increments": {"plain": 4_000_000, "atomic": 1_500_000}
        if quick
        else {"plain": 10_000_000, "atomic": 4_000_000},
        "chunk": 1_000_000,
    }


def need(p: dict) -> int:
    return 64 * KiB


def run(lab: Lab, p: dict) -> dict:
    kern = counters.native()
    line = lab.machine.get("line") or 64
    fns = {"plain": kern.count_plain, "atomic": kern.count_atomic}
    counts_ok = True
    for threads in p["threads"]:
        c = counters.make_counters(threads, line)

        def jobs(kind: str, padded: bool, n: int) -> list:
            return [
                [partial(fns[kind], c, slot, k) for k in split_calls(n, p["chunk"])]
                for slot in counters.slots(threads, padded, line)
            ]

        def reset(_series: str) -> None:
            c[...] = 0

        def check(series: str, n: int | None = None) -> None:
            nonlocal counts_ok
            kind, padded = FS_SERIES[series]
            n = p["increments"][kind] if n is None else n
            counts_ok &= all(c[i] == n for i in counters.slots(threads, padded, line))

        for s, (kind, padded) in FS_SERIES.items():  # untimed: compiles, checks the counts
            reset(s)
            lab.sample(jobs(kind, padded, 1000))
            check(s, 1000)
        group = {
            s: jobs(kind, padded, p["increments"][kind]) for s, (kind, padded) in FS_SERIES.items()
        }
        samples = lab.interleaved(
            group,
            p["repeats"],
            before=reset,
            after=check,
            min_share={s: RETAKE_BELOW for s in FS_SERIES},
        )
        for s, (kind, _padded) in FS_SERIES.items():
            n = p["increments"][kind]
            lab.add(
                s,
                threads,
                "threads",
                "ns per increment (each thread)",
                *ys(samples[s], lambda smp: smp.wall_ns / n),
            )
    return summarize(lab, p, counts_ok)


def summarize(lab: Lab, p: dict, counts_ok: bool) -> dict:
    top = max(p["threads"])
    get = {s: next(q for q in lab.points if q.series == s and q.x == top) for s in FS_SERIES}
    atomic = compare(get["atomic, adjacent"], get["atomic, padded"])
    plain = compare(get["plain, adjacent"], get["plain, padded"])
    by_threads = {}
    for t in p["threads"]:
        pt = {s: next(q for q in lab.points if q.series == s and q.x == t) for s in FS_SERIES}
        by_threads[str(t)] = {
            "atomic_adjacent_over_padded": pt["atomic, adjacent"].median
            / pt["atomic, padded"].median,
            "plain_adjacent_over_padded": pt["plain, adjacent"].median / pt["plain, padded"].median,
        }
    return {
        "threads": top,
        "atomic_adjacent_over_padded": atomic.ratio,
        "plain_adjacent_over_padded": plain.ratio,
        "atomic_verdict": atomic.to_dict(),
        "plain_verdict": plain.to_dict(),
        "by_threads": by_threads,
        "ns_per_increment": {s: get[s].median for s in FS_SERIES},
        "cpu_share": {s: get[s].cpu_share for s in FS_SERIES},
        "counts_ok": counts_ok,
        "line_bytes": lab.machine.get("line") or 64,
        **lab.counts(),
    }


def explain(summary: dict, lab: Lab) -> str:
    t, ns = summary["threads"], summary["ns_per_increment"]
    a, pl = summary["atomic_verdict"], summary["plain_verdict"]
    together = min(v for v in summary["cpu_share"].values() if v is not None)
    lines = [
        f"Each of {t} threads increments its own counter; the counters sit side by side in one "
        f"{summary['line_bytes']}-byte cache line (adjacent) or one line apart (padded). No "
        f"counter is shared, yet adjacent counters share a line, and a core must own a line to "
        f"write it: the line ping-pongs between the cores.",
        f"Atomic increments (lock add), {t} threads: adjacent {ns['atomic, adjacent']:.1f} ns, "
        f"padded {ns['atomic, padded']:.1f} ns per increment; adjacent against padded: "
        f"{a['text']}.",
        f"Plain increments (stored every time, not locked): adjacent {ns['plain, adjacent']:.1f}"
        f" ns, padded {ns['plain, padded']:.1f} ns; adjacent against padded: {pl['text']}.",
    ]
    if together < GOOD_SHARE:
        lines.append(
            f"This run cannot tell: the threads ran only {100 * together:.0f}% of the time, so "
            f"they mostly took turns on one core (another program held the other) and never "
            f"fought over the line. Run it again when the machine is quieter."
        )
    else:
        if _slower(a):
            lines.append(
                "A locked write must own the line and finish before the next one "
                "starts, so every atomic increment waits for the line to come back."
            )
        else:
            lines.append(
                "The atomic slowdown did not show in this run, though the threads ran together."
            )
        lines.append(
            (
                "The textbook slowdown does not show for plain increments"
                if not _slower(pl)
                else "Plain increments show it too, but less than atomic ones"
            )
            + ": the store buffer lets a core keep incrementing while the line is away (each "
            "increment reads its own pending store), and when the line comes back the queued "
            "stores drain in a burst, so one line transfer serves many increments."
        )
    if not summary["counts_ok"]:
        lines.append("COUNTERS WRONG: a counter did not reach its count.")
    return (
        "\n".join(lines)
        + retake_note(summary)
        + share_note([q for q in lab.points if q.x > 1], "the threads")
    )


def _slower(c: dict) -> bool:
    return c["separated"] and c["ratio"] > 1


def markers(lab: Lab, summary: dict) -> list:
    return []
