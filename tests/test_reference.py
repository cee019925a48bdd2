"""kernels/reference.py against direct float64 loops written here, on tiny shapes."""

import math

import numpy as np
import pytest

from partui.kernels.model import reference
from partui.kernels.model.layers import LAYERS, make_input, make_params

rng = np.random.default_rng(12345)


def naive_conv(x, w, b):
    n, c, h, wd = x.shape
    oc = w.shape[0]
    out = np.zeros((n, oc, h - 2, wd - 2))
    for s in range(n):
        for o in range(oc):
            for i in range(h - 2):
                for j in range(wd - 2):
                    acc = float(b[o])
                    for ch in range(c):
                        for di in range(3):
                            for dj in range(3):
                                acc += float(x[s, ch, i + di, j + dj]) * float(w[o, ch, di, dj])
                    out[s, o, i, j] = acc
    return out


def naive_pool(x):
    n, c, h, wd = x.shape
    out = np.zeros((n, c, h // 2, wd // 2))
    for s in range(n):
        for ch in range(c):
            for i in range(h // 2):
                for j in range(wd // 2):
                    out[s, ch, i, j] = max(
                        float(x[s, ch, 2 * i + a, 2 * j + d]) for a in (0, 1) for d in (0, 1)
                    )
    return out


def gelu_scalar(v):
    return 0.5 * v * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v**3)))


def naive_gelu(x):
    return np.array([gelu_scalar(float(v)) for v in x.ravel()]).reshape(x.shape)


def naive_linear(x, w, b, apply_gelu):
    n, nin = x.shape
    nout = w.shape[0]
    out = np.zeros((n, nout))
    for s in range(n):
        for o in range(nout):
            v = math.fsum(float(x[s, k]) * float(w[o, k]) for k in range(nin)) + float(b[o])
            out[s, o] = gelu_scalar(v) if apply_gelu else v
    return out


def naive_logsoftmax(x):
    out = np.zeros(x.shape)
    for s in range(x.shape[0]):
        row = [float(v) for v in x[s]]
        m = max(row)
        lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
        out[s] = [v - lse for v in row]
    return out


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("shape", [(2, 3, 6, 7), (1, 1, 3, 3), (1, 2, 5, 4)])
def test_conv(shape):
    x = f32(*shape)
    w = f32(4, shape[1], 3, 3)
    b = f32(4)
    got = reference.conv2d(x, w, b)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, naive_conv(x, w, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 2, 4, 4), (1, 1, 3, 3), (1, 1, 2, 5)])
def test_pool_floor(shape):
    x = f32(*shape)
    got = reference.maxpool2x2(x)
    assert got.shape == (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    np.testing.assert_array_equal(got, naive_pool(x))


def test_gelu():
    x = f32(3, 4, 5, scale=3.0)
    x[0, 0, :3] = [0.0, -10.0, 10.0]
    np.testing.assert_allclose(reference.gelu(x), naive_gelu(x), rtol=1e-13, atol=1e-15)
    # a landmark that does not depend on the formula's constants
    assert reference.gelu(np.array([0.0]))[0] == 0.0


@pytest.mark.parametrize("apply_gelu", [False, True])
def test_linear(apply_gelu):
    x, w, b = f32(3, 7), f32(5, 7), f32(5)
    got = reference.linear(x, w, b, apply_gelu)
    np.testing.assert_allclose(got, naive_linear(x, w, b, apply_gelu), rtol=1e-12, atol=1e-13)


def test_logsoftmax_is_stable():
    x = f32(4, 6, scale=5.0)
    x[1] += 1000.0  # exp would overflow without the max shift
    x[2] -= 1000.0
    got = reference.logsoftmax(x)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, naive_logsoftmax(x), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(np.exp(got).sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("name", ["conv1", "pool1", "gelu3", "linear3", "logsoftmax"])
def test_forward_dispatches_each_kind(name):
    layer = LAYERS[name]
    x = make_input(layer, 1, seed=5)
    p = make_params(layer, seed=5)
    got = reference.forward(layer, x, p)
    assert got.shape == layer.out_array_shape(1)
    want = {
        "conv": lambda: naive_conv(x, p.get("weight"), p.get("bias")),
        "pool": lambda: naive_pool(x),
        "gelu": lambda: naive_gelu(x),
        "linear": lambda: naive_linear(
            x.reshape(1, -1), p.get("weight"), p.get("bias"), layer.gelu
        ),
        "logsoftmax": lambda: naive_logsoftmax(x),
    }[layer.kind]()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_network_forward_chains_the_layers():
    net = LAYERS["network"]
    x = make_input(net, 2, seed=1)
    p = make_params(net, seed=1)
    y = x.astype(np.float64)
    for name in ("conv1", "pool1", "gelu1", "conv2", "pool2", "gelu2", "conv3", "pool3", "gelu3"):
        layer = LAYERS[name]
        if layer.kind == "conv":
            y = reference.conv2d(y, p[f"{name}.weight"], p[f"{name}.bias"])
        elif layer.kind == "pool":
            y = naive_pool(y)
        else:
            y = naive_gelu(y)
    y = y.reshape(2, -1)
    for name in ("linear1", "linear2", "linear3"):
        y = naive_linear(y, p[f"{name}.weight"], p[f"{name}.bias"], LAYERS[name].gelu)
    y = naive_logsoftmax(y)
    got = reference.forward(net, x, p)
    assert got.shape == (2, 26)
    np.testing.assert_allclose(got, y, rtol=1e-9, atol=1e-9)
