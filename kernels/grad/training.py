"""One training step of the network on a slice of a batch: forward (keeping activations), loss,
backward.

Parameters and gradients are flat float32 vectors (every layer's weight and
bias, in NETWORK order, PyTorch layouts) seen through per-layer views: a
combine or an SGD update is then one pass over one array, cut into ranges.
"""

from __future__ import annotations

import time

import numpy as np

from partui.kernels.forward import loops, vectorized
from partui.kernels.grad import loops as grad_loops
from partui.kernels.grad import vectorized as grad_vectorized
from partui.kernels.model.layers import NETWORK, Layer, make_params, prod
from partui.kernels.runtime.scratch import Scratch

GRAD_MODULES = {"loops": grad_loops, "vectorized": grad_vectorized}
FORWARD_MODULES = {"loops": loops, "vectorized": vectorized}
PARAM_LAYERS: tuple[Layer, ...] = tuple(sub for sub in NETWORK if sub.has_params)


def param_layout(
    layers=PARAM_LAYERS, prefix: bool = True
) -> dict[str, tuple[int, tuple[int, ...]]]:
    """name -> (offset, shape) in the flat parameter vector; names "conv1.weight", ... (or
    "weight")."""
    layout, offset = {}, 0
    for sub in layers:
        for key, shape in (("weight", sub.weight_shape), ("bias", sub.bias_shape)):
            layout[f"{sub.name}.{key}" if prefix else key] = (offset, shape)
            offset += prod(shape)
    return layout


def layout_size(layout) -> int:
    return max((off + prod(shape) for off, shape in layout.values()), default=0)


def views(flat: np.ndarray, layout) -> dict[str, np.ndarray]:
    return {k: flat[off : off + prod(shape)].reshape(shape) for k, (off, shape) in layout.items()}


NETWORK_LAYOUT = param_layout()
NETWORK_PARAMS = layout_size(NETWORK_LAYOUT)


def flat_params(seed: int = 0) -> np.ndarray:
    """The network's seeded initial parameters as one flat vector."""
    params = make_params(_network(), seed)
    flat = np.empty(NETWORK_PARAMS, np.float32)
    for k, v in views(flat, NETWORK_LAYOUT).items():
        v[...] = params[k]
    return flat


def _network():
    from partui.kernels.model.layers import LAYERS

    return LAYERS["network"]


def forward_keep(kernel: str, x, params: dict, scratch: Scratch, cancel=None) -> list[np.ndarray]:
    """The network's forward pass on x (n, 1, 28, 28); returns every layer's input and output.

    acts[i] is the input of NETWORK[i], acts[-1] the log-probabilities; a linear
    layer with GELU also keeps its pre-activation in scratch ("train.pre.<name>").
    """
    ops = FORWARD_MODULES[kernel]
    n = x.shape[0]
    acts = [x]
    for sub in NETWORK:
        y = acts[-1]
        out = scratch.get(f"train.act.{sub.name}", sub.out_array_shape(n))
        if sub.kind == "conv":
            ops.conv(
                y, params[f"{sub.name}.weight"], params[f"{sub.name}.bias"], out, scratch, cancel
            )
        elif sub.kind == "pool":
            ops.pool(y, out, scratch, cancel)
        elif sub.kind == "gelu":
            ops.gelu(y, out, scratch, cancel)
        elif sub.kind == "linear":
            y = y.reshape(n, -1)
            w, b = params[f"{sub.name}.weight"], params[f"{sub.name}.bias"]
            if sub.gelu:
                pre = scratch.get(f"train.pre.{sub.name}", (n, *sub.out_shape))
                ops.linear(y, w, b, False, pre, scratch, cancel)
                ops.gelu(pre, out, scratch, cancel)
            else:
                ops.linear(y, w, b, False, out, scratch, cancel)
        elif sub.kind == "logsoftmax":
            ops.logsoftmax(y, out, scratch, cancel)
        else:
            raise ValueError(f"no forward for layer kind {sub.kind!r}")
        acts.append(out)
    return acts


def backward_from(
    kernel: str,
    acts,
    labels,
    params: dict,
    grads: dict,
    scale: float,
    scratch: Scratch,
    cancel=None,
) -> float:
    """Gradients of scale * (summed NLL) into `grads` (views like params); returns the summed NLL.

    The log-softmax and the loss are differentiated together (softmax - onehot).
    """
    ops = GRAD_MODULES[kernel]
    n = acts[0].shape[0]
    last = NETWORK[-1]
    if last.kind != "logsoftmax":
        raise ValueError("the network must end in log-softmax for the NLL loss")
    g = scratch.get("train.g.logits", (n, *last.in_shape))
    loss = ops.nll_backward(acts[-1], labels, g, scale)
    for i in range(len(NETWORK) - 2, -1, -1):
        sub = NETWORK[i]
        x_in = acts[i]
        first = i == 0
        if sub.kind == "conv":
            gx = None if first else scratch.get(f"train.g.{sub.name}", x_in.shape)
            ops.conv_backward(
                x_in,
                params[f"{sub.name}.weight"],
                g,
                gx,
                grads[f"{sub.name}.weight"],
                grads[f"{sub.name}.bias"],
                scratch,
                cancel,
            )
        elif sub.kind == "pool":
            gx = scratch.get(f"train.g.{sub.name}", x_in.shape)
            ops.pool_backward(x_in, g, gx, scratch, cancel)
        elif sub.kind == "gelu":
            gx = g  # in place: the upstream gradient is not needed again
            ops.gelu_backward(x_in, g, gx, scratch, cancel)
        elif sub.kind == "linear":
            x2 = x_in.reshape(n, -1)
            gx = None if first else scratch.get(f"train.g.{sub.name}", x2.shape)
            pre = scratch.get(f"train.pre.{sub.name}", (n, *sub.out_shape)) if sub.gelu else None
            ops.linear_backward(
                x2,
                params[f"{sub.name}.weight"],
                params[f"{sub.name}.bias"],
                g,
                sub.gelu,
                gx,
                grads[f"{sub.name}.weight"],
                grads[f"{sub.name}.bias"],
                scratch,
                cancel,
                pre=pre,
            )
            if gx is not None:
                gx = gx.reshape(x_in.shape)
        else:
            raise ValueError(f"no backward for layer kind {sub.kind!r}")
        if gx is None:
            break
        g = gx
    return loss


def step_grads(
    kernel: str, x, labels, params: dict, grads: dict, scale: float, scratch: Scratch, cancel=None
) -> tuple[float, int, int]:
    """Forward, loss and backward of a slice: (summed NLL, correct predictions, ns when the forward
    ended).

    The vectorized kernel runs the whole slice natively where it can (`grad_network`).
    """
    if kernel == "vectorized" and x.shape[0]:
        from partui.kernels.grad import network as grad_network

        if grad_network.available():
            return grad_network.step(x, labels, params, grads, scale, scratch, cancel)
    acts = forward_keep(kernel, x, params, scratch, cancel)
    forward_end = time.perf_counter_ns()
    correct = int((acts[-1].argmax(axis=1) == labels.astype(np.int64)).sum())
    loss = backward_from(kernel, acts, labels, params, grads, scale, scratch, cancel)
    return loss, correct, forward_end


def predict(x, params: dict, scratch: Scratch, out=None) -> np.ndarray:
    """Class indices of x with the fused vectorized forward (evaluation)."""
    n = x.shape[0]
    logp = out if out is not None else scratch.get("train.eval", (n, NETWORK[-1].out_shape[0]))
    vectorized.network(x, params, logp, scratch)
    return logp.argmax(axis=1)
