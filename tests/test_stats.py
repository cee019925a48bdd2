"""Statistics against values computed by hand."""

import math
from dataclasses import replace

import pytest

from partui.profiles.records.config import RunConfig
from partui.profiles.records.results import RunResult
from partui.profiles.records.stats import (
    amdahl_fit,
    busy_shares,
    imbalance,
    karp_flatt,
    run_stats,
    summarize,
)
from partui.profiles.store.analysis import analyze
from partui.profiles.store.baselines import Baseline, BaselineBook
from partui.profiles.system.machine import MachineInfo

MACHINE = MachineInfo(cpu_model="Test CPU", logical_cores=2, hostname="box")


def fake(
    workers=2,
    times=(5.0, 4.5, 5.5),
    busy=(4.0, 2.0),
    strategy="batch",
    executor="threads",
    kernel="vectorized",
    ok=True,
) -> RunResult:
    s = summarize(times)
    config = RunConfig(
        "conv2",
        strategy=strategy,
        kernel=kernel,
        executor=executor,
        workers=workers,
        batch=8,
        repeats=len(times),
        warmup=0,
    )
    return RunResult(
        config=config,
        blas_threads=1,
        times_ms=list(times),
        median_ms=s.median,
        min_ms=s.min,
        max_ms=s.max,
        q1_ms=s.q1,
        q3_ms=s.q3,
        max_abs_error=0.0,
        tolerance=1e-4,
        ok=ok,
        tasks=workers,
        flops=10**6,
        spans=[],
        worker_busy_ms=list(busy),
        pool_startup_ms=0.0,
    )


def test_summary_median_quartiles_iqr():
    s = summarize([1, 2, 3, 4, 10])
    assert (s.median, s.min, s.max, s.q1, s.q3, s.iqr, s.n) == (3, 1, 10, 2, 4, 2, 5)
    s = summarize([1, 2, 3, 4])  # linear interpolation: q1 at 1.75, q3 at 3.25
    assert (s.median, s.q1, s.q3) == (2.5, 1.75, 3.25)


def test_busy_idle_and_imbalance():
    assert busy_shares([2.0, 4.0], 8.0) == [0.25, 0.5]
    assert imbalance([2.0, 4.0, 6.0]) == 1.5
    assert imbalance([3.0, 3.0]) == 1.0
    assert math.isnan(imbalance([0.0, 0.0]))


def test_amdahl_fit_recovers_a_known_serial_fraction():
    # T(p) = 10 (0.2 + 0.8 / p): 10, 6, 4
    fit = amdahl_fit({1: 10.0, 2: 6.0, 4: 4.0})
    assert fit.serial_fraction == pytest.approx(0.2)
    assert fit.t1_ms == pytest.approx(10.0) and fit.ceiling == pytest.approx(5.0)
    assert fit.rms_error_ms == pytest.approx(0.0, abs=1e-9) and fit.points == 3


def test_amdahl_fit_least_squares_by_hand():
    # x = 1/p = 1, .5, .25; y = 10, 6.2, 3.9: slope b = Sxy/Sxx, a = ybar - b xbar
    xs, ys = [1.0, 0.5, 0.25], [10.0, 6.2, 3.9]
    xbar, ybar = sum(xs) / 3, sum(ys) / 3
    b = sum((x - xbar) * (y - ybar) for x, y in zip(xs, ys)) / sum((x - xbar) ** 2 for x in xs)
    a = ybar - b * xbar  # b = 8.0571..., a = 2.0
    fit = amdahl_fit({1: 10.0, 2: 6.2, 4: 3.9})
    assert fit.serial_fraction == pytest.approx(a / (a + b))
    assert fit.serial_fraction == pytest.approx(2.0 / 10.0571, abs=1e-4)


def test_amdahl_fit_edge_cases():
    flat = amdahl_fit({1: 10.0, 2: 10.0})
    assert flat.serial_fraction == pytest.approx(1.0) and flat.ceiling == pytest.approx(1.0)
    superlinear = amdahl_fit({1: 10.0, 2: 4.0})  # b = 12, a = -2
    assert superlinear.raw_serial_fraction == pytest.approx(-0.2)
    assert superlinear.serial_fraction == 0.0 and superlinear.ceiling == math.inf
    assert amdahl_fit({2: 5.0}) is None


