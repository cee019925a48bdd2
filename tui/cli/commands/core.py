"""`partui list`, `partui info`, `partui run`."""

from __future__ import annotations

import argparse
import os
import re
import sys

from partui.kernels.model.layers import GELU_FORMULA, LAYER_NAMES, LAYERS, MAX_BATCH
from partui.kernels.plan.axes import EXECUTORS, KERNELS, STRATEGIES, not_applicable_reason
from partui.profiles.records.limits import MAX_WORKERS, default_workers
from partui.profiles.system.units import size_text
from partui.tui.cli.errors import UsageError
from partui.tui.text.safe_text import echo
from partui.tui.text.table import flops_text, ms, print_json, table

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:  # both load on first use: `partui --help` needs neither
    from pathlib import Path

    from partui.profiles.records.config import RunConfig

EXECUTOR_LETTER = {
    "inline": "i",
    "threads": "t",
    "threads-dynamic": "d",
    "processes": "p",
    "blas": "b",
    "dask": "D",
}


def register(sub) -> None:
    p = sub.add_parser(
        "list",
        help="layers, strategies, kernels, executors and valid combinations",
        description="List the network's layers (shapes, FLOPs) and which "
        "strategy x kernel x executor combinations are valid.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "info",
        help="this machine: CPU, cores, caches, memory, BLAS",
        description="Show the machine partui measures: CPU model, logical and "
        "physical cores, caches (sysfs), memory, BLAS libraries and "
        "their thread counts, Python and numpy versions.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "run",
        help="run one configuration, timed and verified",
        description="Run one layer under one strategy, kernel and executor: "
        "warm-ups, then timed repeats; every run is checked against "
        "a float64 reference. Exit 0 when verified, 1 when the result "
        "is wrong, 2 for bad input or a combination that is not "
        "applicable, 130 on Ctrl+C.",
    )
    add_config_arguments(p)
    p.add_argument(
        "--pass",
        dest="pass_kind",
        default="forward",
        choices=["forward", "backward", "train"],
        metavar="P",
        help="forward; backward (one layer: input and parameter gradients from a seeded "
        "upstream gradient); train (--layer network: forward, NLL loss, backward, "
        "gradient combination, one SGD update)",
    )
    p.add_argument(
        "--combine",
        default="reduce",
        choices=["reduce", "locked", "gather"],
        metavar="C",
        help="how partial gradients meet: reduce (per-task buffers, summed once every "
        "task's backward is done: on threads and processes by the tasks themselves, each "
        "a share; on dask a tree of adds on the workers), locked (one shared accumulator "
        "under a lock) or gather (dask only: every gradient fetched here and summed here)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (times, spans, error) instead of tables",
    )
    p.add_argument(
        "--save-arrays",
        metavar="DIR",
        help="write the run's arrays as .npy files to DIR, to check them with another "
        "library (PyTorch layouts). forward: input, weight, bias, output. "
        "backward: input, weight, bias, output_grad, input_grad, weight_grad, "
        "bias_grad. train: input, labels, <layer>.weight/.bias and their "
        "<layer>.weight.grad/.bias.grad (before the update), loss. A README.txt beside "
        "them says what was computed (the formula, the GELU form, shapes, dtypes)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace .npy files (and README.txt) of those names already in DIR",
    )
    p.set_defaults(func=cmd_run)


_INT = re.compile(r"[+-]?[0-9]+")


def ascii_int(text: str) -> int:
    """An integer written with ASCII digits only (int() also takes other scripts' digits)."""
    if not _INT.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected an integer, got {echo(text)}")
    return int(text)


def parse_int(text: str, what: str) -> int:
    """ascii_int for values inside a list option: UsageError naming the option."""
    if not _INT.fullmatch(text.strip()):
        raise UsageError(f"{what} takes integers like 1,2,4, got {echo(text.strip())}")
    return int(text)


