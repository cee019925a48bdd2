"""`partui bench`: how close the kernels come to this machine's limit, in one run.

1. The practical limit: float32 GEMM throughput at 1, 2 (and all) threads.
2. For every layer at batch 64 and every worker count, the best strategy and
   executor: every valid candidate is screened with a few repeats, then the
   finalists of all worker counts are measured again in interleaved rounds, so
   the ratios compare configurations measured under the same conditions.
3. The whole network per worker count, the same way.

With W workers allowed, running a single task on one of them is a candidate
too: where a layer is too small to gain from a split, that is the best choice
and the report says so. Every run is verified against the float64 reference;
a configuration that fails is never chosen and is listed as a failure.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from partui.kernels.model.layers import LAYERS, get_layer
from partui.kernels.plan.strategies import EXECUTORS, STRATEGIES, not_applicable_reason, plan
from partui.profiles.bench.environment import MemoryWatch, OtherLoad, bench_conditions, loadavg
from partui.profiles.bench.overhead import (
    SPLIT_EXECUTORS,
    TimeSplit,
    empty_repeats_us,
    time_split,
)
from partui.profiles.bench.overhead import summary as summary_us
from partui.profiles.bench.peaks import Measure, Peaks, gemm_peak
from partui.profiles.bench.targets import targets
from partui.profiles.executors.registry import executor_class
from partui.profiles.records.bench_result import BenchChoice, BenchResult, BenchRow
from partui.profiles.records.config import RunConfig
from partui.profiles.records.significance import NOISE_FLOOR, contrast
from partui.profiles.records.stats import summarize
from partui.profiles.run.engine import Engine
from partui.profiles.store.snapshot import Snapshot
from partui.profiles.system.machine import info

KERNEL = "vectorized"
SINGLE = ("none", "inline")  # one task on the calling thread


@dataclass(frozen=True)
class BenchSettings:
    batch: int = 64
    workers: tuple[int, ...] = ()  # default: 1, 2 and the core count
    layers: tuple[str, ...] = ()  # default: every layer, then the network
    screen_repeats: int = 7
    rounds: int = 5  # interleaved rounds of the finalists
    round_repeats: int = 10
    warmup: int = 3  # an idle gap slows the next repeats; a few untimed ones absorb it
    finalists: int = 2  # parallel candidates per worker count kept after screening
    gemm_size: int = 1024
    gemm_repeats: int = 4  # per round of the peak's interleaved rounds
    peak_rounds: int = 5
    peak_retries: int = 2  # measurements again of a peak that looks wrong (peaks.Peaks)
    overhead_repeats: int = 2000  # repeats of empty tasks per worker count
    seed: int = 0
    noise_floor: float = NOISE_FLOOR  # the smallest ratio that counts as a difference

    @classmethod
    def quick(cls, **changes) -> BenchSettings:
        """Enough to check that everything runs and is verified, in seconds: not for figures."""
        base = dict(
            screen_repeats=2,
            rounds=1,
            round_repeats=3,
            warmup=1,
            finalists=1,
            gemm_size=384,
            gemm_repeats=2,
            peak_rounds=3,
            overhead_repeats=100,
        )
        return cls(**{**base, **changes})

    def worker_counts(self) -> tuple[int, ...]:
        return self.workers or tuple(sorted({1, 2, os.cpu_count() or 1}))

    def layer_names(self) -> tuple[str, ...]:
        return self.layers or tuple(LAYERS)


# ---- candidates --------------------------------------------------------------------


def candidates(layer_name: str, workers: int, batch: int = 64) -> list[tuple[str, str]]:
    """(strategy, executor) pairs worth measuring for `layer_name` with `workers` workers.

    One worker: inline, `none` and the strategies that still cut the layer into
    more than one task (hybrid, filter); the others make the very same single task.
    More workers: every strategy on threads and processes, and BLAS's own threads;
    the best single-worker choice is added by the caller. (`threads-dynamic`, the pool
    kept as a contrast, is never faster than `threads`: tests/benchmarks/bench_executors.)
    """
    layer = get_layer(layer_name)
    if workers == 1:
        return [
            (s, "inline")
            for s in STRATEGIES
            if not_applicable_reason(layer, s, KERNEL, "inline", 1) is None
            and (s == "none" or (s != "pipeline" and _cuts(layer, s, batch)))
        ]
    # this machine alone: no Dask cluster; threads-dynamic is a contrast, not a candidate
    executors = [e for e in EXECUTORS if e not in ("inline", "threads-dynamic", "dask")]
    return [(s, e) for e in executors for s in STRATEGIES if usable(layer, s, e, workers)]


def usable(layer, strategy: str, executor: str, workers: int) -> bool:
    """The combination makes sense and the executor can start `workers` here."""
    return (
        not_applicable_reason(layer, strategy, KERNEL, executor, workers) is None
        and executor_class(executor).refusal(workers) is None
    )


def _cuts(layer, strategy: str, batch: int) -> bool:
    p = plan(layer, strategy, batch, 1)
    return len(p.phases) > 1 or len(p.tasks) > 1


@dataclass
class Measured:
    """One configuration, with all its timed repeats (screening and rounds kept apart)."""

    layer: str
    strategy: str
    executor: str
    workers: int  # workers the configuration uses
    flops: int
    screen_ms: list[float] = field(default_factory=list)
    round_ms: list[float] = field(default_factory=list)
    round_medians: list[float] = field(default_factory=list)  # one per interleaved round
    ok: bool = True
    max_abs_error: float = 0.0
    tolerance: float = 0.0
    tasks: int = 0
    error: str | None = None
    splits: list[TimeSplit] = field(default_factory=list)  # per round's run, with 2+ workers

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.strategy, self.executor, self.workers)

    @property
    def times(self) -> list[float]:
        return self.round_ms or self.screen_ms

    @property
    def median_ms(self) -> float:
        return summarize(self.times).median if self.times else float("inf")

    def summary(self) -> BenchChoice:
        s = summarize(self.times)

        def med(key: str) -> float | None:
            return statistics.median(getattr(x, key) for x in self.splits) if self.splits else None

        return BenchChoice(
            layer=self.layer,
            best_strategy=self.strategy,
            executor=self.executor,
            uses_workers=self.workers,
            median_ms=s.median,
            min_ms=s.min,
            max_ms=s.max,
            repeats=s.n,
            gflops=self.flops / (s.median * 1e6) if s.median > 0 else 0.0,
            tasks=self.tasks,
            verified=self.ok,
            round_medians_ms=list(self.round_medians),
            max_abs_error=self.max_abs_error,
            tolerance=self.tolerance,
            work_ms=med("work_ms"),
            imbalance=med("imbalance"),
            fixed_us=med("fixed_us"),
        )


class Bench:
    """Runs the benchmark; `progress(text)` is told what it is doing."""

    def __init__(
        self,
        settings: BenchSettings,
        progress: Callable[[str], None] | None = None,
        measure_peak: Measure = gemm_peak,
    ):
        self.s = settings
        self.progress = progress or (lambda text: None)
        self.measure_peak = measure_peak  # tests hand in the figures of a busy machine
        self.failures: list[dict] = []
        self.results: dict[
            tuple, object
        ] = {}  # (layer, strategy, executor, workers) -> last RunResult
        self.rss = MemoryWatch()
        # per layer and worker count, the batch split on each of SPLIT_EXECUTORS side by side
        self.executor_splits: list[dict] = []

    def run(self) -> BenchResult:
        s = self.s
        started = time.time()
        load_before = loadavg()
        whole = OtherLoad()
        threads = s.worker_counts()
        peaks = Peaks(
            threads,
            s.gemm_size,
            s.gemm_repeats,
            s.peak_rounds,
            self.measure_peak,
            s.peak_retries,
            self.progress,
        )
        peaks.measure_all()
        overhead = {}
        for t in threads:
            self.progress(
                f"fixed cost of one repeat, {t} worker{'s' * (t > 1)} on threads, empty tasks "
                f"x {s.overhead_repeats}"
            )
            overhead[str(t)] = summary_us(empty_repeats_us("threads", t, s.overhead_repeats))
        by_executor = {"threads": overhead}
        for e in SPLIT_EXECUTORS[1:]:
            by_executor[e] = {}
            for t in [t for t in threads if executor_class(e).refusal(t) is None]:
                self.progress(f"fixed cost of one repeat, {t} workers on {e}, empty tasks")
                figures = empty_repeats_us(e, t, s.overhead_repeats)
                by_executor[e][str(t)] = summary_us(figures)
        layers: list[BenchRow] = []
        network: list[BenchRow] = []
        names = s.layer_names()
        layer_others: dict[str, float | None] = {}
        # No CPU sampler: its thread would take the GIL from the threads being timed.
        with Engine(sample_hz=0) as engine:
            for i, name in enumerate(names, 1):
                self.progress(f"[{i}/{len(names)}] {name}")
                load = OtherLoad()
                rows = self._layer(engine, name)
                others = layer_others[name] = load.cores()
                for row in rows:
                    row.other_cpu_cores = others
                (network if name == "network" else layers).extend(rows)
        self._shares(layers + network, peaks)
        load_after = loadavg()
        other_cores = whole.cores()
        load_average = {"before": load_before, "after": load_after}
        result = BenchResult(
            kernel=KERNEL,
            batch=s.batch,
            settings={**asdict(s), "workers": list(threads), "layers": list(names)},
            gemm_peak=peaks.peaks,
            layers=layers,
            network=network,
            failures=self.failures,
            started=started,
            seconds=time.time() - started,
            load_average=load_average,
            other_cpu_cores=other_cores,
            conditions=bench_conditions(other_cores, layer_others, load_average, machine_reasons()),
            machine=info(),
            peak_rss_bytes=self.rss.summary(),
            overhead_us={t: o["median_us"] for t, o in overhead.items()},
            overhead=overhead,
            overhead_by_executor=by_executor,
            executor_splits=self.executor_splits,
        )
        result.targets = targets(result)
        return result

    def _shares(self, rows: list[BenchRow], peaks: Peaks) -> None:
        """Each row's share of its GEMM peak; a figure above its peak first has the peak
        measured again (peaks.check_figure), so no share above 100% is ever given."""
        for row in rows:
            peaks.check_figure(
                row.gflops,
                row.workers,
                f"{row.layer} on {row.workers} worker{'s' * (row.workers > 1)}",
            )
        for row in rows:
            share = peaks.share(row.gflops, row.workers)
            row.share_of_gemm_peak = share if share is None or share <= 1.0 else None

    # -- one layer ----------------------------------------------------------------
    def _layer(self, engine: Engine, name: str) -> list[BenchRow]:
        s = self.s
        flops = get_layer(name).flops(s.batch)
        pool: dict[tuple, Measured] = {}

        def measure(strategy, executor, workers, repeats, into):
            key = (strategy, executor, workers)
            m = pool.setdefault(key, Measured(name, strategy, executor, workers, flops))
            if not m.ok:
                return m
            cfg = RunConfig(
                name,
                strategy=strategy,
                kernel=KERNEL,
                executor=executor,
                workers=workers,
                batch=s.batch,
                repeats=repeats,
                warmup=s.warmup,
                seed=s.seed,
            )
            r = engine.run(cfg)  # it lets BLAS threads left spinning settle first
            self.rss.sample()
            self.results[(name, *key)] = r
            getattr(m, into).extend(r.times_ms)
            if into == "round_ms" and r.times_ms:
                m.round_medians.append(statistics.median(r.times_ms))
            if into == "round_ms" and workers > 1 and executor != "blas":
                split = time_split(r.times_ms, r.spans)
                if split is not None:
                    m.splits.append(split)
            m.max_abs_error = max(m.max_abs_error, r.max_abs_error)
            m.tolerance, m.tasks = r.tolerance, r.tasks
            if not r.ok:
                m.ok, m.error = False, r.error
                self.failures.append(
                    {
                        "layer": name,
                        "strategy": strategy,
                        "executor": executor,
                        "workers": workers,
                        "error": r.error,
                    }
                )
            return m

        # Screening: every candidate, a few repeats each, in two passes of which only the
        # second is kept. The first warms each executor (its threads or processes, the
        # tasks' bound calls): right after they start, a pool's first runs can be several
        # times slower, and a candidate screened cold would be dropped before the rounds.
        finalists: dict[int, list[tuple[str, str, int]]] = {}
        for w in s.worker_counts():
            cands = [
                (st, ex, 1 if ex == "inline" else w) for st, ex in candidates(name, w, s.batch)
            ]
            for st, ex, uses in cands:
                measure(st, ex, uses, s.screen_repeats, "screen_ms").screen_ms.clear()
            screened = [
                measure(st, ex, uses, s.screen_repeats, "screen_ms") for st, ex, uses in cands
            ]
            good = sorted((m for m in screened if m.ok), key=lambda m: m.median_ms)
            finalists[w] = [m.key for m in good[: s.finalists]]
        # one worker: a candidate for every count
        singles = finalists.get(1) or [(SINGLE[0], SINGLE[1], 1)]
        for w in finalists:
            if w > 1:
                finalists[w] += [k for k in singles if k not in finalists[w]]
        # the same split on the parked threads and in one native region, measured in the
        # same rounds: what the interpreter costs a repeat against what a region costs
        layer = get_layer(name)
        contrast = {
            w: [("batch", e, w) for e in SPLIT_EXECUTORS if usable(layer, "batch", e, w)]
            for w in finalists
            if w > 1
        }
        for w, keys in contrast.items():
            if len(keys) == len(SPLIT_EXECUTORS):
                finalists[w] += [k for k in keys if k not in finalists[w]]
            else:
                contrast[w] = []
        # Rounds: all finalists, interleaved, so their ratios share the same conditions.
        keys = list(dict.fromkeys(k for w in finalists for k in finalists[w]))
        for _ in range(s.rounds):
            for key in keys:
                measure(*key, s.round_repeats, "round_ms")
        rows = []
        best1 = None
        for w in sorted(finalists):
            contenders = [pool[k] for k in finalists[w] if pool[k].ok]
            if not contenders:
                continue
            best = min(contenders, key=lambda m: m.median_ms)
            if w == 1:
                best1 = best
            # what used the workers: a split, or BLAS's threads; one task on a pool is not
            parallel = [
                m for m in contenders if m.workers > 1 and (m.tasks > 1 or m.executor == "blas")
            ]
            row = BenchRow(**asdict(best.summary()), workers=w)
            # no parallelism chosen: everything on one worker, or one task on a pool
            row.single_task = w > 1 and (
                best.workers == 1 or (best.tasks == 1 and best.executor != "blas")
            )
            if best1 is not None:
                row.speedup_vs_best_1_worker = best1.median_ms / best.median_ms
                if best is not best1:
                    row.vs_1_worker = self._against(best1, best)
            if w > 1 and parallel:
                bp = min(parallel, key=lambda m: m.median_ms)
                row.best_parallel = bp.summary()
                if best1 is not None:
                    row.best_parallel.speedup_vs_best_1_worker = best1.median_ms / bp.median_ms
                    row.best_parallel.vs_1_worker = self._against(best1, bp)
            rows.append(row)
            for key in contrast.get(w, []):
                m = pool[key]
                if m.ok and m.splits:
                    self.executor_splits.append(
                        {
                            "layer": name,
                            "workers": w,
                            "strategy": key[0],
                            "executor": key[1],
                            "median_ms": m.median_ms,
                            **{
                                k: statistics.median(getattr(x, k) for x in m.splits)
                                for k in ("work_ms", "busiest_ms", "imbalance", "fixed_us")
                            },
                            "runs": len(m.splits),
                        }
                    )
            note = " (a single task was fastest)" if row.single_task else ""
            self.progress(
                f"    {w} worker{'s' * (w > 1)}: {best.strategy}/{best.executor} "
                f"{row.median_ms:.3f} ms, {row.gflops:.1f} GFLOP/s{note}"
            )
        return rows

    def _against(self, base: Measured, other: Measured) -> dict:
        """other's repeats against base's: both from the same interleaved rounds."""
        return contrast(base.times, other.times, self.s.noise_floor).to_dict()


def to_snapshot(result: BenchResult, runs):
    """A partui snapshot: the chosen configurations' last runs and the bench summary."""
    note = (
        f"partui bench, batch {result.batch}: the best strategy and executor per layer "
        f"and worker count, against the GEMM peak"
    )
    return Snapshot.from_results(runs, note=note, bench=result)


def chosen_runs(bench: Bench, result: BenchResult) -> list:
    """The last RunResult of every configuration the summary reports, in its order."""
    out = []
    for row in result.rows():
        r = bench.results.get((row.layer, row.best_strategy, row.executor, row.uses_workers))
        if r is not None and r not in out:
            out.append(r)
    return out


def machine_reasons() -> list[str]:
    """What the machine's settings say against stable figures (the governor, turbo); the
    other programs' CPU and the load are bench's own to judge (bench_conditions)."""
    from partui.profiles.system.conditions import read_conditions

    state = read_conditions()
    state.load = None  # counts the bench's own threads
    return state.reasons()
