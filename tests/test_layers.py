"""Layer table: shapes and FLOP counts against DESIGN.md, seeded He-initialised parameters, batch
range."""

import numpy as np
import pytest

from partui.kernels.model.layers import (
    LAYER_NAMES,
    LAYERS,
    NETWORK,
    get_layer,
    make_input,
    make_params,
)
from partui.kernels.plan.strategies import NotApplicable
from partui.profiles.records.config import RunConfig
from partui.profiles.records.limits import ConfigError

# The DESIGN table, copied by hand: layer -> (input per sample, output per sample).
DESIGN = {
    "conv1": ((1, 28, 28), (32, 26, 26)),
    "pool1": ((32, 26, 26), (32, 13, 13)),
    "gelu1": ((32, 13, 13), (32, 13, 13)),
    "conv2": ((32, 13, 13), (64, 11, 11)),
    "pool2": ((64, 11, 11), (64, 5, 5)),
    "gelu2": ((64, 5, 5), (64, 5, 5)),
    "conv3": ((64, 5, 5), (128, 3, 3)),
    "pool3": ((128, 3, 3), (128, 1, 1)),
    "gelu3": ((128, 1, 1), (128, 1, 1)),
    "linear1": ((128,), (512,)),
    "linear2": ((512,), (256,)),
    "linear3": ((256,), (26,)),
    "logsoftmax": ((26,), (26,)),
    "network": ((1, 28, 28), (26,)),
}

# FLOPs per sample, worked out by hand. Conventions (stated in layers.py): a multiply-add is
# 2 FLOPs, tanh-GELU 8 per element, a 2x2 max 3 per output, log-softmax 4 per element.
HAND_FLOPS = {
    "conv1": 2 * 1 * 9 * 32 * 26 * 26,  # 389,376
    "pool1": 3 * 32 * 13 * 13,  # 16,224
    "gelu1": 8 * 32 * 13 * 13,  # 43,264
    "conv2": 2 * 32 * 9 * 64 * 11 * 11,  # 4,460,544
    "pool2": 3 * 64 * 5 * 5,  # 4,800
    "gelu2": 8 * 64 * 5 * 5,  # 12,800
    "conv3": 2 * 64 * 9 * 128 * 3 * 3,  # 1,327,104
    "pool3": 3 * 128,  # 384
    "gelu3": 8 * 128,  # 1,024
    "linear1": 2 * 128 * 512 + 8 * 512,  # 135,168 (GEMM + GELU)
    "linear2": 2 * 512 * 256 + 8 * 256,  # 264,192 (GEMM + GELU)
    "linear3": 2 * 256 * 26,  # 13,312 (no GELU)
    "logsoftmax": 4 * 26,  # 104
}
HAND_FLOPS["network"] = sum(HAND_FLOPS.values())

WEIGHTS = {
    "conv1": (32, 1, 3, 3),
    "conv2": (64, 32, 3, 3),
    "conv3": (128, 64, 3, 3),
    "linear1": (512, 128),
    "linear2": (256, 512),
    "linear3": (26, 256),
}


def test_the_table_is_the_design_table():
    assert list(LAYER_NAMES) == list(DESIGN)
    assert [layer.name for layer in NETWORK] == list(DESIGN)[:-1]


@pytest.mark.parametrize("name", list(DESIGN))
def test_shapes(name):
    layer = get_layer(name)
    assert (layer.in_shape, layer.out_shape) == DESIGN[name]
    assert layer.in_array_shape(7) == (7, *DESIGN[name][0])
    assert layer.out_array_shape(7) == (7, *DESIGN[name][1])
    assert layer.weight_shape == WEIGHTS.get(name)
    assert layer.bias_shape == ((WEIGHTS[name][0],) if name in WEIGHTS else None)


def test_each_layer_feeds_the_next():
    for a, b in zip(NETWORK, NETWORK[1:]):
        assert int(np.prod(a.out_shape)) == int(np.prod(b.in_shape)), (a.name, b.name)


@pytest.mark.parametrize("name", list(DESIGN))
def test_flops(name):
    layer = get_layer(name)
    assert layer.flops(1) == HAND_FLOPS[name]
    assert layer.flops(64) == 64 * HAND_FLOPS[name]


def test_linear_gelu_flags():
    assert [LAYERS[n].gelu for n in ("linear1", "linear2", "linear3")] == [True, True, False]


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_params_are_seeded_and_he_scaled(name):
    layer = get_layer(name)
    p = make_params(layer, seed=3)
    assert set(p) == {"weight", "bias"}
    w, b = p["weight"], p["bias"]
    assert w.shape == WEIGHTS[name] and b.shape == (WEIGHTS[name][0],)
    assert w.dtype == np.float32 and b.dtype == np.float32
    again = make_params(layer, seed=3)
    assert np.array_equal(w, again["weight"]) and np.array_equal(b, again["bias"])
    other = make_params(layer, seed=4)
    assert not np.array_equal(w, other["weight"]) and not np.array_equal(b, other["bias"])
    # He: std = sqrt(2 / fan_in); the sample std of N normals is within ~1/sqrt(2N) of it.
    fan_in = int(np.prod(WEIGHTS[name][1:]))
    expected = np.sqrt(2.0 / fan_in)
    slack = 5 / np.sqrt(2 * w.size)
    assert abs(w.std() / expected - 1) < slack
    assert abs(w.mean()) < 5 * expected / np.sqrt(w.size)
    assert np.abs(b).max() <= 0.1 and b.std() > 0


def test_network_params_are_the_layers_params():
    p = make_params(LAYERS["network"], seed=1)
    assert set(p) == {f"{n}.{k}" for n in WEIGHTS for k in ("weight", "bias")}
    for n in WEIGHTS:
        own = make_params(LAYERS[n], seed=1)
        assert np.array_equal(p[f"{n}.weight"], own["weight"])
        assert np.array_equal(p[f"{n}.bias"], own["bias"])


def test_layers_without_params():
    for n in DESIGN:
        if n not in WEIGHTS and n != "network":
            assert make_params(LAYERS[n]) == {}


@pytest.mark.parametrize("name", ["conv1", "gelu2", "linear3", "network"])
def test_inputs_are_seeded(name):
    layer = get_layer(name)
    x = make_input(layer, 5, seed=2)
    assert x.shape == (5, *DESIGN[name][0]) and x.dtype == np.float32
    assert x.flags.c_contiguous
    assert np.array_equal(x, make_input(layer, 5, seed=2))
    assert not np.array_equal(x, make_input(layer, 5, seed=3))
    assert 0.5 < x.std() < 1.5


def test_unknown_layer_names_the_choices():
    with pytest.raises(ValueError, match="conv2"):
        get_layer("conv9")


@pytest.mark.parametrize("batch", [1, 1024])
def test_batch_range_accepted(batch):
    RunConfig("conv2", batch=batch).check()


@pytest.mark.parametrize("batch", [0, 1025, -1])
def test_batch_range_refused(batch):
    with pytest.raises(ConfigError, match="batch must be an integer from 1 to 1024"):
        RunConfig("conv2", batch=batch).check()


@pytest.mark.parametrize("workers", [0, 257])
def test_workers_range_refused(workers):
    with pytest.raises(ConfigError, match="workers must be an integer from 1 to 256"):
        RunConfig("conv2", workers=workers).check()


def test_negative_seed_refused():
    with pytest.raises(ConfigError, match="seed"):
        RunConfig("conv2", seed=-1).check()


def test_not_applicable_is_refused_before_work():
    with pytest.raises(NotApplicable, match="not applicable"):
        RunConfig("linear1", strategy="spatial").check()
