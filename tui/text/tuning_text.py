"""The kernels' choices tuned on this CPU (kernels.runtime.tuning), in words: for
`partui info` and `partui bench`."""

from __future__ import annotations

import time

from partui.kernels.runtime import tuning


def summary_lines(data: dict | None) -> list[str]:
    """The choices in words, each with what it beat: for `partui info` and `bench`."""
    if not data:
        return ["tuning       none (PARTUI_AUTOTUNE=0, or not measured yet on this CPU)"]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(data.get("created", 0)))
    path = data.get("path") or tuning.cache_path()
    lines = [
        f"tuning       {path} ({when}, batch {data.get('batch')}, "
        f"{data.get('rounds')} rounds x {data.get('repeats')}, load "
        f"{(data.get('load_average') or {}).get('before')})"
    ]
    for key, rows in data.get("measured", {}).items():
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            continue
        timed = [r for r in rows if isinstance(r.get("median_ms"), (int, float))]
        if not timed:
            continue
        best = min(timed, key=lambda r: r["median_ms"])
        base = timed[0]
        if best is base:
            lines.append(
                f"  {key}: {_knobs(base.get('knobs'))} fastest, {_ms(base)}; {len(timed)} measured"
            )
        else:
            lines.append(
                f"  {key}: fastest {_knobs(best.get('knobs'))} {_ms(best)} against "
                f"{_knobs(base.get('knobs'))} {_ms(base)}; {len(timed)} measured"
            )
    chosen = data.get("choices") or {}
    lines.append(
        "  chosen: "
        + ("; ".join(f"{k}: {_knobs(v)}" for k, v in chosen.items()) or "the rules everywhere")
    )
    return lines


def _ms(row: dict) -> str:
    """A candidate's median and the min-max of its rounds."""
    lo, hi = row.get("min_ms"), row.get("max_ms")
    spread = f" ({lo:.3f}-{hi:.3f})" if all(isinstance(v, (int, float)) for v in (lo, hi)) else ""
    return f"{row['median_ms']:.3f} ms{spread}"


def _knobs(knobs) -> str:
    if not isinstance(knobs, dict) or not knobs:
        return "the rule"
    return " ".join(f"{k}={v}" for k, v in knobs.items())
