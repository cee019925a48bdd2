"""The network's layers: shapes, FLOP counts, seeded parameters and inputs.

NCHW, float32, 3x3 convolutions without padding, 2x2 max-pool (floor),
tanh-approximation GELU. Weights use PyTorch's layouts: conv (OC, IC, 3, 3),
linear (out, in), so saved arrays can be checked with another library.
"""

from __future__ import annotations

from functools import reduce
from operator import mul

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    from typing import Any

    import numpy as np

MAX_BATCH = 1024


def __getattr__(name: str) -> Any:
    # numpy loads on first use (seeded arrays, DTYPE), not on import: the command
    # line lists layers and shapes without it.
    if name == "DTYPE":
        import numpy

        return numpy.float32
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# FLOPs charged per element for the elementwise ops (a convention, stated so
# GFLOP/s figures can be reproduced): GELU's tanh form is ~8 flops, a 2x2 max 3
# comparisons, log-softmax ~4 per element (max, sub, exp, sum; log per row).
GELU_FLOPS = 8
POOL_FLOPS = 3
LOGSOFTMAX_FLOPS = 4


GELU_FORMULA = "GELU_tanh(x) = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))"


def prod(shape) -> int:
    return reduce(mul, shape, 1)


class Layer:
    """One layer of the network (or the whole of it). A plain class, not a dataclass:
    dataclasses loads `inspect`, a fifth of `partui --help`'s start-up, and the command line
    reads the layer table."""

    __slots__ = ("name", "kind", "in_shape", "out_shape", "gelu")

    def __init__(
        self,
        name: str,
        kind: str,  # conv | pool | gelu | linear | logsoftmax | network
        in_shape: tuple[int, ...],  # per sample
        out_shape: tuple[int, ...],  # per sample
        gelu: bool = False,  # linear followed by GELU
    ):
        self.name, self.kind, self.gelu = name, kind, gelu
        self.in_shape, self.out_shape = in_shape, out_shape

    def _fields(self) -> tuple:
        return (self.name, self.kind, self.in_shape, self.out_shape, self.gelu)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layer) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Layer(name={self.name!r}, kind={self.kind!r}, in_shape={self.in_shape}, "
            f"out_shape={self.out_shape}, gelu={self.gelu})"
        )

    @property
    def weight_shape(self) -> tuple[int, ...] | None:
        if self.kind == "conv":
            return (self.out_shape[0], self.in_shape[0], 3, 3)
        if self.kind == "linear":
            return (self.out_shape[0], self.in_shape[0])
        return None

    @property
    def bias_shape(self) -> tuple[int, ...] | None:
        if self.kind in ("conv", "linear"):
            return (self.out_shape[0],)
        return None

    @property
    def has_params(self) -> bool:
        return self.weight_shape is not None

    def flops(self, batch: int = 1) -> int:
        """Floating-point operations for one forward pass of `batch` samples."""
        out = prod(self.out_shape)
        if self.kind == "conv":
            per = 2 * self.in_shape[0] * 9 * out
        elif self.kind == "linear":
            per = 2 * self.in_shape[0] * out + (GELU_FLOPS * out if self.gelu else 0)
        elif self.kind == "pool":
            per = POOL_FLOPS * out
        elif self.kind == "gelu":
            per = GELU_FLOPS * out
        elif self.kind == "logsoftmax":
            per = LOGSOFTMAX_FLOPS * out
        else:  # network
            per = sum(layer.flops(1) for layer in NETWORK)
        return per * batch

    def in_array_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.in_shape)

    def out_array_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.out_shape)

    @property
    def operation(self) -> str:
        """What the layer computes, in full: linear1 and linear2 end in a GELU."""
        return {
            "conv": "conv 3x3, no padding",
            "pool": "maxpool 2x2",
            "gelu": "GELU (tanh form)",
            "linear": "linear + GELU" if self.gelu else "linear",
            "logsoftmax": "log-softmax",
            "network": "the whole forward pass",
        }[self.kind]

    @property
    def formula(self) -> str:
        """The forward computation, written out (GELU's tanh form: see GELU_FORMULA)."""
        if self.kind == "conv":
            return (
                "output[n, o, i, j] = bias[o] + sum over c, di, dj of "
                "weight[o, c, di, dj] * input[n, c, i + di, j + dj]  (3x3, stride 1, no padding)"
            )
        if self.kind == "pool":
            return "output[n, c, i, j] = max of input[n, c, 2i:2i+2, 2j:2j+2]  (floor)"
        if self.kind == "gelu":
            return "output = GELU_tanh(input)"
        if self.kind == "linear":
            inner = "input @ weight.T + bias"
            return f"output = GELU_tanh({inner})" if self.gelu else f"output = {inner}"
        if self.kind == "logsoftmax":
            return "output = input - max(input) - log(sum(exp(input - max(input))))  (per row)"
        return "output = " + " -> ".join(layer.name for layer in NETWORK) + " of the input"

    def shape_text(self) -> str:
        fmt = lambda s: "x".join(map(str, s))  # noqa: E731
        return f"{fmt(self.in_shape)} -> {fmt(self.out_shape)}"


