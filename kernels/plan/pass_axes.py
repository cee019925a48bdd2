"""The pass axis (forward, backward, train) and gradient combination: names and what applies.

Free of numpy, like `axes`, so the command line checks a configuration without
loading the kernels. The cutting and running live in `passes`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    from partui.kernels.model.layers import Layer

PASSES: dict[str, str] = {
    "forward": "the layer's output",
    "backward": "one layer: input and parameter gradients from an upstream gradient",
    "train": "network only: forward, loss, backward, gradient combination and one SGD update",
}
COMBINES: dict[str, str] = {
    "reduce": "per-task gradient buffers, summed once every task's backward is done",
    "locked": "one shared accumulator; each task adds its gradients under a lock",
    "gather": "executor dask: every worker's gradient gathered here, summed, the sum sent back "
    "to every worker (the alternative to reduce's tree of adds through Dask)",
}
DASK_COMBINES = ("reduce", "gather")  # reduce on Dask: a tree of pairwise adds on the workers
# transfer: data moving between machines (a Dask executor's inputs out, outputs back)
PHASES: tuple[str, ...] = ("forward", "backward", "combine", "update", "transfer")
FORWARD, BACKWARD, COMBINE, UPDATE, TRANSFER = range(5)

BACKWARD_BY_KIND: dict[str, tuple[str, ...]] = {
    "conv": ("none", "batch", "channel", "filter"),
    "pool": ("none", "batch", "channel"),
    "gelu": ("none", "batch", "channel"),
    "linear": ("none", "batch", "channel", "filter"),
    "logsoftmax": ("none", "batch"),
}
TRAIN_STRATEGIES = ("none", "batch")


def phase_name(pass_kind: str, phase: int) -> str:
    """The name of a span's phase in a run of `pass_kind`."""
    if phase == TRANSFER:
        return "transfer"
    if pass_kind == "forward":
        return "forward" if phase == 0 else "reduce"
    return PHASES[phase] if 0 <= phase < len(PHASES) else str(phase)


def not_applicable(layer: Layer, pass_kind: str, strategy: str) -> str | None:
    """Why `strategy` cannot cut `pass_kind` of `layer` (None: it can; forward: see axes)."""
    if pass_kind == "forward":
        return None
    if pass_kind == "train":
        if layer.kind != "network":
            return (
                f"--pass train is not applicable to {layer.name}: it trains the whole network; "
                "use --layer network"
            )
        if strategy not in TRAIN_STRATEGIES:
            return (
                f"strategy {strategy!r} is not applicable to --pass train: a training step is "
                f"cut by batch (data parallel) or not at all (none)"
            )
        return None
    if layer.kind == "network":
        return "--pass backward is not applicable to the network: use --pass train"
    allowed = BACKWARD_BY_KIND[layer.kind]
    if strategy not in allowed:
        return (
            f"strategy {strategy!r} is not applicable to the backward pass of {layer.name}: "
            f"it is cut by {', '.join(allowed)}"
        )
    return None
