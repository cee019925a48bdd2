"""A dashboard training run on Dask: one cluster kept across the run's epochs (the run
trains an epoch at a time, each with the newest settings), and what the tab is told of it.

Events it adds to the training service's: ("dask", {scheduler, cluster, workers, pids}) when the
cluster is up, ("dask", {gradient_bytes, between_bytes, to_partui_bytes, from_partui_bytes,
exchange_ms, step_ms}) after each epoch.
"""

from __future__ import annotations

from partui.profiles.executors.base import WorkerLost
from partui.profiles.executors.registry import make_executor


class DaskForRun:
    """The Dask executor of a training run, started on first use and kept while the epochs
    ask for the same workers and scheduler; closed (a LocalCluster partui started is
    stopped, never another) when the run ends or leaves Dask."""

    def __init__(self, events):
        self.events = events
        self.ex = None
        self.key: tuple = ()

    def for_config(self, cfg):
        """The started executor for `cfg` (None when it does not train on Dask)."""
        if cfg.executor != "dask":
            self.close()
            return None
        key = (cfg.workers, cfg.scheduler)
        if self.ex is None or key != self.key or self.ex.client is None:
            self.close()
            self.ex, self.key = make_executor("dask", cfg.workers, cfg.scheduler), key
            self.ex.start()
            self.events.put(
                (
                    "dask",
                    {
                        "scheduler": self.ex.address,
                        "cluster": "local" if self.ex.owns_cluster else "external",
                        "workers": min(cfg.workers, len(self.ex.lanes)),
                        "pids": [w.pid for w in self.ex.lanes[: cfg.workers]],
                    },
                )
            )
        self._check(cfg.workers)
        return self.ex

    def _check(self, workers: int) -> None:
        """WorkerLost if a worker of the run is gone since the last epoch: the next epoch's
        data would be sent to its old address, which Dask waits on for ever."""
        alive = set(self.ex.client.scheduler_info(n_workers=-1)["workers"])
        gone = [w.name for w in self.ex.lanes[:workers] if w.address not in alive]
        if gone:
            raise WorkerLost(f"Dask worker {gone[0]} was lost between two epochs")

    def report(self, dask: dict | None) -> str:
        """Tell the tab an epoch's Dask figures; returns why the run stopped ("" if not)."""
        if not dask:
            return ""
        t = dask.get("training", {})
        if t.get("steps"):
            g = t["gradient_bytes"]
            self.events.put(
                (
                    "dask",
                    {
                        "gradient_bytes": g,
                        "between_bytes": t["gradient_bytes_between_workers_per_step"],
                        "to_partui_bytes": t["gradient_bytes_to_partui_per_step"],
                        "from_partui_bytes": t["gradient_bytes_from_partui_per_step"],
                        "exchange_ms": t["exchange_ms"],
                        "step_ms": t["step_ms"],
                    },
                )
            )
        return str(dask.get("error") or "")

    def close(self) -> None:
        if self.ex is not None:
            ex, self.ex = self.ex, None
            ex.close()
