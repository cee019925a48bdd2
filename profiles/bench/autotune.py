"""A short autotune of the kernels' CPU-dependent knobs (kernels.runtime.tuning), on first
use on a CPU, for the layer shapes partui runs; the choices and every alternative measured
go to the per-CPU cache file.

The rule: for each shape, the candidates (the rule's own setting among them) run on one
thread, one BLAS thread, in interleaved rounds (every candidate once per round, so a change
of load hits them alike); a candidate replaces the rule only when the median of its rounds'
medians is at least MARGIN below the rule's and it was faster than the rule in at least
WINS of the rounds (each round's pair shared its conditions), else the rule stays. Every
candidate's output is compared with the rule's first: a knob never buys speed with a wrong
answer.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from partui.kernels.forward import vectorized
from partui.kernels.model.layers import LAYERS, NETWORK
from partui.kernels.runtime import tuning
from partui.kernels.runtime.scratch import Scratch
from partui.profiles.files.safe_files import write_text
from partui.profiles.run.inputs import input_of, params_of
from partui.profiles.system import blas

FORMAT = "partui-tuning"
MARGIN = 0.03  # a candidate must beat the rule's median by this much to replace it
WINS = 0.8  # ...and be faster in this share of the rounds
CHUNKS = (1, 2, 4, 8, 16, 32)  # samples per chunk of patch rows tried
CALLS = (8, 16, 32)  # samples per native call tried, beside the rule and the whole batch


def _candidates_conv(shape: str, batch: int) -> list[dict]:
    cands: list[dict] = [{}, {"per_sample": True}, {"per_sample": False}]
    cands += [{"per_sample": False, "chunk_samples": m} for m in CHUNKS if m < batch]
    return cands


def _timed(call: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


class Autotune:
    """Measures the knobs of every shape partui runs at `batch`; `run()` returns the file's
    contents (and writes it unless `write` is False)."""

    def __init__(
        self,
        batch: int = 64,
        rounds: int = 5,
        repeats: int = 3,
        progress: Callable[[str], None] | None = None,
    ):
        self.batch, self.rounds, self.repeats = batch, rounds, repeats
        self.progress = progress or (lambda text: None)

    def _bound(self, name: str, shape: str, knobs: dict):
        """The layer's native call with `knobs` for `shape`, its output array, and its input."""
        layer = LAYERS[name]
        arrays = {"x": input_of(name, self.batch, 0), **params_of(name, 0)}
        out = np.full((self.batch, *layer.out_shape), np.nan, np.float32)
        tuning.use({shape: knobs})
        try:
            if name == "network":
                call = vectorized.bind_network(arrays["x"], arrays, out, Scratch())
            else:
                x, w, b = arrays["x"], arrays["weight"], arrays["bias"]
                call = vectorized.bind_conv(x, w, b, out, Scratch())
        finally:
            tuning.use({})
        return call, out

    def _shape(self, name: str, shape: str, cands: list[dict]) -> tuple[dict, list[dict]]:
        """The winning knobs among `cands` and what each measured. cands[0] is the baseline
        (the rule, or the knobs chosen so far); another wins only by MARGIN."""
        bound = [self._bound(name, shape, k) for k in cands]
        ref = None
        ok = []
        for call, out in bound:
            call()
            if ref is None:
                ref = out.copy()
            ok.append(bool(np.allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())))
        rounds: list[list[float]] = [[] for _ in cands]
        for r in range(self.rounds):
            order = range(len(cands)) if r % 2 == 0 else reversed(range(len(cands)))
            for i in order:
                if ok[i]:
                    rounds[i].append(_timed(bound[i][0], self.repeats))
        measured = []
        for i, (knobs, per, good) in enumerate(zip(cands, rounds, ok)):
            row: dict = {"knobs": knobs, "baseline": i == 0, "verified": good}
            if per:
                row.update(
                    median_ms=statistics.median(per), min_ms=min(per), max_ms=max(per), rounds=per
                )
            measured.append(row)
        base = measured[0]["median_ms"]
        best = min((m for m in measured if m.get("median_ms")), key=lambda m: m["median_ms"])
        if best["baseline"] or best["median_ms"] > base * (1 - MARGIN):
            return cands[0], measured
        pairs = list(zip(best["rounds"], measured[0]["rounds"]))
        if sum(c < b for c, b in pairs) < WINS * len(pairs):
            return cands[0], measured  # faster in the median, not round after round
        return best["knobs"], measured

    def run(self, write: bool = True) -> dict:
        t0 = time.monotonic()
        choices: dict[str, dict] = {}
        measured: dict[str, list] = {}
        load_before = _load()
        with blas.limit(1):
            for name, layer in LAYERS.items():
                if layer.kind != "conv":
                    continue
                c, h, w = layer.in_shape
                shape = tuning.conv_shape(c, h, w, layer.out_shape[0])
                self.progress(f"autotune: {name} ({shape}), batch {self.batch}")
                chosen, measured[shape] = self._shape(
                    name, shape, _candidates_conv(shape, self.batch)
                )
                # samples per native call, with the shape's winner
                calls = [chosen] + [
                    {**chosen, "call_samples": k} for k in (*CALLS, self.batch) if k <= self.batch
                ]
                self.progress(f"autotune: {name}, samples per native call")
                chosen, measured[f"{shape} calls"] = self._shape(name, shape, calls)
                if chosen:
                    choices[shape] = chosen
            net: dict = {}
            convs = [sub for sub in NETWORK if sub.kind == "conv"]
            for cv in convs:  # one block at a time, the earlier blocks' winners kept
                if vectorized.direct_rule(cv):  # the rule runs it direct: against a GEMM
                    self.progress(f"autotune: network, {cv.name} direct or by GEMM")
                    key = f"{cv.name}.direct"
                    cands = [dict(net), {**net, key: False}]
                    net, measured[f"network {key}"] = self._shape("network", "network", cands)
                    if net.get(key, True):
                        continue  # direct: no patch rows to chunk
                self.progress(f"autotune: network, {cv.name}'s chunk of patch rows")
                key = f"{cv.name}.chunk_samples"
                cands = [dict(net)] + [{**net, key: m} for m in CHUNKS[:5] if m <= self.batch]
                net, measured[f"network {key}"] = self._shape("network", "network", cands)
            self.progress("autotune: network, samples per native call")
            cands = [dict(net)] + [
                {**net, "call_samples": k} for k in (*CALLS, self.batch) if k <= self.batch
            ]
            net, measured["network calls"] = self._shape("network", "network", cands)
            if net:
                choices["network"] = net
        data = {
            "format": FORMAT,
            "version": tuning.TUNING_VERSION,
            "key": tuning.cpu_key(),
            "cpu": tuning.cpu_identity(),
            "created": time.time(),
            "seconds": time.monotonic() - t0,
            "batch": self.batch,
            "rounds": self.rounds,
            "repeats": self.repeats,
            "margin": MARGIN,
            "load_average": {"before": load_before, "after": _load()},
            "choices": choices,
            "measured": measured,
        }
        path = data["path"] = tuning.cache_path()
        if write:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_text(path, _json(data), overwrite=True)
        tuning.use(choices)
        return data


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _json(data: dict) -> str:
    import json

    return json.dumps(data, indent=1, sort_keys=True)


def ensure(retune: bool = False, progress: Callable[[str], None] | None = None) -> dict | None:
    """This CPU's tuning file, made now if there is none (or `retune`); None when
    PARTUI_AUTOTUNE=0."""
    if not tuning.enabled():
        return None
    data = None if retune else tuning.read_file()
    if data is None:
        data = Autotune(progress=progress).run()
    tuning.use(data["choices"])
    return data
