"""The kernels' choices tuned on this CPU: the autotune writes them (with every alternative
it measured) to a file per CPU, the kernels take them, a tuned kernel still gives the
reference's answer, and a damaged file is ignored, never a crash."""

import json

import numpy as np
import pytest

from partui.kernels.forward import vectorized
from partui.kernels.model.layers import get_layer
from partui.kernels.runtime import tuning
from partui.kernels.runtime.scratch import Scratch
from partui.profiles.run.inputs import forward_reference, input_of, params_of


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PARTUI_AUTOTUNE", "1")
    tuning.use(None)
    yield tmp_path
    tuning.use(None)


def test_the_file_is_keyed_by_this_cpu_and_named_in_the_users_cache(cache):
    ident = tuning.cpu_identity()
    assert ident["cpu_model"] and isinstance(ident["flags"], str)
    assert tuning.cache_path().startswith(str(cache / "partui" / "tuning"))
    other = {**ident, "flags": ident["flags"] + " made_up_flag"}
    assert tuning.cpu_key(other) != tuning.cpu_key(ident)


@pytest.mark.parametrize("knobs", [{"per_sample": False, "chunk_samples": 2}, {"call_samples": 3}])
def test_a_tuned_convolution_gives_the_reference_answer(cache, knobs):
    layer = get_layer("conv2")
    c, h, w = layer.in_shape
    shape = tuning.conv_shape(c, h, w, layer.out_shape[0])
    tuning.use({shape: knobs})
    assert vectorized.conv_choices(c, h, w, layer.out_shape[0], 7)[0] == knobs.get(
        "per_sample", True
    )
    x, p = input_of("conv2", 7, 0), params_of("conv2", 0)
    out = np.full((7, *layer.out_shape), np.nan, np.float32)
    vectorized.conv(x, p["weight"], p["bias"], out, Scratch())
    want = forward_reference("conv2", 7, 0)
    assert np.abs(out - want).max() <= 1e-4 * np.abs(want).max()
    if "call_samples" in knobs:  # 7 samples, 3 per call: three native calls
        assert len(vectorized.conv_choices(c, h, w, layer.out_shape[0], 7)[2]) == 3


def test_the_autotune_writes_choices_and_alternatives_the_kernels_then_read(cache):
    from partui.profiles.bench.autotune import Autotune
    from partui.tui.text.tuning_text import summary_lines

    said = []
    data = Autotune(batch=4, rounds=2, repeats=1, progress=said.append).run()
    assert any("conv2" in s for s in said) and any("network" in s for s in said)
    on_disk = tuning.read_file()
    assert on_disk is not None and on_disk["choices"] == data["choices"]
    assert on_disk["cpu"] == tuning.cpu_identity() and on_disk["key"] == tuning.cpu_key()
    for rows in on_disk["measured"].values():
        assert rows[0]["baseline"] and all(r["verified"] for r in rows)
        assert all(r["min_ms"] <= r["median_ms"] <= r["max_ms"] for r in rows)
    tuning.use(None)
    assert tuning.choices() == data["choices"]  # read back from the file
    text = "\n".join(summary_lines(on_disk))
    assert tuning.cache_path() in text and "conv 32x13x13->64" in text and "chosen:" in text


def test_a_damaged_file_is_ignored_and_off_means_the_rules(cache, monkeypatch):
    from partui.tui.text.tuning_text import summary_lines

    path = tuning.cache_path()
    import os

    os.makedirs(os.path.dirname(path))
    for bad in ("{not json", json.dumps({"version": 1, "choices": {"conv": "fast"}})):
        with open(path, "w") as fh:
            fh.write(bad)
        tuning.use(None)
        assert tuning.read_file() is None and tuning.choices() == {}
    good = {"version": tuning.TUNING_VERSION, "choices": {"network": {"call_samples": 8}}}
    with open(path, "w") as fh:
        json.dump({**good, "measured": {"x": [{"knobs": "odd", "median_ms": 1.0}]}}, fh)
    tuning.use(None)
    assert tuning.knob("network", "call_samples", 0) == 8
    assert any("odd" not in line for line in summary_lines(tuning.read_file()))
    monkeypatch.setenv("PARTUI_AUTOTUNE", "0")
    tuning.use(None)
    assert tuning.knob("network", "call_samples", 0) == 0
