"""The statistics behind every verdict, against independent computations: brute-force
enumeration for the rank test, known distribution shifts for the interval, and real runs."""

import itertools
import json
import math

import numpy as np
import pytest

from partui.profiles.records.significance import (
    FASTER,
    MIN_REPEATS,
    NO_DIFFERENCE,
    NOISE_FLOOR,
    SLOWER,
    TOO_FEW,
    TOO_SPREAD,
    contrast,
    mann_whitney_p,
    run_drift,
    u_counts,
)


def brute_force_p(x, y) -> float:
    """Two-sided permutation p-value of U: every way of splitting the pooled values into
    groups of len(x) and len(y), counted, no formula."""
    pooled = list(x) + list(y)
    m, n = len(x), len(y)

    def u_of(xs, ys):
        return sum((a > b) + 0.5 * (a == b) for a in xs for b in ys)

    u = u_of(x, y)
    centre = m * n / 2
    extreme = total = 0
    for idx in itertools.combinations(range(m + n), m):
        xs = [pooled[i] for i in idx]
        ys = [pooled[i] for i in range(m + n) if i not in idx]
        total += 1
        extreme += abs(u_of(xs, ys) - centre) >= abs(u - centre) - 1e-9
    return extreme / total


@pytest.mark.parametrize("m, n", [(1, 1), (2, 3), (4, 4), (5, 3), (6, 5)])
def test_u_distribution_is_the_count_of_every_ordering(m, n):
    counts = [0] * (m * n + 1)
    for positions in itertools.combinations(range(m + n), m):  # where x's values fall
        u = sum(p - k for k, p in enumerate(positions))  # y values below each x value
        counts[u] += 1
    assert u_counts(m, n) == counts
    assert sum(u_counts(20, 20)) == math.comb(40, 20)


@pytest.mark.parametrize("seed, m, n", [(1, 5, 5), (2, 6, 4), (3, 7, 6), (4, 3, 8)])
def test_exact_p_value_matches_a_permutation_test(seed, m, n):
    rng = np.random.default_rng(seed)
    x = rng.lognormal(0.0, 0.3, m)
    y = rng.lognormal(0.4, 0.3, n)
    assert mann_whitney_p(x, y) == pytest.approx(brute_force_p(x, y), abs=1e-12)


def test_normal_approximation_with_ties_is_near_the_permutation_test():
    rng = np.random.default_rng(7)
    x = np.round(rng.lognormal(0.0, 0.2, 6), 1)  # rounded: ties within and across samples
    y = np.round(rng.lognormal(0.25, 0.2, 6), 1)
    assert len(set(x) | set(y)) < 12
    assert mann_whitney_p(x, y) == pytest.approx(brute_force_p(x, y), abs=0.02)


def test_a_known_shift_is_found_and_its_interval_covers_it():
    """Lognormal times (skewed, as timings are) with the medians 1.3x apart: over 100 data
    sets the 95% interval covers the true ratio about 95% of the time and the verdict is
    'faster' nearly always; the same data sets against themselves shifted by nothing are
    never 'significant'."""
    true_ratio = 1 / 1.3
    covered = found = false_alarms = 0
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        base = 10 * rng.lognormal(0.0, 0.08, 20)
        other = 10 * true_ratio * rng.lognormal(0.0, 0.08, 20)
        c = contrast(base, other)
        covered += c.ci_low <= true_ratio <= c.ci_high
        found += c.verdict == FASTER
        same = contrast(base, 10 * rng.lognormal(0.0, 0.08, 20))
        false_alarms += same.significant
    assert covered >= 85 and found >= 95 and false_alarms == 0


def test_thousands_of_repeats_a_side_keep_an_interval_that_covers_the_shift():
    """Past BOOTSTRAP_MAX repeats the bootstrap works on quantiles of each side (as live mode
    pools thousands): the interval still covers the true ratio, a little wider than the
    full sample's would be."""
    from partui.profiles.records.significance import BOOTSTRAP_MAX

    rng = np.random.default_rng(11)
    base = 4.0 * rng.lognormal(0.0, 0.1, 5 * BOOTSTRAP_MAX)
    other = 4.0 / 1.3 * rng.lognormal(0.0, 0.1, 5 * BOOTSTRAP_MAX)
    c = contrast(base, other)
    assert c.verdict == FASTER and c.n_base == c.n_other == 5 * BOOTSTRAP_MAX
    assert c.ci_low <= 1 / 1.3 <= c.ci_high and c.ci_high / c.ci_low < 1.05


