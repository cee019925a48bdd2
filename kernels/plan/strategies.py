"""How a layer's work is cut into tasks (the axes and their rules: `axes`).

A strategy only cuts; it knows nothing of threads or processes. Each task names
the region of the output it writes (samples, output channels or features,
output rows) and, for the `filter` strategy, the group of input channels whose
partial sums it computes; a second phase then reduces the partial sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from partui.kernels.model.layers import Layer, prod
from partui.kernels.plan.axes import (
    EXECUTORS,  # noqa: F401 (re-exported)
    KERNELS,  # noqa: F401 (re-exported)
    STRATEGIES,  # noqa: F401 (re-exported)
    NotApplicable,  # noqa: F401 (re-exported)
    not_applicable_reason,
    valid_combinations,  # noqa: F401 (re-exported)
)

HYBRID_CHANNEL_PARTS = 2


@dataclass(frozen=True)
class Task:
    """One piece of work: the output region it writes, and what it reads."""

    index: int
    phase: int  # 0 = compute; 1 = reduce the partial sums (filter only)
    batch: tuple[int, int]
    channels: tuple[int, int]  # output channels / features
    rows: tuple[int, int] | None  # output rows (4-D outputs only)
    group: tuple[int, int] | None = None  # input channels / features (filter)
    partial: int | None = None  # which partial-sum buffer this task writes
    units: int = 0  # FLOPs of the task


@dataclass
class Plan:
    phases: list[list[Task]] = field(default_factory=list)
    partials: int = 0  # number of partial-sum buffers (filter)

    @property
    def tasks(self) -> list[Task]:
        return [t for phase in self.phases for t in phase]


def split_range(n: int, parts: int) -> list[tuple[int, int]]:
    """`n` items in at most `parts` contiguous, balanced, non-empty ranges."""
    parts = max(1, min(parts, n))
    base, extra = divmod(n, parts)
    ranges, start = [], 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


def _flops_share(layer: Layer, batch: int, nb, ch, rows, group) -> int:
    frac = (nb[1] - nb[0]) / batch
    if layer.kind != "network":
        frac *= (ch[1] - ch[0]) / layer.out_shape[0]
        if rows is not None:
            frac *= (rows[1] - rows[0]) / layer.out_shape[1]
        if group is not None:
            frac *= (group[1] - group[0]) / layer.in_shape[0]
    return int(round(layer.flops(batch) * frac))


def plan(layer: Layer, strategy: str, batch: int, parts: int) -> Plan:
    """Cut `layer` at `batch` into tasks for `parts` workers.

    `pipeline` is planned by the engine (its tasks are stage x micro-batch).
    """
    nch = layer.out_shape[0]
    has_rows = len(layer.out_shape) == 3
    all_rows = (0, layer.out_shape[1]) if has_rows else None
    regions: list[tuple] = []
    if strategy in ("none", "pipeline"):
        regions = [((0, batch), (0, nch), all_rows)]
    elif strategy == "batch":
        regions = [(nb, (0, nch), all_rows) for nb in split_range(batch, parts)]
    elif strategy == "channel":
        regions = [((0, batch), ch, all_rows) for ch in split_range(nch, parts)]
    elif strategy == "spatial":
        regions = [((0, batch), (0, nch), rr) for rr in split_range(layer.out_shape[1], parts)]
    elif strategy == "hybrid":
        regions = [
            (nb, ch, all_rows)
            for nb in split_range(batch, parts)
            for ch in split_range(nch, HYBRID_CHANNEL_PARTS)
        ]
    elif strategy == "filter":
        groups = split_range(layer.in_shape[0], parts)
        compute = [
            Task(
                i,
                0,
                (0, batch),
                (0, nch),
                all_rows,
                g,
                i,
                _flops_share(layer, batch, (0, batch), (0, nch), all_rows, g),
            )
            for i, g in enumerate(groups)
        ]
        # The reduction reads every partial buffer: cut it by batch.
        per_elem = len(groups) + 1
        reduce_tasks = [
            Task(
                len(groups) + j,
                1,
                nb,
                (0, nch),
                all_rows,
                units=per_elem * (nb[1] - nb[0]) * prod(layer.out_shape),
            )
            for j, nb in enumerate(split_range(batch, parts))
        ]
        return Plan([compute, reduce_tasks], partials=len(groups))
    else:
        raise NotApplicable(f"unknown strategy {strategy!r}")
    tasks = [
        Task(i, 0, nb, ch, rr, units=_flops_share(layer, batch, nb, ch, rr, None))
        for i, (nb, ch, rr) in enumerate(regions)
    ]
    return Plan([tasks])


def pipeline_stages(layers, stages: int) -> list[list]:
    """Cut consecutive layers into `stages` non-empty groups, minimising the largest group's FLOPs.

    The slowest stage sets a pipeline's pace, so balance is what matters.
    """
    layers = list(layers)
    n = len(layers)
    stages = max(1, min(stages, n))
    cost = [layer.flops(1) for layer in layers]
    prefix = [0]
    for c in cost:
        prefix.append(prefix[-1] + c)
    # best[k][i]: smallest max-stage cost cutting the first i layers into k stages
    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(stages + 1)]
    cut = [[0] * (n + 1) for _ in range(stages + 1)]
    best[0][0] = 0
    for k in range(1, stages + 1):
        for i in range(k, n + 1):
            for j in range(k - 1, i):
                value = max(best[k - 1][j], prefix[i] - prefix[j])
                if value < best[k][i]:
                    best[k][i], cut[k][i] = value, j
    groups, i = [], n
    for k in range(stages, 0, -1):
        j = cut[k][i]
        groups.append(layers[j:i])
        i = j
    return groups[::-1]


def micro_batches(batch: int, workers: int) -> list[tuple[int, int]]:
    """Micro-batches for a pipeline: enough to keep every stage busy, at least 1 sample each."""
    return split_range(batch, 4 * workers)


def settings_warnings(
    layer: Layer, strategy: str, executor: str, workers: int, batch: int, logical_cores: int | None
) -> list[str]:
    """Valid but unwise settings, one line each: the run goes ahead, the figures need care.

    More workers than logical cores take turns on them; fewer tasks than workers leave some
    workers idle (batch 1 split by batch over 2 workers makes one task). Short enough for
    two lines of the narrowest settings pane.
    """
    out: list[str] = []
    if executor == "inline" or workers <= 1:
        return out
    if logical_cores and workers > logical_cores:
        out.append(f"{workers} workers, {logical_cores} cores: no speedup past {logical_cores}x")
    if executor == "blas" or not_applicable_reason(
        layer, strategy, "vectorized", executor, workers
    ):
        return out  # BLAS cuts its own call; an invalid combination says so itself
    if strategy == "pipeline":
        tasks = min(batch, 4 * workers)  # micro-batches: each stage has at most this many
    else:
        tasks = len(plan(layer, strategy, batch, workers).phases[0])
    if tasks < workers:
        idle = workers - tasks
        why = f" (batch {batch})" if strategy in ("batch", "hybrid", "pipeline") else ""
        out.append(
            f"{tasks} task{'s' if tasks != 1 else ''} for {workers} workers: {idle} idle{why}"
        )
    return out
