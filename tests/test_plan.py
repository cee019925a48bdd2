"""strategies.plan against an independent check: every output element is written by exactly
one task of the compute phase (filter: every input channel in exactly one group, then every
output element reduced once), and the tasks' FLOPs add up to the layer's."""

import numpy as np
import pytest

from partui.kernels.model.layers import LAYERS, get_layer
from partui.kernels.plan.axes import not_applicable_reason
from partui.kernels.plan.strategies import plan

CUTS = ("none", "batch", "channel", "spatial", "hybrid", "filter")


def cases():
    for name in LAYERS:
        layer = get_layer(name)
        for strategy in CUTS:
            if not_applicable_reason(layer, strategy, "vectorized", "threads", 2) is None:
                yield name, strategy


def writes(shape, tasks) -> np.ndarray:
    """How many tasks write each element of an output of `shape` (batch, channels[, rows, w])."""
    count = np.zeros(shape, dtype=np.int64)
    for t in tasks:
        region = [slice(*t.batch), slice(*t.channels)]
        if t.rows is not None:
            region.append(slice(*t.rows))
        count[tuple(region)] += 1
    return count


@pytest.mark.parametrize(("name", "strategy"), list(cases()))
@pytest.mark.parametrize("parts", [1, 2, 5])
@pytest.mark.parametrize("batch", [1, 7])
def test_every_output_element_is_written_once_and_flops_add_up(name, strategy, parts, batch):
    layer = get_layer(name)
    p = plan(layer, strategy, batch, parts)
    out = layer.out_array_shape(batch)
    compute = p.phases[0]
    assert [t.index for t in p.tasks] == list(range(len(p.tasks)))
    assert all(t.units >= 0 for t in p.tasks)
    # each task's FLOPs are rounded on their own: at most half a FLOP off per task
    assert abs(sum(t.units for t in compute) - layer.flops(batch)) <= len(compute)
    if strategy == "filter":
        assert len(p.phases) == 2 and p.partials == len(compute)
        assert sorted(t.partial for t in compute) == list(range(p.partials))
        channels = np.zeros(layer.in_shape[0], dtype=np.int64)
        for t in compute:  # each computes the whole output from its own input channels
            assert t.group is not None
            channels[slice(*t.group)] += 1
            assert writes(out, [t]).min() == 1
        assert (channels == 1).all()
        assert (writes(out, p.phases[1]) == 1).all()
    else:
        assert len(p.phases) == 1 and p.partials == 0
        assert all(t.group is None and t.partial is None for t in compute)
        assert (writes(out, compute) == 1).all()
    if strategy in ("batch", "channel", "spatial") and parts > 1:
        # never more tasks than workers, and as many as the cut axis allows
        axis = {"batch": batch, "channel": out[1], "spatial": out[2] if len(out) > 2 else 1}
        assert len(compute) == min(parts, axis[strategy])
