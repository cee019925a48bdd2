"""Run one task of a layer: slice the run's arrays to the task's region and call a kernel.

`arrays` holds the run's buffers by name: "x", "out", the parameters ("weight",
"bias", or "conv1.weight", ... for the network) and, for the filter strategy,
"partials" (groups, *out). Tasks write only inside their region.
"""

from __future__ import annotations

import numpy as np

from . import loops, vectorized
from .layers import NETWORK, Layer, get_layer
from .scratch import Scratch
from .strategies import Task

KERNEL_MODULES = {"loops": loops, "vectorized": vectorized}


def _region(arr: np.ndarray, task: Task, layer: Layer) -> np.ndarray:
    """The slice of an output-shaped array that `task` writes."""
    n0, n1 = task.batch
    if layer.kind == "network":
        return arr[n0:n1]
    c0, c1 = task.channels
    if task.rows is None:
        return arr[n0:n1, c0:c1]
    r0, r1 = task.rows
    return arr[n0:n1, c0:c1, r0:r1]


def _input_region(x: np.ndarray, task: Task, layer: Layer) -> np.ndarray:
    """The slice of the input the task reads (batch, group, and the rows its output needs)."""
    n0, n1 = task.batch
    kind = layer.kind
    if kind == "network":
        return x[n0:n1]
    if kind in ("linear", "logsoftmax"):
        x = x.reshape(x.shape[0], -1)[n0:n1]
        if task.group is not None:
            x = x[:, task.group[0] : task.group[1]]
        return x
    # 4-D layers: pick input channels, then input rows
    if kind == "conv":
        c0, c1 = task.group if task.group is not None else (0, x.shape[1])
    else:  # pool and gelu are channel-wise: input channel = output channel
        c0, c1 = task.channels
    x = x[n0:n1, c0:c1]
    if task.rows is not None:
        r0, r1 = task.rows
        if kind == "conv":
            x = x[:, :, r0 : r1 + 2]
        elif kind == "pool":
            x = x[:, :, 2 * r0 : 2 * r1]
        else:
            x = x[:, :, r0:r1]
    return x


def run_task(
    layer: Layer,
    kernel: str,
    arrays: dict[str, np.ndarray],
    task: Task,
    scratch: Scratch,
    cancel=None,
) -> None:
    ops = KERNEL_MODULES[kernel]
    if task.phase == 1:
        reduce_partials(layer, arrays, task, scratch)
        return
    kind = layer.kind
    x = _input_region(arrays["x"], task, layer)
    if task.partial is not None:  # filter: write this group's partial sums, no bias
        out = _region(arrays["partials"][task.partial], task, layer)
        bias = None
    else:
        out = _region(arrays["out"], task, layer)
        bias = arrays["bias"][task.channels[0] : task.channels[1]] if "bias" in arrays else None
    if kind == "conv":
        c0, c1 = task.channels
        g0, g1 = task.group if task.group is not None else (0, layer.in_shape[0])
        ops.conv(x, arrays["weight"][c0:c1, g0:g1], bias, out, scratch, cancel)
    elif kind == "pool":
        ops.pool(x, out, scratch, cancel)
    elif kind == "gelu":
        ops.gelu(x, out, scratch, cancel)
    elif kind == "linear":
        c0, c1 = task.channels
        w = arrays["weight"][c0:c1]
        if task.group is not None:
            w = w[:, task.group[0] : task.group[1]]
        # GELU cannot be applied to a partial sum: the reduction applies it
        ops.linear(x, w, bias, layer.gelu and task.partial is None, out, scratch, cancel)
    elif kind == "logsoftmax":
        ops.logsoftmax(x, out, scratch, cancel)
    elif kind == "network":
        network_forward(ops, x, arrays, out, scratch, cancel)
    else:
        raise ValueError(f"no kernel for layer kind {kind!r}")


def reduce_partials(
    layer: Layer, arrays: dict[str, np.ndarray], task: Task, scratch: Scratch
) -> None:
    """Filter strategy, phase 2: out = sum of the groups' partial sums + bias [then GELU]."""
    n0, n1 = task.batch
    out = arrays["out"][n0:n1]
    partials = arrays["partials"][:, n0:n1]
    np.sum(partials, axis=0, out=out)
    bias = arrays["bias"]
    out += bias[:, None, None] if layer.kind == "conv" else bias
    if layer.kind == "linear" and layer.gelu:
        vectorized.gelu(out, out, scratch)


def stage_forward(
    ops, layers, x: np.ndarray, params: dict[str, np.ndarray], scratch: Scratch, cancel=None
) -> np.ndarray:
    """Run consecutive network layers on a chunk; returns the last layer's output (a scratch
    buffer)."""
    y = x
    n = x.shape[0]
    for sub in layers:
        if sub.kind == "linear" or sub.kind == "logsoftmax":
            y = y.reshape(n, -1)
        if sub.kind == "gelu":  # in place on the previous layer's buffer
            ops.gelu(y, y, scratch, cancel)
            continue
        out = scratch.get(f"net.{sub.name}", sub.out_array_shape(n))
        if sub.kind == "conv":
            ops.conv(
                y, params[f"{sub.name}.weight"], params[f"{sub.name}.bias"], out, scratch, cancel
            )
        elif sub.kind == "pool":
            ops.pool(y, out, scratch, cancel)
        elif sub.kind == "linear":
            ops.linear(
                y,
                params[f"{sub.name}.weight"],
                params[f"{sub.name}.bias"],
                sub.gelu,
                out,
                scratch,
                cancel,
            )
        elif sub.kind == "logsoftmax":
            ops.logsoftmax(y, out, scratch, cancel)
        y = out
    return y


def network_forward(ops, x, params, out, scratch: Scratch, cancel=None) -> None:
    if hasattr(ops, "network"):  # a fused whole-network kernel (vectorized)
        ops.network(x, params, out, scratch, cancel)
    else:
        out[...] = stage_forward(ops, NETWORK, x, params, scratch, cancel)


__all__ = ["run_task", "stage_forward", "reduce_partials", "get_layer", "KERNEL_MODULES"]