def add_config_arguments(p, layer_required: bool = True) -> None:
    """The options that make a RunConfig, shared by every command that runs layers."""
    add_layer_argument(p, layer_required)
    p.add_argument(
        "--strategy",
        default="batch",
        choices=list(STRATEGIES),
        metavar="S",
        help="how the work is cut: " + ", ".join(STRATEGIES),
    )
    add_kernel_argument(p)
    p.add_argument(
        "--executor",
        default="threads",
        choices=list(EXECUTORS),
        metavar="E",
        help="who runs the tasks: " + ", ".join(EXECUTORS),
    )
    p.add_argument(
        "--workers",
        type=ascii_int,
        default=default_workers(),
        metavar="N",
        help=f"worker threads or processes (BLAS threads for --executor blas), 1..{MAX_WORKERS}",
    )
    add_scheduler_argument(p)
    add_repeat_arguments(p)


def add_layer_argument(p, required: bool = True) -> None:
    p.add_argument(
        "--layer",
        required=required,
        choices=LAYER_NAMES,
        metavar="LAYER",
        help="one of: " + ", ".join(LAYER_NAMES),
    )


def add_kernel_argument(p) -> None:
    p.add_argument(
        "--kernel",
        default="vectorized",
        choices=list(KERNELS),
        metavar="K",
        help="loops or vectorized",
    )


def add_repeat_arguments(p, each: str = "") -> None:
    """--batch, --repeat, --warmup, --seed; `each`: what the repeats are counted per."""
    p.add_argument(
        "--batch", type=ascii_int, default=64, metavar="B", help=f"samples, 1..{MAX_BATCH}"
    )
    p.add_argument("--repeat", type=ascii_int, default=5, metavar="R", help="timed repeats" + each)
    p.add_argument(
        "--warmup", type=ascii_int, default=1, metavar="W", help="untimed warm-up repeats" + each
    )
    p.add_argument(
        "--seed", type=ascii_int, default=0, metavar="K", help="seed of inputs and weights"
    )


def add_scheduler_argument(p, when: str = "--executor dask") -> None:
    """`when`: the flag that asks for Dask, as the command spells it."""
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help=f"{when}: the address of a running Dask scheduler (tcp://HOST:PORT) "
        "instead of a LocalCluster partui starts and stops itself; default "
        "$PARTUI_DASK_SCHEDULER. partui never stops a cluster it did not start",
    )


def scheduler_from(args, executors, when: str = "--executor dask") -> str:
    """--scheduler, else $PARTUI_DASK_SCHEDULER, when a Dask executor is asked for."""
    given = getattr(args, "scheduler", None)
    if given is not None and "dask" not in executors:
        raise UsageError(f"--scheduler applies to {when}")
    if "dask" not in executors:
        return ""
    address = given if given is not None else os.environ.get("PARTUI_DASK_SCHEDULER", "")
    address = address.strip()
    if given is not None and not address:
        raise UsageError("--scheduler needs an address like tcp://127.0.0.1:8786")
    return address


def config_from(args, **overrides) -> RunConfig:
    from partui.profiles.records.config import RunConfig

    values = dict(
        layer=args.layer,
        strategy=args.strategy,
        kernel=args.kernel,
        executor=args.executor,
        workers=args.workers,
        batch=args.batch,
        repeats=args.repeat,
        warmup=args.warmup,
        seed=args.seed,
        pass_kind=getattr(args, "pass_kind", "forward"),
        combine=getattr(args, "combine", "reduce"),
        scheduler=scheduler_from(args, [args.executor]),
    )
    values.update(overrides)
    return RunConfig(**values)


# ---- list -------------------------------------------------------------------


