"""The reports of runs and snapshots, as text and as plain data: the same tables for the
command line (`partui sweep`, `show`, `compare`) and the dashboard's compare screen."""

from __future__ import annotations

from partui.tui.text.table import ms, ratio_text, table

MACHINE_KEYS = (
    "cpu_model",
    "logical_cores",
    "physical_cores",
    "usable_cores",
    "memory_total",
    "python",
    "numpy",
    "platform",
    "hostname",
)


def _x(v: float) -> str:
    return "-" if v != v else f"{v:.2f}x"


def _ratio(v: float) -> str:
    return "-" if v != v else f"{v:.2f}"


def _on_cpu(ratios: list[float]) -> str:
    vals = [r for r in ratios if r == r]
    if not vals:
        return "-"
    if len(ratios) <= 4:
        return "/".join(ratio_text(r) for r in ratios)
    return f"mean {ratio_text(sum(vals) / len(vals))}"


def _busy(r) -> bool:
    return r.conditions is not None and r.conditions.busy


def report(analysis, repeats: int | None = None) -> str:
    from partui.profiles.records.significance import method_text

    rows = []
    for row in analysis.rows:
        r, st = row.result, row.stats
        vs1 = st.vs_1w.text() if st.vs_1w is not None else "-"
        rows.append(
            [
                r.config.label(),
                ms(r.median_ms),
                f"{ms(r.min_ms)}-{ms(r.max_ms)}",
                ms(st.iqr),
                vs1,
                _x(st.speedup_honest),
                _ratio(st.efficiency),
                _on_cpu(r.on_cpu_ratio),
                _ratio(st.imbalance),
                ("ok" if r.ok else "WRONG") + (" busy" if _busy(r) else ""),
            ]
        )
    lines = [
        table(
            [
                "configuration",
                "median ms",
                "min-max ms",
                "IQR ms",
                "vs 1 worker",
                "vs baseline",
                "efficiency",
                "on-CPU",
                "imbalance",
                "ok",
            ],
            rows,
            align="lrrrlrrlrl",
        )
    ]
    lines.append("")
    n = f"{repeats} repeats each; " if repeats else ""
    floors = {r.stats.vs_1w.noise_floor for r in analysis.rows if r.stats.vs_1w is not None}
    lines.append(
        f"{n}vs 1 worker: {method_text(floors.pop() if len(floors) == 1 else None)}; "
        "efficiency = speedup vs baseline / workers; on-CPU = CPU time / busy time "
        "per worker; imbalance = max / mean busy time"
    )
    if any(_busy(row.result) for row in analysis.rows):
        lines.append("busy: other programs held over half a core during the run (less stable)")
    if analysis.baselines:
        lines.append(
            "baselines (best single-worker median for the layer, kernel and batch, "
            "any strategy and executor):"
        )
        for k, b in sorted(analysis.baselines.items()):
            lines.append(f"  {k}: {ms(b.median_ms)} ms ({b.label()})")
    if analysis.series:
        lines.append(
            "scaling over workers (Amdahl fit T(p) = T1 (s + (1-s)/p); Karp-Flatt e "
            "per worker count, rising e = overhead that grows with workers):"
        )
        for s in analysis.series:
            layer, strategy, kernel, executor, batch = s.key
            name = f"{strategy}/{kernel}/{executor}"
            f = s.fit
            if f is None:
                fit = f"no fit ({s.withheld})" if s.withheld else "no fit"
            else:
                if f.raw_serial_fraction < 0:
                    fit = (
                        f"s = {f.raw_serial_fraction:.2f} < 0: "
                        "faster than linear (or noise), no ceiling"
                    )
                elif f.raw_serial_fraction > 1:
                    fit = f"s = {f.raw_serial_fraction:.2f} > 1: slower with more workers"
                else:
                    ceiling = "unbounded" if f.ceiling == float("inf") else f"{f.ceiling:.1f}x"
                    fit = f"s = {f.serial_fraction:.2f}, ceiling {ceiling}"
                fit += (
                    " (2 points: an exact fit, residual 0, not a test of the model)"
                    if f.points == 2
                    else f" (residual: rms {ms(f.rms_error_ms)} ms over {f.points} medians)"
                )
            kf = "  ".join(f"e(w={p}) = {e:.2f}" for p, e in s.karp_flatt.items() if e == e)
            lines.append(f"  {name}: {fit}" + (f"; {kf}" if kf else ""))
    return "\n".join(lines)


def machine_differences(a, b) -> list[tuple[str, str, str]]:
    """What differs between two MachineInfo records, as (what, A, B)."""
    out = []
    for k in MACHINE_KEYS:
        if getattr(a, k) != getattr(b, k):
            out.append((k, str(getattr(a, k)), str(getattr(b, k))))

    def blas(m) -> list[tuple]:
        return [
            (x.get("internal_api"), x.get("version"), x.get("num_threads")) for x in m.blas or []
        ]

    if blas(a) != blas(b):
        out.append(("blas", str(blas(a)), str(blas(b))))
    return out


