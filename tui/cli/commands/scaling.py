"""`partui scaling`: where data-parallel training of the network stops paying, per combine
rule, on a network the user names; the model calibrated here and checked against Dask."""

from __future__ import annotations

import sys

from partui.tui.cli.commands.options import add_scheduler_argument, scheduler_from
from partui.tui.cli.errors import UsageError
from partui.tui.text.safe_text import printable
from partui.tui.text.table import print_json, table

QUICK_RUNS = ((1, "tree"), (2, "tree"))  # --quick: the gather run left out
PREDICT_FROM = "median"
BATCHES = tuple(2**k for k in range(11))  # per-worker batches searched for a crossover: 1..1024


def register(sub) -> None:
    p = sub.add_parser(
        "scaling",
        help="where adding machines stops paying for data-parallel training, per combine rule",
        description="Measure here what a sync data-parallel training step costs (one worker's "
        "compute per sample, the gradient's size, one exchange on the Dask transport as "
        "latency + bytes/bandwidth fitted by least squares, Dask's own cost per step, "
        "per task and per stage of waiting tasks), check the model against real Dask "
        "training runs on this machine "
        "(1 and 2 workers), then predict step time and images/s for 1..N workers on "
        "the link you name, for three combine rules: gather to one place (parameter "
        "server), tree reduce and ring all-reduce. Prints where adding machines stops "
        "paying for each rule and the smallest per-worker batch at which Dask beats "
        "this one machine. Progress goes to stderr; the formulas are in the README. "
        "Needs the dask extra (pip install 'partui[dask]'). Exit 2 for bad input.",
    )
    p.add_argument(
        "--bandwidth",
        default="10Gbit",
        metavar="RATE",
        help="each worker's link: 10Gbit, 100Mbit/s, 25Gbps, 1.25GB/s, 800MiB/s (default: 10Gbit)",
    )
    p.add_argument(
        "--latency",
        default="50us",
        metavar="TIME",
        help="one message's latency on that link: 50us, 0.2ms, 100ns (default: 50us)",
    )
    p.add_argument(
        "--batch",
        default="64",
        metavar="B",
        help="samples per worker per step, 1-1024 (default: 64); the validation runs use it",
    )
    p.add_argument(
        "--workers",
        default="1..1024",
        metavar="RANGE",
        help="worker counts to predict, FIRST..LAST within 1..1024, or N for 1..N "
        "(default: 1..1024)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="one round, fewest repeats, no gather validation run: proves it runs, figures noisier",
    )
    add_scheduler_argument(p, when="the calibration")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: calibration, validation, predictions, stops_paying, crossover",
    )
    p.set_defaults(func=cmd_scaling)


def _parse(args):
    from partui.profiles.scaling.link import Link, LinkError, parse_bandwidth, parse_latency
    from partui.profiles.scaling.link import parse_workers as workers_range

    try:
        link = Link(parse_latency(args.latency), parse_bandwidth(args.bandwidth))
        lo, hi = workers_range(args.workers)
    except LinkError as exc:
        raise UsageError(str(exc)) from None
    text = str(args.batch).strip()
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= BATCHES[-1]):
        raise UsageError(f"batch {args.batch!r}: must be an integer from 1 to {BATCHES[-1]}")
    return link, int(text), range(lo, hi + 1)


class _Say:
    """Progress on stderr, each line with the seconds since the start."""

    def __init__(self) -> None:
        import time

        self.clock = time.perf_counter
        self.t0 = self.clock()

    def __call__(self, text: str) -> None:
        print(f"scaling [{self.clock() - self.t0:4.1f} s] {text}", file=sys.stderr, flush=True)


def cmd_scaling(args) -> int:
    link, batch, workers = _parse(args)
    scheduler = scheduler_from(args, ["dask"], when="the calibration")
    from partui.profiles.executors.dask_connect import available
    from partui.profiles.records.config import DASK_MISSING

    if not available():
        raise UsageError(DASK_MISSING.replace("executor 'dask'", "partui scaling"))
    from partui.profiles.scaling import model
    from partui.profiles.scaling.calibrate import calibrate

    if args.quick:
        measured = calibrate(
            batch, scheduler, say=_Say(), repeats=1, rounds=1, steps=2, runs=QUICK_RUNS
        )
    else:
        measured = calibrate(batch, scheduler, say=_Say())
    # the medians: on a busy machine the least samples are few and far apart, and the
    # least step is itself an outlier (both inputs are checked and kept in the JSON)
    inputs = measured["inputs"][PREDICT_FROM]
    rows = {r: model.predict(inputs, r, batch, workers, link) for r in model.RULES}
    stops = {r: model.stops_paying(v) for r, v in rows.items()}
    cross = {r: model.beats_local(inputs, r, BATCHES, workers, link) for r in model.RULES}
    validated = {(v["workers"], v["rule"]) for v in measured["validation"]}
    out = {
        "link": {"bandwidth_bytes_s": link.bandwidth_bytes_s, "latency_s": link.latency_s},
        "batch_per_worker": batch,
        "calibration": measured["calibration"],
        "inputs": {k: v.to_dict() for k, v in measured["inputs"].items()},
        "predictions_from": PREDICT_FROM,
        "validation": measured["validation"],
        "predictions": [
            {**p.to_dict(), "validated": (p.workers, p.rule) in validated}
            for r in model.RULES
            for p in rows[r]
        ],
        "stops_paying": {
            r: {
                **knee.to_dict(),
                "peak_workers": peak.workers,
                "peak_images_per_s": peak.images_per_s,
            }  # fmt: skip
            for r, (knee, peak) in stops.items()
        },
        "one_machine_images_per_s": model.local_images_per_s(inputs, batch),
        "crossover": {
            r: None
            if c is None
            else {
                "batch_per_worker": c[0],
                "workers": c[1],
                "images_per_s": c[2],
                "one_machine_images_per_s": c[3],
            }  # fmt: skip
            for r, c in cross.items()
        },
    }
    if args.json:
        print_json(out)
        return 0
    _print_report(out, link)
    return 0


