"""Reaching a Dask cluster: a LocalCluster partui starts, or a scheduler at an address;
each failure told in one line.

`distributed` is imported when a cluster is first needed, never at import of this module:
`partui --help` and `partui list` must stay light.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from typing import Any

from partui.profiles.executors.base import first_line
from partui.profiles.executors.processes import one_blas_thread_env
from partui.profiles.records.limits import ConfigError

ENV_SCHEDULER = "PARTUI_DASK_SCHEDULER"
CONNECT_TIMEOUT_S = 5.0  # an unreachable --scheduler is reported within this (plus start-up)
STARTUP_TIMEOUT_S = 120.0  # a LocalCluster whose workers are not up by then is reported


def available() -> bool:
    """True when Dask distributed is installed (looked up without importing it)."""
    return importlib.util.find_spec("distributed") is not None


def dashboard_served() -> bool:
    """Dask serves its own dashboard only where bokeh is installed."""
    return importlib.util.find_spec("bokeh") is not None


def reachable(address: str) -> None:
    """ConfigError (one line: the address and why) unless a TCP connection to the scheduler
    at `address` (tcp://HOST:PORT) opens within CONNECT_TIMEOUT_S."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"bad Dask scheduler address {address!r}: {exc}") from None
    if parts.scheme != "tcp" or not host or not port:
        return  # tls://, ws://, inproc://: left to Dask itself
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {reason}") from None


def open_cluster(workers: int, scheduler: str) -> tuple[Any, Any]:
    """(client, cluster): a client of the scheduler at `scheduler` (cluster None), else a
    LocalCluster of `workers` single-threaded processes and its client. ConfigError, in one
    line, when the scheduler cannot be reached or has no workers."""
    import dask
    from distributed import Client

    # a worker gone without a word must not hold a connection attempt for Dask's 30 s
    dask.config.set({"distributed.comm.timeouts.connect": f"{CONNECT_TIMEOUT_S}s"})
    for name in ("distributed", "tornado", "asyncio"):  # their own lines, not ours
        logging.getLogger(name).setLevel(logging.CRITICAL)
    client: Any = None
    cluster: Any = None
    if scheduler:
        reachable(scheduler)  # a plain connect first: refused in milliseconds
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError for a bad address
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler}: {first_line(exc)}"
            ) from None
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except Exception:  # noqa: BLE001
            close_cluster(client, None)
            raise ConfigError(
                f"the Dask scheduler at {scheduler} has no workers "
                f"(none joined within {CONNECT_TIMEOUT_S:.0f} s)"
            ) from None
        return client, None
    import warnings

    from distributed import LocalCluster

    quiet_resource_tracker()
    try:
        with one_blas_thread_env(), warnings.catch_warnings():
            # the workers inherit it: BLAS at 1 thread; Dask's own warnings (a port
            # taken, another found) are not partui's to print
            warnings.simplefilter("ignore")
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                # a free port: None still binds the scheduler's HTTP server to
                # 8787, which a second cluster on the machine then finds taken;
                # without bokeh it serves no dashboard page, only /health
                dashboard_address=":0",
                silence_logs=logging.CRITICAL,
            )
        client = Client(cluster, set_as_default=False, direct_to_workers=True)
        client.wait_for_workers(workers, timeout=STARTUP_TIMEOUT_S)
    except BaseException:
        close_cluster(client, cluster)
        if cluster is None:
            close_half_made_clusters()
        raise
    return client, cluster


TRACKER_WARNINGS = "ignore::UserWarning:multiprocessing.resource_tracker"


def quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (if this process has none yet) with its
    warnings off. Dask's worker processes register semaphores with it; one killed as a stop
    ends the cluster's start leaves them registered, and the tracker, which frees them at
    exit all the same, would print its warnings after partui's one line."""
    import sys

    if TRACKER_WARNINGS not in sys.warnoptions:
        sys.warnoptions.append(TRACKER_WARNINGS)  # the tracker's -W options come from here
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


def close_half_made_clusters() -> None:
    """Close the LocalClusters whose start was interrupted (a signal while LocalCluster()
    ran): nothing here holds them, and Dask's own exit hook fails on them with a traceback
    on stderr, since their workers never left the 'init' state."""
    from distributed.deploy.spec import SpecCluster

    instances = getattr(SpecCluster, "_instances", None)
    if instances is None:
        return
    for cluster in list(instances):
        try:
            cluster.close(timeout=5)
        except BaseException:  # noqa: BLE001 - half made: its processes end with ours
            pass
        instances.discard(cluster)
    # A worker process still unpickling its start-up state would find its semaphores gone,
    # or its pipe closed, once this process has cleaned up, and print a traceback: it is
    # ended first. One being spawned right now is not listed yet: look again until two
    # looks in a row find none.
    import multiprocessing

    for proc in multiprocessing.active_children():
        if proc.name.startswith("Dask Worker process"):
            proc.kill()
            proc.join(timeout=1)
    quiet = 0
    for _ in range(SPAWN_LOOKS):
        spawned = _spawned_children()
        for child in spawned:
            try:
                child.kill()
            except OSError:  # gone meanwhile
                pass
        quiet = 0 if spawned else quiet + 1
        if quiet == 2:
            break
        time.sleep(SPAWN_LOOK_S)


SPAWN_LOOKS, SPAWN_LOOK_S = 40, 0.025


def _spawned_children() -> list:
    """This process's children started by multiprocessing's spawn (Dask's worker processes;
    partui's own pools use a fork server, and the resource tracker is left to clean up)."""
    import psutil

    out = []
    for child in psutil.Process().children():
        try:
            if "--multiprocessing-fork" in child.cmdline():
                out.append(child)
        except psutil.Error:
            pass
    return out


def close_cluster(client: Any, cluster: Any) -> None:
    """Close the client, then the cluster (given only when partui started it)."""
    if client is not None:
        try:
            client.close(timeout=5)
        except Exception:  # noqa: BLE001 - closing a broken connection: nothing left to do
            pass
    if cluster is not None:
        try:
            cluster.close(timeout=10)
        except Exception:  # noqa: BLE001
            pass
