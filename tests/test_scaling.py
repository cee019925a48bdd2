"""partui scaling without Dask: the model's formulas against hand computations, the link's
units, the least-squares fit on synthetic exchanges, the calibration's arithmetic and the
command's refusals."""

from __future__ import annotations

import random

import pytest

from partui.profiles.scaling import model
from partui.profiles.scaling.calibrate import Samples, inputs_from, summary, validation_rows
from partui.profiles.scaling.fit import fit_line
from partui.profiles.scaling.link import (
    Link,
    LinkError,
    parse_bandwidth,
    parse_latency,
    parse_workers,
)

G = 1_000_000  # bytes of a gradient in the hand computations
A, P = 2e-3, 1e-9  # 2 ms an exchange, 1 ns a byte (1 GB/s)


def inputs(**changes) -> model.Inputs:
    base = dict(
        compute_s_per_sample=1e-3,
        compute_s_per_step=2e-3,
        grad_bytes=G,
        exchange_s=A,
        exchange_s_per_byte=P,
        dask_step_s=10e-3,
        dask_task_s=0.5e-3,
        dask_level_s=3e-3,
        add_s_per_byte=1e-10,
        local_s_per_sample=0.5e-3,
        local_s_per_step=4e-3,
        local_workers=2,
        parallel_here=1.5,
    )
    return model.Inputs(**{**base, **changes})


# ---- formulas -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "rule, workers, expected",
    [
        # gather: 2 (a + W G p)
        ("gather", 2, 2 * (2e-3 + 2 * 1e-3)),
        ("gather", 8, 2 * (2e-3 + 8 * 1e-3)),
        # tree: 2 ceil(log2 W) (a + G p)
        ("tree", 2, 2 * 1 * (2e-3 + 1e-3)),
        ("tree", 5, 2 * 3 * (2e-3 + 1e-3)),
        ("tree", 8, 2 * 3 * (2e-3 + 1e-3)),
        ("tree", 9, 2 * 4 * (2e-3 + 1e-3)),
        # ring: 2 (W - 1) (a + G p / W)
        ("ring", 2, 2 * 1 * (2e-3 + 0.5e-3)),
        ("ring", 4, 2 * 3 * (2e-3 + 0.25e-3)),
        ("ring", 1000, 2 * 999 * (2e-3 + 1e-6)),
    ],
)
def test_exchange_formulas_match_hand_computations(rule, workers, expected):
    assert model.exchange_s(rule, workers, G, A, P) == pytest.approx(expected, rel=1e-12)
    assert model.exchange_s(rule, 1, G, A, P) == 0.0  # one worker exchanges nothing


def test_ring_moves_2_w_minus_1_over_w_of_the_gradient_per_worker():
    # with no latency, the bytes each worker sends are 2 (W-1)/W of G: time / p
    for w in (2, 3, 16, 1024):
        assert model.exchange_s("ring", w, G, 0.0, P) / P == pytest.approx(2 * (w - 1) / w * G)


def test_step_adds_every_term_by_hand():
    inp = inputs()
    link = Link(latency_s=50e-6, bandwidth_bytes_s=1.25e9)  # 10 Gbit/s
    a, p = A + 50e-6, P + 1 / 1.25e9
    # tree, 4 workers, batch 32: D + s (4*3 + 3) + r 2 + f + c b + 2*2 (a + G p) + 2 G d
    hand = 10e-3 + 0.5e-3 * 15 + 3e-3 * 2 + 2e-3 + 1e-3 * 32 + 4 * (a + G * p) + 2 * G * 1e-10
    assert model.step_s(inp, "tree", 4, 32, link) == pytest.approx(hand, rel=1e-12)
    # gather, 3 workers: no combine tasks, one stage; 2 (a + 3 G p); (W - 1) adds
    hand = 10e-3 + 0.5e-3 * 8 + 3e-3 + 2e-3 + 32e-3 + 2 * (a + 3 * G * p) + 2 * G * 1e-10
    assert model.step_s(inp, "gather", 3, 32, link) == pytest.approx(hand, rel=1e-12)
    # ring, 2 workers, the transport as measured here (no link): one task per worker, a stage
    hand = 10e-3 + 0.5e-3 * 6 + 3e-3 + 2e-3 + 32e-3 + 2 * (A + G * P / 2) + 0.5 * G * 1e-10
    assert model.step_s(inp, "ring", 2, 32, None) == pytest.approx(hand, rel=1e-12)


