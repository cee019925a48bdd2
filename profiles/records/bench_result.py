"""What `partui bench` found, as typed records, and their JSON form (the `--json` output and a
snapshot's `bench` field). Free of numpy: a snapshot with a bench summary loads without it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from partui.profiles.files.checked_json import Check, FileProblem
from partui.profiles.system.machine import MachineInfo

FORMAT = "partui-bench"
VERSION = 1


# what a bench summary keeps of the machine
MACHINE_KEYS = (
    "cpu_model",
    "logical_cores",
    "physical_cores",
    "usable_cores",
    "python",
    "numpy",
    "blas",
    "hostname",
)


@dataclass
class BenchChoice:
    """One measured configuration of a layer: what it is, its times, whether it is right."""

    layer: str
    best_strategy: str
    executor: str
    uses_workers: int  # workers the configuration uses (1 for a single task)
    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    gflops: float
    tasks: int
    verified: bool
    max_abs_error: float
    tolerance: float
    speedup_vs_best_1_worker: float | None = None
    # where a split's repeat goes (profiles.overhead.time_split, medians over the rounds'
    # runs): all workers' task time, the busiest over the mean, wall minus the busiest
    work_ms: float | None = None
    imbalance: float | None = None
    fixed_us: float | None = None
    # the median of each interleaved round, in order: a verdict's ratio is taken round by round
    round_medians_ms: list[float] = field(default_factory=list)
    # this configuration's repeats against the best 1-worker one's: significance.Contrast
    # as a dict (ratio, ci_low, ci_high, p_value, significant, verdict, text, ...)
    vs_1_worker: dict[str, Any] | None = None


@dataclass
class BenchRow(BenchChoice):
    """The best configuration of a layer for one worker count, with its context."""

    workers: int = 1  # workers allowed
    # of the peak for this worker count; None when that peak was not measurable (gemm_peak's
    # `measurable` and `problem`): never above 1
    share_of_gemm_peak: float | None = None
    single_task: bool = False  # no split was fastest: everything on one worker, or one task
    best_parallel: BenchChoice | None = None  # the best split, when a single task won
    other_cpu_cores: float | None = None  # cores other processes used while it ran


@dataclass
class BenchResult:
    kernel: str
    batch: int
    settings: dict[str, Any]  # BenchSettings, with the worker counts and layers resolved
    gemm_peak: dict[str, dict[str, Any]]  # threads -> gemm_peak()
    layers: list[BenchRow] = field(default_factory=list)
    network: list[BenchRow] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # wrong answers, never chosen
    started: float = 0.0  # time.time()
    seconds: float = 0.0
    load_average: dict[str, list[float] | None] = field(default_factory=dict)  # before, after
    other_cpu_cores: float | None = None
    machine: MachineInfo = field(default_factory=MachineInfo)  # written: MACHINE_KEYS only
    peak_rss_bytes: dict[str, int] = field(default_factory=dict)  # main, largest_child, bound
    targets: list[dict[str, Any]] = field(default_factory=list)  # target, met, figure
    # the fixed cost of one repeat on `threads` with empty tasks, per worker count: the median
    # in microseconds, and its spread (median_us, q1_us, q3_us, min_us, max_us, repeats)
    overhead_us: dict[str, float] = field(default_factory=dict)
    overhead: dict[str, dict[str, float]] = field(default_factory=dict)
    # whether the machine was quiet (environment.bench_conditions): quiet, reasons, and the
    # figures it rests on; a target is met only in a quiet run
    conditions: dict[str, Any] = field(default_factory=dict)
    # the fixed cost of a repeat per executor and worker count (empty tasks), beside `overhead`
    overhead_by_executor: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    tuning: dict[str, Any] = field(default_factory=dict)  # the CPU's tuned kernel choices
    # the batch split on threads and on native-region, side by side per layer and worker
    # count: layer, workers, strategy, executor, median_ms, work_ms, busiest_ms, imbalance,
    # fixed_us (medians over the rounds' runs), runs
    executor_splits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def gemm_peak_gflops(self) -> dict[str, float]:
        return {t: p["gflops"] for t, p in self.gemm_peak.items()}

    def peak_problem(self, threads: int) -> str | None:
        """Why the peak for `threads` was not measurable now (None: it was)."""
        p = self.gemm_peak.get(str(threads))
        if p is None and self.gemm_peak:
            p = self.gemm_peak[max(self.gemm_peak, key=int)]
        if p is None or p.get("measurable", True):
            return None
        return str(p.get("problem") or "not measurable")

    def rows(self) -> list[BenchRow]:
        return self.layers + self.network

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {
            "format": FORMAT,
            "version": VERSION,
            **d,
            "machine": self.machine.to_dict(MACHINE_KEYS),
            "gemm_peak_gflops": self.gemm_peak_gflops,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "bench") -> BenchResult:
        """The summary back from JSON; FileProblem names the first field it cannot use."""
        Check.obj(d, where)
        if d.get("format") != FORMAT:
            raise FileProblem(f"{where}: not a partui bench summary")
        return cls(
            kernel=Check.text(Check.field(d, "kernel", where), f"{where}.kernel", 100),
            batch=Check.integer(Check.field(d, "batch", where), f"{where}.batch", 1, 2**31),
            settings=Check.obj(d.get("settings", {}), f"{where}.settings"),
            gemm_peak={
                str(t): Check.obj(p, f"{where}.gemm_peak[{t}]")
                for t, p in Check.obj(d.get("gemm_peak", {}), f"{where}.gemm_peak").items()
            },
            layers=_rows(d.get("layers", []), f"{where}.layers"),
            network=_rows(d.get("network", []), f"{where}.network"),
            failures=[
                Check.obj(f, f"{where}.failures[{i}]")
                for i, f in enumerate(
                    Check.array(d.get("failures", []), f"{where}.failures", 10**5)
                )
            ],
            started=_number(d.get("started", 0.0), f"{where}.started"),
            seconds=_number(d.get("seconds", 0.0), f"{where}.seconds"),
            load_average=Check.obj(d.get("load_average", {}), f"{where}.load_average"),
            other_cpu_cores=_number(d.get("other_cpu_cores"), f"{where}.other_cpu_cores", True),
            machine=MachineInfo.from_dict(Check.obj(d.get("machine", {}), f"{where}.machine")),
            peak_rss_bytes=Check.obj(d.get("peak_rss_bytes", {}), f"{where}.peak_rss_bytes"),
            targets=[
                Check.obj(t, f"{where}.targets[{i}]")
                for i, t in enumerate(Check.array(d.get("targets", []), f"{where}.targets", 1000))
            ],
            overhead_us={
                str(w): _number(v, f"{where}.overhead_us[{w}]")
                for w, v in Check.obj(d.get("overhead_us", {}), f"{where}.overhead_us").items()
            },
            conditions=Check.obj(d.get("conditions", {}), f"{where}.conditions"),
            overhead_by_executor={
                str(e): {
                    str(w): {
                        str(k): _number(x, f"{where}.overhead_by_executor[{e}][{w}].{k}")
                        for k, x in Check.obj(o, f"{where}.overhead_by_executor[{e}][{w}]").items()
                    }
                    for w, o in Check.obj(per, f"{where}.overhead_by_executor[{e}]").items()
                }
                for e, per in Check.obj(
                    d.get("overhead_by_executor", {}), f"{where}.overhead_by_executor"
                ).items()
            },
            tuning=Check.obj(d.get("tuning", {}), f"{where}.tuning"),
            executor_splits=[
                Check.obj(x, f"{where}.executor_splits[{i}]")
                for i, x in enumerate(
                    Check.array(d.get("executor_splits", []), f"{where}.executor_splits", 10**4)
                )
            ],
            overhead={
                str(w): {
                    str(k): _number(x, f"{where}.overhead[{w}].{k}")
                    for k, x in Check.obj(o, f"{where}.overhead[{w}]").items()
                }
                for w, o in Check.obj(d.get("overhead", {}), f"{where}.overhead").items()
            },
        )


_CHOICE_TEXT = ("layer", "best_strategy", "executor")
_CHOICE_INTS = ("uses_workers", "repeats", "tasks")
_CHOICE_NUMBERS = ("median_ms", "min_ms", "max_ms", "gflops", "max_abs_error", "tolerance")
_SPLIT_NUMBERS = ("work_ms", "imbalance", "fixed_us")  # optional: older summaries lack them


def _listed(d: dict, key: str, where: str) -> list:
    return Check.array(d.get(key, []), f"{where}.{key}", 10**5)


def _number(v, where: str, null: bool = False) -> Any:
    if v is None and null:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise FileProblem(f"{where}: expected a number, got {v!r:.40}")
    return float(v)


def _choice_values(d: dict, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in _CHOICE_TEXT:
        out[k] = Check.text(Check.field(d, k, where), f"{where}.{k}", 100)
    for k in _CHOICE_INTS:
        out[k] = Check.integer(Check.field(d, k, where), f"{where}.{k}", 0, 2**31)
    for k in _CHOICE_NUMBERS:
        out[k] = _number(d.get(k), f"{where}.{k}", null=True)
        out[k] = float("inf") if out[k] is None else out[k]  # JSON keeps inf as null
    out["verified"] = Check.boolean(Check.field(d, "verified", where), f"{where}.verified")
    for k in ("speedup_vs_best_1_worker", *_SPLIT_NUMBERS):
        out[k] = _number(d.get(k), f"{where}.{k}", null=True)
    out["round_medians_ms"] = [
        _number(v, f"{where}.round_medians_ms[{i}]")
        for i, v in enumerate(_listed(d, "round_medians_ms", where))
    ]
    vs = d.get("vs_1_worker")  # optional: older summaries lack it
    out["vs_1_worker"] = None if vs is None else _contrast(vs, f"{where}.vs_1_worker")
    return out


def _contrast(d: Any, where: str) -> dict[str, Any]:
    """A Contrast's dict as read back: its text and verdict are shown, its numbers compared."""
    Check.obj(d, where)
    out: dict[str, Any] = {}
    for k in ("text", "verdict"):
        out[k] = Check.text(Check.field(d, k, where), f"{where}.{k}", 200)
    out["significant"] = Check.boolean(Check.field(d, "significant", where), f"{where}.sig")
    for k in ("ratio", "ci_low", "ci_high", "level", "p_value", "noise_floor", "drift"):
        out[k] = _number(d.get(k), f"{where}.{k}", null=True)
    for k in ("n_base", "n_other"):
        out[k] = Check.integer(Check.field(d, k, where), f"{where}.{k}", 0, 2**31)
    return out


def _rows(v, where: str) -> list[BenchRow]:
    rows = []
    names = {f.name for f in fields(BenchRow)}
    for i, d in enumerate(Check.array(v, where, 10**4)):
        at = f"{where}[{i}]"
        Check.obj(d, at)
        values = _choice_values(d, at)
        values["workers"] = Check.integer(Check.field(d, "workers", at), f"{at}.workers", 1, 2**31)
        share = _number(d.get("share_of_gemm_peak"), f"{at}.share_of_gemm_peak", null=True)
        # a share above 1 is a peak measured while the cores were busy: not a share at all
        values["share_of_gemm_peak"] = share if share is None or share <= 1.0 else None
        values["single_task"] = Check.boolean(d.get("single_task", False), f"{at}.single_task")
        values["other_cpu_cores"] = _number(d.get("other_cpu_cores"), f"{at}.other", null=True)
        bp = d.get("best_parallel")
        if bp is not None:
            values["best_parallel"] = BenchChoice(
                **_choice_values(Check.obj(bp, f"{at}.best_parallel"), f"{at}.best_parallel")
            )
        rows.append(BenchRow(**{k: v for k, v in values.items() if k in names}))
    return rows