def cmd_list(args) -> int:
    if args.json:
        print_json(list_data(), indent=2)
        return 0
    rows = []
    for name, layer in LAYERS.items():
        params = "x".join(map(str, layer.weight_shape)) if layer.weight_shape else "-"
        rows.append(
            [
                name,
                layer.operation,
                layer.shape_text(),
                params,
                flops_text(layer.flops(1)),
                flops_text(layer.flops(64)),
            ]
        )
    print(
        table(
            ["layer", "operation", "per-sample shape", "weight", "FLOPs/sample", "FLOPs@64"],
            rows,
            align="llllrr",
        )
    )
    print(f"NCHW float32; weights in PyTorch layouts; {GELU_FORMULA}")
    print()
    for title, items in (
        ("strategies", STRATEGIES),
        ("kernels", KERNELS),
        ("executors", EXECUTORS),
    ):
        print(f"{title}:")
        width = max(11, *(len(key) for key in items))
        for key, text in items.items():
            if key == "dask" and not dask_installed():
                text += "; NOT INSTALLED here"
            print(f"  {key:<{width}} {text}")
    print()
    print(
        "valid combinations (letters: executors valid with the vectorized kernel; "
        "i=inline t=threads d=threads-dynamic p=processes b=blas D=dask; loops: the same "
        "without b):"
    )
    headers = ["layer"] + list(STRATEGIES)
    rows = []
    for name, layer in LAYERS.items():
        row = [name]
        for strategy in STRATEGIES:
            letters = "".join(
                EXECUTOR_LETTER[e]
                for e in EXECUTORS
                if not_applicable_reason(
                    layer, strategy, "vectorized", e, 1 if e == "inline" else 2
                )
                is None
            )
            row.append(letters or ".")
        rows.append(row)
    print(table(headers, rows, align="l" * len(headers)))
    return 0


def dask_installed() -> bool:
    """Dask distributed is there (looked up, not imported: `list` stays light)."""
    from importlib.util import find_spec

    return find_spec("distributed") is not None


def list_data() -> dict:
    combos = {}
    for name, layer in LAYERS.items():
        combos[name] = [
            {"strategy": s, "kernel": k, "executor": e}
            for s in STRATEGIES
            for k in KERNELS
            for e in EXECUTORS
            if not_applicable_reason(layer, s, k, e, 1 if e == "inline" else 2) is None
        ]
    return {
        "layers": [
            {
                "name": n,
                "kind": layer.kind,
                "operation": layer.operation,
                "in_shape": layer.in_shape,
                "out_shape": layer.out_shape,
                "weight_shape": layer.weight_shape,
                "flops_per_sample": layer.flops(1),
            }
            for n, layer in LAYERS.items()
        ],
        "strategies": STRATEGIES,
        "kernels": KERNELS,
        "executors": EXECUTORS,
        "valid": combos,
    }


# ---- info -------------------------------------------------------------------


def cmd_info(args) -> int:
    from partui.profiles.system.machine import info

    data = info()
    if args.json:
        print_json(data.to_dict(), indent=2)
        return 0
    print(f"CPU          {data.cpu_model}")
    print(
        f"cores        {data.logical_cores} logical, {data.physical_cores} physical, "
        f"{data.usable_cores} usable by partui"
    )
    for c in data.caches:
        print(
            f"cache L{c['level']:<2}     {c['type']:<12} {size_text(c['size']):>9}   "
            f"line {c['line']} B   shared by cpus {c['shared_cpus']}"
        )
    if not data.caches:
        print("caches       (sysfs does not list them here)")
    print(
        f"memory       {size_text(data.memory_total or 0)} total, "
        f"{size_text(data.memory_available or 0)} available"
    )
    for lib in data.blas or []:
        print(
            f"BLAS         {lib['internal_api']} {lib['version']} ({lib['user_api']}, "
            f"{lib['threading_layer']}), {lib['num_threads']} threads"
        )
    if not data.blas:
        print("BLAS         none found by threadpoolctl")
    print(f"Python       {data.python}   numpy {data.numpy}")
    return 0


# ---- run --------------------------------------------------------------------