def test_identical_samples_are_no_difference_and_too_few_repeats_get_no_verdict():
    times = [5.0, 5.2, 4.9, 5.1, 5.05, 5.3]
    c = contrast(times, times)
    assert c.ratio == 1.0 and c.p_value == pytest.approx(1.0)
    assert c.verdict == NO_DIFFERENCE and not c.significant
    flat = contrast([3.0] * 6, [3.0] * 6)
    assert (flat.ci_low, flat.ci_high, flat.p_value) == (1.0, 1.0, 1.0)
    few = contrast([10.0, 10.1, 10.2], [1.0, 1.1, 1.2, 1.0, 1.1])  # 10x, but n = 3
    assert few.verdict == TOO_FEW and not few.significant
    assert few.text() == f"too few repeats (3 and 5, need {MIN_REPEATS})"
    assert contrast([], [1.0] * 5).verdict == TOO_FEW


def test_the_same_data_gives_the_same_answer_in_any_order():
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(0, 0.2, 12), rng.lognormal(0.1, 0.2, 9)
    assert contrast(a, b) == contrast(a[::-1], rng.permutation(b))
    assert contrast(a, b, seed=1) != contrast(a, b)  # the seed is what fixes it


def test_one_outlier_does_not_hide_a_real_difference():
    """1.3x faster, one repeat of ten disturbed: min-max spreads overlap (the old rule said
    no difference), the medians and ranks do not care."""
    base = [10.0, 10.1, 10.2, 9.9, 10.05, 10.15, 9.95, 10.0, 10.1, 10.05]
    other = [b / 1.3 for b in base[:9]] + [14.0]
    assert max(other) > min(base)  # the spreads overlap
    c = contrast(base, other)
    assert c.verdict == FASTER and c.significant and c.p_value < 0.01
    assert c.text().startswith("1.30x faster [")


def test_the_noise_floor_keeps_a_small_drift_from_counting():
    """5% apart with tight repeats: the rank test is sure, but 5% is within what a shared
    machine drifts by; with the floor at 1 (off) it counts."""
    rng = np.random.default_rng(5)
    base = 10 * rng.lognormal(0, 0.01, 40)
    other = 10.5 * rng.lognormal(0, 0.01, 40)
    c = contrast(base, other)
    assert c.p_value < 1e-6 and c.ci_low > 1.0 and c.ci_high < NOISE_FLOOR
    assert c.verdict == NO_DIFFERENCE and not c.significant
    off = contrast(base, other, noise_floor=1.0)
    assert off.verdict == SLOWER and off.significant
    assert off.text().startswith("1.05x slower [")


def test_a_difference_smaller_than_the_drift_between_runs_does_not_count():
    """Side A: five runs of one configuration, medians 10 and, the last, 13 (the machine
    changed before it: 1.3x apart). Side B 1.25x slower than A's pooled median: beyond the
    noise floor and p small, but no more than A's own runs differ, so it does not count."""
    first = [10.0, 10.1, 9.9, 10.05, 9.95]
    last = [13.0, 13.1, 12.9, 13.05, 12.95]
    runs = [[t + k / 100 for t in first] for k in range(4)] + [last]
    assert run_drift(runs) == pytest.approx(13.0 / 10.0)
    assert run_drift([first], [first]) == 1.0 and run_drift([[2.0, 4.0, 3.0]], []) == 1.0
    assert run_drift([first, last], [[1.0], [1.5]]) == pytest.approx(1.5)  # the larger side
    a = [t for r in runs for t in r]
    other = [12.5, 12.4, 12.6, 12.55, 12.45, 12.7, 12.3, 12.5, 12.6, 12.4]
    without = contrast(a, other)
    assert without.verdict == SLOWER and without.ci_low > NOISE_FLOOR
    drifting = contrast(a, other, drift=run_drift(runs, [other]))
    assert drifting.verdict in (NO_DIFFERENCE, TOO_SPREAD) and not drifting.significant
    assert "runs of one configuration 1.30x apart" in drifting.text()
    assert drifting.to_dict()["drift"] == pytest.approx(1.3)


def test_repeats_too_spread_to_conclude():
    base = [1.0, 9.0, 2.0, 8.0, 3.0, 7.0]
    other = [2.0, 8.5, 1.5, 9.5, 4.0, 6.0]
    c = contrast(base, other)
    assert c.verdict == TOO_SPREAD and not c.significant and c.ci_high / c.ci_low > 1.5
    assert c.short() == "spread"


