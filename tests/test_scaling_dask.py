"""partui scaling for real: a LocalCluster of two workers, the calibration, the Dask
training runs it is checked against, and the JSON the README documents."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.waiting import budget


def test_scaling_quick_json_calibrates_validates_and_predicts(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "partui.tui.cli.main",
            "scaling",
            "--quick",
            "--batch",
            "8",
            "--workers",
            "1..32",
            "--json",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=budget(120),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "scaling [" in proc.stderr  # progress there
    out = json.loads(proc.stdout)
    cal = out["calibration"]
    assert out["predictions_from"] == "median"
    assert cal["compute"]["grad_bytes"] == out["inputs"]["median"]["grad_bytes"] > 1_000_000
    for part in (cal["compute"], cal["exchange"], cal["dask_tasks"], cal["local"]):
        for fit in (part["fit"], part["fit_min"]):
            assert all(math.isfinite(fit[k]) for k in ("intercept", "slope", "slope_se"))
    # every exchange size was timed by the receiving worker, each with its spread
    sizes = cal["exchange"]["per_size_s"]
    assert len(sizes) == 5 and all(v["n"] >= 1 and v["min"] <= v["max"] for v in sizes.values())
    assert cal["compute"]["per_sample_two_at_once_s"]["n"] >= 2
    runs = {(v["workers"], v["rule"]): v for v in out["validation"]}
    assert set(runs) == {(1, "tree"), (2, "tree")}
    for v in runs.values():
        m = v["measured_step_ms"]
        assert m["n"] == 2 and 0 < m["min"] <= m["median"] <= m["max"]
        error = (v["predicted_step_ms"] - m["median"]) / m["median"]
        assert v["relative_error"] == pytest.approx(error)
        error = (v["predicted_step_min_ms"] - m["min"]) / m["min"]
        assert v["relative_error_min"] == pytest.approx(error)
    preds = out["predictions"]
    assert len(preds) == 3 * 32
    assert {p["rule"] for p in preds} == {"gather", "tree", "ring"}
    assert all(p["validated"] == (p["workers"] <= 2 and p["rule"] == "tree") for p in preds)
    one = [p for p in preds if p["workers"] == 1]
    assert all(p["efficiency"] == 1.0 for p in one)
    assert set(out["stops_paying"]) == set(out["crossover"]) == {"gather", "tree", "ring"}