def check_writable_dir(path: str) -> Path:
    """Create `path` if needed and prove it is writable, or raise UsageError."""
    import tempfile
    from pathlib import Path

    d = Path(path)
    try:
        d.mkdir(parents=True, exist_ok=True)
        # an unpredictable name made with O_EXCL: a planted symlink cannot redirect the probe
        fd, probe = tempfile.mkstemp(prefix=".partui-write-test-", dir=d)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise UsageError(f"cannot write to {path}: it is a file, not a folder") from None
    except OSError as exc:
        raise UsageError(f"cannot write to {path}: {exc.strerror or exc}") from None
    return d


def check_output(text: str, flag: str, force: bool) -> Path:
    """An output file given on the command line, checked before any work is done.

    Refused (UsageError): a folder, a device, a FIFO, a socket, a symbolic link, an existing
    file without --force, a folder that cannot be written.
    """
    from pathlib import Path

    from partui.profiles.files.safe_files import WriteError, check_target

    path = Path(text).expanduser()
    try:
        check_target(path, overwrite=force)
    except WriteError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    check_writable_dir(str(path.parent) if str(path.parent) else ".")
    return path


def compile_ahead(layers, kernel: str = "vectorized", strategy: str = "") -> None:
    """On first use, compile the native kernels these layers need before anything is timed,
    and say so on stderr: numba takes seconds to a minute, and a silent wait looks hung."""
    if kernel != "vectorized":
        return  # the loops kernel is plain Python
    from partui.kernels.runtime import jitcache

    layers = list(LAYERS) if strategy == "pipeline" else list(layers)
    todo = jitcache.missing(layers)
    if not todo:
        return
    when = "first run only" if jitcache.cache_enabled() else "PARTUI_NUMBA_CACHE=0: every run"
    print(f"partui: compiling kernels, {when} ({', '.join(todo)})...", file=sys.stderr, flush=True)
    from partui.kernels.warmup import compile_kernels

    seconds = compile_kernels(todo)
    print(f"partui: kernels compiled in {seconds:.0f} s", file=sys.stderr, flush=True)


def cmd_run(args) -> int:
    from partui.profiles.run.engine import Engine

    cfg = config_from(args)
    cfg.check()
    out_dir = check_writable_dir(args.save_arrays) if args.save_arrays else None
    if out_dir is not None:
        for name in ("input.npy", "output.npy", "weight.npy", "bias.npy", ARRAYS_README):
            check_output(str(out_dir / name), "--save-arrays", args.force)
    warn_settings(cfg)
    if cfg.executor == "dask" and cfg.scheduler:  # an unreachable cluster: say so at once
        from partui.profiles.executors.dask_connect import reachable

        reachable(cfg.scheduler)
    compile_ahead([cfg.layer], cfg.kernel, cfg.strategy)
    progress = RunProgress(cfg)
    try:
        with Engine() as engine:
            result = engine.run(cfg, emit=progress, keep_arrays=out_dir is not None)
    finally:
        progress.done()
    if out_dir is not None:
        save_arrays(out_dir, result.arrays, args.force, arrays_readme(result))
    if args.json:
        from partui.profiles.files.checked_json import json_safe  # NaN (not measured) -> null

        print_json(json_safe(result.to_dict()), allow_nan=False)
    else:
        print(run_report(result))
        if out_dir is not None:
            print(f"arrays written to {out_dir}/")
    return 0 if result.ok else 1


def warn_settings(cfg: RunConfig) -> None:
    """Valid but unwise settings, on stderr: the run goes ahead (stdout stays the report)."""
    from partui.kernels.plan.strategies import settings_warnings

    for warning in settings_warnings(
        LAYERS[cfg.layer], cfg.strategy, cfg.executor, cfg.workers, cfg.batch, os.cpu_count()
    ):
        print(f"partui: warning: {warning}", file=sys.stderr)


ARRAYS_README = "README.txt"


