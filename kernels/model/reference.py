"""Float64 reference implementations, independent of the kernels they check.

Convolution sums nine shifted tensor contractions (no im2col, no float32), so a
bug in the vectorized kernels' patch building cannot hide in the reference.
"""

from __future__ import annotations

import numpy as np

from partui.kernels.model.layers import NETWORK, Layer

SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    n, _, h, wd = x.shape
    oc, _, kh_, kw_ = w.shape
    oh, ow = h - kh_ + 1, wd - kw_ + 1
    out = np.zeros((n, oc, oh, ow))
    for kh in range(kh_):
        for kw in range(kw_):
            window = x[:, :, kh : kh + oh, kw : kw + ow]
            out += np.einsum("nchw,oc->nohw", window, w[:, :, kh, kw], optimize=True)
    return out + b.astype(np.float64)[None, :, None, None]


def maxpool2x2(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    n, c, h, w = x.shape
    oh, ow = h // 2, w // 2
    x = x[:, :, : 2 * oh, : 2 * ow].reshape(n, c, oh, 2, ow, 2)
    return x.max(axis=(3, 5))


def gelu(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray, apply_gelu: bool) -> np.ndarray:
    y = x.astype(np.float64) @ w.astype(np.float64).T + b.astype(np.float64)
    return gelu(y) if apply_gelu else y


def logsoftmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def forward(layer: Layer, x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """The layer's output in float64."""
    kind = layer.kind
    if kind == "conv":
        return conv2d(x, params["weight"], params["bias"])
    if kind == "pool":
        return maxpool2x2(x)
    if kind == "gelu":
        return gelu(x)
    if kind == "linear":
        return linear(x.reshape(x.shape[0], -1), params["weight"], params["bias"], layer.gelu)
    if kind == "logsoftmax":
        return logsoftmax(x)
    if kind == "network":
        y = x
        for sub in NETWORK:
            sub_params = {
                k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(sub.name + ".")
            }
            y = forward(sub, y, sub_params)
        return y
    raise ValueError(f"no reference for layer kind {kind!r}")
