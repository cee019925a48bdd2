"""Placing a run under the roofs: which roof it is compared with, and how close it comes.

Cache-aware: a run's memory roof is the bandwidth of the level its working set (the traffic
model's bytes) fits in, because the timed repeats sweep the same arrays again and again and
find them where the previous repeat left them. L1 and L2 are private: a run of W workers has
W of them (each worker touches its share); L3 is shared: its whole size. Anything larger is
compared with DRAM. The compute roof is the GEMM peak at the run's worker count. Attainable
at intensity I: min(peak, bandwidth x I); the run is memory-bound where bandwidth x I is
the lower. `of_roof` is achieved / attainable, never clamped: above 1 means the roof was
measured too low (or the run moved fewer bytes than the model, which it cannot).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from partui.kernels.model.layers import get_layer
from partui.profiles.roofline.roofs import RoofSet
from partui.profiles.roofline.traffic import intensity, traffic_bytes


def memory_level(working_set: int, workers: int, capacity: dict[str, int]) -> str:
    """The smallest level that holds `working_set` bytes for `workers` workers."""
    for level in ("L1", "L2"):
        size = capacity.get(level)
        if size and working_set <= size * workers:
            return level
    l3 = capacity.get("L3")
    if l3 and working_set <= l3:
        return "L3"
    return "DRAM"


@dataclass(frozen=True)
class Attainable:
    gflops: float  # min(peak, bandwidth x intensity)
    bound: str  # memory | compute
    level: str  # the memory roof compared with
    bandwidth_gbs: float
    peak_gflops: float
    ridge: float  # FLOP/byte where that memory roof meets the peak


def attainable(roofs: RoofSet, ai: float, working_set: int, workers: int) -> Attainable | None:
    """What the roofs allow at intensity `ai` for this working set and worker count."""
    level = memory_level(working_set, workers, roofs.capacity)
    peak = roofs.compute(workers)
    bw = roofs.bandwidth(level, workers)
    if bw is None:  # a level sysfs did not list: the next one measured
        for other in ("L1", "L2", "L3", "DRAM")[("L1", "L2", "L3", "DRAM").index(level) :]:
            bw = roofs.bandwidth(other, workers)
            if bw is not None:
                level = other
                break
    if peak is None or bw is None:
        return None
    memory = bw * ai
    bound = "memory" if memory < peak else "compute"
    return Attainable(min(memory, peak), bound, level, bw, peak, peak / bw)


@dataclass(frozen=True)
class Point:
    """One configuration placed under the roofs."""

    layer: str
    config: str  # strategy/executor wN bB
    workers: int
    batch: int
    intensity_flop_per_byte: float
    gflops: float  # FLOPs / median time
    bound: str
    of_roof: float  # achieved / attainable, as measured (may exceed 1: see the module)
    attainable_gflops: float
    memory_roof: str  # the level compared with
    working_set_bytes: int
    median_ms: float
    min_ms: float | None  # None where the source keeps medians only (the book)
    max_ms: float | None
    source: str  # where the time comes from: this session, the book, measured now

    def to_dict(self) -> dict:
        return asdict(self)


def config_text(strategy: str, executor: str, workers: int, batch: int) -> str:
    return f"{strategy}/{executor} w{workers} b{batch}"


def place(
    roofs: RoofSet,
    layer: str,
    strategy: str,
    executor: str,
    workers: int,
    batch: int,
    times: tuple[float, float | None, float | None],  # median, min, max (ms)
    source: str,
) -> Point | None:
    """`layer` run this way, under the roofs (None: no roof to compare with)."""
    spec = get_layer(layer)
    ai = intensity(spec, batch)
    ws = traffic_bytes(spec, batch)
    at = attainable(roofs, ai, ws, workers)
    median, lo, hi = times
    if at is None or not median > 0:
        return None
    gflops = spec.flops(batch) / (median * 1e6)
    return Point(
        layer=layer,
        config=config_text(strategy, executor, workers, batch),
        workers=workers,
        batch=batch,
        intensity_flop_per_byte=ai,
        gflops=gflops,
        bound=at.bound,
        of_roof=gflops / at.gflops,
        attainable_gflops=at.gflops,
        memory_roof=at.level,
        working_set_bytes=ws,
        median_ms=median,
        min_ms=lo,
        max_ms=hi,
        source=source,
    )


def place_result(roofs: RoofSet, result, source: str = "this session") -> Point | None:
    """A finished forward run (RunResult) under the roofs; None for other passes (the traffic
    model is the forward pass's) and failed runs."""
    c = result.config
    if c.pass_kind != "forward" or not result.ok:
        return None
    return place(
        roofs,
        c.layer,
        c.strategy,
        c.executor,
        c.workers,
        c.batch,
        (result.median_ms, result.min_ms, result.max_ms),
        source,
    )
