"""The roofline: the traffic model against hand counts, which roof a run is compared with,
the roofs' cache, and a real quick measurement of them."""

from __future__ import annotations

import math

import pytest

from partui.kernels.model.layers import get_layer
from partui.profiles.roofline import roofs as roofs_mod
from partui.profiles.roofline.placing import attainable, memory_level, place
from partui.profiles.roofline.roofs import Roof, RoofSet, RoofSettings, working_sets
from partui.profiles.roofline.traffic import intensity, traffic_bytes

KiB, MiB = 1024, 1024**2
CAPACITY = {"L1": 32 * KiB, "L2": 1 * MiB, "L3": 32 * MiB}


def roof_set(peak1=100.0, peak2=180.0, bw=None, capacity=None) -> RoofSet:
    """Roofs made up for the selection logic: round numbers that make the arithmetic plain."""
    bw = bw or {"L1": (200.0, 400.0), "L2": (80.0, 160.0), "L3": (40.0, 60.0), "DRAM": (10.0, 12.0)}
    roofs = [
        Roof("peak", "compute", peak1, "GFLOP/s", 1, peak1, peak1, 5, 256),
        Roof("peak", "compute", peak2, "GFLOP/s", 2, peak2, peak2, 5, 512),
    ]
    for level, (one, two) in bw.items():
        roofs.append(Roof(level, "memory", one, "GB/s", 1, one, one, 5, 4096))
        roofs.append(Roof(level, "memory", two, "GB/s", 2, two, two, 5, 4096))
    return RoofSet("2026-12-07T00:00:00+00:00", "key", "Test CPU", 2, capacity or CAPACITY, roofs)


def test_traffic_model_of_conv2_by_hand():
    # conv2, batch 64: input 32x13x13, output 64x11x11 per sample, weights 64x32x3x3 + 64
    n_in, n_out = 32 * 13 * 13, 64 * 11 * 11
    params = 64 * 32 * 9 + 64
    expected = 4 * (64 * (n_in + n_out) + params)
    layer = get_layer("conv2")
    assert traffic_bytes(layer, 64) == expected == 3_440_896
    flops = 2 * 32 * 9 * n_out * 64  # a multiply and an add per weight per output pixel
    assert layer.flops(64) == flops
    assert intensity(layer, 64) == pytest.approx(flops / expected)
    assert 82 < intensity(layer, 64) < 84


def test_traffic_model_of_pool_and_gelu_by_hand():
    # pool1, batch 8: 32x26x26 in, 32x13x13 out, 3 comparisons per output, no parameters
    assert traffic_bytes(get_layer("pool1"), 8) == 4 * 8 * (32 * 26 * 26 + 32 * 13 * 13)
    assert intensity(get_layer("pool1"), 8) == pytest.approx(
        3 * 32 * 13 * 13 / (4 * (32 * 26 * 26 + 32 * 13 * 13))
    )
    # GELU: 8 FLOPs per element, 4 bytes in and 4 out: 1 FLOP/byte at any batch
    assert intensity(get_layer("gelu2"), 1) == intensity(get_layer("gelu2"), 64) == 1.0


def test_network_traffic_counts_every_parameter_once():
    from partui.kernels.model.layers import NETWORK

    params = sum(
        math.prod(layer.weight_shape) + math.prod(layer.bias_shape)
        for layer in NETWORK
        if layer.weight_shape
    )
    assert traffic_bytes(get_layer("network"), 2) == 4 * (2 * (28 * 28 + 26) + params)


def test_memory_level_is_the_smallest_that_holds_the_working_set():
    assert memory_level(16 * KiB, 1, CAPACITY) == "L1"
    assert memory_level(40 * KiB, 1, CAPACITY) == "L2"
    assert memory_level(40 * KiB, 2, CAPACITY) == "L1"  # two private L1s
    assert memory_level(1536 * KiB, 1, CAPACITY) == "L3"
    assert memory_level(1536 * KiB, 2, CAPACITY) == "L2"
    assert memory_level(33 * MiB, 2, CAPACITY) == "DRAM"  # L3 is shared: not doubled
    assert memory_level(100, 1, {}) == "DRAM"


