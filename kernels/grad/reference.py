"""Float64 reference backward passes, independent of the kernels they check.

The convolution's gradients are nine shifted tensor contractions (no patch
matrices); max-pool routes each window's gradient to the first maximum in
row-major window order ((0,0), (0,1), (1,0), (1,1)), as the kernels do; the loss
is the batch mean of the negative log-likelihood of the log-softmax output.
"""

from __future__ import annotations

import numpy as np

from partui.kernels.model import reference
from partui.kernels.model.layers import NETWORK, Layer

SQRT_2_OVER_PI = reference.SQRT_2_OVER_PI
PARAM_LAYERS = tuple(sub.name for sub in NETWORK if sub.has_params)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def conv2d_backward(x, w, gy):
    """(gx, gw, gb) of a 3x3 valid convolution, given x (n, c, h, w), w (oc, c, 3, 3), gy (n, oc,
    oh, ow)."""
    x, w, gy = _f64(x), _f64(w), _f64(gy)
    oh, ow = gy.shape[2:]
    gx = np.zeros_like(x)
    gw = np.zeros_like(w)
    for kh in range(3):
        for kw in range(3):
            window = x[:, :, kh : kh + oh, kw : kw + ow]
            gw[:, :, kh, kw] = np.einsum("nohw,nchw->oc", gy, window, optimize=True)
            gx[:, :, kh : kh + oh, kw : kw + ow] += np.einsum(
                "nohw,oc->nchw", gy, w[:, :, kh, kw], optimize=True
            )
    return gx, gw, gy.sum(axis=(0, 2, 3))


def maxpool2x2_backward(x, gy):
    """gx of a 2x2 max-pool (floor): each window's gradient goes to its first maximum."""
    x, gy = _f64(x), _f64(gy)
    n, c, h, w = x.shape
    oh, ow = h // 2, w // 2
    windows = x[:, :, : 2 * oh, : 2 * ow].reshape(n, c, oh, 2, ow, 2).transpose(0, 1, 2, 4, 3, 5)
    first = windows.reshape(n, c, oh, ow, 4).argmax(axis=-1)
    routed = np.zeros((n, c, oh, ow, 4))
    np.put_along_axis(routed, first[..., None], gy[..., None], axis=-1)
    gx = np.zeros_like(x)
    gx[:, :, : 2 * oh, : 2 * ow] = (
        routed.reshape(n, c, oh, ow, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * oh, 2 * ow)
    )
    return gx


def gelu_derivative(x):
    """d/dx of the tanh-approximation GELU."""
    x = _f64(x)
    t = np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x * x)


def gelu_backward(x, gy):
    return _f64(gy) * gelu_derivative(x)


def linear_backward(x, w, b, gy, apply_gelu: bool):
    """(gx, gw, gb) of y = [GELU](x @ w.T + b)."""
    x, w, gy = _f64(x), _f64(w), _f64(gy)
    if apply_gelu:
        gy = gy * gelu_derivative(x @ w.T + _f64(b))
    return gy @ w, gy.T @ x, gy.sum(axis=0)


def logsoftmax_backward(x, gy):
    """gx of y = log-softmax(x) along the last axis."""
    y, gy = reference.logsoftmax(x), _f64(gy)
    return gy - np.exp(y) * gy.sum(axis=1, keepdims=True)


def nll_loss(logp, labels) -> float:
    """Batch mean of -log p[label]."""
    logp = _f64(logp)
    return float(-logp[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)].mean())


def nll_backward(logp, labels):
    """d(batch-mean NLL)/d(logp)."""
    g = np.zeros(np.shape(logp))
    n = len(labels)
    g[np.arange(n), np.asarray(labels, dtype=np.int64)] = -1.0 / n
    return g


def backward(layer: Layer, x, params: dict, gy) -> dict[str, np.ndarray]:
    """One layer's gradients in float64: {"input": gx, "weight": gw, "bias": gb} (as it has
    them)."""
    kind = layer.kind
    if kind == "conv":
        gx, gw, gb = conv2d_backward(x, params["weight"], gy)
        return {"input": gx, "weight": gw, "bias": gb}
    if kind == "pool":
        return {"input": maxpool2x2_backward(x, gy)}
    if kind == "gelu":
        return {"input": gelu_backward(x, gy)}
    if kind == "linear":
        gx, gw, gb = linear_backward(
            np.reshape(x, (len(x), -1)), params["weight"], params["bias"], gy, layer.gelu
        )
        return {"input": gx.reshape(np.shape(x)), "weight": gw, "bias": gb}
    if kind == "logsoftmax":
        return {"input": logsoftmax_backward(x, gy)}
    raise ValueError(f"no reference backward for layer kind {kind!r}")


def network_loss_and_grads(x, labels, params: dict) -> tuple[float, dict[str, np.ndarray]]:
    """The batch-mean NLL loss of the network and its gradients ("conv1.weight", ...), float64."""
    acts = [_f64(x)]
    for sub in NETWORK:
        sub_params = {
            k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(sub.name + ".")
        }
        y = acts[-1]
        if sub.kind == "linear":
            y = y.reshape(len(y), -1)
        acts.append(reference.forward(sub, y, sub_params))
    loss = nll_loss(acts[-1], labels)
    g = nll_backward(acts[-1], labels)
    grads: dict[str, np.ndarray] = {}
    for i in range(len(NETWORK) - 1, -1, -1):
        sub = NETWORK[i]
        sub_params = {
            k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(sub.name + ".")
        }
        x_in = acts[i]
        if sub.kind == "linear":
            x_in = x_in.reshape(len(x_in), -1)
        out = backward(sub, x_in, sub_params, g)
        for key in ("weight", "bias"):
            if key in out:
                grads[f"{sub.name}.{key}"] = out[key]
        g = out["input"].reshape(acts[i].shape)
    return loss, grads
