"""The train tab on Dask: which settings an executor change brings, and the line that says
where a Dask run trains and what its steps move and cost."""

from __future__ import annotations

from dataclasses import replace

from partui.profiles.records.train_config import TrainConfig
from partui.tui.text.safe_text import printable


def dask_settings(cfg: TrainConfig, executor: str) -> tuple[dict, str]:
    """(the settings changed to train on `executor`, why it cannot: "" if it can). Dask sums
    gradients by `reduce` or `gather`, the local executors by `reduce` or `locked`: a combine
    the new executor has not becomes `reduce`. Dask takes its scheduler from
    $PARTUI_DASK_SCHEDULER (none: a LocalCluster partui starts)."""
    import os

    changes: dict = {"executor": executor, "scheduler": ""}
    if executor == "dask":
        from partui.profiles.executors.dask_connect import available

        if not available():
            return {}, "it needs pip install 'partui[dask]'"
        changes["scheduler"] = os.environ.get("PARTUI_DASK_SCHEDULER", "").strip()
        if cfg.combine not in ("reduce", "gather"):
            changes["combine"] = "reduce"
    elif cfg.combine == "gather":
        changes["combine"] = "reduce"
    try:
        replace(cfg, **changes).check()
    except ValueError as exc:
        return {}, str(exc)
    return changes, ""


def dask_line(d: dict) -> str:
    """The cluster's address, the gradient bytes a step moves and the exchange's time."""
    mib = 2**20
    where = printable(d.get("scheduler", "?"), keep_newlines=False)
    line = f"dask {where} ({d.get('cluster', 'starting')}, {d.get('workers', '?')} workers)"
    if "gradient_bytes" in d:
        moved = d["between_bytes"] + d["to_partui_bytes"] + d["from_partui_bytes"]
        line += (
            f"  gradient {d['gradient_bytes'] / mib:.2f} MiB, {moved / mib:.2f} MiB moved a step"
            f"  exchange {d['exchange_ms']:.1f} ms of a {d['step_ms']:.1f} ms step"
        )
    return line
