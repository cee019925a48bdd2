"""`partui list / info / run` as a user runs them: exit codes, one-line errors, JSON, saved
arrays."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from waiting import budget

from partui.kernels.forward import compute
from partui.kernels.model.layers import LAYER_NAMES, LAYERS
from partui.tui.cli import main as cli

RUN = ["run", "--repeat", "1", "--warmup", "0", "--batch", "2"]


def strict_json(text):
    """Parse as standard JSON: NaN and Infinity are not JSON."""

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def partui(*args, timeout=60):
    """The CLI in a process of its own; `timeout` (a give-up, not a limit partui promises)
    stretches with the load: a fresh install compiles its kernels on the first run."""
    return subprocess.run(
        [sys.executable, "-m", "partui.tui.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=budget(timeout),
    )


def assert_one_line_error(proc, code, *words):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "args,words",
    [
        (["--layer", "conv9"], ["conv9", "conv2", "logsoftmax", "network"]),
        (["--layer", "conv2", "--strategy", "diagonal"], ["diagonal", "batch", "pipeline"]),
        (["--layer", "conv2", "--kernel", "fast"], ["fast", "loops", "vectorized"]),
        (["--layer", "conv2", "--executor", "gpu"], ["gpu", "threads", "processes", "blas"]),
        (["--layer", "conv2", "--workers", "0"], ["workers", "1 to 256"]),
        (["--layer", "conv2", "--workers", "257"], ["workers", "1 to 256"]),
        (["--layer", "conv2", "--workers", "two"], ["workers", "two"]),
        (["--layer", "conv2", "--batch", "0"], ["batch", "1 to 1024"]),
        (["--layer", "conv2", "--batch", "1025"], ["batch", "1 to 1024"]),
        (["--layer", "conv2", "--seed", "-1"], ["seed"]),
        (["--layer", "conv2", "--repeat", "0"], ["repeat"]),
        ([], ["--layer"]),
    ],
)
def test_bad_input_exits_2_with_one_line(args, words):
    assert_one_line_error(partui("run", *args), 2, *words)


@pytest.mark.parametrize(
    "args",
    [
        ["--layer", "linear1", "--strategy", "spatial"],
        ["--layer", "conv2", "--strategy", "pipeline"],
        ["--layer", "conv2", "--strategy", "none", "--kernel", "loops", "--executor", "blas"],
        ["--layer", "conv2", "--strategy", "batch", "--executor", "blas"],
        ["--layer", "pool2", "--strategy", "none", "--executor", "blas"],
        ["--layer", "conv2", "--executor", "inline", "--workers", "2"],
        ["--layer", "logsoftmax", "--strategy", "channel"],
    ],
)
def test_not_applicable_exits_2(args):
    assert_one_line_error(partui("run", *args), 2, "not applicable")


def test_unknown_command():
    assert_one_line_error(partui("frobnicate"), 2, "frobnicate", "run")


def test_unwritable_save_arrays_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target in (blocker, blocker / "sub", "/proc/partui-no-such-dir"):
        proc = partui(*RUN, "--layer", "pool2", "--save-arrays", str(target))
        assert_one_line_error(proc, 2, "cannot write", str(target))
    assert not (tmp_path / "a-file" / "sub").exists()


def test_run_prints_a_verified_table():
    proc = partui(
        "run",
        "--layer",
        "conv2",
        "--strategy",
        "batch",
        "--executor",
        "threads",
        "--workers",
        "2",
        "--batch",
        "4",
        "--repeat",
        "3",
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "conv2" in out and "median" in out and "min-max" in out
    assert "3 repeats after 1 warm-up" in out and "BLAS threads 1" in out
    assert "worker" in out and "busy ms" in out
    assert "max abs error" in out and "OK" in out and "FAILED" not in out


def test_run_json_shape():
    proc = partui(
        "run",
        "--layer",
        "conv2",
        "--strategy",
        "hybrid",
        "--executor",
        "processes",
        "--workers",
        "2",
        "--batch",
        "4",
        "--repeat",
        "2",
        "--warmup",
        "1",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    d = strict_json(proc.stdout)
    assert d["layer"] == "conv2" and d["strategy"] == "hybrid" and d["kernel"] == "vectorized"
    assert d["executor"] == "processes" and d["workers"] == 2 and d["batch"] == 4
    assert d["blas_threads"] == 1
    assert isinstance(d["times_ms"], list) and len(d["times_ms"]) == 2
    assert d["median_ms"] == pytest.approx(float(np.median(d["times_ms"])))
    assert d["ok"] is True and 0 <= d["max_abs_error"] <= d["tolerance"]
    assert len(d["spans"]) == 2 * 4  # 2 repeats x (2 batch halves x 2 channel halves)
    for s in d["spans"]:
        assert {"worker", "tid", "start_ns", "end_ns", "units"} <= set(s)
        assert s["worker"] in (0, 1) and s["start_ns"] < s["end_ns"] and s["units"] > 0
    assert sum(s["units"] for s in d["spans"]) == 2 * LAYERS["conv2"].flops(4)


def test_run_json_blas_threads():
    proc = partui(
        *RUN,
        "--layer",
        "linear2",
        "--strategy",
        "none",
        "--executor",
        "blas",
        "--workers",
        "2",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    d = strict_json(proc.stdout)
    assert d["blas_threads"] == 2 and d["workers"] == 2 and d["ok"] is True


def _conv_f64(x, w, b):
    """Direct float64 convolution: every 3x3 window against every filter."""
    win = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), (3, 3), axis=(2, 3))
    return np.einsum("nchwij,ocij->nohw", win, w.astype(np.float64)) + b[None, :, None, None]


def _gelu_f64(v):
    return 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3)))


@pytest.mark.parametrize(
    "layer,executor", [("conv2", "processes"), ("linear1", "threads"), ("pool2", "threads")]
)
def test_save_arrays_can_be_checked_independently(tmp_path, layer, executor):
    out_dir = tmp_path / "arrays" / layer  # created on demand
    proc = partui(
        *RUN,
        "--layer",
        layer,
        "--strategy",
        "channel",
        "--executor",
        executor,
        "--workers",
        "2",
        "--save-arrays",
        str(out_dir),
    )
    assert proc.returncode == 0, proc.stderr
    assert f"arrays written to {out_dir}" in proc.stdout
    files = {p.name for p in out_dir.iterdir()}
    x = np.load(out_dir / "input.npy")
    y = np.load(out_dir / "output.npy")
    assert x.dtype == y.dtype == np.float32
    assert x.shape == LAYERS[layer].in_array_shape(2) and y.shape == LAYERS[layer].out_array_shape(
        2
    )
    if layer == "pool2":
        assert files == {"input.npy", "output.npy", "README.txt"}
        want = np.maximum.reduce([x[:, :, a:10:2, c:10:2] for a in (0, 1) for c in (0, 1)])
        want = want.astype(np.float64)
    else:
        assert files == {"input.npy", "weight.npy", "bias.npy", "output.npy", "README.txt"}
        w, b = np.load(out_dir / "weight.npy"), np.load(out_dir / "bias.npy")
        assert w.shape == LAYERS[layer].weight_shape and b.shape == LAYERS[layer].bias_shape
        if layer == "conv2":
            want = _conv_f64(x, w, b.astype(np.float64))
        else:
            want = _gelu_f64(x.astype(np.float64) @ w.astype(np.float64).T + b)
    assert np.abs(y - want).max() <= 1e-4 * np.abs(want).max()


def test_save_arrays_says_what_was_computed(tmp_path):
    """README.txt beside the arrays: the layer with its GELU, the formula with the tanh form
    written out, the pass, and each file's dtype and shape; the formula matches the arrays."""
    proc = partui(*RUN, "--layer", "linear1", "--save-arrays", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "README.txt").read_text()
    assert "linear1: linear + GELU, per sample 128 -> 512" in text
    assert "output = GELU_tanh(input @ weight.T + bias)" in text
    assert "GELU_tanh(x) = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))" in text
    assert "pass     forward" in text
    files = text.split("\nfiles\n")[1].splitlines()
    rows = {line.split()[0]: line.split()[1:3] for line in files}
    assert rows == {
        "input.npy": ["float32", "2x128"],
        "output.npy": ["float32", "2x512"],
        "weight.npy": ["float32", "512x128"],
        "bias.npy": ["float32", "512"],
    }
    x, w, b, y = (
        np.load(tmp_path / f"{n}.npy").astype(np.float64)
        for n in ("input", "weight", "bias", "output")
    )
    assert np.abs(y - _gelu_f64(x @ w.T + b)).max() < 1e-4
    assert np.abs(y - (x @ w.T + b)).max() > 1e-2  # the GELU is not a detail


