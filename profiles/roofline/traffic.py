"""The traffic model of the roofline: the fewest bytes one repeat of a layer can move.

Per repeat, at batch B: the input of every sample read once, the output of every sample
written once, and the weights and bias read once (float32, 4 bytes each). Nothing a kernel
moves beyond that (patch matrices, re-reads of the input, partial sums) is counted, so the
intensity is the highest the layer can have and the bandwidth a run needs is the least.
For the whole network: its input, every weight and bias and its output; activations
between layers are not counted.
"""

from __future__ import annotations

from partui.kernels.model.layers import NETWORK, Layer, prod

FLOAT_BYTES = 4
TRAFFIC_MODEL = (
    "minimum bytes per repeat: the batch's input read once, its output written once, "
    "the weights and bias read once (float32)"
)


def parameter_count(layer: Layer) -> int:
    if layer.kind == "network":
        return sum(parameter_count(part) for part in NETWORK)
    weights = prod(layer.weight_shape) if layer.weight_shape else 0
    bias = prod(layer.bias_shape) if layer.bias_shape else 0
    return weights + bias


def traffic_bytes(layer: Layer, batch: int) -> int:
    """The model's bytes for one repeat of `layer` at `batch` samples."""
    activations = batch * (prod(layer.in_shape) + prod(layer.out_shape))
    return FLOAT_BYTES * (activations + parameter_count(layer))


def intensity(layer: Layer, batch: int) -> float:
    """Arithmetic intensity: FLOPs per byte of the traffic model."""
    return layer.flops(batch) / traffic_bytes(layer, batch)