def test_workers_on_this_machine_share_the_cores_it_has():
    inp = inputs(parallel_here=1.5)
    alone = model.step_s(inp, "tree", 2, 32, None)
    shared = model.step_s(inp, "tree", 2, 32, None, here=True)
    assert shared - alone == pytest.approx(32e-3 * (2 / 1.5 - 1))
    # one worker is never slowed by the sharing
    assert model.step_s(inp, "tree", 1, 32, None, here=True) == model.step_s(
        inp, "tree", 1, 32, None
    )


def test_predictions_images_per_s_and_efficiency():
    inp = inputs()
    rows = model.predict(inp, "tree", 64, range(1, 9), None)
    one = 64 / model.step_s(inp, "tree", 1, 64, None)
    assert rows[0].efficiency == pytest.approx(1.0)
    for r in rows:
        t = model.step_s(inp, "tree", r.workers, 64, None)
        assert r.step_ms == pytest.approx(t * 1e3)
        assert r.images_per_s == pytest.approx(r.workers * 64 / t)
        assert r.efficiency == pytest.approx(r.images_per_s / (r.workers * one))


def test_stops_paying_is_where_doubling_adds_under_ten_percent():
    def rows(ips):
        return [model.Prediction(w, "tree", 1, 1.0, v, 1.0) for w, v in enumerate(ips, 1)]

    # doubling 1->2 +80%, 2->4 +25%, 3->6 +5%: the knee is 3; the peak is at 7
    knee, peak = model.stops_paying(rows([100, 180, 200, 225, 228, 210, 230, 229]))
    assert (knee.workers, peak.workers) == (3, 7)
    # every doubling pays: the last count
    knee, _ = model.stops_paying(rows([100, 200, 300, 400]))
    assert knee.workers == 4


def test_local_baseline_and_crossover():
    inp = inputs(local_s_per_sample=0.5e-3, local_s_per_step=4e-3, local_workers=2)
    # 2 threads x 64: 128 / (4 ms + 64 ms)
    assert model.local_images_per_s(inp, 64) == pytest.approx(128 / 68e-3)
    found = model.beats_local(inp, "tree", (1, 2, 4, 8, 16, 32, 64), range(1, 65), None)
    assert found is not None
    b, w, dask, here = found
    assert dask > here == pytest.approx(model.local_images_per_s(inp, b))
    # nothing smaller wins: one fewer worker at b, and every smaller batch at any count
    assert model.predict(inp, "tree", b, range(w - 1, w), None)[0].images_per_s <= here
    for smaller in (1, 2, 4, 8, 16, 32, 64):
        if smaller < b:
            best = max(
                p.images_per_s for p in model.predict(inp, "tree", smaller, range(1, 65), None)
            )
            assert best <= model.local_images_per_s(inp, smaller)
    # a Dask step that costs a second never wins
    assert model.beats_local(inputs(dask_step_s=1.0), "ring", (1, 2), range(1, 9), None) is None


# ---- units ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, bytes_s",
    [
        ("10Gbit", 1.25e9),
        ("10Gbit/s", 1.25e9),
        ("10Gbps", 1.25e9),
        ("100Mbit", 12.5e6),
        ("1.25GB/s", 1.25e9),
        ("800MiB/s", 800 * 1024**2),
        (" 2.5e1 gbit ", 25e9 / 8),
        ("100MBps", 100e6),
        ("1Gib", 1024**3 / 8),
    ],
)
def test_bandwidth_units(text, bytes_s):
    assert parse_bandwidth(text) == pytest.approx(bytes_s)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("50us", 50e-6),
        ("50µs", 50e-6),
        ("0.2ms", 0.2e-3),
        ("100ns", 100e-9),
        ("1s", 1.0),
        ("0us", 0),
    ],
)
def test_latency_units(text, seconds):
    assert parse_latency(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["10", "fast", "-1Gbit", "0Gbit", "10 furlongs", "Gbit", "1e999Gbit", "10Xbit", "5ps"]
)
def test_bad_bandwidth_is_one_line(text):
    with pytest.raises(LinkError) as exc:
        parse_bandwidth(text)
    assert "\n" not in str(exc.value) and "bandwidth" in str(exc.value)