def test_karp_flatt_by_hand():
    assert karp_flatt(10.0, 6.0, 2) == pytest.approx(0.2)  # S = 5/3: (0.6 - 0.5) / 0.5
    assert karp_flatt(10.0, 4.0, 4) == pytest.approx(0.2)  # S = 2.5: (0.4 - 0.25) / 0.75
    assert karp_flatt(10.0, 5.0, 2) == pytest.approx(0.0)
    assert math.isnan(karp_flatt(10.0, 5.0, 1))


def test_run_stats_against_twin_and_honest_baseline():
    r = fake(times=(5.0, 4.5, 5.5, 4.75, 5.25), busy=(4.0, 2.0))
    twin = fake(workers=1, times=(9.0, 8.8, 9.4, 8.9, 9.1), busy=(8.9,))
    st = run_stats(r, twin, honest_ms=4.0)
    assert st.median == 5.0 and st.iqr == pytest.approx(0.5)
    assert st.speedup_1w == pytest.approx(1.8) and st.verdict_1w == "faster"
    assert st.vs_1w.ratio == pytest.approx(5.0 / 9.0) and st.vs_1w.significant
    assert st.vs_1w.text().startswith("1.80x faster [")
    # the same twin with three repeats: no verdict, whatever the medians say
    few = run_stats(r, fake(workers=1, times=(9.0, 8.8, 9.4)), honest_ms=4.0)
    assert few.verdict_1w == "too few repeats" and not few.vs_1w.significant
    assert st.speedup_honest == pytest.approx(0.8) and st.efficiency == pytest.approx(0.4)
    assert st.scaling_efficiency == pytest.approx(0.9)
    assert st.busy_share == [0.8, 0.4] and st.idle_share == pytest.approx([0.2, 0.6])
    assert st.imbalance == pytest.approx(4 / 3)
    alone = run_stats(r)
    assert math.isnan(alone.speedup_1w) and math.isnan(alone.speedup_honest)
    assert alone.verdict_1w is None


def test_analyze_takes_the_faster_of_book_and_sweep_and_fits_series():
    one = fake(workers=1, times=(10.0, 9.8, 10.2, 9.9, 10.1), busy=(9.9,))
    two = fake(workers=2, times=(6.0, 5.9, 6.1, 5.95, 6.05))
    other = fake(workers=1, strategy="spatial", times=(8.0, 7.9, 8.1), busy=(8.0,))
    a = analyze([one, two, other], {"conv2/vectorized/b8": Baseline(7.0, one.config, "book")})
    assert a.baselines["conv2/vectorized/b8"].source == "book"
    assert a.rows[1].stats.speedup_honest == pytest.approx(7.0 / 6.0)
    a = analyze([one, two, other], {"conv2/vectorized/b8": Baseline(9.0, one.config, "book")})
    assert a.baselines["conv2/vectorized/b8"].median_ms == 8.0  # spatial w=1, this sweep
    assert a.rows[1].stats.speedup_1w == pytest.approx(10.0 / 6.0)
    (series,) = a.series
    assert series.fit.serial_fraction == pytest.approx(0.2) and series.withheld is None
    assert series.karp_flatt == {2: pytest.approx(0.2)}
    assert series.contrasts[2].significant


def test_no_amdahl_or_karp_flatt_fit_from_medians_that_do_not_differ():
    """1 and 2 workers within each other's noise: a fit would only describe the noise (a
    serial fraction far above 1 or below 0), so none is given and the report says why."""
    from partui.tui.text.reports import analysis_data, report

    one = fake(workers=1, times=(10.0, 14.0, 9.0, 12.0, 10.5, 30.0), busy=(9.9,))
    two = fake(workers=2, times=(10.4, 9.5, 13.0, 11.0, 25.0, 9.8))
    (series,) = analyze([one, two]).series
    assert series.fit is None and series.karp_flatt == {}
    assert not series.contrasts[2].significant
    assert "no fit (1 vs 2 workers: " in report(analyze([one, two]))
    (data,) = analysis_data(analyze([one, two]))["series"]
    assert data["amdahl"] is None and data["amdahl_withheld"].startswith("1 vs 2 workers")
    assert data["contrasts"]["2"]["significant"] is False


