"""A run's inputs, parameters and float64 reference output, seeded and cached: repeated runs
of a layer (live mode, a worker sweep) make them once."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from partui.kernels.model import reference
from partui.kernels.model.layers import get_layer, make_input, make_params


@lru_cache(maxsize=4)
def _params(layer_name: str, seed: int) -> dict[str, np.ndarray]:
    return make_params(get_layer(layer_name), seed)


@lru_cache(maxsize=4)
def _input(layer_name: str, batch: int, seed: int) -> np.ndarray:
    return make_input(get_layer(layer_name), batch, seed)


@lru_cache(maxsize=4)
def _reference(layer_name: str, batch: int, seed: int) -> np.ndarray:
    layer = get_layer(layer_name)
    return reference.forward(layer, _input(layer_name, batch, seed), _params(layer_name, seed))