def save_arrays(out_dir: Path, arrays: dict, force: bool = False, readme: str = "") -> None:
    """The arrays as .npy files, and `readme` (what was computed) beside them."""
    import io

    import numpy as np

    from partui.profiles.files.safe_files import write_bytes, write_text

    try:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr)
            write_bytes(out_dir / f"{name}.npy", buf.getvalue(), overwrite=force)
        if readme:
            write_text(out_dir / ARRAYS_README, readme, overwrite=force)
    except OSError as exc:
        raise UsageError(f"cannot write arrays to {out_dir}: {exc}") from None


def _array_role(name: str, pass_kind: str) -> str:
    """What one saved array is, from its file name."""
    param = name.removesuffix(".grad").removesuffix("_grad")
    owner, _, which = param.rpartition(".")
    which = which or param
    if which in ("weight", "bias") and name != param:
        return f"dL/d {param}: the {which} gradient partui computed"
    if which == "weight":
        return f"{owner + ' ' if owner else ''}weight, PyTorch layout" + (
            " (before the update)" if pass_kind == "train" else ""
        )
    if which == "bias":
        return f"{owner + ' ' if owner else ''}bias" + (
            " (before the update)" if pass_kind == "train" else ""
        )
    return {
        "input": "the input batch (seeded standard normal)"
        if pass_kind != "train"
        else "the images of the batch (seeded standard normal)",
        "output": "the output partui computed",
        "labels": "the class of each image, 0..25",
        "loss": "the mean NLL loss of the batch (a 0-d array)",
        "output_grad": "dL/d output: the seeded upstream gradient given to the backward pass",
        "input_grad": "dL/d input: the input gradient partui computed",
    }.get(name, "")


def arrays_readme(result) -> str:
    """What `--save-arrays` wrote: the layer, its formula, the pass, and each file's shape."""
    from partui.kernels.model.layers import GELU_FORMULA, NETWORK

    c = result.config
    layer = LAYERS[c.layer]
    lines = [
        "Written by partui run --save-arrays: the arrays of one run, to check with another",
        "library. NumPy .npy files (numpy.load).",
        "",
        f"layer    {c.layer}: {layer.operation}, per sample {layer.shape_text()}",
        f"pass     {c.pass_kind}",
        f"run      strategy {c.strategy}, kernel {c.kernel}, executor {c.executor}, "
        f"workers {c.workers}, batch {c.batch}, seed {c.seed}",
        "",
    ]
    if layer.kind == "network":
        lines.append(
            "forward  input -> " + " -> ".join(x.name for x in NETWORK) + " = output "
            "(pool3's 128x1x1 flattened to 128 for linear1)"
        )
        lines += [f"  {x.name:<10} {x.formula}" for x in NETWORK]
    else:
        lines.append(f"forward  {layer.formula}")
    if "GELU_tanh" in "\n".join(lines):
        lines.append(f"         {GELU_FORMULA}")
    if c.pass_kind == "backward":
        lines.append(
            "backward given output_grad = dL/d output (seeded), the gradients of "
            "L = sum(output * output_grad)"
        )
    elif c.pass_kind == "train":
        lines.append(
            "train    one SGD step: forward, L = mean over the batch of -output[n, labels[n]] "
            "(NLL of the log-softmax), backward; the gradients are of L"
        )
    lines += [
        f"checked  against a float64 reference: max abs error {result.max_abs_error:.2e} "
        f"(tolerance {result.tolerance:.2e}) {'OK' if result.ok else 'FAILED'}",
        "",
        "files",
    ]
    width = max(len(n) for n in result.arrays) + 4
    for name, arr in result.arrays.items():
        shape = "x".join(map(str, arr.shape)) or "scalar"
        lines.append(
            f"  {name + '.npy':<{width}} {str(arr.dtype):<8} {shape:<14} "
            f"{_array_role(name, c.pass_kind)}"
        )
    return "\n".join(lines) + "\n"