def test_baseline_book_keeps_the_best_verified_single_worker_time(tmp_path):
    path = tmp_path / "book.json"
    book = BaselineBook(path, MACHINE)
    assert book.offer(fake(workers=1, times=(5.0,), busy=(5.0,)))
    assert not book.offer(fake(workers=1, times=(6.0,), busy=(6.0,)))  # slower
    assert not book.offer(fake(workers=2, times=(1.0,)))  # not single-worker
    assert not book.offer(fake(workers=1, times=(1.0,), busy=(1.0,), ok=False))  # wrong answer
    book.save()
    again = BaselineBook(path, MACHINE)
    assert again.best("conv2/vectorized/b8").median_ms == 5.0
    assert (
        BaselineBook(path, replace(MACHINE, hostname="other")).best("conv2/vectorized/b8") is None
    )
    path.write_text("{oops")
    broken = BaselineBook(path, MACHINE)
    assert broken.problem and broken.best("conv2/vectorized/b8") is None


def test_cli_reports_show_on_cpu_ratios_as_the_dashboard_does():
    """A worker's CPU time above its busy time reads 1.0+ (not 1.48) in sweep, show and
    compare, as in the dashboard's runs table and timeline: one rule, tui.table.ratio_text."""
    from partui.tui.text.reports import analysis_data, report
    from partui.tui.text.table import ratio_text

    two = fake(2)
    two.on_cpu_ratio = [1.48, 0.5]
    many = fake(6, busy=(1.0,) * 6)
    many.on_cpu_ratio = [1.3, 1.2, 1.1, 1.2, 1.3, 1.4]
    text = report(analyze([fake(1, busy=(4.0,)), two, many]))
    assert "1.0+/0.50" in text and "mean 1.0+" in text and "1.48" not in text
    assert ratio_text(1.48) == "1.0+" and ratio_text(1.0) == "1.00" and ratio_text(0.5) == "0.50"
    # the JSON keeps the measured figure
    data = analysis_data(analyze([two]))
    assert data["runs"][0]["on_cpu_ratio"] == [1.48, 0.5]


def test_parallel_writers_of_the_book_keep_every_entry(tmp_path):
    """Eight books read the same (empty) file at once, each keeps a different layer's run,
    all save: the file holds all eight (each save merges into what is there under a lock).
    A book that read before them and keeps a slower run of one of their layers does not
    replace the faster one when it saves last."""
    import threading

    def run(layer, ms):
        r = fake(workers=1, times=(ms,), busy=(ms,))
        r.config = replace(r.config, layer=layer)
        return r

    path = tmp_path / "book.json"
    layers = ["conv1", "conv2", "conv3", "pool1", "pool2", "gelu1", "gelu2", "linear1"]
    books = [BaselineBook(path, MACHINE) for _ in layers]  # all read before any writes
    late = BaselineBook(path, MACHINE)
    start = threading.Barrier(len(layers))

    def one(book, layer):
        assert book.offer(run(layer, 3.0))
        start.wait()
        book.save()
        assert book.problem is None

    threads = [threading.Thread(target=one, args=pair) for pair in zip(books, layers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    again = BaselineBook(path, MACHINE)
    assert all(again.best(f"{layer}/vectorized/b8") is not None for layer in layers)
    assert late.offer(run("conv1", 9.0))  # nothing for conv1 in what it read
    late.save()
    assert BaselineBook(path, MACHINE).best("conv1/vectorized/b8").median_ms == 3.0


def test_parallel_sweep_processes_keep_every_entry_of_the_book(tmp_path):
    """Four `partui sweep` processes of different layers started together against one book:
    each reads it at start and saves at its end, and the book keeps all four."""
    import os
    import subprocess
    import sys

    from waiting import budget

    book = tmp_path / "book.json"
    env = {**os.environ, "PARTUI_BASELINE_BOOK": str(book), "PARTUI_SNAPSHOT_DIR": str(tmp_path)}
    layers = ["gelu1", "gelu2", "gelu3", "pool3"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "partui", "sweep", "--layer", layer, "--strategies", "none"]
            + ["--executors", "inline", "--workers", "1", "--batch", "2", "--repeat", "1"]
            + ["--warmup", "0", "--out", str(tmp_path / f"{layer}.json")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for layer in layers
    ]
    for p in procs:
        _, err = p.communicate(timeout=budget(120))
        assert p.returncode == 0, err
    kept = BaselineBook(book)
    assert kept.problem is None
    assert [layer for layer in layers if kept.best(f"{layer}/vectorized/b2") is None] == []
