"""What a snapshot file may hold: its format and version, bounds on its size, and a check
of every field the rest of partui relies on, each failure one line naming the field."""

from __future__ import annotations

from partui.profiles.files.checked_json import Check, FileProblem, shown
from partui.profiles.records.bench_result import BenchResult
from partui.profiles.records.config import check_config
from partui.profiles.records.train_config import TrainConfig, TrainConfigError
from partui.profiles.store.measures_validation import (
    check_overlaps,
    check_staleness,
    check_step_phases,
)
from partui.profiles.system.conditions import check_conditions

FORMAT = "partui-snapshot"
SCHEMA_VERSION = 2


class SnapshotError(FileProblem):
    """A file that is not a readable partui snapshot; the message is one line."""


MAX_BYTES = 64 * 2**20  # a long dashboard session with spans is a few MiB
MAX_DEPTH = 32  # a snapshot nests 6 levels; memory-lab results a few more
MAX_RUNS = 10_000
MAX_SPANS = 1_000_000  # over all runs: each costs ~0.5 KB once loaded
MAX_SAMPLES = 200_000  # over all runs
MAX_CORES = 4096
MAX_NOTE = 10_000
# values (containers and items) before parsing: a snapshot partui writes spends 13-20 bytes a
# value, so 64 MiB of it holds fewer; 6 million of the costliest kind parse into ~0.5 GB
MAX_VALUES = 6_000_000
BIG_INT = 2**63 - 1
BIG_MS = 1e9  # eleven days: no run takes longer
_TOP_KEYS = {
    "format",
    "schema_version",
    "partui_version",
    "created",
    "note",
    "machine",
    "baseline",
    "runs",
    "memlab",
    "training",
    "bench",
}
MAX_TRAINING = 1000
MAX_CURVE = 1_000_000  # points of a loss curve (one a step)
_TRAINING_KEYS = {
    "config",
    "data",
    "epochs",
    "loss_curve",
    "accuracy_curve",
    "spans",
    "pool_startup_ms",
    "interrupted",
    "weights",
    "test_accuracy",
    "dask",
    "staleness",
    "overlapping_updates",
}
_EPOCH_KEYS = {
    "epoch",
    "steps",
    "images",
    "wall_s",
    "elapsed_s",
    "train_loss",
    "train_accuracy",
    "test_accuracy",
    "images_per_s",
    "phase_ms",
    "worker_busy_share",
    "eval_s",
    "staleness",
    "overlapping_updates",
    "step_phases",
}
_RUN_KEYS = {
    "config",
    "blas_threads",
    "times_ms",
    "median_ms",
    "min_ms",
    "max_ms",
    "q1_ms",
    "q3_ms",
    "max_abs_error",
    "tolerance",
    "ok",
    "tasks",
    "flops",
    "spans",
    "worker_busy_ms",
    "pool_startup_ms",
    "error",
    "on_cpu_ratio",
    "cpu_samples",
    "repeat_start_ns",
    "dask",
    "worker_cpus",
    "conditions",
    # derived, written for people reading the file; ignored on load
    "layer",
    "strategy",
    "kernel",
    "executor",
    "workers",
    "batch",
    "gflops",
}
_SPAN_KEYS = (
    "worker",
    "tid",
    "start_ns",
    "end_ns",
    "units",
    "task",
    "phase",
    "repeat",
    "run",
    "wake_ns",
)
_SAMPLE_KEYS = (
    "t_ns",
    "per_core",
    "workers",
    "engine_cpu",
    "sampler_cost_us",
    "window_ns",
    "partui_cpu",
    "others_cpu",
)
_MACHINE_TEXT = ("cpu_model", "python", "numpy", "platform", "hostname")
_MACHINE_INTS = (
    "logical_cores",
    "physical_cores",
    "usable_cores",
    "cache_line",
    "memory_total",
    "memory_available",
)