class RunProgress:
    """What a run is doing, on stderr, on one line redrawn in place: the pool starting, the
    repeat under way and the last one's time, the check. Only on a terminal; the line is
    wiped when the run ends, so the report stays as it was."""

    def __init__(self, cfg: RunConfig, prefix: str = "", stream=None):
        from partui.profiles.records.events import RepeatDone, RunStarted

        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.kinds = (RunStarted, RepeatDone)
        self.warmup, self.repeats = cfg.warmup, cfg.repeats
        self.prefix = prefix or "partui run: "
        self.count = 0
        self.width = 0
        self.say("starting...")

    def say(self, text: str) -> None:
        if not self.tty:
            return
        import shutil

        # a line longer than the terminal would wrap, and \r would not go back over it
        line = (self.prefix + text)[: shutil.get_terminal_size().columns - 1]
        print("\r" + line.ljust(self.width), end="", file=self.stream, flush=True)
        self.width = max(self.width, len(line))

    def __call__(self, event) -> None:
        from partui.profiles.records.events import repeat_progress

        started, repeat = self.kinds
        if isinstance(event, started):
            self.count = 0
        elif isinstance(event, repeat):
            self.count += 1
        else:
            return
        text = repeat_progress(self.count, self.warmup, self.repeats) + "..."
        if isinstance(event, repeat):
            last = "warm-up" if event.repeat < 0 else f"repeat {event.repeat + 1}"
            text += f" ({last}: {event.wall_ns / 1e6:.1f} ms)"
        self.say(text)

    def done(self) -> None:
        if self.tty and self.width:
            print("\r" + " " * self.width + "\r", end="", file=self.stream, flush=True)
            self.width = 0


def dask_where(d: dict) -> list[str]:
    """Where a Dask run ran: the scheduler, whose cluster it is, the workers and their clocks."""
    link = (
        f"  dashboard {d['dashboard']}"
        if d.get("dashboard")
        else "  (no Dask dashboard: bokeh is not installed)"
        if d.get("cluster") == "local"
        else ""
    )
    whose = (
        "a LocalCluster partui started and stops"
        if d.get("cluster") == "local"
        else "an external cluster: partui leaves it running"
    )
    lines = [f"Dask scheduler {d.get('scheduler')} ({whose}){link}"]
    for w in d.get("workers", []):
        unc = w.get("clock_uncertainty_ms")
        lines.append(
            f"  worker {w['name']} {w['address']} pid {w.get('pid') or '?'}: clock offset "
            f"{w.get('clock_offset_ms', 0):+.2f} ms +- {'?' if unc is None else f'{unc:.2f}'} ms"
        )
    return lines


def dask_report(d: dict, median_ms: float) -> list[str]:
    """Where a Dask run ran, its workers' clocks, what it moved and where a task's time went."""
    lines = dask_where(d)
    mib = 2**20
    t = d.get("training")
    if t:
        lines.append(
            f"training step: gradients combined by {t['combine']}; a gradient is "
            f"{t['gradient_bytes'] / mib:.2f} MiB; a step moved "
            f"{t['gradient_bytes_between_workers_per_step'] / mib:.2f} MiB of gradients between "
            f"workers and {t['gradient_bytes_to_partui_per_step'] / mib:.2f} MiB back here, and "
            f"{t['weights_bytes_out_per_step'] / mib:.2f} MiB of weights out"
        )
        lines.append(
            f"per step (medians): weights out {ms(t['weights_ms'])} ms, gradient back "
            f"{ms(t['fetch_ms'])} ms, update here {ms(t['update_ms'])} ms"
        )
        lines += [f"note: {note}" for note in d.get("notes", [])]
        return lines
    lines.append(
        f"moved per repeat: {d.get('bytes_out_per_repeat', 0) / mib:.2f} MiB inputs out, "
        f"{d.get('bytes_back_per_repeat', 0) / mib:.2f} MiB outputs back; weights "
        f"{d.get('params_bytes', 0) / mib:.2f} MiB to all workers once per run "
        f"({ms(d.get('params_ms', 0))} ms, not in the times)"
    )
    send, comp = d.get("task_send_ms", 0), d.get("task_compute_ms", 0)
    fetch, over = d.get("task_fetch_ms", 0), d.get("task_overhead_ms", 0)
    share = 100 * comp / max(send + comp + fetch + over, 1e-9)
    lines.append(
        f"per task (medians): send {ms(send)} ms  compute {ms(comp)} ms  fetch {ms(fetch)} ms  "
        f"scheduling {ms(over)} ms  (compute is {share:.0f}% of a task's time)"
    )
    for note in d.get("notes", []):
        lines.append(f"note: {note}")
    return lines


