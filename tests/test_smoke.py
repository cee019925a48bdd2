import subprocess
import sys

from partui.profiles.engine import Engine, RunConfig


def test_conv2_batch_threads_is_verified():
    with Engine() as engine:
        result = engine.run(RunConfig("conv2", "batch", "vectorized", "threads", 2, 4, 2, 1))
    assert result.ok and result.max_abs_error < result.tolerance
    assert {s.worker for s in result.spans} == {0, 1}


def test_cli_refuses_unknown_layer():
    proc = subprocess.run([sys.executable, "-m", "partui.tui.cli", "run", "--layer", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "conv2" in proc.stderr and "Traceback" not in proc.stderr