def _check_training(t, where: str, budget: dict) -> None:
    """A `partui train` run (profiles.trainer.TrainResult.to_dict())."""
    Check.obj(t, where)
    Check.keys(t, _TRAINING_KEYS, where)
    c = Check.obj(Check.field(t, "config", where), f"{where}.config")
    Check.keys(c, set(TrainConfig.__dataclass_fields__), f"{where}.config")
    try:
        TrainConfig(**c).check()
    except (TrainConfigError, TypeError) as exc:
        raise SnapshotError(f"{where}.config: {exc}") from None
    workers = c.get("workers", 1)
    Check.text(Check.field(t, "data", where), f"{where}.data", 1000)
    Check.boolean(Check.field(t, "interrupted", where), f"{where}.interrupted")
    Check.text(t.get("weights"), f"{where}.weights", 4096, null=True)
    if t.get("dask") is not None:
        _check_dask(t["dask"], f"{where}.dask")
    Check.number(t.get("pool_startup_ms", 0.0), f"{where}.pool_startup_ms", 0, BIG_MS)
    Check.number(t.get("test_accuracy"), f"{where}.test_accuracy", 0, 1, null=True)
    for j, e in enumerate(Check.array(Check.field(t, "epochs", where), f"{where}.epochs", 100_000)):
        w = f"{where}.epochs[{j}]"
        Check.obj(e, w)
        Check.keys(e, _EPOCH_KEYS, w)
        for key in ("epoch", "steps", "images"):
            Check.integer(Check.field(e, key, w), f"{w}.{key}", 0, BIG_INT)
        for key in (
            "wall_s",
            "elapsed_s",
            "train_loss",
            "train_accuracy",
            "test_accuracy",
            "images_per_s",
            "eval_s",
        ):
            if key in e:
                Check.number(e[key], f"{w}.{key}", 0, BIG_MS, null=True)
        for k, v in Check.obj(e.get("phase_ms", {}), f"{w}.phase_ms").items():
            Check.number(v, f"{w}.phase_ms[{shown(k)}]", 0, BIG_MS)
        for i, v in enumerate(
            Check.array(e.get("worker_busy_share", []), f"{w}.worker_busy_share", workers)
        ):
            Check.number(v, f"{w}.worker_busy_share[{i}]", 0, 1)
        check_staleness(e.get("staleness"), f"{w}.staleness")
        check_overlaps(e.get("overlapping_updates"), f"{w}.overlapping_updates")
        # a dashboard run may change its workers between epochs: the settings allow 256
        check_step_phases(e.get("step_phases"), f"{w}.step_phases", 256)
    check_staleness(t.get("staleness"), f"{where}.staleness")
    check_overlaps(t.get("overlapping_updates"), f"{where}.overlapping_updates")
    for key in ("loss_curve", "accuracy_curve"):
        for j, point in enumerate(
            Check.array(Check.field(t, key, where), f"{where}.{key}", MAX_CURVE)
        ):
            w = f"{where}.{key}[{j}]"
            Check.array(point, w, 3, 3)
            Check.number(point[0], f"{w}[0]", 0, BIG_INT)
            Check.number(point[1], f"{w}[1]", 0, BIG_MS, null=True)
            Check.number(point[2], f"{w}[2]", 0, 1e6, null=True)  # a diverged loss is null
    spans = Check.array(
        Check.field(t, "spans", where), f"{where}.spans", MAX_SPANS - budget["spans"]
    )
    budget["spans"] += len(spans)
    for j, s in enumerate(spans):
        _check_span(s, f"{where}.spans[{j}]", workers)


_DASK_TEXT = ("scheduler", "cluster", "dashboard", "error")
_DASK_SIZES = (
    "params_bytes",
    "params_ms",
    "bytes_out_per_repeat",
    "bytes_back_per_repeat",
    "worker_transfer_bytes",
    "task_send_ms",
    "task_compute_ms",
    "task_fetch_ms",
    "task_overhead_ms",
)


def _check_dask(d, where: str) -> None:
    """Where a Dask run ran: the fields the trace export, the timeline and the reports read
    are checked; others are kept for people."""
    Check.obj(d, where)
    for key in _DASK_TEXT:
        if key in d:
            Check.text(d[key], f"{where}.{key}", 1000, null=True)
    for key in _DASK_SIZES:
        if key in d:
            Check.number(d[key], f"{where}.{key}", 0, BIG_INT)
    for j, w in enumerate(Check.array(d.get("workers", []), f"{where}.workers", 100_000)):
        at = f"{where}.workers[{j}]"
        Check.obj(w, at)
        for key in ("name", "address"):
            Check.text(Check.field(w, key, at), f"{at}.{key}", 1000)
        if w.get("pid") is not None:
            Check.integer(w["pid"], f"{at}.pid", 0, BIG_INT)
        for key in ("clock_offset_ms", "clock_uncertainty_ms", "dask_lag_ms"):
            if key in w:  # an offset may be negative; an unknown uncertainty is null
                Check.number(w[key], f"{at}.{key}", -BIG_MS, BIG_MS, null=True)
    for j, note in enumerate(Check.array(d.get("notes", []), f"{where}.notes", 1000)):
        Check.text(note, f"{where}.notes[{j}]", 1000)
    if d.get("training") is not None:
        Check.obj(d["training"], f"{where}.training")