def test_back_to_back_snapshots_do_not_differ_and_a_quarter_of_the_batch_does(tmp_path, capsys):
    """Two snapshots of one configuration (conv2 at batch 64) taken back to back, their runs
    interleaved (A, B, A, B, ...) so that a machine getting busier or quieter weighs on both
    alike: `partui compare --json` finds no significant difference. Batch 16 (a quarter of
    the work) against the same runs is significantly faster. A repeat of several
    milliseconds, not one: another program's time slice then stretches every repeat a
    little instead of a few of them twice."""
    from partui.profiles.records.config import RunConfig
    from partui.profiles.run.engine import Engine
    from partui.profiles.store.analysis import pool
    from partui.profiles.store.snapshot import Snapshot, save
    from partui.tui.cli.main import build_parser

    def config(batch: int) -> RunConfig:
        return RunConfig(
            "conv2", "none", executor="inline", workers=1, batch=batch, repeats=6, warmup=1
        )

    a_runs, b_runs, small_runs = [], [], []
    with Engine() as engine:
        for _ in range(4):
            a_runs.append(engine.run(config(64)))
            b_runs.append(engine.run(config(64)))
            small_runs.append(engine.run(config(16)))
    assert all(r.ok for r in a_runs + b_runs + small_runs)
    a = save(Snapshot.from_results(a_runs, note="A"), tmp_path / "a.json")
    b = save(Snapshot.from_results(b_runs, note="B"), tmp_path / "b.json")
    args = build_parser().parse_args(["compare", str(a), str(b), "--json"])
    assert args.func(args) == 0
    (pair,) = json.loads(capsys.readouterr().out)["configurations"]
    assert pair["a"]["n"] == pair["b"]["n"] == 24
    # on a quiet machine "no significant difference"; where other programs took most of
    # the repeats, possibly "too spread to conclude": never a verdict
    assert pair["significant"] is False, pair
    assert pair["verdict"] in (NO_DIFFERENCE, TOO_SPREAD), pair
    assert pair["ci_low"] <= pair["ratio"] <= pair["ci_high"] and 0 <= pair["p_value"] <= 1

    quarter = contrast(pool(a_runs).times_ms, pool(small_runs).times_ms)
    assert quarter.verdict == FASTER and quarter.significant
    # a quarter of the FLOPs: at most half the time (a busy machine stretches either side)
    assert quarter.ci_low <= quarter.ratio <= quarter.ci_high < 0.5


@pytest.mark.parametrize("command", ["compare A B", "sweep --layer conv2", "show A", "bench"])
def test_noise_floor_outside_1_to_10_is_a_usage_error(command, capsys):
    from partui.tui.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args([*command.split(), "--noise-floor", "1.25"]).noise_floor == 1.25
    assert parser.parse_args(command.split()).noise_floor == NOISE_FLOOR
    for bad in ("0.9", "nan", "x", "11"):
        with pytest.raises(SystemExit) as stop:
            parser.parse_args([*command.split(), "--noise-floor", bad])
        assert stop.value.code == 2
        assert "expected a ratio from 1 to 10" in capsys.readouterr().err


def test_times_as_large_as_a_float_goes_give_no_answer_and_no_warning():
    import warnings

    from partui.profiles.records.significance import run_drift

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings fail the test
        c = contrast([1e308] * 6, [1e308, 1.7e308] * 3)
        assert not c.significant
        assert not contrast([1e-320] * 6, [1e308] * 6).significant
        assert run_drift([[1e308, 1e308], [1.0]]) == float("inf")


def test_the_verdict_caches_keep_fixed_size_keys_and_a_bounded_number_of_entries():
    """Live mode compares samples of thousands of repeats, one pair per configuration seen:
    the caches of the costly part keep a digest of each sample, not the sample, and at most
    their bound of entries; the same pair again is answered from the cache."""
    import sys

    import numpy as np

    from partui.profiles.records import significance as sig

    rng = np.random.default_rng(3)
    base = list(rng.normal(10.0, 0.3, 4000))
    first = sig.contrast(base, list(rng.normal(8.0, 0.3, 4000)))
    for _ in range(sig.CACHE_SIZE + 20):  # more configurations than either cache keeps
        sig.contrast(base, list(rng.normal(9.0, 0.3, 4000)))
    assert len(sig._TESTS) <= sig.CACHE_SIZE and len(sig._MEDIANS) <= sig.MEDIANS_KEPT
    for key in [*sig._TESTS, *sig._MEDIANS]:  # no key holds a sample
        assert sys.getsizeof(key) < 200 and all(sys.getsizeof(k) < 200 for k in key), key
    other = list(rng.normal(7.0, 0.3, 4000))
    once = sig.contrast(base, other)
    calls = []
    real = sig.median_ratio_interval
    sig.median_ratio_interval = lambda *a: calls.append(1) or real(*a)
    try:
        again = sig.contrast(base, other)
    finally:
        sig.median_ratio_interval = real
    assert calls == [] and again == once and first.ratio < 1
