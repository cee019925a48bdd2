"""A run's inputs, parameters and float64 references, seeded and cached: repeated runs of a
layer (live mode, a worker sweep) make them once."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from partui.kernels.grad import jobs, training
from partui.kernels.grad import reference as grad_reference
from partui.kernels.model import reference
from partui.kernels.model.layers import get_layer, make_input, make_params, seeded_rng

CLASSES = 26


@lru_cache(maxsize=4)
def params_of(layer_name: str, seed: int) -> dict[str, np.ndarray]:
    return make_params(get_layer(layer_name), seed)


@lru_cache(maxsize=4)
def input_of(layer_name: str, batch: int, seed: int) -> np.ndarray:
    return make_input(get_layer(layer_name), batch, seed)


@lru_cache(maxsize=4)
def forward_reference(layer_name: str, batch: int, seed: int) -> np.ndarray:
    """The layer's float64 forward output on the run's input and parameters."""
    layer = get_layer(layer_name)
    return reference.forward(layer, input_of(layer_name, batch, seed), params_of(layer_name, seed))


def make_output_grad(layer, batch: int, seed: int = 0) -> np.ndarray:
    """A seeded upstream gradient for a layer's backward pass (float32, the output's shape)."""
    return seeded_rng(seed, layer.name, "output_grad").standard_normal(
        layer.out_array_shape(batch), dtype=np.float32
    )


def make_labels(batch: int, seed: int = 0) -> np.ndarray:
    """Seeded class labels (int64) for a profiled training step."""
    return seeded_rng(seed, "network", "labels").integers(0, CLASSES, batch).astype(np.int64)


@lru_cache(maxsize=4)
def grad_inputs(layer_name: str, pass_kind: str, batch: int, seed: int):
    """(input, parameters, the parameters as one flat float32 array, and the labels of a
    training step or the upstream gradient of a backward pass)."""
    layer = get_layer(layer_name)
    x = input_of(layer_name, batch, seed)
    params = params_of(layer_name, seed)
    layout = jobs.param_layout(layer)
    flat = np.empty(training.layout_size(layout), np.float32)
    for k, v in training.views(flat, layout).items():
        v[...] = params[k]
    extra = (
        make_labels(batch, seed) if pass_kind == "train" else make_output_grad(layer, batch, seed)
    )
    return x, params, flat, extra


@lru_cache(maxsize=2)
def grad_reference_of(layer_name: str, pass_kind: str, batch: int, seed: int):
    """(float64 loss or None, float64 gradients) of the pass on the run's inputs."""
    layer = get_layer(layer_name)
    x, params, _, extra = grad_inputs(layer_name, pass_kind, batch, seed)
    if pass_kind == "train":
        return grad_reference.network_loss_and_grads(x, extra, params)
    return None, grad_reference.backward(layer, x, params, extra)