def _check_span(s, where: str, workers: int) -> None:
    Check.obj(s, where)
    Check.keys(s, _SPAN_KEYS, where)
    for key in _SPAN_KEYS[:5]:
        Check.field(s, key, where)
    Check.integer(s["worker"], f"{where}.worker", 0, workers - 1)
    Check.integer(s["tid"], f"{where}.tid", 0, BIG_INT)
    Check.integer(s["start_ns"], f"{where}.start_ns", 0, BIG_INT)
    Check.integer(s["end_ns"], f"{where}.end_ns", s["start_ns"], BIG_INT)
    Check.integer(s["units"], f"{where}.units", 0, BIG_INT)
    for key, lo in (("task", 0), ("phase", 0), ("repeat", -10_000), ("run", 0), ("wake_ns", -1)):
        if key in s:
            Check.integer(s[key], f"{where}.{key}", lo, BIG_INT)


def _check_sample(s, where: str, workers: int) -> None:
    Check.obj(s, where)
    Check.keys(s, _SAMPLE_KEYS, where)
    Check.integer(Check.field(s, "t_ns", where), f"{where}.t_ns", 0, BIG_INT)
    for j, v in enumerate(
        Check.array(Check.field(s, "per_core", where), f"{where}.per_core", MAX_CORES)
    ):
        Check.number(v, f"{where}.per_core[{j}]", 0, 100.0 * MAX_CORES, null=True)  # null: unread
    w = Check.obj(Check.field(s, "workers", where), f"{where}.workers")
    for k, v in w.items():
        if not (k.isascii() and k.isdigit() and int(k) < workers):
            raise SnapshotError(f"{where}.workers: unknown worker {shown(k)}")
        Check.number(v, f"{where}.workers[{k}]", 0, BIG_MS)
    Check.number(Check.field(s, "engine_cpu", where), f"{where}.engine_cpu", 0, 100.0 * MAX_CORES)
    Check.number(Check.field(s, "sampler_cost_us", where), f"{where}.sampler_cost_us", 0, BIG_MS)
    if "window_ns" in s:
        Check.integer(s["window_ns"], f"{where}.window_ns", 0, BIG_INT)
    for key in ("partui_cpu", "others_cpu"):  # % of one core; null: not measured
        if key in s:
            Check.number(s[key], f"{where}.{key}", 0, 100.0 * MAX_CORES, null=True)


def _check_run(run, where: str, budget: dict) -> None:
    Check.obj(run, where)
    Check.keys(run, _RUN_KEYS, where)
    c = check_config(Check.field(run, "config", where), f"{where}.config")
    workers = c["workers"]
    times = Check.array(Check.field(run, "times_ms", where), f"{where}.times_ms", 10_000, 1)
    for j, t in enumerate(times):
        Check.number(t, f"{where}.times_ms[{j}]", 0, BIG_MS)
    for key in ("median_ms", "min_ms", "max_ms", "q1_ms", "q3_ms"):
        Check.number(
            Check.field(run, key, where), f"{where}.{key}", 0, BIG_MS, positive=key == "median_ms"
        )
    if not run["min_ms"] <= run["median_ms"] <= run["max_ms"]:
        raise SnapshotError(f"{where}: median_ms is not between min_ms and max_ms")
    Check.number(
        Check.field(run, "max_abs_error", where), f"{where}.max_abs_error", 0, 1e300, null=True
    )
    Check.number(Check.field(run, "tolerance", where), f"{where}.tolerance", 0, 1e300)
    Check.boolean(Check.field(run, "ok", where), f"{where}.ok")
    Check.integer(Check.field(run, "tasks", where), f"{where}.tasks", 0, 10**9)
    Check.integer(Check.field(run, "flops", where), f"{where}.flops", 0, BIG_INT)
    Check.integer(Check.field(run, "blas_threads", where), f"{where}.blas_threads", 1, 4096)
    Check.number(Check.field(run, "pool_startup_ms", where), f"{where}.pool_startup_ms", 0, BIG_MS)
    busy = Check.array(
        Check.field(run, "worker_busy_ms", where), f"{where}.worker_busy_ms", workers
    )
    for j, v in enumerate(busy):
        Check.number(v, f"{where}.worker_busy_ms[{j}]", 0, BIG_MS)
    Check.text(run.get("error"), f"{where}.error", 1000, null=True)
    starts = Check.array(run.get("repeat_start_ns", []), f"{where}.repeat_start_ns", len(times))
    for j, v in enumerate(starts):
        Check.integer(v, f"{where}.repeat_start_ns[{j}]", 0, BIG_INT)
    cpus = Check.array(run.get("worker_cpus", []), f"{where}.worker_cpus", workers)
    for j, v in enumerate(cpus):
        Check.integer(v, f"{where}.worker_cpus[{j}]", 0, 1 << 20)
    if run.get("dask") is not None:
        _check_dask(run["dask"], f"{where}.dask")
    if run.get("conditions") is not None:  # older snapshots have none
        check_conditions(run["conditions"], f"{where}.conditions")
    ratios = Check.array(run.get("on_cpu_ratio", []), f"{where}.on_cpu_ratio", workers)
    for j, v in enumerate(ratios):
        Check.number(v, f"{where}.on_cpu_ratio[{j}]", 0, 1e6, null=True)
    spans = Check.array(
        Check.field(run, "spans", where), f"{where}.spans", MAX_SPANS - budget["spans"]
    )
    budget["spans"] += len(spans)
    for j, s in enumerate(spans):
        _check_span(s, f"{where}.spans[{j}]", workers)
    samples = Check.array(
        run.get("cpu_samples", []), f"{where}.cpu_samples", MAX_SAMPLES - budget["samples"]
    )
    budget["samples"] += len(samples)
    for j, s in enumerate(samples):
        _check_sample(s, f"{where}.cpu_samples[{j}]", workers)


