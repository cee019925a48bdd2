"""`partui list` and `partui info`: the layers, strategies, kernels, executors and their
valid combinations; the machine partui measures."""

from __future__ import annotations

from partui.kernels.model.layers import GELU_FORMULA, LAYERS
from partui.kernels.plan.axes import EXECUTORS, KERNELS, STRATEGIES, not_applicable_reason
from partui.profiles.system.units import size_text
from partui.tui.text.table import flops_text, print_json, table

EXECUTOR_LETTER = {
    "inline": "i",
    "threads": "t",
    "threads-dynamic": "d",
    "processes": "p",
    "blas": "b",
    "native-region": "n",
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
    p.add_argument(
        "--conditions",
        action="store_true",
        help="show the measurement conditions instead: CPU frequency governor, turbo boost, "
        "ASLR, isolated CPUs, load average, thermal throttling (each 'unknown' where this "
        "machine does not report it) and what of them makes figures less stable",
    )
    p.set_defaults(func=cmd_info)


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
        "i=inline t=threads d=threads-dynamic p=processes b=blas n=native-region D=dask; "
        "loops: the same without b and n):"
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


def cmd_info(args) -> int:
    from partui.kernels.runtime import tuning
    from partui.profiles.system.machine import info
    from partui.tui.text.tuning_text import summary_lines

    if args.conditions:
        return _conditions(args.json)

    data = info()
    tuned = tuning.read_file() if tuning.enabled() else None
    if args.json:
        print_json({**data.to_dict(), "tuning": tuned}, indent=2)
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
    for line in summary_lines(tuned):
        print(line)
    return 0


def _conditions(as_json: bool) -> int:
    from partui.profiles.system.conditions import read_conditions
    from partui.tui.text.conditions_text import conditions_report

    c = read_conditions()
    if as_json:
        print_json(c.to_dict(), indent=2)
    else:
        print(conditions_report(c))
    return 0
