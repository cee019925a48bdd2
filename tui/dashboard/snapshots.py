"""The dashboard's session as a profile snapshot, and a snapshot as a read-only session."""

from __future__ import annotations

from pathlib import Path

from partui.profiles.files.safe_files import write_text
from partui.profiles.records.config import RunConfig
from partui.profiles.store import export, snapshot
from partui.profiles.system.machine import MachineInfo
from partui.tui.dashboard.model import Model


def session_snapshot(
    model: Model,
    machine: MachineInfo,
    memlab: list | None = None,
    note: str = "saved from the dashboard",
) -> snapshot.Snapshot:
    analysis = model.analysis()
    return snapshot.Snapshot.from_results(
        model.runs,
        note=note,
        machine=machine,
        memlab=[r.to_dict() for r in (memlab or [])],
        baseline=dict(analysis.baselines),
    )


def save_session(
    model: Model, machine: MachineInfo, folder: Path, memlab: list | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = snapshot.default_snapshot_path(folder, stem="partui")
    return snapshot.save(session_snapshot(model, machine, memlab), path, unique=True)


def export_session(
    model: Model, machine: MachineInfo, folder: Path, memlab: list | None = None
) -> list[Path]:
    """The snapshot, its Perfetto / Chrome trace and its CSV, side by side, and the path for
    an SVG screenshot beside them (the last one returned: the caller writes it once the
    toasts over the screen are gone)."""
    folder.mkdir(parents=True, exist_ok=True)
    snap = session_snapshot(model, machine, memlab)
    path = snapshot.save(snap, snapshot.default_snapshot_path(folder, stem="partui"), unique=True)
    stem = path.with_suffix("")
    # the snapshot's unique name is the stem of its companions; none replaces a file
    trace = write_text(stem.with_name(stem.name + ".trace.json"), export.chrome_trace_text(snap))
    csv_path = write_text(stem.with_suffix(".csv"), export.csv_text(snap))
    return [path, trace, csv_path, stem.with_suffix(".svg")]


def model_from_snapshot(path: Path, max_workers: int, snap=None) -> Model:
    """A read-only model holding a snapshot's runs (with their spans) and CPU samples.
    `snap`: the file already loaded (a large one is read once, not twice)."""
    snap = snap if snap is not None else snapshot.load(path)
    results = snap.results()
    if results:
        last = results[-1]
        config = last.config
    else:
        config = RunConfig("conv2")
    model = Model(
        config,
        max_workers=max_workers,
        read_only=True,
        source=str(path),
        known_baselines=snap.baseline,
    )
    model.runs = results
    for n, r in enumerate(results, start=1):
        model.cpu.extend(r.cpu_samples)
        model.repeats.extend((n, t, r.config.key()) for t in r.times_ms)
    model.version += 1
    return model
