"""What `partui train` runs: the training configuration and the checks of its values.

Free of numpy (like `config`), so the command line builds and checks it, and
`partui train --help` shows its defaults, without loading the kernels.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from partui.kernels.model.layers import MAX_BATCH
from partui.kernels.plan.axes import KERNELS
from partui.kernels.plan.pass_axes import COMBINES, DASK_COMBINES

UPDATES = {
    "sync": "one update per step from the combined gradients of all workers",
    "hogwild": "each worker updates the shared weights after each of its own steps, no lock",
}
TRAIN_EXECUTORS = ("inline", "threads", "processes", "dask")
LOCAL_TRAIN_EXECUTORS = TRAIN_EXECUTORS[:3]  # share memory with partui


class TrainConfigError(ValueError):
    """A training option out of range; the message is one line."""


def _default_workers() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    batch: int = 64
    lr: float = 0.02
    momentum: float = 0.9
    workers: int = field(default_factory=_default_workers)
    executor: str = "threads"
    update: str = "sync"
    combine: str = "reduce"
    kernel: str = "vectorized"
    data: str | None = None  # an EMNIST letters folder; None: the built-in letters
    train_size: int = 12_000
    test_size: int = 2_000
    seed: int = 0
    # executor dask: a running scheduler's address ("": a LocalCluster partui starts)
    scheduler: str = ""
    # hogwild: stamp every write of the shared weights (staleness, overlapping writes);
    # False only to measure what the stamps cost
    stamp: bool = True

    def check(self) -> None:
        def ranged(what, v, lo, hi):
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise TrainConfigError(f"{what} must be an integer from {lo} to {hi}, got {v!r}")

        ranged("epochs", self.epochs, 1, 10_000)
        ranged("batch", self.batch, 1, MAX_BATCH)
        ranged("workers", self.workers, 1, 256)
        ranged("train size", self.train_size, 1, 10_000_000)
        ranged("test size", self.test_size, 1, 10_000_000)
        ranged("seed", self.seed, 0, 2**32 - 1)
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr <= 10 and math.isfinite(self.lr)):
            raise TrainConfigError(f"learning rate must be a number in (0, 10], got {self.lr!r}")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise TrainConfigError(f"momentum must be a number in [0, 1), got {self.momentum!r}")
        for what, v, choices in (
            ("executor", self.executor, TRAIN_EXECUTORS),
            ("update", self.update, UPDATES),
            ("combine", self.combine, COMBINES),
            ("kernel", self.kernel, KERNELS),
        ):
            if v not in choices:
                raise TrainConfigError(f"unknown {what} {v!r}; choose from {', '.join(choices)}")
        if self.executor == "dask":
            if self.update == "hogwild":
                raise TrainConfigError(
                    "--update hogwild is not applicable to executor dask: Hogwild! needs "
                    "weights in shared memory and Dask workers share none; use --update sync"
                )
            if self.combine not in DASK_COMBINES:
                from partui.profiles.records.config import DASK_LOCKED

                raise TrainConfigError(DASK_LOCKED)
        elif self.combine == "gather":
            from partui.profiles.records.config import GATHER_LOCAL

            raise TrainConfigError(GATHER_LOCAL)
        if not isinstance(self.stamp, bool):
            raise TrainConfigError(f"stamp must be true or false, got {self.stamp!r}")
        if not isinstance(self.scheduler, str) or len(self.scheduler) > 1000:
            raise TrainConfigError("scheduler must be an address like tcp://host:8786")
        if self.scheduler and self.executor != "dask":
            raise TrainConfigError("--scheduler applies to --executor dask")
        if self.executor == "inline" and self.workers != 1:
            raise TrainConfigError("executor 'inline' runs on the calling thread: use --workers 1")
        if self.batch > self.train_size:
            raise TrainConfigError(
                f"batch {self.batch} is larger than the training set ({self.train_size})"
            )

    def label(self) -> str:
        how = self.update + (f"/{self.combine}" if self.update == "sync" else "")
        return (
            f"train {how} {self.executor} w={self.workers} b={self.batch} lr={self.lr:g} "
            f"momentum={self.momentum:g}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
