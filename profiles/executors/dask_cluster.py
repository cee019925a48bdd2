"""Tasks on a Dask cluster (see dask_connect): the executor that runs a batch split there.

A repeat of a batch split: every task's input shard is scattered to its Dask worker (timed
here: transfer out), the task computes there (its start and end come from Dask's task
stream, stamped by the worker's wall clock and mapped onto this process's perf_counter
clock with an offset estimated as NTP does), and its output is fetched back (timed here:
transfer back). The weights are scattered to every worker once per run and stay there.

`distributed` is imported when a cluster is first needed, never at import of this module:
`partui --help` and `partui list` must stay light.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import statistics
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from partui.kernels.dask_tasks import forward_shard
from partui.kernels.plan.pass_axes import TRANSFER
from partui.kernels.plan.strategies import Task
from partui.kernels.runtime.scratch import Cancelled
from partui.profiles.executors.base import (
    WAIT_SLICE_S,
    Executor,
    WorkerIds,
    WorkerLost,
    first_line,
)
from partui.profiles.executors.dask_connect import (
    available,
    close_cluster,
    dashboard_served,
    open_cluster,
)
from partui.profiles.executors.dask_lanes import DaskWorker, estimate_offsets, natural, read_lags
from partui.profiles.executors.dask_step import step, summary
from partui.profiles.executors.processes import open_files_refusal
from partui.profiles.records.config import DASK_MISSING
from partui.profiles.records.events import Span
from partui.profiles.records.limits import ConfigError

# descriptors this process holds per LocalCluster worker: the client's, scheduler's and
# nanny's connections and pipes to it
LOCAL_FDS_PER_WORKER = 12
RESTART_WAIT_S = 30.0  # how long a lost LocalCluster worker gets to be restarted by its nanny
TASK_TIMEOUT_S = 120.0  # a task not back by then fails the run: nothing waits forever


@contextmanager
def worker_lost_means(what: str):
    """Dask's errors of a worker gone mid-conversation (a closed connection, a cancelled
    future, a nanny whose process ended while it started) as WorkerLost, in words."""
    from distributed.comm.core import CommClosedError

    try:
        yield
    except (CommClosedError, OSError, concurrent.futures.CancelledError, RuntimeError) as exc:
        if isinstance(exc, WorkerLost):
            raise
        raise WorkerLost(
            f"{what}: a Dask worker was lost ({type(exc).__name__}: {first_line(exc)})"
        ) from exc


@dataclass
class TaskRecord:
    """What one task cost, on this side's clock (ns)."""

    repeat: int
    task: int
    lane: int
    send_ns: int  # scatter of the input shard
    compute_ns: int  # from the task stream
    fetch_ns: int  # gather of the output
    overhead_ns: int  # submitted .. known finished, less the compute: scheduling and messages
    bytes_out: int
    bytes_back: int


@dataclass
class _Sent:
    """A task on its way: where it went, and this side's stamps (perf_counter ns)."""

    key: str
    task: Task
    lane: int
    address: str
    future: Any  # distributed.Future
    send_start: int
    send_end: int
    submitted: int
    bytes_out: int
    retried: bool = False
    known_ns: int = 0  # when this side learned it had finished
    fetch_start: int = 0
    fetch_end: int = 0
    bytes_back: int = 0


