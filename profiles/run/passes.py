"""What a pass changes in a run: its arrays, how it loads them, one repeat, what it checks and
how many FLOPs it makes. The engine asks; a pass never sees the engine.

- ForwardPass: a layer's forward pass, cut into tasks by its strategy (or the pipeline).
- GradPass: a layer's backward pass, or a training step of the network, cut into phases of
  jobs (forward+backward, combine, update); the update writes "params.new", so every repeat
  starts from the same weights and is checked the same way.
- WholeStepPass: a training step on an executor that runs a step as one call (its workers
  keep the weights; see Executor.runs_whole_steps).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from partui.kernels.grad import jobs, training
from partui.kernels.model.layers import get_layer
from partui.kernels.plan import strategies
from partui.kernels.plan.pass_axes import TRANSFER, phase_name
from partui.kernels.plan.strategies import split_range
from partui.profiles.executors.jobs import run_jobs
from partui.profiles.records.events import Span
from partui.profiles.run.inputs import (
    forward_reference,
    grad_inputs,
    grad_reference_of,
    input_of,
    params_of,
)
from partui.profiles.run.pipeline import Pipeline
from partui.profiles.run.verification import verify


class Pass:
    """The pass protocol, with the defaults most passes keep."""

    what = "output"  # what a failed check names when it holds NaN
    flops = 0

    def __init__(self, cfg):
        self.cfg = cfg
        self.layer = get_layer(cfg.layer)
        self.shapes: dict[str, tuple[int, ...]] = {}

    def load(self, arrays: dict) -> None:
        """Fill the run's arrays with its inputs (before the warm-ups)."""

    def before(self, arrays: dict, rep: int) -> None:
        """Untimed, before each repeat: outputs set to NaN, so a region no task writes fails."""

    def one(self, ex, arena, run: int, rep: int, on_span) -> list[Span]:
        """One repeat on `ex` (timed); its spans."""
        raise NotImplementedError

    def after(self, rep: int, spans: list[Span], on_span) -> None:
        """Untimed, after each repeat, with the repeat's spans."""

    def collect(self, arrays: dict) -> dict[str, np.ndarray]:
        """Copies of the outputs, taken before the arrays are freed."""
        return {}

    def check(self, got: dict) -> tuple[float, float, bool]:
        """(max abs error, tolerance, within it) against the float64 reference."""
        raise NotImplementedError

    def saved(self, got: dict) -> dict[str, np.ndarray]:
        """The arrays `--save-arrays` writes (name -> array)."""
        return {}

    def tasks(self, spans: list[Span], repeats: int) -> int:
        """Tasks per repeat."""
        return len([s for s in spans if s.phase != TRANSFER]) // max(1, repeats)

    def finish(self, result, ex) -> None:
        """Fields of the result that only this pass knows."""

    def close(self) -> None:
        """Release what the pass made outside the run's arrays."""


class ForwardPass(Pass):
    def __init__(self, cfg, pipelines: dict):
        super().__init__(cfg)
        self.x = input_of(cfg.layer, cfg.batch, cfg.seed)
        self.params = params_of(cfg.layer, cfg.seed)
        self.flops = self.layer.flops(cfg.batch)
        self.plan = self.pipeline = None
        if cfg.strategy == "pipeline":  # its buffers are reused from run to run
            key = (cfg.kernel, cfg.batch, cfg.workers)
            if pipelines.get("pipeline") is None or pipelines["pipeline"].key != key:
                pipelines["pipeline"] = Pipeline(*key)
            self.pipeline = pipelines["pipeline"]
        else:
            self.plan = strategies.plan(self.layer, cfg.strategy, cfg.batch, cfg.workers)
        self.shapes = {
            "x": self.x.shape,
            "out": self.layer.out_array_shape(cfg.batch),
            **{k: v.shape for k, v in self.params.items()},
        }
        if self.plan is not None and self.plan.partials:
            self.shapes["partials"] = (self.plan.partials, *self.shapes["out"])

    def load(self, arrays):
        arrays["x"][...] = self.x
        for k, v in self.params.items():
            arrays[k][...] = v

    def before(self, arrays, rep):
        arrays["out"].fill(np.nan)

    def one(self, ex, arena, run, rep, on_span):
        if self.plan is None:
            assert self.pipeline is not None
            return self.pipeline.repeat(ex, arena.arrays, run, rep, on_span)
        spans = []
        for phase in self.plan.phases:
            spans += ex.run_phase(self.layer, self.cfg.kernel, arena, phase, run, rep, on_span)
        return spans

    def collect(self, arrays):
        return {"output": np.array(arrays["out"])}

    def check(self, got):
        c = self.cfg
        return verify(got["output"], forward_reference(c.layer, c.batch, c.seed))

    def saved(self, got):
        return {"input": self.x, "output": got["output"], **self.params}


