"""Backward and training passes under the engine: seeded inputs, phases of jobs, verification.

`Engine.run` hands a configuration whose pass is not `forward` to `run_pass`. A
repeat runs the plan's phases one after another (backward or forward+backward
tasks, the combine phase, the update), every job's spans named by phase. The
update of a profiled training step writes "params.new", so every repeat starts
from the same weights and is checked the same way.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache

import numpy as np

from partui.kernels.grad import jobs as passes
from partui.kernels.grad import reference as grad_reference
from partui.kernels.grad import training
from partui.kernels.model.layers import _rng, get_layer
from partui.profiles.executors.jobs import TOGETHER, run_jobs
from partui.profiles.records.events import RunStarted, SpanDone
from partui.profiles.run.repeats import (
    report,
    stopped_runs_reported,
    timed_repeats,
    timing_conditions,
)
from partui.profiles.run.sampler import CpuSampler
from partui.profiles.system import blas

CLASSES = 26


def make_output_grad(layer, batch: int, seed: int = 0) -> np.ndarray:
    """A seeded upstream gradient for a layer's backward pass (float32, the output's shape)."""
    return _rng(seed, layer.name, "output_grad").standard_normal(
        layer.out_array_shape(batch), dtype=np.float32
    )


def make_labels(batch: int, seed: int = 0) -> np.ndarray:
    """Seeded class labels (int64) for a profiled training step."""
    return _rng(seed, "network", "labels").integers(0, CLASSES, batch).astype(np.int64)


@lru_cache(maxsize=4)
def _inputs(layer_name: str, pass_kind: str, batch: int, seed: int):
    from partui.profiles.run.inputs import _input, _params

    layer = get_layer(layer_name)
    x = _input(layer_name, batch, seed)
    params = _params(layer_name, seed)
    flat = np.empty(training.layout_size(passes.param_layout(layer)), np.float32)
    for k, v in training.views(flat, passes.param_layout(layer)).items():
        v[...] = params[k]
    extra = (
        make_labels(batch, seed) if pass_kind == "train" else make_output_grad(layer, batch, seed)
    )
    return x, params, flat, extra


@lru_cache(maxsize=2)
def _reference(layer_name: str, pass_kind: str, batch: int, seed: int):
    layer = get_layer(layer_name)
    x, params, _, extra = _inputs(layer_name, pass_kind, batch, seed)
    if pass_kind == "train":
        return grad_reference.network_loss_and_grads(x, extra, params)
    return None, grad_reference.backward(layer, x, params, extra)


def _worst(checks) -> tuple[float, float, bool]:
    """Of several (err, tol, ok) checks, the one furthest over (or nearest to) its tolerance."""
    from partui.profiles.run.verification import verify

    results = [verify(got, want) for got, want in checks]
    bad = [r for r in results if not r[2]]
    pool = bad or results
    return max(pool, key=lambda r: r[0] / r[1] if r[1] else float("inf"))


def run_pass(engine, cfg, emit=None, keep_arrays: bool = False):
    """Run a backward or training pass of `cfg` on its executor, verified against float64."""
    emit = emit or (lambda event: None)
    run_id = engine.new_run()
    layer = get_layer(cfg.layer)
    ex = engine.executor(cfg.executor, cfg.workers)
    ex.reset()
    engine.current = ex
    startup = ex.start()
    emit(RunStarted(run_id, cfg, startup))
    lock = None
    if cfg.combine == "locked":
        fd, lock = tempfile.mkstemp(prefix="partui-combine-", suffix=".lock")
        os.close(fd)
    plan = passes.plan(
        layer,
        cfg.pass_kind,
        cfg.strategy,
        cfg.batch,
        cfg.workers,
        cfg.combine,
        passes.DEFAULT_LR,
        lock,
        together=cfg.executor in TOGETHER,
    )
    x, params, flat, extra = _inputs(cfg.layer, cfg.pass_kind, cfg.batch, cfg.seed)
    arena = ex.arena(plan.shapes)
    arrays = arena.arrays
    outputs = [k for k in ("gx", "grad", "params.new") if k in arrays]
    sampler = None
    on_span = lambda s: emit(SpanDone(s))  # noqa: E731

    def before(rep: int) -> None:
        for k in outputs:
            arrays[k].fill(np.nan)  # a region no job writes cannot pass

    def one(rep: int) -> list:
        for k in plan.zero:  # the locked accumulator starts at zero: part of the step
            arrays[k].fill(0.0)
        spans = []
        for phase in plan.phases:
            spans += run_jobs(ex, arena, phase, cfg.layer, cfg.kernel, run_id, rep, on_span)
        return spans

    try:
        with stopped_runs_reported(engine, ex, run_id, cfg, emit):
            arrays["x"][...] = x
            if "params" in arrays:
                arrays["params"][...] = flat
            arrays["labels" if cfg.pass_kind == "train" else "gy"][...] = extra
            if engine.sample_hz:
                sampler = CpuSampler(ex.worker_ids(), emit, ex.processes, engine.sample_hz).start()
            with timing_conditions(ex):
                timed = timed_repeats(
                    run_id, cfg, ex.cancel_event, emit, one, before, sampler=sampler
                )
            got = {k: np.array(arrays[k]) for k in outputs}
            if "stats" in arrays:
                got["stats"] = np.array(arrays["stats"], dtype=np.float64)
    finally:
        if sampler:
            sampler.stop()
        arena.close()
        engine.current = None
        if lock:
            os.unlink(lock)

    with blas.limit(1):  # leaves no BLAS thread spinning into the next run
        ref_loss, ref = _reference(cfg.layer, cfg.pass_kind, cfg.batch, cfg.seed)
    layout = passes.param_layout(layer)
    grads = training.views(got["grad"], layout) if layout else {}
    if cfg.pass_kind == "train":
        loss = float(got["stats"][:, 0].sum()) / cfg.batch
        new = training.views(got["params.new"], layout)
        lr = passes.DEFAULT_LR
        checks = [(grads[k], ref[k]) for k in layout]
        checks += [(new[k], params[k].astype(np.float64) - lr * ref[k]) for k in layout]
        checks.append((np.array([loss]), np.array([ref_loss])))
    else:
        checks = [(got["gx"], ref["input"])]
        checks += [(grads[k], ref[k]) for k in layout]
    err, tol, ok = _worst(checks)
    result = engine.result(
        cfg, layer, timed.times_ms, timed.spans, err, tol, ok, startup, tasks=len(plan.phases[0])
    )
    result.flops = (
        layer.flops(cfg.batch) + passes.backward_flops(layer, cfg.batch)
        if cfg.pass_kind == "train"
        else passes.backward_flops(layer, cfg.batch)
    )
    result.repeat_start_ns = timed.starts_ns
    result.worker_cpus = ex.worker_cpus
    if sampler:
        result.cpu_samples = sampler.samples
        result.on_cpu_ratio = timed.on_cpu_ratio(cfg.workers)
    if keep_arrays:
        result.arrays = saved_arrays(cfg, layer, x, params, extra, got)
    return report(result, run_id, err, tol, emit, "result")


def saved_arrays(cfg, layer, x, params, extra, got) -> dict[str, np.ndarray]:
    """The files `--save-arrays` writes for a backward or training pass (name -> array)."""
    layout = passes.param_layout(layer)
    grads = training.views(got["grad"], layout) if layout else {}
    if cfg.pass_kind == "train":
        out = {"input": x, "labels": extra.astype(np.int64)}
        for k in layout:
            out[k] = params[k]
            out[f"{k}.grad"] = grads[k]
        out["loss"] = np.array(float(got["stats"][:, 0].sum()) / cfg.batch, dtype=np.float32)
        return out
    out = {
        "input": x,
        **{k: params[k] for k in layout},
        "output_grad": extra,
        "input_grad": got["gx"],
    }
    out.update({f"{k}_grad": grads[k] for k in layout})
    return out


def phase_walls(spans, pass_kind: str) -> dict[str, float]:
    """Median over repeats of each phase's wall time in ms (first start to last end of its spans).

    A locked combine runs inside the backward tasks: its wall overlaps theirs.
    """
    by: dict[tuple[int, int], list[int]] = {}
    for s in spans:
        lo_hi = by.setdefault((s.phase, s.repeat), [s.start_ns, s.end_ns])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], s.start_ns), max(lo_hi[1], s.end_ns)
    out: dict[str, list[float]] = {}
    for (phase, _), (lo, hi) in sorted(by.items()):
        out.setdefault(passes.phase_name(pass_kind, phase), []).append((hi - lo) / 1e6)
    return {name: float(np.median(v)) for name, v in out.items()}
