"""The lab's experiments: what each measures, how big, and what its figures mean.

Each experiment has a plan (sizes, repeats; `quick` makes it small), a memory need, a run that
adds points to a Lab and returns summary figures, and an explanation built from those figures:
the text says what this machine showed, including where a textbook effect did not show.
Experiments come in groups: the CPU core (ILP, SIMD, vectorization), memory (caches) and
threads (sharing, partitioning, batching).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from partui.profiles.lab.experiments import (
    batching,
    false_sharing,
    ilp,
    mountain,
    partition,
    simd,
    stride,
    traversal,
    vectorize,
)
from partui.profiles.lab.measure import Lab

CPU_CORE, MEMORY, THREADS = "CPU core", "memory", "threads"
GROUPS = (CPU_CORE, MEMORY, THREADS)


@dataclass(frozen=True)
class Spec:
    description: str
    plan: Callable[..., dict]
    need: Callable[[dict], int]
    run: Callable[[Lab, dict], dict]
    explain: Callable[[dict, Lab], str]
    markers: Callable[[Lab, dict], list]
    uses_cores: bool = False
    group: str = MEMORY


def _spec(module, description: str, group: str, uses_cores: bool = False) -> Spec:
    return Spec(
        description,
        module.plan,
        module.need,
        module.run,
        module.explain,
        module.markers,
        uses_cores,
        group,
    )


# in group order: the dashboard and `partui demo` list them as they come
SPECS: dict[str, Spec] = {
    "ilp": _spec(ilp, "one sum in 1..16 chains: add latency vs throughput", CPU_CORE),
    "simd": _spec(simd, "one loop, scalar vs vector instructions, float32/float64", CPU_CORE),
    "vectorize": _spec(vectorize, "Python loop, comprehension, numpy, native; matmul", CPU_CORE),
    "stride": _spec(stride, "time per touched float against stride, 1 to 64 floats", MEMORY),
    "mountain": _spec(mountain, "bandwidth against working-set size, 8 KB to 512 MB", MEMORY),
    "traversal": _spec(traversal, "rows vs columns of a matrix; NCHW vs NHWC convolution", MEMORY),
    "false-sharing": _spec(
        false_sharing,
        "counters in one cache line vs padded, plain and atomic",
        THREADS,
        uses_cores=True,
    ),
    "partition": _spec(
        partition, "cyclic a[k::N] vs block partition, native and numpy", THREADS, uses_cores=True
    ),
    "batching": _spec(
        batching, "the network at batch 1..256: latency vs throughput", THREADS, uses_cores=True
    ),
}
assert all(s.group in GROUPS for s in SPECS.values())
