"""Compile the native kernels ahead of need, so no timed run pays for numba's compiler.

Every layer runs once with the vectorized kernel, cut as each of its strategies cuts it
for two workers, on a batch of two: numba compiles (or loads from its disk cache) each
kernel for the array layouts real runs hand it. Cold, this takes seconds; warm, it loads.
"""

from __future__ import annotations

import time

import numpy as np

from partui.kernels.forward.compute import run_task
from partui.kernels.model.layers import LAYERS, Layer, make_input, make_params
from partui.kernels.plan.axes import STRATEGIES, not_applicable_reason
from partui.kernels.plan.strategies import plan
from partui.kernels.runtime import jitcache
from partui.kernels.runtime.scratch import Scratch


def compile_kernels(layers=None, on_layer=None) -> float:
    """Compile the native kernels that runs of `layers` (names; default all) use, and mark
    each layer done in the cache. `on_layer(name)` is called before each. Returns seconds."""
    jitcache.configure()
    t0 = time.perf_counter()
    for name in LAYERS if layers is None else layers:
        if on_layer is not None:
            on_layer(name)
        layer = LAYERS[name]
        for strategy in STRATEGIES:
            # pipeline stages call the per-layer kernels, compiled with their layers
            if (
                strategy != "pipeline"
                and not_applicable_reason(layer, strategy, "vectorized", "threads", 2) is None
            ):
                _run_once(layer, strategy)
        if name == "network":
            _train_steps_once()
        jitcache.mark_compiled(name)
    return time.perf_counter() - t0


def _train_steps_once(batch: int = 2) -> None:
    """The training step's kernels (native_grad), as `partui train` and `--pass train` run
    them: a step in one phase (its two tasks one after the other: the second ends the step)
    and in three phases, with and without momentum."""
    from partui.kernels.grad import jobs as passes
    from partui.kernels.grad import training
    from partui.kernels.grad.execution import run_job

    net = LAYERS["network"]
    for together, in_place in ((True, True), (False, False)):
        p = passes.plan(
            net, "train", "batch", batch, 2, together=together, in_place=in_place, momentum=0.9
        )
        arrays = {k: np.zeros(s, np.float32) for k, s in p.shapes.items()}
        arrays["x"][...] = make_input(net, batch)
        arrays["params"][...] = training.flat_params(0)
        scratch = Scratch()
        for job in p.jobs:
            run_job(job, net.name, "vectorized", arrays, scratch)
    _stamped_update_once()


def _stamped_update_once() -> None:
    """Hogwild!'s stamped update (stamps_native) on two blocks of four weights."""
    from partui.kernels.grad import stamps, stamps_native

    p, g = np.zeros(8, np.float32), np.zeros(8, np.float32)
    counters = np.zeros(stamps.counter_words(2), np.int64)
    seen, stale = np.zeros(2, np.int64), np.zeros(2, np.int64)
    edges = np.array([0, 4, 8], np.int64)
    stamps_native.read_versions(counters, seen)
    stamps_native.stamped_sgd(
        p, g, p, counters, edges, seen, stale, np.float32(0.1), np.float32(0.0), 1
    )


def _run_once(layer: Layer, strategy: str, batch: int = 2) -> None:
    p = plan(layer, strategy, batch, 2)
    arrays = {
        "x": make_input(layer, batch),
        **make_params(layer),
        "out": np.empty(layer.out_array_shape(batch), np.float32),
    }
    if p.partials:
        arrays["partials"] = np.empty((p.partials, *layer.out_array_shape(batch)), np.float32)
    scratch = Scratch()
    for phase in p.phases:
        for task in phase:
            run_task(layer, "vectorized", arrays, task, scratch)
