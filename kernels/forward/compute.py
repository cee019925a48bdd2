"""Run one task of a layer: slice the run's arrays to the task's region and call a kernel.

`arrays` holds the run's buffers by name: "x", "out", the parameters ("weight",
"bias", or "conv1.weight", ... for the network) and, for the filter strategy,
"partials" (groups, *out). Tasks write only inside their region.
"""

from __future__ import annotations

import weakref
from functools import partial

import numpy as np

from partui.kernels.forward import loops, vectorized
from partui.kernels.model.layers import NETWORK, Layer, get_layer
from partui.kernels.plan.strategies import Task
from partui.kernels.runtime.scratch import Scratch

KERNEL_MODULES = {"loops": loops, "vectorized": vectorized}
CALLS_KEPT = 256  # bound task calls per worker; all are dropped when full
_HOLDING: weakref.WeakSet = weakref.WeakSet()  # scratches that have bound calls


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
    if task.phase == 1:
        reduce_partials(layer, arrays, task, scratch)
        return
    bound_call(layer, kernel, arrays, task, scratch)(cancel)


def bound_call(layer: Layer, kernel: str, arrays: dict[str, np.ndarray], task: Task, scratch):
    """The task's kernel call(cancel) with its regions (and a native kernel's arguments) made
    once per worker: a repeat then costs the interpreter one look-up and the call.

    Kept in the worker's scratch while the run's arrays are the very same objects (the
    scratch holds them, so no other array can take their place unseen); a kernel that
    depends on the arrays' values (packed weights) checks them at every call.
    """
    ops = KERNEL_MODULES[kernel]
    held = scratch.calls_arrays
    if len(held) == len(arrays) and all(arrays.get(k) is v for k, v in held):
        hit = scratch.calls.get(id(task))
        if hit is not None and hit[0] is task and hit[1] is layer and hit[2] is ops:
            return hit[3]
        if len(scratch.calls) >= CALLS_KEPT:
            scratch.calls.clear()
    else:  # another run's arrays: its calls go, so a worker holds one run's views at most
        scratch.drop_calls()
        scratch.calls_arrays = tuple(arrays.items())
        _HOLDING.add(scratch)
    call = _bind(layer, ops, arrays, task, scratch)
    scratch.calls[id(task)] = (task, layer, ops, call)
    return call


def release_bound_calls(arrays: dict[str, np.ndarray]) -> None:
    """Every worker's bound calls for these arrays let go of them (a run's end: its arrays
    are freed now, not at the worker's next run)."""
    for scratch in list(_HOLDING):
        held = scratch.calls_arrays
        if held and all(arrays.get(k) is v for k, v in held):
            scratch.drop_calls()


def _bind(layer: Layer, ops, arrays: dict[str, np.ndarray], task: Task, scratch):
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
        return _kernel_call(ops, "conv", x, arrays["weight"][c0:c1, g0:g1], bias, out, scratch)
    if kind in ("pool", "gelu", "logsoftmax"):
        return _kernel_call(ops, kind, x, out, scratch)
    if kind == "linear":
        c0, c1 = task.channels
        w = arrays["weight"][c0:c1]
        if task.group is not None:
            w = w[:, task.group[0] : task.group[1]]
        # GELU cannot be applied to a partial sum: the reduction applies it
        gelu = layer.gelu and task.partial is None
        return _kernel_call(ops, "linear", x, w, bias, gelu, out, scratch)
    if kind == "network":
        if hasattr(ops, "network"):  # a fused whole-network kernel (vectorized)
            return _kernel_call(ops, "network", x, arrays, out, scratch)
        return partial(network_forward, ops, x, arrays, out, scratch)
    raise ValueError(f"no kernel for layer kind {kind!r}")


def _kernel_call(ops, name: str, *args):
    """ops.<name>(*args, cancel) as a call(cancel): bound by the module's `bind` where it knows
    the function (arguments made once), else the function with its arguments."""
    fn = getattr(ops, name)
    bind = getattr(ops, "bind", None)
    call = bind(fn, *args) if bind is not None else None
    return call if call is not None else partial(fn, *args)


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
