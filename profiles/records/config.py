"""What to run: the configuration of one run and the checks of its values.

Free of numpy and of the engine, so the command line builds and checks a
configuration without loading either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from partui.kernels.model.layers import LAYER_NAMES, MAX_BATCH, get_layer
from partui.kernels.plan.axes import (
    EXECUTORS,
    KERNELS,
    STRATEGIES,
    NotApplicable,
    not_applicable_reason,
)
from partui.kernels.plan.pass_axes import COMBINES, DASK_COMBINES, PASSES
from partui.kernels.plan.pass_axes import not_applicable as pass_not_applicable
from partui.profiles.files.checked_json import Check
from partui.profiles.records.limits import (
    MAX_WORKERS,
    ConfigError,
    default_workers,
)

DASK_MISSING = "executor 'dask' needs the optional extra: pip install 'partui[dask]'"
DASK_LOCKED = (
    "executor 'dask' is not applicable to --combine locked: Dask workers share no memory; "
    "use --combine reduce (a tree of adds through Dask) or gather (gathered here)"
)
GATHER_LOCAL = (
    "--combine gather applies to executor dask: threads and processes share memory, where "
    "--combine reduce sums the gradients in place"
)


@dataclass(frozen=True)
class RunConfig:
    layer: str
    strategy: str = "batch"
    kernel: str = "vectorized"
    executor: str = "threads"
    workers: int = field(default_factory=default_workers)
    batch: int = 64
    repeats: int = 5
    warmup: int = 1
    seed: int = 0
    pass_kind: str = "forward"  # forward | backward | train (kernels.pass_axes.PASSES)
    combine: str = "reduce"  # how partial gradients meet (kernels.pass_axes.COMBINES)
    # executor dask: a scheduler's address ("": a LocalCluster of partui's own); other
    # executors ignore it (the dashboard keeps it while cycling through them)
    scheduler: str = ""

    @property
    def blas_threads(self) -> int:
        return self.workers if self.executor == "blas" else 1

    def check(self) -> None:
        """Raise ConfigError for a bad value, NotApplicable for a combination that makes no
        sense."""
        self.check_values()
        reason = self.not_applicable_reason()
        if reason:
            raise NotApplicable(reason)
        if self.executor == "dask":
            if self.pass_kind == "backward":
                raise NotApplicable(
                    "executor 'dask' is not applicable to --pass backward: it runs forward "
                    "passes and the network's training step (--pass train)"
                )
            if self.pass_kind == "train" and self.combine not in DASK_COMBINES:
                raise NotApplicable(DASK_LOCKED)
            from importlib.util import find_spec

            if find_spec("distributed") is None:
                raise ConfigError(DASK_MISSING)
        elif self.combine == "gather" and self.pass_kind != "forward":
            raise NotApplicable(GATHER_LOCAL)

    def check_values(self) -> None:
        """Raise ConfigError for an unknown name or a value out of range."""
        _named(self.layer, LAYER_NAMES, "layer")
        _named(self.strategy, STRATEGIES, "strategy")
        _named(self.kernel, KERNELS, "kernel")
        _named(self.executor, EXECUTORS, "executor")
        _ranged("workers", self.workers, 1, MAX_WORKERS)
        _ranged("batch", self.batch, 1, MAX_BATCH)
        _ranged("repeat", self.repeats, 1, 10_000)
        _ranged("warmup", self.warmup, 0, 10_000)
        _ranged("seed", self.seed, 0, 2**64 - 1)  # numpy seeds are non-negative
        _named(self.pass_kind, PASSES, "pass")
        _named(self.combine, COMBINES, "combine")
        if not isinstance(self.scheduler, str) or len(self.scheduler) > 1000:
            raise ConfigError("scheduler must be an address like tcp://host:8786")

    def not_applicable_reason(self) -> str | None:
        """Why this combination makes no sense, or None (values are checked by check())."""
        layer = get_layer(self.layer)
        if self.executor == "native-region" and self.pass_kind != "forward":
            return (
                f"executor 'native-region' is not applicable to --pass {self.pass_kind}: it "
                "runs forward passes of the conv layers and the network"
            )
        return pass_not_applicable(layer, self.pass_kind, self.strategy) or not_applicable_reason(
            layer, self.strategy, self.kernel, self.executor, self.workers
        )

    def label(self) -> str:
        kind = "" if self.pass_kind == "forward" else f" {self.pass_kind}/{self.combine}"
        return (
            f"{self.layer}{kind} {self.strategy}/{self.kernel}/{self.executor} "
            f"w={self.workers} b={self.batch}"
        )

    def series_key(self) -> tuple:
        """The configuration without its worker count: one scaling series."""
        return (self.layer, self.strategy, self.kernel, self.executor, self.batch)

    def key(self) -> tuple:
        """Runs with the same key pool their repeats."""
        return (*self.series_key(), self.workers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """A configuration from JSON (a snapshot, the baseline book, the engine process):
        known keys only; files older than `pass_kind` and `combine` get their defaults."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _named(value, choices, what):
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose from {', '.join(choices)}")
    return value


def _ranged(what, value, lo, hi):
    if not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{what} must be an integer from {lo} to {hi}, got {value!r}")


_CONFIG_KEYS = {f.name for f in fields(RunConfig)}


def check_config(c, where: str) -> dict:
    """A run's configuration: known names, sane sizes (what RunConfig(**c) needs)."""
    Check.obj(c, where)
    Check.keys(c, _CONFIG_KEYS, where)
    Check.choice(Check.field(c, "layer", where), LAYER_NAMES, f"{where}.layer")
    Check.choice(Check.field(c, "strategy", where), list(STRATEGIES), f"{where}.strategy")
    Check.choice(Check.field(c, "kernel", where), list(KERNELS), f"{where}.kernel")
    Check.choice(Check.field(c, "executor", where), list(EXECUTORS), f"{where}.executor")
    Check.integer(Check.field(c, "workers", where), f"{where}.workers", 1, MAX_WORKERS)
    Check.integer(Check.field(c, "batch", where), f"{where}.batch", 1, MAX_BATCH)
    Check.integer(Check.field(c, "repeats", where), f"{where}.repeats", 1, 10_000)
    if "warmup" in c:
        Check.integer(c["warmup"], f"{where}.warmup", 0, 10_000)
    if "seed" in c:
        Check.integer(c["seed"], f"{where}.seed", 0, 2**64 - 1)
    if "pass_kind" in c or "combine" in c:
        Check.choice(c.get("pass_kind", "forward"), list(PASSES), f"{where}.pass_kind")
        Check.choice(c.get("combine", "reduce"), list(COMBINES), f"{where}.combine")
    if "scheduler" in c:
        Check.text(c["scheduler"], f"{where}.scheduler", 1000)
    return c
