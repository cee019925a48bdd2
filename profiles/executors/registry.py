"""Executors by name: the one place a name becomes a class."""

from __future__ import annotations

from partui.profiles.executors.base import Executor
from partui.profiles.executors.inline import BlasExecutor, InlineExecutor
from partui.profiles.executors.native_region import NativeRegionExecutor
from partui.profiles.executors.pool import DynamicThreadExecutor
from partui.profiles.executors.processes import ProcessExecutor
from partui.profiles.executors.threads import ParkedThreadExecutor
from partui.profiles.records.limits import ConfigError


def executor_class(name: str) -> type[Executor]:
    """The class of the executor `name` (Dask's module is imported only when asked for)."""
    if name == "dask":  # distributed is an optional extra, and slow to import
        from partui.profiles.executors.dask_cluster import DaskExecutor

        return DaskExecutor
    return {
        "inline": InlineExecutor,
        "threads": ParkedThreadExecutor,
        "threads-dynamic": DynamicThreadExecutor,
        "processes": ProcessExecutor,
        "blas": BlasExecutor,
        "native-region": NativeRegionExecutor,
    }[name]


def make_executor(name: str, workers: int, scheduler: str = "") -> Executor:
    """A new executor `name` of `workers` (not started); `scheduler`: where a cluster
    executor connects (the others have no use for it). ConfigError, in one line, when it
    cannot start here (its refusal)."""
    cls = executor_class(name)
    refused = cls.refusal(workers, scheduler)
    if refused:
        raise ConfigError(refused)
    return cls.made(workers, scheduler)