@pytest.mark.parametrize("text", ["50", "1h", "-5us", "soon", "20s"])
def test_bad_latency_is_one_line(text):
    with pytest.raises(LinkError, match="latency"):
        parse_latency(text)


def test_worker_ranges():
    assert parse_workers("1..1024") == (1, 1024)
    assert parse_workers("64") == (1, 64)
    assert parse_workers(" 4 .. 8 ") == (4, 8)
    for bad in ("0..4", "5..2", "1..2000", "a..b", "1..", "2048"):
        with pytest.raises(LinkError, match="workers"):
            parse_workers(bad)


# ---- the fit ----------------------------------------------------------------------------------
def test_fit_recovers_latency_and_bandwidth_of_synthetic_exchanges():
    rng = random.Random(7)
    sizes = [16_384, 262_144, 1_048_576, 1_572_864, 2_621_440] * 6
    noise = 0.2e-3
    times = [A + n * P + rng.gauss(0, noise) for n in sizes]
    f = fit_line(sizes, times)
    # within four standard errors of the truth, and the errors themselves sensible
    assert abs(f.intercept - A) < 4 * f.intercept_se
    assert abs(f.slope - P) < 4 * f.slope_se
    assert 0 < f.slope_se < 0.1 * P and 0 < f.intercept_se < noise
    assert f.r2 > 0.95 and f.n == 30
    # against numpy's own least squares
    import numpy as np

    slope, intercept = np.polyfit(sizes, times, 1)
    assert (f.slope, f.intercept) == pytest.approx((slope, intercept), rel=1e-9)