class GradPass(Pass):
    """A backward pass of one layer, or a training step of the network, in phases of jobs."""

    what = "result"

    def __init__(self, cfg, together: bool):
        super().__init__(cfg)
        self.lock = None
        if cfg.combine == "locked":
            fd, self.lock = tempfile.mkstemp(prefix="partui-combine-", suffix=".lock")
            os.close(fd)
        self.plan = jobs.plan(
            self.layer,
            cfg.pass_kind,
            cfg.strategy,
            cfg.batch,
            cfg.workers,
            cfg.combine,
            jobs.DEFAULT_LR,
            self.lock,
            together=together,
        )
        self.shapes = self.plan.shapes
        self.x, self.params, self.flat, self.extra = grad_inputs(
            cfg.layer, cfg.pass_kind, cfg.batch, cfg.seed
        )
        self.outputs = [k for k in ("gx", "grad", "params.new") if k in self.shapes]
        self.flops = jobs.backward_flops(self.layer, cfg.batch)
        if cfg.pass_kind == "train":
            self.flops += self.layer.flops(cfg.batch)

    def load(self, arrays):
        arrays["x"][...] = self.x
        if "params" in arrays:
            arrays["params"][...] = self.flat
        arrays["labels" if self.cfg.pass_kind == "train" else "gy"][...] = self.extra

    def before(self, arrays, rep):
        for k in self.outputs:
            arrays[k].fill(np.nan)

    def one(self, ex, arena, run, rep, on_span):
        for k in self.plan.zero:  # the locked accumulator starts at zero: part of the step
            arena.arrays[k].fill(0.0)
        spans = []
        for phase in self.plan.phases:
            spans += run_jobs(ex, arena, phase, self.cfg.layer, self.cfg.kernel, run, rep, on_span)
        return spans

    def collect(self, arrays):
        got = {k: np.array(arrays[k]) for k in self.outputs}
        if "stats" in arrays:
            got["stats"] = np.array(arrays["stats"], dtype=np.float64)
        return got

    def check(self, got):
        return grad_check(self.cfg, self.layer, self.params, got)

    def saved(self, got):
        return saved_arrays(self.cfg, self.layer, self.x, self.params, self.extra, got)

    def tasks(self, spans, repeats):
        return len(self.plan.phases[0])

    def close(self):
        if self.lock:
            os.unlink(self.lock)
            self.lock = None


class WholeStepPass(Pass):
    """A training step of the network run by the executor as one call (train_step)."""

    what = "result"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.x, self.params, self.flat, self.labels = grad_inputs(
            cfg.layer, "train", cfg.batch, cfg.seed
        )
        self.lr = jobs.DEFAULT_LR
        self.flops = self.layer.flops(cfg.batch) + jobs.backward_flops(self.layer, cfg.batch)
        self.steps: list[dict] = []
        self.last: dict = {}

    def one(self, ex, arena, run, rep, on_span):
        grad, new, stats, spans, figures = ex.train_step(
            self.cfg, self.flat, self.x, self.labels, self.lr, run, rep
        )
        self.last = {"grad": grad, "params.new": new, "stats": stats, "figures": figures}
        return spans

    def after(self, rep, spans, on_span):
        for s in spans:
            on_span(s)
        if rep >= 0:
            self.steps.append(self.last["figures"])

    def collect(self, arrays):
        return {k: v for k, v in self.last.items() if k != "figures"}

    def check(self, got):
        return grad_check(self.cfg, self.layer, self.params, got)

    def saved(self, got):
        return saved_arrays(self.cfg, self.layer, self.x, self.params, self.labels, got)

    def tasks(self, spans, repeats):
        return len(split_range(self.cfg.batch, self.cfg.workers))

    def finish(self, result, ex):
        summary = ex.step_summary(self.steps, self.flat.nbytes, self.cfg.combine)
        if result.dask is not None:
            result.dask["training"] = summary


def make_pass(cfg, executor_class, pipelines: dict) -> Pass:
    """The pass object of `cfg` on executors of `executor_class`. `pipelines`: the engine's
    store of pipeline buffers, reused from run to run."""
    if cfg.pass_kind == "forward":
        return ForwardPass(cfg, pipelines)
    if cfg.pass_kind == "train" and executor_class.runs_whole_steps:
        return WholeStepPass(cfg)
    return GradPass(cfg, together=executor_class.runs_jobs_together)


def worst(checks) -> tuple[float, float, bool]:
    """Of several (err, tol, ok) checks, the one furthest over (or nearest to) its tolerance."""
    results = [verify(got, want) for got, want in checks]
    bad = [r for r in results if not r[2]]
    pool = bad or results
    return max(pool, key=lambda r: r[0] / r[1] if r[1] else float("inf"))


def grad_check(cfg, layer, params, got) -> tuple[float, float, bool]:
    """A backward pass's input and parameter gradients, or a training step's gradients,
    updated weights and loss, against the float64 reference."""
    ref_loss, ref = grad_reference_of(cfg.layer, cfg.pass_kind, cfg.batch, cfg.seed)
    layout = jobs.param_layout(layer)
    grads = training.views(got["grad"], layout) if layout else {}
    if cfg.pass_kind == "train":
        loss = float(got["stats"][:, 0].sum()) / cfg.batch
        new = training.views(got["params.new"], layout)
        lr = jobs.DEFAULT_LR
        checks = [(grads[k], ref[k]) for k in layout]
        checks += [(new[k], params[k].astype(np.float64) - lr * ref[k]) for k in layout]
        checks.append((np.array([loss]), np.array([ref_loss])))
    else:
        checks = [(got["gx"], ref["input"])]
        checks += [(grads[k], ref[k]) for k in layout]
    return worst(checks)


def saved_names(cfg) -> list[str]:
    """The names of the arrays `--save-arrays` writes for `cfg` (saved_arrays' keys, known
    before the run, so every file can be checked before the first is written)."""
    layer = get_layer(cfg.layer)
    if cfg.pass_kind == "forward":
        return ["input", "output", *params_of(cfg.layer, cfg.seed)]
    layout = list(jobs.param_layout(layer))
    if cfg.pass_kind == "train":
        return ["input", "labels", *(n for k in layout for n in (k, f"{k}.grad")), "loss"]
    return ["input", *layout, "output_grad", "input_grad", *(f"{k}_grad" for k in layout)]


def saved_arrays(cfg, layer, x, params, extra, got) -> dict[str, np.ndarray]:
    """The files `--save-arrays` writes for a backward or training pass (name -> array)."""
    layout = jobs.param_layout(layer)
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
        out.setdefault(phase_name(pass_kind, phase), []).append((hi - lo) / 1e6)
    return {name: float(np.median(v)) for name, v in out.items()}
