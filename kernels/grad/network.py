"""The network's training step on one slice as two native calls: forward and loss, then backward.

`training.step_grads` uses this for the vectorized kernel when numpy's sgemm can be
called from numba (see `vectorized._sgemm`). Each half runs without the interpreter
lock from start to end, so two worker threads train side by side; the many numpy
calls of the layer-by-layer step (`training.forward_keep`, `backward_from`) each
took the lock. The structure it knows is the network's: three conv / max-pool / GELU
blocks on a one-channel image, then three linear layers and log-softmax; any other
network takes the layer-by-layer step.
"""

from __future__ import annotations

import time

import numpy as np

from partui.kernels.forward import vectorized
from partui.kernels.forward.vectorized import check_cancel, chunk_size
from partui.kernels.model.layers import prod
from partui.kernels.runtime.scratch import Scratch


def _structure():
    blocks, head = vectorized.BLOCKS, vectorized.HEAD
    if blocks is None or len(blocks) != 3 or blocks[0][0].in_shape[0] != 1:
        return None
    if tuple(sub.kind for sub in head) != ("linear", "linear", "linear", "logsoftmax"):
        return None
    return blocks, head[:3]


STRUCTURE = _structure()


def available() -> bool:
    """Whether `step` can run here: the network's structure and a native sgemm."""
    return STRUCTURE is not None and vectorized._sgemm() is not None


def _positions(scratch: Scratch, name: str, shape) -> np.ndarray:
    """An int32 buffer (a pool's window positions) kept with the worker's scratch."""
    buf = scratch.state.get(name)
    if buf is None or buf.shape != shape:
        buf = scratch.state[name] = np.empty(shape, np.int32)
    return buf


def step(x, labels, params: dict, grads: dict, scale: float, scratch: Scratch, cancel=None):
    """Forward, NLL loss and backward of the slice x (n, 1, 28, 28): gradients of
    scale * (summed NLL) into `grads` (views like `params`).

    Returns (summed NLL, correct predictions, ns when the forward and loss ended).
    """
    from partui.kernels.grad import native as nat

    blocks, linears = STRUCTURE
    sgemm = vectorized._sgemm()
    n = x.shape[0]
    c, h, w = blocks[0][0].in_shape
    x4 = np.ascontiguousarray(x, dtype=np.float32).reshape(n, h, w, c)
    labels = np.ascontiguousarray(labels, dtype=np.float32)
    convs: list = []
    btup: list[tuple] = []
    cg: list[np.ndarray] = []
    for cv, pl, gelu_next in blocks:
        name = cv.name
        convs.append(
            vectorized._native_weights(
                scratch, f"train.{name}.w", params[f"{name}.weight"], params[f"{name}.bias"], True
            )
        )
        ci = cv.in_shape[0]
        oc, oh, ow = cv.out_shape
        pix, k1 = oh * ow, 9 * ci + 1
        m = chunk_size(n, pix * k1 * 4)
        pooled = (n, pl.out_shape[1], pl.out_shape[2], oc)
        res = scratch.get(f"train.{name}.res", (m * pix, oc))
        first = not btup
        btup.append(
            (
                scratch.get(f"train.{name}.rows", (m * pix, k1)),
                res,
                scratch.get(f"train.{name}.p", pooled),
                scratch.get(f"train.{name}.a", pooled),
                _positions(scratch, f"train.{name}.idx", pooled),
                res,  # the backward's pixel gradients reuse the forward's GEMM result
                scratch.get(f"train.{name}.grows", (0 if first else m * pix, k1 - 1)),
                scratch.get(f"train.{name}.gwr", (k1, oc)),
                scratch.get(f"train.{name}.ga", pooled),
                m,
                bool(gelu_next),
            )
        )
        cg += [grads[f"{name}.weight"], grads[f"{name}.bias"]]
    ltup: list[tuple] = []
    for sub in linears:
        name, nout = sub.name, sub.out_shape[0]
        pre = scratch.get(f"train.{name}.pre", (n, nout))
        ltup.append(
            (
                params[f"{name}.weight"],
                params[f"{name}.bias"],
                pre,
                scratch.get(f"train.{name}.out", (n, nout)) if sub.gelu else pre,
                grads[f"{name}.weight"],
                grads[f"{name}.bias"],
                scratch.get(f"train.{name}.gpre", (n, nout)),
                bool(sub.gelu),
            )
        )
    nfeat = prod(linears[0].in_shape)
    feats = scratch.get("train.features", (n, nfeat))
    loss, correct = nat.network_train_forward(
        sgemm, x4, labels, float(scale), *convs, *btup, *ltup, feats
    )
    forward_end = time.perf_counter_ns()
    check_cancel(cancel)
    nat.network_train_backward(
        sgemm,
        x4,
        *convs,
        *btup,
        *ltup,
        feats,
        scratch.get("train.gfeatures", (n, nfeat)),
        scratch.get("train.gx", (0, h, w, c)),
        tuple(cg),
    )
    return float(loss), int(correct), forward_end