def test_save_arrays_network_names_each_layer(tmp_path):
    proc = partui(*RUN, "--layer", "network", "--save-arrays", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    names = {p.name for p in tmp_path.iterdir()}
    assert {"input.npy", "output.npy", "conv1.weight.npy", "linear3.bias.npy"} <= names


@pytest.mark.parametrize("command", ["list", "info"])
def test_list_and_info(command):
    proc = partui(command)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    if command == "list":
        for name in LAYER_NAMES:
            assert name in proc.stdout
        assert "valid combinations" in proc.stdout and "4.46 MFLOP" in proc.stdout
        ops = {line.split()[0]: line[12:36].strip() for line in proc.stdout.splitlines()[2:16]}
        assert ops["linear1"] == ops["linear2"] == "linear + GELU"
        assert ops["linear3"] == "linear" and ops["gelu1"] == "GELU (tanh form)"
        assert "GELU_tanh(x) = 0.5 * x * (1 + tanh(" in proc.stdout
    else:
        for word in ("CPU", "cores", "memory", "BLAS", "Python", "numpy"):
            assert word in proc.stdout


def test_list_json():
    proc = partui("list", "--json")
    assert proc.returncode == 0, proc.stderr
    d = strict_json(proc.stdout)
    layers = {layer["name"]: layer for layer in d["layers"]}
    assert list(layers) == list(LAYER_NAMES)
    assert layers["conv2"]["flops_per_sample"] == 4_460_544
    assert layers["conv2"]["out_shape"] == [64, 11, 11]
    assert layers["linear2"]["operation"] == "linear + GELU"
    assert {"strategy": "pipeline", "kernel": "loops", "executor": "threads"} in d["valid"][
        "network"
    ]
    assert {"strategy": "spatial", "kernel": "vectorized", "executor": "threads"} not in d["valid"][
        "linear1"
    ]


def test_info_json():
    proc = partui("info", "--json")
    assert proc.returncode == 0, proc.stderr
    d = strict_json(proc.stdout)
    assert d["logical_cores"] >= 1 and d["memory_total"] > 0
    assert isinstance(d["caches"], list) and isinstance(d["blas"], list)
    assert d["python"].count(".") == 2 and d["numpy"]


class _WrongConv:
    """The vectorized kernels, except conv, which is off by a little in one element."""

    def __getattr__(self, name):
        return getattr(compute.vectorized, name)

    @staticmethod
    def conv(x, w, b, out, scratch, cancel=None):
        compute.vectorized.conv(x, w, b, out, scratch, cancel)
        out.flat[0] += 0.01 * max(1.0, float(np.abs(out).max()))


class _LazyGelu(_WrongConv):
    """A GELU that writes nothing."""

    @staticmethod
    def gelu(x, out, scratch, cancel=None):
        pass


@pytest.mark.parametrize("as_json", [False, True])
def test_a_wrong_result_fails_visibly_with_exit_1(monkeypatch, capsys, as_json):
    monkeypatch.setitem(compute.KERNEL_MODULES, "vectorized", _WrongConv())
    args = [
        "run",
        "--layer",
        "conv2",
        "--executor",
        "threads",
        "--workers",
        "2",
        "--batch",
        "2",
        "--repeat",
        "1",
    ] + (["--json"] if as_json else [])
    assert cli.main(args) == 1
    out = capsys.readouterr().out
    if as_json:
        d = strict_json(out)
        assert d["ok"] is False and d["max_abs_error"] > d["tolerance"]
        assert "exceeds tolerance" in d["error"]
    else:
        assert "FAILED" in out


def test_a_region_no_task_writes_fails(monkeypatch):
    """The output is filled with NaN before each repeat: a kernel that writes nothing cannot
    pass."""
    from partui.profiles.records.config import RunConfig
    from partui.profiles.run.engine import Engine

    monkeypatch.setitem(compute.KERNEL_MODULES, "vectorized", _LazyGelu())
    with Engine() as engine:
        result = engine.run(
            RunConfig("gelu2", executor="inline", workers=1, batch=2, repeats=1, warmup=0)
        )
    assert not result.ok and "NaN" in result.error


def test_json_of_a_nan_output_is_still_json(monkeypatch, capsys):
    monkeypatch.setitem(compute.KERNEL_MODULES, "vectorized", _LazyGelu())
    assert (
        cli.main(
            [
                "run",
                "--layer",
                "gelu2",
                "--executor",
                "inline",
                "--workers",
                "1",
                "--batch",
                "2",
                "--repeat",
                "1",
                "--json",
            ]
        )
        == 1
    )
    d = strict_json(capsys.readouterr().out)
    assert d["ok"] is False and d["max_abs_error"] is None


def _stderr_on_a_terminal(*args, timeout=120):
    """Run partui with stderr on a pseudo-terminal; (exit code, stdout, what the terminal got)."""
    import os
    import pty

    main, sub = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "partui.tui.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=sub,
        text=True,
    )
    os.close(sub)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the other end closed (EIO on Linux)
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out, seen.decode(errors="replace")


