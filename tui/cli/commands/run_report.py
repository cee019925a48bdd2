"""The text report of one run: its times, the workers' share, the phases, where a Dask run
ran and what it moved, the check."""

from __future__ import annotations

from partui.tui.text.table import ms, table


def dask_where(d: dict) -> list[str]:
    """Where a Dask run ran: the scheduler, whose cluster it is, the workers and their clocks."""
    link = (
        f"  dashboard {d['dashboard']}"
        if d.get("dashboard")
        else "  (no Dask dashboard: bokeh is not installed)"
        if d.get("cluster") == "local"
        else ""
    )
    whose = (
        "a LocalCluster partui started and stops"
        if d.get("cluster") == "local"
        else "an external cluster: partui leaves it running"
    )
    lines = [f"Dask scheduler {d.get('scheduler')} ({whose}){link}"]
    for w in d.get("workers", []):
        unc = w.get("clock_uncertainty_ms")
        lines.append(
            f"  worker {w['name']} {w['address']} pid {w.get('pid') or '?'}: clock offset "
            f"{w.get('clock_offset_ms', 0):+.2f} ms +- {'?' if unc is None else f'{unc:.2f}'} ms"
        )
    return lines


def dask_report(d: dict, median_ms: float) -> list[str]:
    """Where a Dask run ran, its workers' clocks, what it moved and where a task's time went."""
    lines = dask_where(d)
    mib = 2**20
    t = d.get("training")
    if t:
        lines.append(
            f"training step: gradients combined by {t['combine']}; a gradient is "
            f"{t['gradient_bytes'] / mib:.2f} MiB; a step moved "
            f"{t['gradient_bytes_between_workers_per_step'] / mib:.2f} MiB of gradients between "
            f"workers and {t['gradient_bytes_to_partui_per_step'] / mib:.2f} MiB back here, and "
            f"{t['weights_bytes_out_per_step'] / mib:.2f} MiB of weights out"
        )
        lines.append(
            f"per step (medians): weights out {ms(t['weights_ms'])} ms, gradient back "
            f"{ms(t['fetch_ms'])} ms, update here {ms(t['update_ms'])} ms"
        )
        lines += [f"note: {note}" for note in d.get("notes", [])]
        return lines
    lines.append(
        f"moved per repeat: {d.get('bytes_out_per_repeat', 0) / mib:.2f} MiB inputs out, "
        f"{d.get('bytes_back_per_repeat', 0) / mib:.2f} MiB outputs back; weights "
        f"{d.get('params_bytes', 0) / mib:.2f} MiB to all workers once per run "
        f"({ms(d.get('params_ms', 0))} ms, not in the times)"
    )
    send, comp = d.get("task_send_ms", 0), d.get("task_compute_ms", 0)
    fetch, over = d.get("task_fetch_ms", 0), d.get("task_overhead_ms", 0)
    share = 100 * comp / max(send + comp + fetch + over, 1e-9)
    lines.append(
        f"per task (medians): send {ms(send)} ms  compute {ms(comp)} ms  fetch {ms(fetch)} ms  "
        f"scheduling {ms(over)} ms  (compute is {share:.0f}% of a task's time)"
    )
    for note in d.get("notes", []):
        lines.append(f"note: {note}")
    return lines


def run_report(result) -> str:
    from partui.profiles.bench.overhead import run_overhead_us, wake_us

    c = result.config
    what = "" if c.pass_kind == "forward" else f"  pass {c.pass_kind}  combine {c.combine}"
    lines = [
        f"{c.layer}{what}  strategy {c.strategy}  kernel {c.kernel}  executor {c.executor}  "
        f"workers {c.workers}  batch {c.batch}  BLAS threads {result.blas_threads}  "
        f"tasks {result.tasks}",
        f"median {ms(result.median_ms)} ms   min-max {ms(result.min_ms)}-{ms(result.max_ms)} ms   "
        f"IQR {ms(result.q3_ms - result.q1_ms)} ms   {len(result.times_ms)} repeats after "
        f"{c.warmup} warm-up   {result.gflops:.1f} GFLOP/s",
    ]
    if result.pool_startup_ms:
        lines.append(f"pool start-up {ms(result.pool_startup_ms)} ms (not in the times)")
    if result.worker_cpus:
        pins = ", ".join(f"w{w} cpu{cpu}" for w, cpu in enumerate(result.worker_cpus))
        lines.append(f"pinned: {pins} (PARTUI_PIN_THREADS=0 leaves them to the scheduler)")
    workers = c.workers
    fixed = run_overhead_us(result.times_ms, result.spans) if workers > 1 else None
    if fixed is not None:
        wake = wake_us(result.spans)
        lines.append(
            f"hand-out and collection {fixed:.0f} us per repeat (median of wall minus the "
            f"busiest worker's tasks)"
            + (f"   wake-up {wake:.0f} us (median, woken workers)" if wake is not None else "")
        )
    total_busy = sum(result.worker_busy_ms) or 1.0
    rows = [
        [w, ms(b), f"{100 * b / result.median_ms:.0f}%", f"{100 * b / total_busy:.0f}%"]
        for w, b in enumerate(result.worker_busy_ms)
    ]
    lines.append("")
    lines.append(table(["worker", "busy ms", "busy/wall", "share of work"], rows))
    lines.append("")
    if result.dask:
        lines += dask_report(result.dask, result.median_ms)
        lines.append("")
    if c.pass_kind != "forward":
        from partui.profiles.run.passes import phase_walls

        walls = phase_walls(result.spans, c.pass_kind)
        lines.append(table(["phase", "wall ms (median)"], [[k, ms(v)] for k, v in walls.items()]))
        total = sum(walls.values())
        if total > result.median_ms * 1.05:
            lines.append(
                f"the phases overlap in time: their walls add up to {ms(total)} ms against a "
                f"repeat's median of {ms(result.median_ms)} ms (a phase's wall runs from its "
                f"first task's start to its last task's end, while other phases run)"
            )
        lines.append("")
    if result.conditions is not None:
        from partui.tui.text.conditions_text import conditions_line

        lines.append(conditions_line(result.conditions))
    verdict = "OK" if result.ok else f"FAILED: {result.error or 'result is wrong'}"
    lines.append(
        f"max abs error {result.max_abs_error:.2e} (tolerance {result.tolerance:.2e})  {verdict}"
    )
    return "\n".join(lines)
