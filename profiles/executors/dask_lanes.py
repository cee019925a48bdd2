"""The Dask workers as partui's lanes: who each is, in name order, and its clock against
ours (the task stream is stamped by the workers' clocks)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from partui.kernels.dask_tasks import worker_clock

PING_ROUNDS = 5  # round trips per clock-offset estimate; the shortest one is kept


@dataclass
class DaskWorker:
    """One Dask worker as partui sees it: its lane, where it is, its clock."""

    name: str
    address: str
    pid: int = 0
    offset_s: float = 0.0  # its wall clock minus ours
    uncertainty_s: float = float("inf")  # half the shortest round trip of the estimate
    lag_s: float = 0.0  # Dask's estimate of its lag behind the scheduler, at the run's start
    lag_now_s: float = 0.0  # ...and after the latest repeat
    drift_s: float = 0.0  # how far that estimate moved during the run

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "address": self.address,
            "pid": self.pid,
            "clock_offset_ms": self.offset_s * 1e3,
            "clock_uncertainty_ms": (self.uncertainty_s + self.drift_s) * 1e3,
            "dask_lag_ms": self.lag_now_s * 1e3,
        }


def natural(name: str):
    """Sort key: '2' before '10', names with digits by their number."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def estimate_offsets(client: Any, lanes: list[DaskWorker]) -> None:
    """Each worker's clock against ours, as NTP does: ask for its time between two of
    ours; offset = its time - the midpoint, uncertainty = half the round trip; the
    shortest of PING_ROUNDS wins. Dask stamps its task stream with the worker's clock
    plus its own estimate of the worker's lag behind the scheduler (renewed at each
    heartbeat): that lag is read here too, and again after every repeat; how far it moved
    during the run is added to the uncertainty."""
    by_address = {w.address: w for w in lanes}
    for w in lanes:
        w.uncertainty_s, w.drift_s = float("inf"), 0.0
    for _ in range(PING_ROUNDS):
        t0 = time.time()
        got = client.run(worker_clock, workers=list(by_address))
        t1 = time.time()
        for address, (tw, lag, _) in got.items():
            found = by_address.get(address)
            if found is not None and (t1 - t0) / 2 < found.uncertainty_s:
                found.offset_s, found.uncertainty_s = tw - (t0 + t1) / 2, (t1 - t0) / 2
                found.lag_s = found.lag_now_s = lag


def read_lags(client: Any, lanes: list[DaskWorker]) -> None:
    """Dask's current estimate of each worker's lag (see estimate_offsets)."""
    # only the workers the scheduler still has: a lost worker's old address would hold
    # this call for the whole connect timeout and then fail the run
    alive = set(client.scheduler_info(n_workers=-1)["workers"])
    asked = [w.address for w in lanes if w.address in alive]
    try:
        got = client.run(worker_clock, workers=asked) if asked else {}
    except OSError:  # lost between the two calls: its lag stays the last one read
        got = {}
    for lane in lanes:
        if lane.address in got:
            lane.lag_now_s = got[lane.address][1]
            lane.drift_s = max(lane.drift_s, abs(lane.lag_now_s - lane.lag_s))
