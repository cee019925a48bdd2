"""Backward kernels (loops and vectorized) against the float64 reference and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from partui.kernels.grad import loops as grad_loops
from partui.kernels.grad import reference as grad_reference
from partui.kernels.grad import vectorized as grad_vectorized
from partui.kernels.model import reference
from partui.kernels.runtime.scratch import Scratch

KERNELS = {"loops": grad_loops, "vectorized": grad_vectorized}


def rng(seed=0):
    return np.random.default_rng(seed)


def close(got, want, rel=2e-5):
    want = np.asarray(want, dtype=np.float64)
    scale = max(float(np.abs(want).max()), 1e-30)
    err = float(np.abs(np.asarray(got, dtype=np.float64) - want).max())
    assert err <= rel * scale, f"max abs error {err:.3g} > {rel * scale:.3g}"


def numeric_grad(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of a (float64, in
    place)."""
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        up = f()
        a[idx] = old - eps
        down = f()
        a[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


def f32(*shape, seed=0):
    return rng(seed).standard_normal(shape).astype(np.float32)


# ---- the reference itself against finite differences --------------------------------


def test_reference_conv_backward_matches_finite_differences():
    x, w, b = (
        f32(2, 3, 5, 6, seed=1).astype(np.float64),
        f32(4, 3, 3, 3, seed=2).astype(np.float64),
        f32(4, seed=3).astype(np.float64),
    )
    gy = f32(2, 4, 3, 4, seed=4).astype(np.float64)
    loss = lambda: float((reference.conv2d(x, w, b) * gy).sum())  # noqa: E731
    gx, gw, gb = grad_reference.conv2d_backward(x, w, gy)
    close(gx, numeric_grad(loss, x), 1e-6)
    close(gw, numeric_grad(loss, w), 1e-6)
    close(gb, numeric_grad(loss, b), 1e-6)


def test_reference_pool_gelu_linear_logsoftmax_match_finite_differences():
    x = f32(2, 3, 5, 7, seed=5).astype(np.float64)  # odd sizes: floor drops a row and a column
    gy = f32(2, 3, 2, 3, seed=6).astype(np.float64)
    close(
        grad_reference.maxpool2x2_backward(x, gy),
        numeric_grad(lambda: float((reference.maxpool2x2(x) * gy).sum()), x),
        1e-6,
    )

    x = f32(3, 5, seed=7).astype(np.float64) * 2
    gy = f32(3, 5, seed=8).astype(np.float64)
    close(
        grad_reference.gelu_backward(x, gy),
        numeric_grad(lambda: float((reference.gelu(x) * gy).sum()), x),
        1e-6,
    )
    close(
        grad_reference.logsoftmax_backward(x, gy),
        numeric_grad(lambda: float((reference.logsoftmax(x) * gy).sum()), x),
        1e-6,
    )

    for apply_gelu in (False, True):
        x, w, b = (
            f32(3, 5, seed=9).astype(np.float64),
            f32(4, 5, seed=10).astype(np.float64),
            f32(4, seed=11).astype(np.float64),
        )
        gy = f32(3, 4, seed=12).astype(np.float64)
        loss = lambda: float((reference.linear(x, w, b, apply_gelu) * gy).sum())  # noqa: E731
        gx, gw, gb = grad_reference.linear_backward(x, w, b, gy, apply_gelu)
        close(gx, numeric_grad(loss, x), 1e-6)
        close(gw, numeric_grad(loss, w), 1e-6)
        close(gb, numeric_grad(loss, b), 1e-6)


def test_reference_nll_backward_matches_finite_differences():
    logits = f32(4, 6, seed=13).astype(np.float64)
    labels = np.array([0, 5, 2, 2])
    loss = lambda: grad_reference.nll_loss(reference.logsoftmax(logits), labels)  # noqa: E731
    g = grad_reference.logsoftmax_backward(
        logits, grad_reference.nll_backward(reference.logsoftmax(logits), labels)
    )
    close(g, numeric_grad(loss, logits), 1e-6)


# ---- every kernel against the reference and finite differences ----------------------


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("c", [1, 3])
def test_conv_backward(kernel, c):
    ops = KERNELS[kernel]
    x, w, b, gy = (
        f32(3, c, 6, 7, seed=20),
        f32(4, c, 3, 3, seed=21),
        f32(4, seed=22),
        f32(3, 4, 4, 5, seed=23),
    )
    gx, gw, gb = np.full_like(x, np.nan), np.full_like(w, np.nan), np.full_like(b, np.nan)
    ops.conv_backward(x, w, gy, gx, gw, gb, Scratch())
    rx, rw, rb = grad_reference.conv2d_backward(x, w, gy)
    close(gx, rx), close(gw, rw), close(gb, rb)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    loss = lambda: float((reference.conv2d(x64, w64, b) * gy).sum())  # noqa: E731
    close(gw, numeric_grad(loss, w64), 1e-5)
    close(gx, numeric_grad(loss, x64), 1e-5)


@pytest.mark.parametrize("kernel", KERNELS)
def test_conv_backward_on_strided_regions(kernel):
    """A channel split hands the kernel slices of the upstream gradient and the weights."""
    ops = KERNELS[kernel]
    x, w, gy = f32(2, 3, 6, 6, seed=24), f32(6, 3, 3, 3, seed=25), f32(2, 6, 4, 4, seed=26)
    gw, gb = np.zeros((6, 3, 3, 3), np.float32), np.zeros(6, np.float32)
    gx = np.zeros((2, 3, 6, 6), np.float32)
    ops.conv_backward(x, w[2:5], gy[:, 2:5], gx, gw[2:5], gb[2:5], Scratch())
    rx, rw, rb = grad_reference.conv2d_backward(x, w[2:5], gy[:, 2:5])
    close(gx, rx), close(gw[2:5], rw), close(gb[2:5], rb)
    assert not gw[:2].any() and not gw[5:].any()  # nothing outside the region
    # and no input gradient at all when none is asked for
    ops.conv_backward(x, w, gy, None, gw, gb, Scratch())
    close(gw, grad_reference.conv2d_backward(x, w, gy)[1])


@pytest.mark.parametrize("kernel", KERNELS)
def test_pool_backward(kernel):
    x, gy = f32(2, 3, 5, 7, seed=30), f32(2, 3, 2, 3, seed=31)
    gx = np.full_like(x, np.nan)
    KERNELS[kernel].pool_backward(x, gy, gx, Scratch())
    close(gx, grad_reference.maxpool2x2_backward(x, gy))
    assert not gx[:, :, 4].any() and not gx[:, :, :, 6].any()  # rows/columns the floor drops
    x64 = x.astype(np.float64)
    close(gx, numeric_grad(lambda: float((reference.maxpool2x2(x64) * gy).sum()), x64), 1e-5)


@pytest.mark.parametrize("kernel", KERNELS)
def test_gelu_backward(kernel):
    x, gy = f32(2, 3, 4, seed=32) * 3, f32(2, 3, 4, seed=33)
    gx = np.full_like(x, np.nan)
    KERNELS[kernel].gelu_backward(x, gy, gx, Scratch())
    # 1 - tanh^2 loses digits where the forward's float32 rational tanh saturates
    close(gx, grad_reference.gelu_backward(x, gy), 3e-5)
    x64 = x.astype(np.float64)
    close(gx, numeric_grad(lambda: float((reference.gelu(x64) * gy).sum()), x64), 1e-5)
    # a strided region (a channel split), in place on the upstream gradient
    g = gy.copy()
    KERNELS[kernel].gelu_backward(x[:, 1:], g[:, 1:], g[:, 1:], Scratch())
    close(g[:, 1:], grad_reference.gelu_backward(x[:, 1:], gy[:, 1:]), 3e-5)
    assert np.array_equal(g[:, 0], gy[:, 0])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("apply_gelu", [False, True])
def test_linear_backward(kernel, apply_gelu):
    x, w, b, gy = f32(3, 5, seed=40), f32(4, 5, seed=41), f32(4, seed=42), f32(3, 4, seed=43)
    gx, gw, gb = np.full_like(x, np.nan), np.full_like(w, np.nan), np.full_like(b, np.nan)
    KERNELS[kernel].linear_backward(x, w, b, gy, apply_gelu, gx, gw, gb, Scratch())
    rx, rw, rb = grad_reference.linear_backward(x, w, b, gy, apply_gelu)
    close(gx, rx), close(gw, rw), close(gb, rb)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    loss = lambda: float((reference.linear(x64, w64, b, apply_gelu) * gy).sum())  # noqa: E731
    close(gx, numeric_grad(loss, x64), 1e-5)
    close(gw, numeric_grad(loss, w64), 1e-5)
    if apply_gelu:  # the pre-activation kept by a forward pass gives the same gradients
        pre = (x @ w.T + b).astype(np.float32)
        KERNELS[kernel].linear_backward(x, w, b, gy, True, gx, gw, gb, Scratch(), pre=pre)
        close(gw, rw)


@pytest.mark.parametrize("kernel", KERNELS)
def test_logsoftmax_and_nll_backward(kernel):
    ops = KERNELS[kernel]
    x, gy = f32(3, 6, seed=50), f32(3, 6, seed=51)
    gx = np.full_like(x, np.nan)
    ops.logsoftmax_backward(x, gy, gx, Scratch())
    close(gx, grad_reference.logsoftmax_backward(x, gy))
    x64 = x.astype(np.float64)
    close(gx, numeric_grad(lambda: float((reference.logsoftmax(x64) * gy).sum()), x64), 1e-5)

    labels = np.array([1, 0, 5], dtype=np.float32)  # labels travel as floats in the run's arrays
    logp = reference.logsoftmax(x).astype(np.float32)
    g = np.full_like(x, np.nan)
    total = ops.nll_backward(logp, labels, g, 1 / 3)
    assert total / 3 == pytest.approx(grad_reference.nll_loss(logp, labels.astype(int)), rel=1e-6)
    close(
        g,
        grad_reference.logsoftmax_backward(
            x, grad_reference.nll_backward(logp, labels.astype(int))
        ),
    )
    loss = lambda: grad_reference.nll_loss(reference.logsoftmax(x64), labels.astype(int))  # noqa: E731
    close(g, numeric_grad(loss, x64), 1e-5)


# ---- the network's training step ------------------------------------------------------


def _network_case(batch=3, seed=0):
    from partui.kernels.model.layers import LAYERS, make_input, make_params

    net = LAYERS["network"]
    params = make_params(net, seed)
    x = make_input(net, batch, seed)
    labels = np.arange(batch) * 7 % 26
    return x, labels, params


@pytest.mark.parametrize("kernel", KERNELS)
def test_network_step_grads_match_reference(kernel):
    from partui.kernels.grad import training

    x, labels, params = _network_case(batch=2 if kernel == "loops" else 5)
    flat = training.flat_params(0)
    pv = training.views(flat, training.NETWORK_LAYOUT)
    for k in params:
        assert np.array_equal(pv[k], params[k])
    grad = np.full(training.NETWORK_PARAMS, np.nan, np.float32)
    gv = training.views(grad, training.NETWORK_LAYOUT)
    loss, correct, _ = training.step_grads(
        kernel, x, labels.astype(np.float32), pv, gv, 1 / len(x), Scratch()
    )
    ref_loss, ref = grad_reference.network_loss_and_grads(x, labels, params)
    assert loss / len(x) == pytest.approx(ref_loss, rel=1e-5)
    assert set(ref) == set(gv)
    for k in ref:
        close(gv[k], ref[k], 1e-4)
    assert 0 <= correct <= len(x)


def test_network_step_without_native_blas_matches_reference(monkeypatch):
    """The layer-by-layer step (no sgemm callable from numba) against the same reference."""
    from partui.kernels.forward import vectorized
    from partui.kernels.grad import network as grad_network
    from partui.kernels.grad import training

    monkeypatch.setattr(vectorized, "_sgemm_state", [None])
    assert not grad_network.available()
    x, labels, params = _network_case(batch=4, seed=2)
    pv = training.views(training.flat_params(2), training.NETWORK_LAYOUT)
    grad = np.full(training.NETWORK_PARAMS, np.nan, np.float32)
    gv = training.views(grad, training.NETWORK_LAYOUT)
    loss, _, _ = training.step_grads("vectorized", x, labels, pv, gv, 1 / len(x), Scratch())
    ref_loss, ref = grad_reference.network_loss_and_grads(x, labels, params)
    assert loss / len(x) == pytest.approx(ref_loss, rel=1e-5)
    for k in ref:
        close(gv[k], ref[k], 1e-4)


def test_native_network_step_is_used_and_matches_reference_on_odd_slices():
    """The native step (one call per half) on slices whose chunks do not divide them."""
    from partui.kernels.grad import network as grad_network
    from partui.kernels.grad import training

    assert grad_network.available()
    scratch = Scratch()
    for batch, seed in ((1, 3), (7, 4)):
        x, labels, params = _network_case(batch=batch, seed=seed)
        pv = training.views(training.flat_params(seed), training.NETWORK_LAYOUT)
        grad = np.full(training.NETWORK_PARAMS, np.nan, np.float32)
        gv = training.views(grad, training.NETWORK_LAYOUT)
        loss, correct, _ = grad_network.step(x, labels, pv, gv, 1 / batch, scratch)
        ref_loss, ref = grad_reference.network_loss_and_grads(x, labels, params)
        assert loss / batch == pytest.approx(ref_loss, rel=1e-5)
        for k in ref:
            close(gv[k], ref[k], 1e-4)
        from partui.kernels.model.layers import LAYERS

        logits = reference.forward(LAYERS["network"], x, params)
        assert correct == int((logits.argmax(axis=1) == labels).sum())


def test_network_reference_grads_match_finite_differences():
    x, labels, params = _network_case(batch=2, seed=1)
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    _, grads = grad_reference.network_loss_and_grads(x, labels, p64)
    pick = np.random.default_rng(3)
    for name in ("conv1.weight", "conv2.bias", "conv3.weight", "linear1.weight", "linear3.bias"):
        arr = p64[name]
        for _ in range(3):
            idx = tuple(int(pick.integers(0, s)) for s in arr.shape)
            old, eps = arr[idx], 1e-5
            arr[idx] = old + eps
            up = grad_reference.network_loss_and_grads(x, labels, p64)[0]
            arr[idx] = old - eps
            down = grad_reference.network_loss_and_grads(x, labels, p64)[0]
            arr[idx] = old
            assert grads[name][idx] == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-8)
