"""The CPU-core experiments (ILP, SIMD): kernels against direct references, the machine code
they compile to, their results and JSON, `partui demo` grouping, cancellation."""

import json
import math
import threading

import numpy as np
import pytest
from test_memlab_runner import assert_cancels_promptly

from partui.kernels.lab import asm, ilp, simd
from partui.profiles.lab import runner as memlab
from partui.profiles.system import machine

TINY_ILP = {"elements": 1024, "repeats": 2, "target_s": 0.002}
TINY_SIMD = {"sizes": [4096, 65536], "repeats": 2, "target_s": 0.002}


@pytest.mark.parametrize("n", [1, 15, 33, 1000])
def test_chain_sums_match_an_exact_sum(n):
    a = np.random.default_rng(n).random(n)
    exact = math.fsum(a.tolist())
    kern = ilp.native()
    for k, fn in ilp.CHAINS.items():
        assert fn(a, 2) == pytest.approx(2 * exact, rel=1e-12), k
        assert kern[k](a, 2) == pytest.approx(2 * exact, rel=1e-12), k


def test_chains_stay_scalar_chains_in_the_machine_code():
    from partui.profiles.lab.experiments.ilp import check_code

    kern = ilp.native()
    a = np.ones(64)
    for k, fn in kern.items():
        fn(a, 1)
        assert check_code(fn, k) == {"accumulators": k, "packed_bits": 0, "ok": True}, k


def test_the_chain_check_can_fail_with_fastmath():
    # fastmath lets the compiler reassociate one chain into vector partial sums
    import numba

    fast = numba.njit(fastmath=True)(ilp.sum_chains1)
    fast(np.ones(64), 1)
    code = asm.asm_of(fast)
    assert asm.packed_width(asm.first_function(code)) > 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_axpy_scalar_and_vector_match_the_reference(dtype):
    rng = np.random.default_rng(3)
    x = rng.random(1001).astype(dtype)
    y0 = rng.random(1001).astype(dtype)
    a = np.dtype(dtype).type(0.25)
    expected = y0.astype(np.float64) + 3 * 0.25 * x.astype(np.float64)
    kern = simd.native()
    for fn in (kern.axpy, kern.axpy_scalar, simd.axpy):
        y = y0.copy()
        fn(x, y, a, 3)
        np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_scalar_loop_has_no_vector_arithmetic_and_the_vector_loop_has():
    from partui.profiles.lab.experiments.simd import check_code

    widths = check_code(simd.native())
    assert widths["float32 scalar"] == 0 and widths["float64 scalar"] == 0
    assert widths["float32 vector"] >= 128 and widths["float64 vector"] >= 128
    # never wider than the CPU says it has
    assert widths["float32 vector"] <= machine.vector_extensions()["register_bits"]


def test_vector_extensions_come_from_the_flags():
    avx2 = machine.vector_extensions({"sse2", "avx", "avx2", "fma"})
    assert avx2["widest"] == "AVX2" and avx2["register_bits"] == 256
    assert avx2["extensions"] == ["SSE2", "AVX", "AVX2", "FMA"]
    xeon = machine.vector_extensions({"sse2", "avx", "avx2", "avx512f", "avx512bw"})
    assert xeon["widest"] == "AVX-512" and xeon["register_bits"] == 512
    assert xeon["avx512_subsets"] == ["avx512bw", "avx512f"]
    assert machine.vector_extensions(set())["widest"] is None


def test_ilp_result_and_json():
    r = memlab.run_experiment("ilp", params=TINY_ILP)
    assert not r.cancelled and [p.x for p in r.points] == [1, 2, 4, 8, 16]
    s = json.loads(json.dumps(r.to_dict()))["summary"]
    assert set(s["ns_per_element"]) == {"1", "2", "4", "8", "16"}
    assert isinstance(s["speedup_4_over_1"], float) and s["speedup_4_over_1"] > 0
    assert s["speedup_4_over_1"] == pytest.approx(
        s["ns_per_element"]["1"] / s["ns_per_element"]["4"]
    )
    assert s["sums_ok"] and s["code_ok"]
    assert s["plateau_chains"] in (1, 2, 4, 8, 16)
    assert "LATENCY" in r.explanation and "THROUGHPUT" in r.explanation
    assert f"{s['ns_per_element']['1']:.3f}" in r.explanation  # the text quotes the figures


def test_simd_result_and_json():
    r = memlab.run_experiment("simd", params=TINY_SIMD)
    assert not r.cancelled and len(r.points) == 8
    s = json.loads(json.dumps(r.to_dict()))["summary"]
    assert isinstance(s["vector_over_scalar"], float)
    assert s["scalar_is_scalar"] and s["results_equal"]
    assert s["cpu_widest"] == machine.vector_extensions()["widest"]
    assert s["headline_bytes"] == 4096
    assert s["cpu_widest"] in r.explanation


