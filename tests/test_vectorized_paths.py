"""The vectorized kernel's internal paths on odd shapes and awkward regions, against the
float64 references: patch-row and per-sample convolutions, span-based GELU and bias,
pooling with NaN, and the fused network forward."""

import numpy as np
import pytest

from partui.kernels.forward import vectorized
from partui.kernels.model import reference
from partui.kernels.model.layers import LAYERS, make_input, make_params
from partui.kernels.runtime.scratch import Scratch

RNG = np.random.default_rng(7)


def close(got, want, rel=1e-5):
    tol = rel * max(1.0, float(np.abs(want).max()))
    assert np.isfinite(got).all()
    assert float(np.abs(got.astype(np.float64) - want).max()) <= tol


@pytest.mark.parametrize("c", [1, 3, 8, 13])  # thin (per-sample GEMM) and patch-row paths
def test_conv_regions(c):
    x = RNG.standard_normal((5, c, 9, 7)).astype(np.float32)
    w = RNG.standard_normal((6, c, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    full = reference.conv2d(x, w, b)
    out = np.full((5, 6, 7, 5), np.nan, np.float32)
    # channel slice x row tile: an output region that cannot be seen flat
    vectorized.conv(x[1:4, :, 2:7], w[2:5], b[2:5], out[1:4, 2:5, 2:5], Scratch())
    close(out[1:4, 2:5, 2:5], full[1:4, 2:5, 2:5])
    assert np.isnan(out[0]).all() and np.isnan(out[1:4, :2]).all()  # nothing outside the region
    # an input-channel group without bias (the filter strategy's partial sums)
    g = max(1, c // 2)
    part = np.empty((5, 6, 7, 5), np.float32)
    vectorized.conv(x[:, :g], w[:, :g], None, part, Scratch())
    close(part, reference.conv2d(x[:, :g], w[:, :g], np.zeros(6, np.float32)))


def test_gelu_matches_reference_everywhere():
    x = np.concatenate(
        [
            np.linspace(-30, 30, 20001),
            np.logspace(-30, 1, 200),
            -np.logspace(-30, 1, 200),
            [0.0, -7.9, 7.9, 100.0, -100.0, 1e4, -1e4],
        ]
    )
    x = x.astype(np.float32)
    out = np.empty_like(x)
    vectorized.gelu(x, out, Scratch())
    # within a few float32 ulps of max(1, |x|): what the 8-pass numpy formula gets too
    err = np.abs(out - reference.gelu(x)) / np.maximum(1.0, np.abs(x))
    assert float(err.max()) < 5e-7
    vectorized.gelu(x, x, Scratch())  # in place
    assert np.array_equal(x, out)
    v = np.array([np.nan, np.inf], np.float32)
    vectorized.gelu(v, v, Scratch())
    assert np.isnan(v[0]) and v[1] == np.inf


def test_elementwise_regions_and_layouts():
    x = (RNG.standard_normal((4, 6, 5, 7)) * 3).astype(np.float32)
    want = reference.gelu(x)
    for region in [np.s_[:, 1:4], np.s_[1:3, :, 2:4], np.s_[:, 2:3, 1:2, :], np.s_[..., ::2]]:
        out = np.full_like(x, np.nan)
        vectorized.gelu(x[region], out[region], Scratch())
        close(out[region], want[region])
    t = np.asfortranarray(x[0, 0])  # a last axis that is not contiguous: the numpy path
    out = np.empty_like(t)
    vectorized.gelu(t, out, Scratch())
    close(out, want[0, 0])


def test_linear_feature_slice_with_bias_and_gelu():
    x = RNG.standard_normal((9, 20)).astype(np.float32)
    w = RNG.standard_normal((30, 20)).astype(np.float32)
    b = RNG.standard_normal(30).astype(np.float32)
    out = np.full((9, 30), np.nan, np.float32)
    vectorized.linear(x, w[7:19], b[7:19], True, out[:, 7:19], Scratch())
    close(out[:, 7:19], reference.linear(x, w[7:19], b[7:19], True))
    assert np.isnan(out[:, :7]).all() and np.isnan(out[:, 19:]).all()


def test_pool_keeps_nan_like_numpy():
    x = RNG.standard_normal((2, 3, 7, 9)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    x[1, 2, 5, 0] = np.nan
    out = np.empty((2, 3, 3, 4), np.float32)
    vectorized.pool(x, out, Scratch())
    want = reference.maxpool2x2(x)
    assert np.array_equal(np.isnan(out), np.isnan(want))
    ok = ~np.isnan(want)
    assert np.array_equal(out[ok], want[ok].astype(np.float32))


@pytest.mark.parametrize("direct", [True, False])  # conv1 without a GEMM, or by patch rows
@pytest.mark.parametrize("batch", [1, vectorized.NET_CHUNK + 3])
def test_fused_network(batch, direct):
    from partui.kernels.runtime import tuning

    layer = LAYERS["network"]
    x = make_input(layer, batch, seed=3)
    params = make_params(layer, seed=3)
    out = np.full((batch, 26), np.nan, np.float32)
    tuning.use({"network": {"conv1.direct": direct}})
    try:
        assert vectorized.network_direct(LAYERS["conv1"]) is direct
        vectorized.network(x, params, out, Scratch())
    finally:
        tuning.use(None)
    close(out, reference.forward(layer, x, params), rel=1e-4)


@pytest.mark.parametrize("shape", [(2, 11, 9, 1, 32), (3, 8, 8, 3, 16), (1, 6, 7, 6, 48)])
def test_direct_convolution_pool_and_gelu_match_the_reference(shape):
    """The direct block on odd sizes (the pool's floor drops a row and a column), several
    input channels and several vector blocks of output channels; NHWC in and out."""
    from partui.kernels.forward import native

    assert native.BLOCK == vectorized.DIRECT_BLOCK
    n, h, w, c, oc = shape
    y = RNG.standard_normal((n, h, w, c)).astype(np.float32)
    wt = RNG.standard_normal((oc, c, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(oc).astype(np.float32)
    wr = vectorized.pack_rows_weights(wt, b, np.empty((9 * c + 1, oc), np.float32))
    ph, pw = (h - 2) // 2, (w - 2) // 2
    acc = np.full((5 * ((w - 2) // 2), oc), np.nan, np.float32)
    conv = reference.conv2d(y.transpose(0, 3, 1, 2), wt, b)
    pooled = reference.maxpool2x2(conv)
    for gelu in (False, True):
        out = np.full((n, ph, pw, oc), np.nan, np.float32)
        native.conv_pool_direct(y, wr, acc, out, gelu)
        want = reference.gelu(pooled) if gelu else pooled
        close(out.transpose(0, 3, 1, 2), want, rel=1e-5)


def test_packed_weights_follow_changes_in_place():
    x = RNG.standard_normal((3, 8, 6, 6)).astype(np.float32)
    w = RNG.standard_normal((4, 8, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(4).astype(np.float32)
    out = np.empty((3, 4, 4, 4), np.float32)
    scratch = Scratch()
    vectorized.conv(x, w, b, out, scratch)
    close(out, reference.conv2d(x, w, b))
    w[1, 2, 0, 1] += 1.0  # same array, new values: the packing must not be reused
    b[3] -= 2.0
    vectorized.conv(x, w, b, out, scratch)
    close(out, reference.conv2d(x, w, b))
    vectorized.conv(x, w[:2], b[:2], out[:, :2], scratch)  # another slice, same worker
    close(out[:, :2], reference.conv2d(x, w[:2], b[:2]))


@pytest.fixture(params=["native BLAS", "numpy GEMMs"])
def gemm_path(request, monkeypatch):
    """Both ways the kernels reach BLAS: from inside numba, or np.matmul between numba steps."""
    if request.param == "numpy GEMMs":
        monkeypatch.setattr(vectorized, "_sgemm_state", [None])
    elif vectorized._sgemm() is None:
        pytest.skip("numpy's BLAS cannot be called from numba here")
    return request.param


def test_both_gemm_paths(gemm_path):
    layer = LAYERS["network"]
    x = make_input(layer, 5, seed=4)
    params = make_params(layer, seed=4)
    out = np.full((5, 26), np.nan, np.float32)
    vectorized.network(x, params, out, Scratch())
    close(out, reference.forward(layer, x, params), rel=1e-4)
    for name in ("conv1", "conv2"):
        w, b = params[f"{name}.weight"], params[f"{name}.bias"]
        xi = RNG.standard_normal((3, w.shape[1], 9, 8)).astype(np.float32)
        o = np.full((3, w.shape[0] + 2, 7, 6), np.nan, np.float32)[:, 1:-1]  # a channel region
        vectorized.conv(xi, w, b, o, Scratch())
        close(o, reference.conv2d(xi, w, b))
    w, b = params["linear2.weight"], params["linear2.bias"]
    xi = RNG.standard_normal((4, 512)).astype(np.float32)
    o = np.empty((4, 100), np.float32)
    vectorized.linear(xi[:, :], w[50:150], b[50:150], True, o, Scratch())
    close(o, reference.linear(xi, w[50:150], b[50:150], True))


def _layer_arrays(name, batch, seed):
    layer = LAYERS[name]
    return layer, {
        "x": make_input(layer, batch, seed),
        "out": np.full(layer.out_array_shape(batch), np.nan, np.float32),
        **make_params(layer, seed),
    }


@pytest.mark.parametrize("name", ["conv1", "conv2", "pool1", "gelu2", "linear1", "network"])
def test_a_bound_task_call_is_made_once_and_follows_new_values(name, monkeypatch):
    from partui.kernels.forward import compute
    from partui.kernels.plan import strategies

    layer, arrays = _layer_arrays(name, 6, seed=5)
    tasks = strategies.plan(layer, "batch", 6, 2).phases[0]
    scratch = Scratch()
    binds = []
    real_bind = compute._bind
    monkeypatch.setattr(compute, "_bind", lambda *a: binds.append(a[3]) or real_bind(*a))
    for _ in range(3):  # repeats: new input values, weights changed in place
        arrays["x"][...] = RNG.standard_normal(arrays["x"].shape)
        for key in arrays:
            if key.endswith("weight"):
                arrays[key] *= np.float32(1.01)
        for task in tasks:
            compute.run_task(layer, "vectorized", arrays, task, scratch)
        params = {k: v for k, v in arrays.items() if k not in ("x", "out")}
        want = reference.forward(layer, arrays["x"], params)
        close(arrays["out"], want, rel=1e-4)
    assert binds == list(tasks)  # each task bound once, reused by the later repeats
    # another run's arrays (same shapes): bound afresh, and the first run's calls let go
    _, fresh = _layer_arrays(name, 6, seed=6)
    compute.run_task(layer, "vectorized", fresh, tasks[0], scratch)
    assert binds[-1] is tasks[0] and len(scratch.calls) == 1
    assert all(fresh[k] is v for k, v in scratch.calls_arrays)
    compute.release_bound_calls(arrays)  # the first run's: nothing of it held, nothing to do
    assert len(scratch.calls) == 1
    compute.release_bound_calls(fresh)  # this run ends: its views go at once
    assert scratch.calls == {} and scratch.calls_arrays == ()


def test_a_wrapped_kernel_is_called_not_bypassed_by_the_bound_native_call():
    from partui.kernels.forward import compute
    from partui.kernels.plan import strategies

    calls = []

    class Counting:
        def __getattr__(self, attr):
            return getattr(vectorized, attr)

        @staticmethod
        def conv(*args):
            calls.append(args[0].shape)
            vectorized.conv(*args)

    layer, arrays = _layer_arrays("conv3", 4, seed=2)
    (task,) = strategies.plan(layer, "none", 4, 1).phases[0]
    compute.KERNEL_MODULES["counting"] = Counting()
    try:
        for _ in range(2):
            compute.run_task(layer, "counting", arrays, task, Scratch())
    finally:
        del compute.KERNEL_MODULES["counting"]
    assert calls == [(4, 64, 5, 5)] * 2
    close(arrays["out"], reference.forward(layer, arrays["x"], make_params(layer, 2)), rel=1e-4)


@pytest.mark.parametrize("pixels", [0, 10**9])  # every convolution per sample, or none
def test_native_per_sample_and_patch_row_convolutions_agree_with_the_reference(
    pixels, monkeypatch, gemm_path
):
    monkeypatch.setattr(vectorized, "PER_SAMPLE_PIXELS", pixels)
    for c in (1, 8, 32):
        x = RNG.standard_normal((4, c, 13, 12)).astype(np.float32)
        w = RNG.standard_normal((10, c, 3, 3)).astype(np.float32)
        b = RNG.standard_normal(10).astype(np.float32)
        full = reference.conv2d(x, w, b)
        out = np.full((4, 10, 11, 10), np.nan, np.float32)
        vectorized.conv(x, w, b, out, Scratch())
        close(out, full)
        out[...] = np.nan  # a channel slice and a row tile of it
        vectorized.conv(x[:, :, 3:10], w[2:7], b[2:7], out[:, 2:7, 3:8], Scratch())
        close(out[:, 2:7, 3:8], full[:, 2:7, 3:8])


def test_native_call_groups_cover_the_batch_in_balanced_runs_of_bounded_work():
    from partui.kernels.forward.vectorized import CALL_FLOPS, _groups

    for n in (1, 2, 7, 64, 1000):
        for fps in (1.0, CALL_FLOPS / 3, 0.4 * CALL_FLOPS, CALL_FLOPS, 4 * CALL_FLOPS):
            groups = _groups(n, fps)
            assert groups[0][0] == 0 and groups[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(groups, groups[1:]))
            sizes = [b - a for a, b in groups]
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
            # as few calls as keep a call's work at ~CALL_FLOPS on average (one sample each
            # at the most): one group fewer would pass it
            assert n * fps / len(groups) <= CALL_FLOPS or len(groups) == n
            assert len(groups) == 1 or (len(groups) - 1) * CALL_FLOPS < n * fps


@pytest.mark.parametrize("width", [9, 12, 18, 19, 28])  # one block per output row, two, edges
def test_block_copied_patch_columns_match_the_reference(width, monkeypatch):
    """Patch columns copied in whole vector blocks that run past each output row: the floats
    past the run and the buffer's padding never reach the result, and the reads past an input
    row stay inside the plane (its last row is copied float by float)."""
    from partui.kernels.forward import native

    monkeypatch.setattr(vectorized, "PER_SAMPLE_PIXELS", 0)  # every convolution per sample
    for c in (1, 5, 40):
        x = RNG.standard_normal((3, c, 7, width)).astype(np.float32)
        w = RNG.standard_normal((6, c, 3, 3)).astype(np.float32)
        b = RNG.standard_normal(6).astype(np.float32)
        full = reference.conv2d(x, w, b)
        scratch = Scratch()
        scratch.get("conv.cols1", (9 * c + 1, native.cols_width(7, width))).fill(np.nan)
        out = np.full(full.shape, np.nan, np.float32)
        vectorized.conv(x, w, b, out, scratch)
        close(out, full)
        # a row tile of a channel slice: rows still end to end, planes apart
        out[...] = np.nan
        vectorized.conv(x[:, c // 2 :, 1:6], w[:, c // 2 :], b, out[:, :, 1:4], scratch)
        close(out[:, :, 1:4], reference.conv2d(x[:, c // 2 :], w[:, c // 2 :], b)[:, :, 1:4])