def _check_machine(m) -> None:
    Check.obj(m, "snapshot.machine")
    for key in _MACHINE_TEXT:
        if key in m:
            Check.text(m[key], f"machine.{key}", 1000, null=True)
    for key in _MACHINE_INTS:
        if key in m and m[key] is not None:
            Check.integer(m[key], f"machine.{key}", 0, BIG_INT)
    for j, lib in enumerate(Check.array(m.get("blas", []), "machine.blas", 64)):
        Check.obj(lib, f"machine.blas[{j}]")
        for k, v in lib.items():
            if not isinstance(v, (str, int, type(None))) or isinstance(v, bool):
                raise SnapshotError(
                    f"machine.blas[{j}].{k}: expected a string or an integer, got {shown(v)}"
                )
    for j, cache in enumerate(Check.array(m.get("caches", []), "machine.caches", 64)):
        Check.obj(cache, f"machine.caches[{j}]")


def _check_baseline(b, version: int) -> None:
    Check.obj(b, "snapshot.baseline")
    for k, v in b.items():
        if k == "bench" and version == 1:  # schema 1 kept partui bench's summary here
            Check.obj(v, "baseline.bench")
            continue
        where = f"baseline[{shown(k)}]"
        Check.obj(v, where)
        Check.number(
            Check.field(v, "median_ms", where), f"{where}.median_ms", 0, BIG_MS, positive=True
        )
        check_config(Check.field(v, "config", where), f"{where}.config")
        Check.text(v.get("source", ""), f"{where}.source", 200)


def validate(data) -> None:
    """Raise SnapshotError naming the first thing wrong with a parsed snapshot.

    Everything the rest of partui relies on is checked here: types, ranges, finite numbers,
    known layers and strategies, worker indexes within the run's worker count, list lengths.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SnapshotError('not a partui snapshot (no "format": "partui-snapshot")')
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SnapshotError("schema_version: expected an integer")
    if version > SCHEMA_VERSION:
        raise SnapshotError(
            f"schema version {shown(version)} is newer than this partui reads "
            f"({SCHEMA_VERSION}); upgrade partui to open it"
        )
    if version < 1:
        raise SnapshotError(f"schema version {version} is not a valid version")
    Check.keys(data, _TOP_KEYS, "snapshot")
    Check.text(Check.field(data, "partui_version", "snapshot"), "snapshot.partui_version", 100)
    Check.text(Check.field(data, "created", "snapshot"), "snapshot.created", 100)
    Check.text(Check.field(data, "note", "snapshot"), "snapshot.note", MAX_NOTE)
    _check_machine(Check.field(data, "machine", "snapshot"))
    _check_baseline(data.get("baseline", {}), version)
    if "bench" in data:
        if version < 2:
            raise SnapshotError("snapshot.bench: schema 1 keeps it in baseline.bench")
        BenchResult.from_dict(data["bench"], "snapshot.bench")
    runs = Check.array(Check.field(data, "runs", "snapshot"), "snapshot.runs", MAX_RUNS)
    budget = {"spans": 0, "samples": 0}
    for i, run in enumerate(runs):
        _check_run(run, f"runs[{i}]", budget)
    for i, item in enumerate(Check.array(data.get("memlab", []), "snapshot.memlab", 1000)):
        Check.obj(item, f"memlab[{i}]")
    for i, item in enumerate(
        Check.array(data.get("training", []), "snapshot.training", MAX_TRAINING)
    ):
        _check_training(item, f"training[{i}]", budget)