def run_report(result) -> str:
    from partui.profiles.bench.overhead import run_overhead_us, wake_us

    c = result.config
    what = "" if c.pass_kind == "forward" else f"  pass {c.pass_kind}  combine {c.combine}"
    lines = [
        f"{c.layer}{what}  strategy {c.strategy}  kernel {c.kernel}  executor {c.executor}  "
        f"workers {c.workers}  batch {c.batch}  BLAS threads {result.blas_threads}  "
        f"tasks {result.tasks}",
        f"median {ms(result.median_ms)} ms   min-max {ms(result.min_ms)}-{ms(result.max_ms)} ms   "
        f"IQR {ms(result.q3_ms - result.q1_ms)} ms   {len(result.times_ms)} repeats after "
        f"{c.warmup} warm-up   {result.gflops:.1f} GFLOP/s",
    ]
    if result.pool_startup_ms:
        lines.append(f"pool start-up {ms(result.pool_startup_ms)} ms (not in the times)")
    if result.worker_cpus:
        pins = ", ".join(f"w{w} cpu{cpu}" for w, cpu in enumerate(result.worker_cpus))
        lines.append(f"pinned: {pins} (PARTUI_PIN_THREADS=0 leaves them to the scheduler)")
    workers = c.workers
    fixed = run_overhead_us(result.times_ms, result.spans) if workers > 1 else None
    if fixed is not None:
        wake = wake_us(result.spans)
        lines.append(
            f"hand-out and collection {fixed:.0f} us per repeat (median of wall minus the "
            f"busiest worker's tasks)"
            + (f"   wake-up {wake:.0f} us (median, woken workers)" if wake is not None else "")
        )
    total_busy = sum(result.worker_busy_ms) or 1.0
    rows = [
        [w, ms(b), f"{100 * b / result.median_ms:.0f}%", f"{100 * b / total_busy:.0f}%"]
        for w, b in enumerate(result.worker_busy_ms)
    ]
    lines.append("")
    lines.append(table(["worker", "busy ms", "busy/wall", "share of work"], rows))
    lines.append("")
    if result.dask:
        lines += dask_report(result.dask, result.median_ms)
        lines.append("")
    if c.pass_kind != "forward":
        from partui.profiles.run.passes import phase_walls

        walls = phase_walls(result.spans, c.pass_kind)
        lines.append(table(["phase", "wall ms (median)"], [[k, ms(v)] for k, v in walls.items()]))
        total = sum(walls.values())
        if total > result.median_ms * 1.05:
            lines.append(
                f"the phases overlap in time: their walls add up to {ms(total)} ms against a "
                f"repeat's median of {ms(result.median_ms)} ms (a phase's wall runs from its "
                f"first task's start to its last task's end, while other phases run)"
            )
        lines.append("")
    verdict = "OK" if result.ok else f"FAILED: {result.error or 'result is wrong'}"
    lines.append(
        f"max abs error {result.max_abs_error:.2e} (tolerance {result.tolerance:.2e})  {verdict}"
    )
    return "\n".join(lines)
