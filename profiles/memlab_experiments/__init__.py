"""The five memory-lab experiments: what each measures, how big, and what its figures mean.

Each experiment has a plan (sizes, repeats; `quick` makes it small), a memory need, a run that
adds points to a Lab and returns summary figures, and an explanation built from those figures:
the text says what this machine showed, including where a textbook effect did not show.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..memlab_measure import Lab
from . import false_sharing, mountain, partition, stride, traversal


@dataclass(frozen=True)
class Spec:
    description: str
    plan: Callable[..., dict]
    need: Callable[[dict], int]
    run: Callable[[Lab, dict], dict]
    explain: Callable[[dict, Lab], str]
    markers: Callable[[Lab, dict], list]
    uses_cores: bool = False


SPECS: dict[str, Spec] = {
    "stride": Spec("time per touched float against stride, 1 to 64 floats",
                   stride.plan, stride.need, stride.run, stride.explain, stride.markers),
    "mountain": Spec("bandwidth against working-set size, 8 KB to 512 MB",
                     mountain.plan, mountain.need, mountain.run, mountain.explain,
                     mountain.markers),
    "traversal": Spec("rows vs columns of a matrix; NCHW vs NHWC convolution",
                      traversal.plan, traversal.need, traversal.run, traversal.explain,
                      traversal.markers),
    "false-sharing": Spec("counters in one cache line vs padded, plain and atomic",
                          false_sharing.plan, false_sharing.need, false_sharing.run,
                          false_sharing.explain, false_sharing.markers, uses_cores=True),
    "partition": Spec("cyclic a[k::N] vs block partition, native and numpy",
                      partition.plan, partition.need, partition.run, partition.explain,
                      partition.markers, uses_cores=True),
}