NETWORK: tuple[Layer, ...] = (
    Layer("conv1", "conv", (1, 28, 28), (32, 26, 26)),
    Layer("pool1", "pool", (32, 26, 26), (32, 13, 13)),
    Layer("gelu1", "gelu", (32, 13, 13), (32, 13, 13)),
    Layer("conv2", "conv", (32, 13, 13), (64, 11, 11)),
    Layer("pool2", "pool", (64, 11, 11), (64, 5, 5)),
    Layer("gelu2", "gelu", (64, 5, 5), (64, 5, 5)),
    Layer("conv3", "conv", (64, 5, 5), (128, 3, 3)),
    Layer("pool3", "pool", (128, 3, 3), (128, 1, 1)),
    Layer("gelu3", "gelu", (128, 1, 1), (128, 1, 1)),
    Layer("linear1", "linear", (128,), (512,), gelu=True),
    Layer("linear2", "linear", (512,), (256,), gelu=True),
    Layer("linear3", "linear", (256,), (26,)),
    Layer("logsoftmax", "logsoftmax", (26,), (26,)),
)

LAYERS: dict[str, Layer] = {layer.name: layer for layer in NETWORK}
LAYERS["network"] = Layer("network", "network", (1, 28, 28), (26,))
LAYER_NAMES: tuple[str, ...] = tuple(LAYERS)


class UnknownLayer(ValueError):
    pass


def get_layer(name: str) -> Layer:
    try:
        return LAYERS[name]
    except KeyError:
        raise UnknownLayer(
            f"unknown layer {name!r}; choose from {', '.join(LAYER_NAMES)}"
        ) from None


def seeded_rng(seed: int, layer: str, what: str) -> np.random.Generator:
    # One independent stream per (seed, layer, array): changing one layer's
    # parameters never shifts another's.
    import numpy as np

    key = [seed, *layer.encode(), *what.encode()]
    return np.random.default_rng(key)


def make_params(layer: Layer, seed: int = 0) -> dict[str, np.ndarray]:
    """He-initialised weights and small biases, deterministic in `seed`.

    For `network`, the parameters of every layer, keyed "conv1.weight", ...
    """
    if layer.kind == "network":
        params: dict[str, np.ndarray] = {}
        for sub in NETWORK:
            for key, value in make_params(sub, seed).items():
                params[f"{sub.name}.{key}"] = value
        return params
    if not layer.has_params:
        return {}
    import numpy as np

    wshape = layer.weight_shape
    assert wshape is not None  # has_params
    fan_in = prod(wshape[1:])
    w = seeded_rng(seed, layer.name, "weight").standard_normal(wshape) * np.sqrt(2.0 / fan_in)
    b = seeded_rng(seed, layer.name, "bias").uniform(-0.1, 0.1, layer.bias_shape)
    return {"weight": w.astype(np.float32), "bias": b.astype(np.float32)}


def make_input(layer: Layer, batch: int, seed: int = 0) -> np.ndarray:
    """A seeded standard-normal input batch (C-contiguous float32)."""
    import numpy as np

    shape = layer.in_array_shape(batch)
    return seeded_rng(seed, layer.name, "input").standard_normal(shape, dtype=np.float32)
