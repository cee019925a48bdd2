"""Each layer's best 1-worker and N-worker configuration, to place under the roofs.

1 worker: the baseline book's best (the fastest verified 1-worker median seen on this
machine), else a quick measurement of the 1-worker candidates (offered to the book).
N workers (N the CPUs usable): the book keeps no such runs, so a quick measurement of the
candidates on threads and BLAS's threads (process pools are left out: their start-up would
dominate a quick measurement); every run is verified, a wrong one never chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from partui.profiles.records.config import RunConfig

KERNEL = "vectorized"
QUICK_EXECUTORS = ("inline", "threads", "blas")


@dataclass(frozen=True)
class Chosen:
    config: RunConfig
    median_ms: float
    min_ms: float | None  # None: the book keeps medians only
    max_ms: float | None
    source: str  # "book (date)" or "measured now (N repeats)"


def choose(
    layers: list[str],
    top_workers: int,
    batch: int,
    book,  # BaselineBook | None
    repeats: int = 5,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Chosen], list[str]]:
    """The best 1-worker and `top_workers`-worker configuration of every layer, and the
    failures met (one line each)."""
    from partui.profiles.bench.suite import candidates
    from partui.profiles.run.engine import Engine
    from partui.profiles.store.baselines import baseline_key

    say = progress or (lambda text: None)
    out: list[Chosen] = []
    failures: list[str] = []
    counts = sorted({1, top_workers})
    with Engine(sample_hz=0) as engine:
        for i, name in enumerate(layers, 1):
            for w in counts:
                kept = book.best(baseline_key(name, KERNEL, batch)) if book and w == 1 else None
                if kept is not None:
                    out.append(Chosen(kept.config, kept.median_ms, None, None, kept.source))
                    continue
                say(f"[{i}/{len(layers)}] {name}: {w} worker{'s' * (w > 1)}, quick measurement")
                best: Chosen | None = None
                for strategy, executor in candidates(name, w, batch):
                    if executor not in QUICK_EXECUTORS:
                        continue
                    cfg = RunConfig(
                        name,
                        strategy=strategy,
                        kernel=KERNEL,
                        executor=executor,
                        workers=1 if executor == "inline" else w,
                        batch=batch,
                        repeats=repeats,
                        warmup=1,
                    )
                    r = engine.run(cfg)
                    if not r.ok:
                        failures.append(f"{name} {strategy}/{executor} w{w}: {r.error}")
                        continue
                    if book is not None and book.offer(r):
                        book.save()
                    if best is None or r.median_ms < best.median_ms:
                        best = Chosen(
                            cfg,
                            r.median_ms,
                            r.min_ms,
                            r.max_ms,
                            f"measured now ({repeats} repeats)",
                        )
                if best is not None:
                    out.append(best)
    return out, failures