def test_run_shows_the_repeat_under_way_on_a_terminal_only():
    args = ["run", "--layer", "pool2", "--batch", "2", "--repeat", "2", "--warmup", "1"]
    code, out, term = _stderr_on_a_terminal(*args)
    assert code == 0, term
    for step in ("starting...", "warm-up 1 of 1...", "repeat 1 of 2...", "repeat 2 of 2..."):
        assert f"\rpartui run: {step}" in term, term
    assert "(warm-up: " in term and "(repeat 1: " in term
    assert term.endswith("\r"), term  # the line is wiped: the report starts clean
    assert out.startswith("pool2  strategy")
    proc = partui(*args)  # stderr not a terminal: no progress line
    assert proc.returncode == 0 and "repeat 1 of 2" not in proc.stderr


def test_sweep_line_shows_the_repeat_under_way(monkeypatch, capsys, tmp_path):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setenv("PARTUI_SNAPSHOT_DIR", str(tmp_path))
    argv = ["sweep", "--layer", "pool2", "--strategies", "batch", "--executors", "inline"]
    argv += ["--workers", "1", "--batch", "2", "--repeat", "2", "--warmup", "0", "--no-book"]
    assert cli.main(argv) == 0
    text = term.getvalue()
    head = "[1/1] pool2 batch/vectorized/inline w=1 b=2 ..."
    assert f"\r{head} repeat 1 of 2..." in text and f"\r{head} repeat 2 of 2..." in text
    last = text.splitlines()[-1]  # other programs busy meanwhile (a loaded machine): said so
    assert re.search(r" ms(  busy: other programs used [0-9.]+ core)?$", last) and head in last