def test_bound_and_attainable_follow_the_ridge():
    rs = roof_set()
    # intensity 0.5 in L2 on one thread: 80 GB/s x 0.5 = 40 < peak 100 -> memory-bound
    a = attainable(rs, 0.5, 50 * KiB, 1)
    assert (a.level, a.bound, a.gflops, a.ridge) == ("L2", "memory", 40.0, 1.25)
    # intensity 2 in L2: 160 > 100 -> compute-bound, attainable is the peak
    a = attainable(rs, 2.0, 50 * KiB, 1)
    assert (a.bound, a.gflops) == ("compute", 100.0)
    # two workers: the 50 KiB fit their two L1s; the 2-thread peak and bandwidth
    a = attainable(rs, 0.25, 50 * KiB, 2)
    assert (a.level, a.bandwidth_gbs, a.peak_gflops, a.bound) == ("L1", 400.0, 180.0, "memory")
    # beyond L3: DRAM's 10 GB/s; its ridge is far to the right
    a = attainable(rs, 5.0, 64 * MiB, 1)
    assert (a.level, a.gflops, a.bound, a.ridge) == ("DRAM", 50.0, "memory", 10.0)


def test_of_roof_is_achieved_over_attainable_and_never_clamped():
    rs = roof_set()
    layer = get_layer("gelu2")  # 1 FLOP/byte, 819,200 bytes at batch 64: L2 on one worker
    flops = layer.flops(64)
    # attainable: 80 GB/s x 1.0 = 80 GFLOP/s; a run at 40 GFLOP/s is at 50%
    half = place(rs, "gelu2", "none", "inline", 1, 64, (flops / 40e6, 0.0, 0.0), "t")
    assert half.memory_roof == "L2" and half.bound == "memory"
    assert half.of_roof == pytest.approx(0.5)
    # a run faster than its roof stays above 1: the roof was measured too low
    above = place(rs, "gelu2", "none", "inline", 1, 64, (flops / 120e6, 0.0, 0.0), "t")
    assert above.of_roof == pytest.approx(1.5)


def test_roofs_between_and_beyond_the_measured_thread_counts():
    rs = roof_set()
    rs.threads = 4
    for r in list(rs.roofs):  # measured at 1 and 4 threads only
        if r.threads == 2:
            rs.roofs.remove(r)
            rs.roofs.append(Roof(r.name, r.kind, r.value, r.unit, 4, 0, 0, 1, 1))
    assert rs.bandwidth("L3", 2) == 60.0  # 2 x 40, capped by the 4-thread 60
    assert rs.bandwidth("DRAM", 2) == 12.0
    assert rs.bandwidth("L1", 8) == 400.0
    assert rs.compute(3) == 100.0 and rs.compute(4) == 180.0
    # more threads never lower the roof: a 4-thread figure below the 1-thread one
    low = roof_set(bw={"L1": (200.0, 150.0)})
    assert low.bandwidth("L1", 2) == 200.0


def test_working_sets_sit_inside_their_levels():
    for threads in (1, 2):
        ws = working_sets(CAPACITY, threads)
        assert ws["L1"] <= CAPACITY["L1"] // 2
        assert 2 * CAPACITY["L1"] <= ws["L2"] <= CAPACITY["L2"] // 2
        assert 2 * CAPACITY["L2"] <= ws["L3"] and threads * ws["L3"] <= CAPACITY["L3"] // 2
        assert threads * ws["DRAM"] >= 4 * CAPACITY["L3"]


def test_roofs_are_kept_per_cpu(tmp_path):
    path = tmp_path / "roofs.json"
    rs = roof_set()
    assert roofs_mod.save(rs, path) is None
    back = roofs_mod.load(path, key="key")
    assert back is not None and back.to_dict() == rs.to_dict()
    assert roofs_mod.load(path, key="another CPU") is None
    other = roof_set(peak1=7.0)
    other.machine_key = "another CPU"
    roofs_mod.save(other, path)
    assert roofs_mod.load(path, key="key").compute(1) == 100.0  # both kept
    assert roofs_mod.load(path, key="another CPU").compute(1) == 7.0
    path.write_text('{"format": "partui-roofs", "machines": {"key": {"roofs": 3}}}')
    assert roofs_mod.load(path, key="key") is None  # unusable: measured again