def analysis_data(analysis) -> dict:
    """A sweep's or a snapshot's table as plain data: one entry per run, then the baselines
    and the scaling series."""
    from dataclasses import asdict

    runs = []
    for row in analysis.rows:
        r = row.result
        runs.append(
            {
                "label": r.config.label(),
                "config": r.config.to_dict(),
                "ok": r.ok,
                "max_abs_error": r.max_abs_error,
                "on_cpu_ratio": r.on_cpu_ratio,
                **asdict(row.stats),
                "vs_1w": row.stats.vs_1w.to_dict() if row.stats.vs_1w else None,
                "baseline": row.baseline.to_dict() if row.baseline else None,
                "conditions": r.conditions.to_dict() if r.conditions is not None else None,
            }
        )
    series = [
        {
            "key": list(s.key),
            "median_ms_by_workers": {str(w): t for w, t in s.times.items()},
            "amdahl": asdict(s.fit) if s.fit else None,
            "amdahl_withheld": s.withheld,
            "karp_flatt": {str(w): e for w, e in s.karp_flatt.items()},
            "contrasts": {str(w): c.to_dict() for w, c in s.contrasts.items()},
        }
        for s in analysis.series
    ]
    return {
        "runs": runs,
        "baselines": {k: b.to_dict() for k, b in analysis.baselines.items()},
        "series": series,
    }


def compare_data(a, b, noise_floor: float | None = None) -> dict:
    """What compare_report shows, as plain data: every run of a configuration pooled, and
    per configuration in both, B against A (significance.contrast)."""
    from partui.profiles.records.significance import NOISE_FLOOR, contrast
    from partui.profiles.store.analysis import drift_of, pool, runs_by_config

    floor = NOISE_FLOOR if noise_floor is None else noise_floor
    runs_a, runs_b = runs_by_config(a.results()), runs_by_config(b.results())
    ra = {k: pool(v) for k, v in runs_a.items()}  # every run of a configuration pooled
    rb = {k: pool(v) for k, v in runs_b.items()}
    both = [k for k in ra if k in rb]

    def side(r) -> dict:
        return {
            "median_ms": r.median_ms,
            "min_ms": r.min_ms,
            "max_ms": r.max_ms,
            "n": len(r.times_ms),
        }

    rows = []
    for k in both:
        x, y = ra[k], rb[k]
        c = contrast(x.times_ms, y.times_ms, floor, drift=drift_of(runs_a[k], runs_b[k]))
        rows.append(
            {
                "label": x.config.label(),
                "config": x.config.to_dict(),
                "a": side(x),
                "b": side(y),
                "ratio_b_over_a": y.median_ms / x.median_ms if x.median_ms > 0 else float("nan"),
                **c.to_dict(),
            }
        )
    return {
        "machine_differences": [list(d) for d in machine_differences(a.machine, b.machine)],
        "noise_floor": floor,
        "configurations": rows,
        "only_in_a": len(ra) - len(both),
        "only_in_b": len(rb) - len(both),
    }


def compare_report(a, b, noise_floor: float | None = None) -> str:
    """Two snapshots side by side: machine differences first, then every shared configuration."""
    from partui.profiles.records.significance import method_text

    data = compare_data(a, b, noise_floor)
    out = []
    if data["machine_differences"]:
        out.append("the machines differ (ratios compare machines as well as configurations):")
        out.append(table(["", "A", "B"], data["machine_differences"], align="lll"))
    else:
        out.append(
            f"same machine: {a.machine.cpu_model or '?'}, "
            f"{a.machine.logical_cores or '?'} logical cores"
        )
    out.append("")

    def span(t: dict) -> str:
        return f"{ms(t['median_ms'])} ({ms(t['min_ms'])}-{ms(t['max_ms'])}) n={t['n']}"

    rows = [
        [
            c["label"],
            span(c["a"]),
            span(c["b"]),
            _ratio(c["ratio_b_over_a"]),
            ("B " if c["significant"] else "") + c["text"],
        ]
        for c in data["configurations"]
    ]
    if rows:
        out.append(
            table(
                [
                    "configuration",
                    "A median ms (min-max)",
                    "B median ms (min-max)",
                    "B/A",
                    "B against A [interval]",
                ],
                rows,
                align="lrrrl",
            )
        )
        out.append("")
        out.append(
            "every run of a configuration pooled (n = its repeats); "
            + method_text(data["noise_floor"])
        )
    else:
        out.append("no configuration is in both snapshots")
    only_a, only_b = data["only_in_a"], data["only_in_b"]
    if only_a or only_b:
        out.append(f"only in A: {only_a} configuration(s); only in B: {only_b}")
    return "\n".join(out)
