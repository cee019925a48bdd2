"""`partui train`'s report of what a step measured beyond loss and speed: Hogwild!'s staleness
and overlapping writes, each worker's phases and the straggler gap; and `--compare-updates`,
sync against Hogwild! on the same settings."""

from __future__ import annotations

import sys

from partui.tui.text.table import ms, print_json, table

STALENESS_MEANS = (
    "staleness: versions of a parameter block written by other workers between a step's "
    "read of the weights and its write"
)
OVERLAP_MEANS = "overlapping updates: block writes that overlapped another worker's write of it"


def staleness_lines(staleness: dict | None, overlaps: int | None) -> list[str]:
    if not staleness:
        return []
    if not staleness.get("measured"):
        return [
            f"staleness {staleness.get('note', '0 by construction')}",
            "overlapping updates 0 by construction: one writer per step",
        ]
    hist = "  ".join(f"{v}: {c}" for v, c in staleness["histogram"])
    return [
        f"{STALENESS_MEANS} ({staleness['updates']} block writes):",
        f"  median {staleness['median']}  p95 {staleness['p95']}  max {staleness['max']}",
        f"  histogram (staleness: block writes)  {hist}",
        f"{OVERLAP_MEANS}: {overlaps} of {staleness['updates']}",
    ]


def phases_lines(phases: dict | None) -> list[str]:
    if not phases or not phases.get("steps"):
        return []
    rows = [
        [
            f"w{w['worker']}",
            w["steps"],
            *(
                "-" if w[f"{p}_ms"] is None else ms(w[f"{p}_ms"])
                for p in ("compute", "wait", "combine", "update")
            ),
        ]
        for w in phases["workers"]
    ]
    out = [
        f"a step's phases per worker, medians of {phases['steps']} steps of the last epoch (ms):",
        table(["worker", "steps", "compute", "wait", "combine", "update"], rows, "lrrrrr"),
    ]
    gap = phases.get("straggler_gap_ms")
    if gap:
        out.append(
            f"straggler gap (slowest worker's compute - fastest's, per step): median "
            f"{ms(gap['median'])} ms, max {ms(gap['max'])} ms"
        )
    if phases.get("wait_note"):
        out.append(f"wait {phases['wait_note']}")
    return out


def measures_report(result) -> str:
    """Staleness and overlaps of the whole run, and the last epoch's step phases."""
    lines = staleness_lines(result.staleness, result.overlapping_updates)
    if result.epochs:
        lines += phases_lines(result.epochs[-1].step_phases)
    return "\n".join(lines)


def compare_table(s: dict) -> str:
    target = s["target_loss"]
    rows = []
    for update, r in s["runs"].items():
        ips = r["images_per_s"]
        lo_hi = r["images_per_s_range"]
        st = r["staleness"] or {}
        rows.append(
            [
                update,
                "-" if ips is None else f"{ips:.0f} ({lo_hi[0]:.0f}-{lo_hi[1]:.0f})",
                "-" if r["final_loss"] is None else f"{r['final_loss']:.3f}",
                f"{100 * r['test_accuracy']:.1f}%",
                "never" if r["images_to_target"] is None else r["images_to_target"],
                "never" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.1f}",
                "0 by construction"
                if not st.get("measured")
                else f"{st['median']} / {st['p95']} / {st['max']}",
            ]
        )
    head = (
        f"sync vs hogwild, interleaved epoch by epoch; loss = running mean over "
        f"{s['smoothing_steps']} steps; target loss "
        + ("-" if target is None else f"{target:.3f} (reached by both unless 'never')")
    )
    body = table(
        [
            "update",
            "images/s median (min-max of epochs)",
            "final loss",
            "test acc",
            "images to target",
            "own s to target",
            "staleness median/p95/max",
        ],
        rows,
        "lrrrrrl",
    )
    return head + "\n" + body


def run_compare(args, cfg, data) -> int:
    """`partui train --compare-updates`: both update rules on `cfg`, a table or JSON."""
    from partui.profiles.files.checked_json import json_safe
    from partui.profiles.train import compare

    print("partui train: sync and hogwild, interleaved epoch by epoch", file=sys.stderr, flush=True)
    from partui.profiles.train.trainer import EpochReport

    def progress(update, ev):
        if isinstance(ev, EpochReport):
            print(
                f"{update} epoch {ev.epoch}/{cfg.epochs}: loss {ev.train_loss:.4f}  "
                f"{ev.images_per_s:.0f} images/s",
                file=sys.stderr,
                flush=True,
            )

    try:
        runs = compare.compare_updates(cfg, data, progress)
    except KeyboardInterrupt:
        runs = []
    if not runs or any(r.result.interrupted for r in runs):
        print("partui: interrupted: no comparison", file=sys.stderr)
        return 130
    target = args.target_loss if args.target_loss is not None else compare.default_target(runs)
    s = compare.summary(runs, target)
    if args.json:
        print_json(json_safe({"compare_updates": s}), allow_nan=False)
    else:
        print(compare_table(s))
    return 0
