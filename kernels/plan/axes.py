"""The axes of a run (strategy, kernel, executor) and which combinations make sense.

Kept apart from the cutting code in `strategies` and free of numpy, so the command
line can list choices and check a configuration without loading the kernels.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    from partui.kernels.model.layers import Layer

STRATEGIES: dict[str, str] = {
    "none": "one task: the whole layer",
    "batch": "split the samples of the batch",
    "channel": "split output channels (output features for linear)",
    "spatial": "split output rows into tiles",
    "filter": "split input channels / features; partial sums reduced at the end",
    "hybrid": "batch x channel grid (workers x 2 tasks)",
    "pipeline": "network only: layer stages on their own threads, micro-batches in between",
}
KERNELS: dict[str, str] = {
    "loops": "per-pixel / per-element Python loops: the before-vectorization baseline",
    "vectorized": "numpy/BLAS + numba: patch rows + GEMM (bias fused), one-pass max-pool and GELU",
}
EXECUTORS: dict[str, str] = {
    "inline": "the calling thread, one worker",
    "threads": "a parked thread per worker, task i on worker i (BLAS at 1 thread each)",
    "threads-dynamic": "a pool of threads taking tasks as they come (BLAS at 1 thread each)",
    "processes": "a pool of processes, arrays in shared memory (BLAS at 1 thread each)",
    "blas": "one vectorized call; BLAS's own threads = workers",
    "native-region": "one native call per repeat runs every worker's tasks on numba's threads "
    "(conv layers and the network, batch or none)",
    "dask": "a Dask cluster: a LocalCluster of worker processes, or --scheduler ADDRESS "
    "(optional extra partui[dask]; batch only)",
}
# Executors on this machine alone: what sweeps and bench compare by default.
LOCAL_EXECUTORS: tuple[str, ...] = tuple(e for e in EXECUTORS if e != "dask")

# What a native parallel region runs: tasks that each write whole samples with one kernel.
REGION_KINDS = ("conv", "network")
REGION_STRATEGIES = ("none", "batch")
# Which strategies each kind of layer can be cut by.
_BY_KIND: dict[str, tuple[str, ...]] = {
    "conv": ("none", "batch", "channel", "spatial", "filter", "hybrid"),
    "pool": ("none", "batch", "channel", "spatial", "hybrid"),
    "gelu": ("none", "batch", "channel", "spatial", "hybrid"),
    "linear": ("none", "batch", "channel", "filter", "hybrid"),
    "logsoftmax": ("none", "batch"),
    "network": ("none", "batch", "pipeline"),
}
_WHY_NOT: dict[str, str] = {
    "channel": "its output is normalised across all features at once",
    "spatial": "it has no output rows to tile",
    "filter": "it sums no input channels",
    "hybrid": "it has no channel axis to split",
    "pipeline": "a pipeline needs several layers; use --layer network",
}


class NotApplicable(ValueError):
    """A combination of layer, strategy, kernel and executor that makes no sense."""


def not_applicable_reason(
    layer: Layer, strategy: str, kernel: str, executor: str, workers: int = 1
) -> str | None:
    """None when the combination is valid, else one line saying why not."""
    allowed = _BY_KIND[layer.kind]
    if strategy not in allowed:
        why = _WHY_NOT.get(strategy, "")
        if layer.kind == "network" and strategy != "pipeline":
            why = "the network is cut by batch or by pipeline stages"
        return f"strategy {strategy!r} is not applicable to {layer.name}: {why}"
    if strategy == "spatial" and layer.out_shape[1] < 2:
        return f"strategy 'spatial' is not applicable to {layer.name}: its output has a single row"
    if executor == "blas":
        if kernel != "vectorized":
            return "executor 'blas' is not applicable to the loops kernel: it makes no BLAS call"
        if strategy != "none":
            return (
                "executor 'blas' is not applicable to a split: BLAS cuts one call "
                "itself; use --strategy none"
            )
        if layer.kind not in ("conv", "linear", "network"):
            return f"executor 'blas' is not applicable to {layer.name}: it makes no BLAS call"
    if executor == "dask" and strategy != "batch":
        return (
            f"executor 'dask' is not applicable to strategy {strategy!r}: Dask workers take "
            "shards of the batch; use --strategy batch"
        )
    if executor == "native-region":
        what = "it runs the vectorized kernel's conv layers and the network, cut by batch or none"
        if kernel != "vectorized":
            return f"executor 'native-region' is not applicable to the {kernel} kernel: {what}"
        if layer.kind not in REGION_KINDS:
            return f"executor 'native-region' is not applicable to {layer.name}: {what}"
        if strategy not in REGION_STRATEGIES:
            return f"executor 'native-region' is not applicable to strategy {strategy!r}: {what}"
    if executor == "inline" and workers != 1:
        return (
            "executor 'inline' is not applicable to more than one worker: "
            "it runs on the calling thread"
        )
    if strategy == "pipeline" and executor not in ("threads", "threads-dynamic"):
        return (
            f"strategy 'pipeline' is not applicable to executor {executor!r}: stages run on threads"
        )
    return None


def valid_combinations(layer: Layer) -> list[tuple[str, str, str]]:
    """(strategy, kernel, executor) triples valid for `layer` at 2 workers (inline at 1)."""
    combos = []
    for strategy in STRATEGIES:
        for kernel in KERNELS:
            for executor in EXECUTORS:
                workers = 1 if executor == "inline" else 2
                if not_applicable_reason(layer, strategy, kernel, executor, workers) is None:
                    combos.append((strategy, kernel, executor))
    return combos