def _ms(s: float) -> str:
    return f"{s * 1e3:.3g}"


def _print_report(out: dict, link) -> None:
    from partui.profiles.scaling.model import RULES

    cal, inp = out["calibration"], out["inputs"][out["predictions_from"]]
    comp, ex = cal["compute"], cal["exchange"]["fit"]
    load = " ".join(f"{v:.1f}" for v in cal["load_average"])
    busy = cal["load_average"][0] > cal["cluster"]["cores_here"]
    print(
        f"Calibrated here in {cal['seconds']:.0f} s (load average {load}); medians and fits "
        "over all samples (--json: from each size's least sample too):"
    )
    if busy:
        print(
            f"  the machine is busy (load above its {cal['cluster']['cores_here']} cores): "
            "others' work is in every figure, medians most"
        )
    cf = comp["fit"]
    bw = 1 / ex["slope"] / 1e6 if ex["slope"] > 0 else float("inf")
    rel = ex["slope_se"] / ex["slope"] if ex["slope"] > 0 else float("inf")
    lines = [
        ("compute per sample (1 worker, " + comp["kernel"] + ")",
         f"{cf['slope'] * 1e3:.3f} ms ± {cf['slope_se'] * 1e3:.3f} (fit over batches "
         f"{', '.join(comp['per_batch_s'])})"),
        ("compute per step (SGD update + fit intercept)", f"{_ms(inp['compute_s_per_step'])} ms"),
        ("gradient", f"{inp['grad_bytes']} bytes"),
        ("one exchange on Dask here: latency",
         f"{ex['intercept'] * 1e3:.3g} ms ± {ex['intercept_se'] * 1e3:.2g}"),
        ("  bandwidth", f"{bw:.0f} MB/s (1/slope; slope ± {rel:.0%})" if ex["slope"] > 0
         else "not resolved: the fitted slope is not above zero (noise above the bytes' cost)"),
        ("Dask step of tasks doing nothing",
         f"{_ms(cal['dask_step_s']['median'])} ms ({_ms(cal['dask_step_s']['min'])}-"
         f"{_ms(cal['dask_step_s']['max'])})"),
        ("Dask cost of one more task",
         f"{_ms(inp['dask_task_s'])} ms ± {_ms(cal['dask_tasks']['fit']['slope_se'])}"),
        ("Dask cost of one more stage (a task waiting)",
         f"{_ms(inp['dask_level_s'])} ms ± {_ms(cal['dask_chain']['fit']['slope_se'])}"),
        (f"one machine ({inp['local_workers']} threads)",
         f"{out['one_machine_images_per_s']:.0f} images/s at batch {out['batch_per_worker']} "
         "per thread"),
        ("cores the training effectively had here", f"{inp['parallel_here']:.2f}"),
    ]  # fmt: skip
    for name, value in lines:
        print(f"  {name:<48} {value}")
    print()
    print(
        "Validation: real Dask training here, the model with this machine's transport "
        f"(scheduler {printable(cal['cluster']['scheduler'])}):"
    )
    rows = []
    for v in out["validation"]:
        m = v["measured_step_ms"]
        rows.append(
            [
                v["workers"],
                v["rule"],
                v["batch_per_worker"],
                f"{m['median']:.1f} ({m['min']:.1f}-{m['max']:.1f}, n={m['n']})",
                f"{v['predicted_step_ms']:.1f}",
                f"{v['relative_error']:+.0%}",
                f"{v['predicted_step_min_ms']:.1f}",
                f"{v['relative_error_min']:+.0%}",
            ]
        )
    heads = ["workers", "rule", "batch", "measured ms", "from medians", "error"]
    print(table([*heads, "from least", "error vs least"], rows))
    cores = cal["cluster"]["cores_here"]
    print(
        "  from medians: the model with every figure's median (the predictions use these), "
        "against the median step;\n  from least: with every figure's least sample, against "
        f"the least step.\n  More workers than this machine's {cores} cores would measure "
        "time-sharing, not scaling: not run.\n  Ring all-reduce has no Dask implementation "
        "here: not checked."
    )
    print()
    b = out["batch_per_worker"]
    print(f"Predicted on {link.describe()}, batch {b} per worker (one worker per core):")
    rows = []
    for rule in RULES:
        s = out["stops_paying"][rule]
        c = out["crossover"][rule]
        beat = (
            "never (in 1..1024 samples/worker)"
            if c is None
            else f"batch {c['batch_per_worker']}/worker on {c['workers']} workers "
            f"({c['images_per_s']:.0f} vs {c['one_machine_images_per_s']:.0f} images/s)"
        )
        rows.append(
            [
                rule,
                s["workers"],
                f"{s['images_per_s']:.0f}",
                f"{s['step_ms']:.1f}",
                f"{s['efficiency']:.0%}",
                f"{s['peak_workers']} ({s['peak_images_per_s']:.0f})",
                beat,
            ]
        )
    heads = ["rule", "stops paying at", "images/s", "step ms", "efficiency", "peak (images/s)"]
    print(table([*heads, "beats one machine"], rows, align="lrrrrrl"))
    print(
        "  stops paying at: the fewest workers from which doubling them adds under 10% "
        "images/s;\n  peak: the worker count of the most images/s.\n  Beyond the checked "
        "points (1 and 2 workers at this batch) the figures are the model's extrapolation, "
        "its error unknown."
    )