def test_fit_exact_points_and_refusals():
    f = fit_line([1, 2, 3], [5, 7, 9])
    assert (f.intercept, f.slope, f.slope_se, f.r2) == pytest.approx((3, 2, 0, 1))
    two = fit_line([0, 10], [1, 2])
    assert two.slope_se == 0 and two.intercept_se == 0  # nothing left to estimate them from
    with pytest.raises(ValueError, match="distinct"):
        fit_line([3, 3, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="two"):
        fit_line([1], [1])


# ---- the calibration's arithmetic ----------------------------------------------------------
def synthetic_samples() -> Samples:
    s = Samples()
    s.compute = [(16, 2e-3 + 16e-3), (64, 2e-3 + 64e-3), (16, 2e-3 + 16e-3), (64, 2e-3 + 64e-3)]
    s.compute_both = [1.6e-3, 1.6e-3]  # two at once: each 1.6x slower per sample
    s.exchange = [(n, A + n * P) for n in (16_384, 1_048_576, 2_621_440)]
    s.dask_step = [10e-3, 12e-3, 11e-3]
    s.dask_tasks = [(2, 1e-3 + 2 * 0.5e-3), (24, 1e-3 + 24 * 0.5e-3)]
    s.dask_chain = [(1, 4e-3), (4, 4e-3 + 3 * 3e-3), (4, 4e-3 + 3 * 3e-3)]
    s.steps = {(1, "tree"): [0.080, 0.090, 0.085], (2, "tree"): [0.200, 0.210]}
    return s


def test_inputs_from_the_pooled_samples():
    update = {
        "sgd_update_s": {"median": 0.3e-3},
        "add_s": {"median": 0.1e-3},
        "grad_bytes": G,
    }
    line = fit_line([32, 128], [4e-3 + 16e-3, 4e-3 + 64e-3]).to_dict()
    local = {"workers": 2, "fit": line, "fit_min": line}
    cal = summary(synthetic_samples(), update, local)
    inp = inputs_from(cal)
    assert inp.compute_s_per_sample == pytest.approx(1e-3)
    assert inp.compute_s_per_step == pytest.approx(2e-3 + 0.3e-3)  # intercept + SGD update
    assert (inp.exchange_s, inp.exchange_s_per_byte) == pytest.approx((A, P))
    assert inp.dask_step_s == pytest.approx(11e-3)
    assert inp.dask_task_s == pytest.approx(0.5e-3)
    assert inp.dask_level_s == pytest.approx(3e-3)
    assert inp.add_s_per_byte == pytest.approx(0.1e-3 / G)
    assert (inp.local_s_per_sample, inp.local_s_per_step) == pytest.approx((0.5e-3, 4e-3))
    assert inp.parallel_here == pytest.approx(2 * 1e-3 / 1.6e-3)
    assert cal["compute"]["per_batch_s"]["64"]["n"] == 2
    assert cal["dask_tasks"]["per_count_s"]["24"]["n"] == 1


def test_least_inputs_fit_each_size_s_least_sample():
    s = synthetic_samples()
    # a disturbed sample at each size: the medians move, the least do not
    s.exchange += [(n, A + n * P + 5e-3) for n in (16_384, 1_048_576, 2_621_440)] * 2
    s.compute += [(16, 0.1), (64, 0.2)] * 2
    update = {
        "sgd_update_s": {"median": 0.3e-3, "min": 0.2e-3},
        "add_s": {"median": 0.1e-3, "min": 0.05e-3},
        "grad_bytes": G,
    }
    line = fit_line([32, 128], [20e-3, 68e-3]).to_dict()
    cal = summary(s, update, {"workers": 2, "fit": line, "fit_min": line})
    least = inputs_from(cal, "min")
    assert (least.exchange_s, least.exchange_s_per_byte) == pytest.approx((A, P))
    assert least.compute_s_per_sample == pytest.approx(1e-3)
    assert least.compute_s_per_step == pytest.approx(2e-3 + 0.2e-3)
    assert least.dask_step_s == pytest.approx(10e-3)
    assert least.add_s_per_byte == pytest.approx(0.05e-3 / G)
    assert inputs_from(cal, "median").exchange_s > A + 1e-3  # the disturbed samples count


def test_validation_rows_report_the_relative_error():
    inp = {"median": inputs(), "min": inputs(dask_step_s=5e-3)}
    rows = {r["workers"]: r for r in validation_rows(synthetic_samples(), inp, 64)}
    for w, median, least in ((1, 0.085, 0.080), (2, 0.205, 0.200)):
        predicted = model.step_s(inp["median"], "tree", w, 64, None, here=True)
        assert rows[w]["predicted_step_ms"] == pytest.approx(predicted * 1e3)
        assert rows[w]["measured_step_ms"]["median"] == pytest.approx(median * 1e3)
        assert rows[w]["relative_error"] == pytest.approx((predicted - median) / median)
        predicted = model.step_s(inp["min"], "tree", w, 64, None, here=True)
        assert rows[w]["predicted_step_min_ms"] == pytest.approx(predicted * 1e3)
        assert rows[w]["relative_error_min"] == pytest.approx((predicted - least) / least)


# ---- the command's refusals (no Dask started) ---------------------------------------------
def run_cli(capsys, *args):
    from partui.tui.cli.main import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    return (code, *capsys.readouterr())


@pytest.mark.parametrize(
    "args, word",
    [
        (("--bandwidth", "fast"), "bandwidth"),
        (("--latency", "50"), "latency"),
        (("--workers", "0..9"), "workers"),
        (("--batch", "0"), "batch"),
        (("--batch", "2000"), "batch"),
    ],
)
def test_bad_values_exit_2_in_one_line(capsys, args, word):
    code, out, err = run_cli(capsys, "scaling", *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and word in err and "Traceback" not in err


def test_without_dask_one_line(capsys, monkeypatch):
    from partui.profiles.executors import dask_connect

    monkeypatch.setattr(dask_connect, "available", lambda: False)
    code, out, err = run_cli(capsys, "scaling", "--quick")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "partui: error: partui scaling needs the optional extra: pip install 'partui[dask]'"
    ]