def test_machine_key_names_the_cpu_and_its_flags():
    key = roofs_mod.machine_key()
    from partui.profiles.system.machine import cpu_model

    assert key.startswith(cpu_model()) and "flags " in key


@pytest.fixture(scope="module")
def measured_roofs(tmp_path_factory):
    """This machine's roofs measured for real with the rough settings, kept in a file of the
    test's own (the CLI test reads them from there as from any kept roofs)."""
    rs = roofs_mod.measure(RoofSettings.quick())
    path = tmp_path_factory.mktemp("roofs") / "roofs.json"
    assert roofs_mod.save(rs, path) is None
    return rs, path


def test_a_quick_measurement_gives_every_roof(measured_roofs):
    """The GEMM peak at 1..N threads, each level's bandwidth at 1 and N threads, and L1
    read faster than memory."""
    rs, _ = measured_roofs
    n = roofs_mod.usable_threads()
    assert {r.threads for r in rs.roofs if r.kind == "compute"} == set(range(1, n + 1))
    levels = {r.name for r in rs.roofs if r.kind == "memory"}
    assert {"L1", "DRAM"} <= levels
    assert levels == {"DRAM", *roofs_mod.capacities()}
    assert all(r.value >= r.median >= r.low > 0 for r in rs.roofs)
    assert rs.bandwidth("L1", 1) > rs.bandwidth("DRAM", 1)
    assert rs.measured[:4].isdigit() and rs.machine_key == roofs_mod.machine_key()


def test_roofline_json(measured_roofs, monkeypatch, capsys):
    """`partui roofline --json` on the kept roofs: the schema, one point per layer and
    worker count, and each point's figures consistent with the roofs and its own time."""
    import json

    from partui.tui.cli.main import main

    rs, path = measured_roofs
    monkeypatch.setenv("PARTUI_ROOFS", str(path))
    code = main(["roofline", "--json", "--layers", "pool3,conv3", "--batch", "8"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "quick measurement" in err  # progress on stderr; no book yet
    data = json.loads(out)
    assert data["measured"] == rs.measured  # the kept roofs, not measured again
    for roof in data["roofs"]:
        assert {"name", "kind", "value", "unit", "threads"} <= set(roof)
        assert roof["unit"] == {"compute": "GFLOP/s", "memory": "GB/s"}[roof["kind"]]
    n = rs.threads
    names = {(r["name"], r["threads"]) for r in data["roofs"]}
    assert {("peak", 1), ("peak", n), ("L1", 1), ("L1", n), ("DRAM", 1), ("DRAM", n)} <= names
    points = data["points"]
    assert [(p["layer"], p["workers"]) for p in points] == [
        (layer, w) for layer in ("pool3", "conv3") for w in sorted({1, n})
    ]
    for p in points:
        assert {"layer", "config", "intensity_flop_per_byte", "gflops", "bound", "of_roof"} <= set(
            p
        )
        layer = get_layer(p["layer"])
        assert p["intensity_flop_per_byte"] == pytest.approx(intensity(layer, 8))
        assert p["gflops"] == pytest.approx(layer.flops(8) / (p["median_ms"] * 1e6))
        assert p["of_roof"] == pytest.approx(p["gflops"] / p["attainable_gflops"])
        assert p["bound"] == ("memory" if p["layer"] == "pool3" else "compute")
    # a second run finds the 1-worker times in the book the first one filled
    main(["roofline", "--json", "--layers", "pool3", "--batch", "8"])
    again = json.loads(capsys.readouterr()[0])
    assert again["points"][0]["source"].startswith("book")


@pytest.mark.parametrize(
    "args", [["--layers", "foo"], ["--layers", ""], ["--batch", "0"], ["--batch", "x"]]
)
def test_roofline_bad_input_is_one_line_and_exit_2(args, capsys):
    from partui.tui.cli.main import main

    try:
        code = main(["roofline", *args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