def test_explanations_follow_the_figures():
    from partui.profiles.lab.experiments import ilp as ilp_exp

    lab = memlab.Lab("ilp", None, threading.Event(), False, {}, {"l1": 32768})
    for k, v in {1: 1.0, 2: 0.9, 4: 0.8, 8: 0.8, 16: 0.8}.items():
        lab.add(ilp_exp.ILP_SERIES, k, "chains", "ns", [v * 0.99, v, v * 1.01], [1.0] * 3)
    code = {str(k): {"accumulators": k, "packed_bits": 0, "ok": True} for k in ilp.CHAINS}
    s = ilp_exp.summarize(lab, {"elements": 2048}, True, code)
    text = ilp_exp.explain(s, lab)
    assert s["speedup_4_over_1"] == pytest.approx(1.25)
    assert "below 2x" in text and "close to the plateau" in text
    code["4"] = {"accumulators": 1, "packed_bits": 256, "ok": False}
    s = ilp_exp.summarize(lab, {"elements": 2048}, True, code)
    assert "did not keep k scalar chains" in ilp_exp.explain(s, lab)


def test_demo_lists_experiments_by_group(capsys):
    from partui.tui.cli import main as cli

    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert (
        out.index("CPU core:")
        < out.index("ilp")
        < out.index("memory:")
        < out.index("stride")
        < out.index("threads:")
        < out.index("false-sharing")
    )
    assert cli.main(["demo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows["ilp"]["group"] == "CPU core" and rows["partition"]["group"] == "threads"


def test_demo_ilp_json(monkeypatch, capsys):
    from partui.tui.cli import main as cli

    real = memlab.run_experiment
    monkeypatch.setattr(
        memlab, "run_experiment", lambda name, **kw: real(name, **{**kw, "params": TINY_ILP})
    )
    assert cli.main(["demo", "ilp", "--json", "--quick"]) == 0
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert d["experiment"] == "ilp" and "speedup_4_over_1" in d["summary"]
    assert err.startswith("ilp: needs ") and "of memory" in err.splitlines()[0]


def test_cancel_stops_a_simd_run_promptly():
    simd.native()  # compiled first: a compile in progress is not interrupted
    # a size's four points come together, after 4 x 10 samples of 20 ms: the first about
    # a second in, the last (of eight sizes) about seven seconds in
    sizes = [4096 << k for k in range(8)]
    assert_cancels_promptly("simd", {"sizes": sizes, "repeats": 10, "target_s": 0.02})


TINY_VECTORIZE = {
    "elements": 2000,
    "matmul_side": 32,
    "loop_sides": [8, 16],
    "repeats": 2,
    "target_s": 0.002,
}


def test_ladder_rungs_match_a_direct_reference():
    from partui.kernels.lab import ladder

    rng = np.random.default_rng(4)
    a, b = rng.random(101), rng.random(101)
    expected = [x * y for x, y in zip(a.tolist(), b.tolist())]
    out = np.empty(101)
    assert ladder.product_loop(a.tolist(), b.tolist()) == expected
    assert ladder.product_comprehension(a.tolist(), b.tolist()) == expected
    assert ladder.product_numpy(a, b, out).tolist() == expected
    assert ladder.native().product_native(a, b, np.empty(101)).tolist() == expected
    A, B = rng.random((7, 5)), rng.random((5, 6))
    ref = [[math.fsum(A[i, k] * B[k, j] for k in range(5)) for j in range(6)] for i in range(7)]
    np.testing.assert_allclose(ladder.matmul_loops(A.tolist(), B.tolist()), ref, rtol=1e-12)
    np.testing.assert_allclose(ladder.matmul_rows(A, B, np.empty((7, 6))), ref, rtol=1e-12)
    np.testing.assert_allclose(ladder.matmul_at(A, B, np.empty((7, 6))), ref, rtol=1e-12)


def test_vectorize_result_and_json():
    from partui.profiles.lab.experiments.vectorize import MATERIAL_MS, RUNGS

    r = memlab.run_experiment("vectorize", params=TINY_VECTORIZE)
    assert not r.cancelled and len(r.points) == 7
    s = json.loads(json.dumps(r.to_dict()))["summary"]
    assert set(s["speedup"]) == {"elementwise", "matmul"}
    for kind, rungs in RUNGS.items():
        assert list(s["speedup"][kind]) == rungs and s["speedup"][kind][rungs[0]] == 1.0
    assert s["material_ms"] == MATERIAL_MS and s["results_equal"]
    assert s["matmul_max_abs_error"] < 1e-9 and s["loop_scale"] == 8.0
    assert s["elementwise_scaled"] and "scaled" in r.explanation
    assert "~3600 ms" in r.explanation and "~0.12 ms" in r.explanation
    # the Python triple loop's point is its 16x16 time scaled by (32/16)^3
    loop = next(p for p in r.points if p.series.startswith("matrix") and p.x == 1)
    assert loop.median == pytest.approx(s["ms"]["matmul"]["python 3 loops"])