@dataclass
class RunBook:
    """One run's data movement and the events worth a line (lost workers, retries)."""

    params_bytes: int = 0
    params_ms: float = 0.0
    tasks: list[TaskRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    worker_transfer_bytes: int = 0  # moved between workers (task stream 'transfer')


class DaskExecutor(Executor):
    """Runs a batch split on Dask workers; one lane per Dask worker, in name order."""

    name = "dask"
    processes = True  # worker_ids() gives the pids of a LocalCluster's workers
    exclusive = True
    # a Dask worker's CPU time holds its own messaging too: no on-CPU ratio of tasks
    measures_task_cpu = False
    runs_whole_steps = True  # the weights go to the workers; gradients meet there

    def __init__(self, workers: int, scheduler: str = ""):
        super().__init__(workers)
        self.scheduler = scheduler
        self._client: Any = None  # distributed.Client, imported on first use
        self._cluster: Any = None  # the LocalCluster partui started, if it did
        self.lanes: list[DaskWorker] = []
        self._arena = None
        self._params_future = None
        self.stale = False  # a worker was lost: the lanes need a fresh look
        self._waiting: list = []  # (tasks sent, run, repeat) whose spans are not read yet
        self.book = RunBook()

    @classmethod
    def made(cls, workers: int, scheduler: str = "") -> DaskExecutor:
        return cls(workers, scheduler)

    @classmethod
    def key(cls, workers: int, scheduler: str = "") -> tuple:
        return (cls.name, workers, scheduler)

    @classmethod
    def refusal(cls, workers: int, scheduler: str = "") -> str | None:
        if scheduler:  # the workers are elsewhere; the client's connections are few
            return None
        return open_files_refusal(workers, LOCAL_FDS_PER_WORKER)

    def prepare_run(self) -> None:
        if self.stale:  # a worker was lost: learn who is there now
            self.refresh_workers()
        self.estimate_offsets()

    def stop_now(self) -> bool:
        self.cancel()
        self.close()
        return True

    def train_step(self, cfg, flat, x, labels, lr: float, run: int, repeat: int):
        return step(self, cfg, flat, x, labels, lr, run, repeat)

    def step_summary(self, steps: list[dict], grad_bytes: int, combine: str) -> dict:
        return summary(steps, grad_bytes, len(self.lanes), combine)

    # -- cluster ------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The distributed.Client once started (None before): the training step sends
        its own tasks through it."""
        return self._client

    @property
    def owns_cluster(self) -> bool:
        return self._cluster is not None

    @property
    def address(self) -> str:
        return self.scheduler or (self._cluster.scheduler_address if self._cluster else "")

    @property
    def dashboard_link(self) -> str | None:
        if self._client is None:
            return None
        if self._cluster is not None and not dashboard_served():
            return None
        try:
            return self._client.dashboard_link
        except Exception:  # noqa: BLE001 - no dashboard is not an error
            return None

    def start(self) -> float:
        if self._client is not None:
            return 0.0
        if not available():
            raise ConfigError(DASK_MISSING)
        t0 = time.perf_counter_ns()
        with worker_lost_means("the Dask cluster did not start"):
            self._client, self._cluster = open_cluster(self.workers, self.scheduler)
            self._client.get_task_stream()  # installs the scheduler's task-stream plugin
            self.refresh_workers()
        self.startup_ms = (time.perf_counter_ns() - t0) / 1e6
        return self.startup_ms

    def refresh_workers(self) -> None:
        """Lanes from the cluster: workers in name order, their pids and clock offsets."""
        if self._cluster is not None:  # a lost worker of ours is restarted by its nanny
            try:
                self._client.wait_for_workers(self.workers, timeout=RESTART_WAIT_S)
            except TimeoutError:
                pass  # go on with the workers there are
        info = self._client.scheduler_info(n_workers=-1)["workers"]
        if not info:
            raise WorkerLost(f"the Dask cluster at {self.address} has no workers left")
        self.stale = False
        named = sorted(
            ((str(w.get("name", a)), a) for a, w in info.items()), key=lambda t: natural(t[0])
        )
        pids = self._client.run(os.getpid)
        self.lanes = [DaskWorker(n, a, int(pids.get(a, 0))) for n, a in named]
        self.estimate_offsets()

    def estimate_offsets(self) -> None:
        """Each worker's clock against ours (see dask_lanes.estimate_offsets)."""
        estimate_offsets(self._client, self.lanes)

    def read_lags(self) -> None:
        """Dask's current estimate of each worker's lag (see dask_lanes.read_lags)."""
        read_lags(self._client, self.lanes)

    def worker_ids(self) -> WorkerIds:
        if self._cluster is None:  # another machine's pids mean nothing here
            return {}
        return {i: w.pid for i, w in enumerate(self.lanes) if w.pid}

    # -- running ------------------------------------------------------------
    def _begin_run(self, arena, layer) -> None:
        """A new run: its weights to every worker (once), a fresh book, fresh clock offsets."""
        self._arena = arena
        self.book = RunBook()
        params = {k: v for k, v in arena.arrays.items() if k not in ("x", "out")}
        t0 = time.perf_counter_ns()
        try:
            with worker_lost_means("the weights did not reach every Dask worker"):
                self._params_future = self._client.scatter([params], broadcast=True, hash=False)[0]
                self.book.params_ms = (time.perf_counter_ns() - t0) / 1e6
                self.estimate_offsets()
        except WorkerLost:
            self._arena = None  # the next run sends them again, to the workers there are then
            self.stale = True
            raise
        self.book.params_bytes = sum(v.nbytes for v in params.values()) * len(self.lanes)

    def run_phase(self, layer, kernel, arena, tasks, run, repeat, on_span=None) -> list[Span]:
        from distributed import KilledWorker

        self.start()
        if self.stale:  # a worker was lost: learn who is there now
            self.refresh_workers()
        if arena is not self._arena:
            self._begin_run(arena, layer)
        x, out = arena.arrays["x"], arena.arrays["out"]
        done: queue.Queue = queue.Queue()
        pending: dict[str, _Sent] = {}
        for i, task in enumerate(tasks):
            sent = self._send(layer, kernel, task, x, i % len(self.lanes), run, repeat, done)
            pending[sent.key] = sent
        finished: dict[str, _Sent] = {}
        deadline = time.monotonic() + TASK_TIMEOUT_S
        try:
            while len(finished) < len(pending):
                if self.cancel_event.is_set():
                    raise Cancelled()
                if time.monotonic() > deadline:
                    raise WorkerLost(
                        f"a Dask task did not finish within {TASK_TIMEOUT_S:.0f} s; the run "
                        "failed (is a worker stuck or gone?)"
                    )
                try:
                    key, known = done.get(timeout=WAIT_SLICE_S)
                except queue.Empty:
                    continue
                sent = pending[key]
                f = sent.future
                if f.status == "finished":
                    sent.known_ns = known
                    sent.fetch_start = time.perf_counter_ns()
                    y = f.result(timeout=TASK_TIMEOUT_S)
                    sent.fetch_end = time.perf_counter_ns()
                    sent.bytes_back = y.nbytes
                    out[sent.task.batch[0] : sent.task.batch[1]] = y
                    finished[key] = sent
                    continue
                exc = f.exception() if f.status == "error" else None
                if exc is not None and not isinstance(exc, KilledWorker):
                    raise exc  # the task itself failed: no worker was lost
                # Its worker was lost, and with it the input shard scattered there (Dask
                # cannot recompute scattered data, so it cancels the task): send the shard
                # again to another worker, once.
                if sent.retried:
                    raise WorkerLost(
                        f"Dask workers were lost twice while running task {sent.task.index}; "
                        "the run failed"
                    )
                lost = self.lanes[sent.lane].name
                self.refresh_workers()
                lane = (sent.lane + 1) % len(self.lanes)
                again = self._send(layer, kernel, sent.task, x, lane, run, repeat, done)
                again.retried = True
                pending[again.key] = again
                del pending[key]
                self.book.notes.append(
                    f"repeat {repeat}: Dask worker {lost} was lost with task "
                    f"{sent.task.index}'s input; partui sent it again to worker "
                    f"{self.lanes[lane].name} and the run went on"
                )
        except BaseException:
            self.stale = True
            self._client.cancel([p.future for p in pending.values()])
            raise
        # the spans come from the cluster once the repeat is timed (collect_spans)
        self._waiting.append((pending, run, repeat))
        return []

    def collect_spans(self, spans: list[Span], on_span=None) -> list[Span]:
        """The spans of the tasks run since the last call: from Dask's task stream and this
        side's stamps. Called after the repeat is timed: its round trips are not in it."""
        if not self._waiting:  # a whole training step brings its own
            return spans
        stream = self._client.get_task_stream(start=time.time() - 2 * TASK_TIMEOUT_S)
        self.read_lags()
        wall0, perf0 = time.time(), time.perf_counter_ns()
        read: list[Span] = []
        for pending, run, repeat in self._waiting:
            read += self._spans(stream, pending, run, repeat, wall0, perf0)
        self._waiting = []
        if on_span:
            for s in read:
                on_span(s)
        return read

    def _send(self, layer, kernel, task, x, lane, run, repeat, done) -> _Sent:
        """Scatter a task's input shard to the worker of `lane` (timed) and submit the task."""
        client = self._client
        address = self.lanes[lane].address
        n0, n1 = task.batch
        shard = np.ascontiguousarray(x[n0:n1])
        s0 = time.perf_counter_ns()
        xf = client.scatter(shard, workers=[address], hash=False)
        s1 = time.perf_counter_ns()
        f = client.submit(
            forward_shard,
            layer.name,
            kernel,
            task,
            xf,
            self._params_future,
            key=f"partui-{run}-{repeat}-{task.index}-{uuid.uuid4().hex[:8]}",
            workers=[address],
            # pinned where its shard is: Dask's work stealing would move it (and the shard)
            # to another worker; a lost worker's task is sent again by run_phase
            allow_other_workers=False,
            pure=False,
        )
        sent = _Sent(f.key, task, lane, address, f, s0, s1, time.perf_counter_ns(), shard.nbytes)
        f.add_done_callback(lambda f: done.put((f.key, time.perf_counter_ns())))
        return sent

    def _spans(self, stream, pending, run, repeat, wall0, perf0) -> list[Span]:
        """Each task's transfer out, compute (from the task stream) and transfer back."""
        records = {r["key"]: r for r in stream if r.get("key") in pending}
        lane_of = {w.address: i for i, w in enumerate(self.lanes)}
        spans: list[Span] = []
        for key, sent in pending.items():
            task, lane = sent.task, sent.lane
            rec = records.get(key, {})
            where = lane_of.get(rec.get("worker"), lane)
            # the stream's times: the worker's clock plus Dask's estimate of its lag behind
            # the scheduler; undone here, then the worker's own offset to ours applied
            offset = self.lanes[where].offset_s + self.lanes[where].lag_now_s
            compute, moved = [], []
            for ss in rec.get("startstops", ()):
                a = perf0 + round((ss["start"] - offset - wall0) * 1e9)
                b = perf0 + round((ss["stop"] - offset - wall0) * 1e9)
                if ss.get("action") == "compute":
                    compute.append((a, max(a, b)))
                elif ss.get("action") == "transfer":
                    moved.append((a, max(a, b)))
            if rec and rec.get("worker") != sent.address:
                self.stale = True
                self.book.notes.append(
                    f"repeat {repeat}: Dask ran task {task.index} on worker "
                    f"{self.lanes[where].name}, not on {self.lanes[lane].name} where its "
                    "input was sent"
                )
            tid = self.lanes[where].pid

            def span(a, b, units, phase, w, tid=tid, task=task):
                return Span(w, tid, a, b, units, task.index, phase, repeat, run)

            spans.append(span(sent.send_start, sent.send_end, sent.bytes_out, TRANSFER, lane))
            spans += [span(a, b, 0, TRANSFER, where) for a, b in moved]
            spans += [span(a, b, task.units, task.phase, where) for a, b in compute]
            spans.append(span(sent.fetch_start, sent.fetch_end, sent.bytes_back, TRANSFER, where))
            compute_ns = sum(b - a for a, b in compute)
            if moved:
                self.book.worker_transfer_bytes += int(rec.get("nbytes", 0))
            self.book.tasks.append(
                TaskRecord(
                    repeat,
                    task.index,
                    where,
                    sent.send_end - sent.send_start,
                    compute_ns,
                    sent.fetch_end - sent.fetch_start,
                    max(0, sent.known_ns - sent.submitted - compute_ns),
                    sent.bytes_out,
                    sent.bytes_back,
                )
            )
        return spans

    def run_info(self) -> dict:
        """The run's Dask figures: where it ran, clocks, bytes moved, time per task phase
        (medians over the timed repeats' tasks, ms)."""
        timed = [t for t in self.book.tasks if t.repeat >= 0]

        def med(attr: str) -> float:
            values = [getattr(t, attr) / 1e6 for t in timed]
            return float(statistics.median(values)) if values else 0.0

        repeats = len({t.repeat for t in timed}) or 1
        return {
            "scheduler": self.address,
            "cluster": "local" if self.owns_cluster else "external",
            "dashboard": self.dashboard_link,
            "workers": [w.to_dict() for w in self.lanes],
            "params_bytes": self.book.params_bytes,
            "params_ms": self.book.params_ms,
            "bytes_out_per_repeat": sum(t.bytes_out for t in timed) // repeats,
            "bytes_back_per_repeat": sum(t.bytes_back for t in timed) // repeats,
            "worker_transfer_bytes": self.book.worker_transfer_bytes,
            "task_send_ms": med("send_ns"),
            "task_compute_ms": med("compute_ns"),
            "task_fetch_ms": med("fetch_ns"),
            "task_overhead_ms": med("overhead_ns"),
            "notes": list(self.book.notes),
        }

    def cancel(self) -> None:
        super().cancel()

    def close(self) -> None:
        """Close the client; stop the cluster only if partui started it."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        self._arena = self._params_future = None
        close_cluster(client, cluster)
