"""Profile snapshots: plain, versioned JSON a person can read, written atomically.

    {"format": "partui-snapshot", "schema_version": 2, "partui_version": "0.1.0",
     "created": "2026-11-05T10:00:00+00:00", "machine": {...partui info...}, "note": "...",
     "runs": [RunResult.to_dict(), ...],   # config, times, spans, cpu_samples, on_cpu_ratio
     "memlab": [{...}, ...],               # memory-lab experiments, free-form dicts
     "training": [{...}, ...],             # `partui train` runs (profiles.trainer.TrainResult)
     "baseline": {key: Baseline.to_dict()},  # the honest baselines the runs were compared with
     "bench": {...}}                       # `partui bench`'s summary (BenchResult), if any

Schema 1 kept `partui bench`'s summary as baseline["bench"]; such files still open (the
summary moves to `bench`). Loading validates the file and raises SnapshotError with one
line naming what is wrong (snapshot_validation); the dicts stay here: a loaded Snapshot
holds typed records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from partui.profiles.files.checked_json import FileProblem, json_safe, parse_bounded
from partui.profiles.files.paths import user_data_path
from partui.profiles.files.safe_files import write_text
from partui.profiles.records.bench_result import BenchResult
from partui.profiles.records.config import RunConfig
from partui.profiles.records.results import RunResult
from partui.profiles.store.baselines import Baseline
from partui.profiles.store.snapshot_validation import (
    FORMAT,
    MAX_BYTES,
    MAX_DEPTH,
    MAX_VALUES,
    SCHEMA_VERSION,
    SnapshotError,
    validate,
)
from partui.profiles.system.machine import MachineInfo, info


def partui_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("partui")
    except PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


@dataclass
class Snapshot:
    runs: list[RunResult] = field(default_factory=list)
    note: str = ""
    machine: MachineInfo = field(default_factory=info)
    memlab: list[dict] = field(default_factory=list)
    baseline: dict[str, Baseline] = field(default_factory=dict)  # baseline key -> Baseline
    training: list[dict] = field(default_factory=list)  # TrainResult.to_dict() each
    bench: BenchResult | None = None  # `partui bench`'s summary
    created: str = field(default_factory=_now)
    partui_version: str = field(default_factory=partui_version)
    schema_version: int = SCHEMA_VERSION  # the version it was read as

    @classmethod
    def from_results(cls, results, note: str = "", **kw) -> Snapshot:
        return cls(runs=list(results), note=note, **kw)

    def results(self) -> list[RunResult]:
        return list(self.runs)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,  # what this writer writes, whatever was read
            "partui_version": self.partui_version,
            "created": self.created,
            "note": self.note,
            "machine": self.machine.to_dict(),
            "baseline": {k: b.to_dict() for k, b in self.baseline.items()},
            "runs": [r.to_dict() for r in self.runs],
            "memlab": self.memlab,
            "training": self.training,
        }
        if self.bench is not None:
            out["bench"] = self.bench.to_dict()
        return out


def save(snapshot: Snapshot, path, overwrite: bool = False, unique: bool = False) -> Path:
    """Write through the safe writer (atomic; never onto a special file or through a link).

    `overwrite`: replace an existing file; `unique`: a default name, made unique with -2, -3...
    Returns the path written.
    """
    text = json.dumps(json_safe(snapshot.to_dict()), indent=1, allow_nan=False) + "\n"
    return write_text(path, text, overwrite=overwrite, unique=unique)


def load(path) -> Snapshot:
    """The one way in: size and depth capped before parsing, every field checked after."""
    path = Path(path)
    try:
        data = parse_bounded(path, MAX_BYTES, MAX_DEPTH, "snapshot", MAX_VALUES)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SnapshotError(f"{path}: is a folder, not a snapshot file") from None
    except FileProblem as exc:  # names the path already
        raise SnapshotError(str(exc)) from None
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        validate(data)
    except FileProblem as exc:
        raise SnapshotError(f"{path}: {exc}") from None
    baseline = dict(data.get("baseline", {}))
    old_bench = baseline.pop("bench", None)  # schema 1 kept it here, free-form
    if "bench" in data:
        bench: BenchResult | None = BenchResult.from_dict(data["bench"], "snapshot.bench")
    else:
        try:
            bench = None if old_bench is None else BenchResult.from_dict(old_bench)
        except FileProblem:  # a schema 1 summary this partui cannot read: the runs still open
            bench = None
    return Snapshot(
        runs=[RunResult.from_dict(r) for r in data["runs"]],
        note=data["note"],
        machine=MachineInfo.from_dict(data["machine"]),
        memlab=data.get("memlab", []),
        baseline={
            k: Baseline(v["median_ms"], RunConfig.from_dict(v["config"]), v.get("source", ""))
            for k, v in baseline.items()
        },
        training=data.get("training", []),
        bench=bench,
        created=data["created"],
        partui_version=data["partui_version"],
        schema_version=data["schema_version"],
    )


# ---- finding snapshots -----------------------------------------------------------


def default_snapshot_dir() -> Path:
    """$PARTUI_SNAPSHOT_DIR, else $XDG_DATA_HOME/partui/snapshots, else ~/.local/share/..."""
    return user_data_path("PARTUI_SNAPSHOT_DIR", "snapshots")


def default_snapshot_path(folder=None, stem: str = "sweep") -> Path:
    """A default file name in `folder` (default folder if None): stem-YYYYmmdd-HHMMSS.json.

    Save it with `unique=True`: the writer then takes stem-...-2.json, -3, ... when the
    name is taken, even by another process saving in the same second.
    """
    folder = Path(folder) if folder is not None else default_snapshot_dir()
    return folder / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"


@dataclass(frozen=True)
class SnapshotSummary:
    path: Path
    created: str
    cpu_model: str
    logical_cores: int | None
    runs: int
    configurations: list[str]
    note: str = ""
    error: str | None = None  # set (and the rest empty) for a file that does not load


def summarize_snapshot(snap: Snapshot, path) -> SnapshotSummary:
    return SnapshotSummary(
        Path(path),
        snap.created,
        snap.machine.cpu_model or "?",
        snap.machine.logical_cores,
        len(snap.runs),
        [r.config.label() for r in snap.runs],
        snap.note,
    )


def list_snapshots(folder=None) -> list[SnapshotSummary]:
    """Every *.json in `folder`, newest first; files that do not load are listed with an error."""
    folder = Path(folder) if folder is not None else default_snapshot_dir()
    if not folder.is_dir():
        return []
    out = []
    for path in folder.glob("*.json"):
        try:
            out.append(summarize_snapshot(load(path), path))
        except SnapshotError as exc:
            out.append(SnapshotSummary(path, "", "", None, 0, [], error=str(exc)))
    return sorted(out, key=lambda s: (s.created, str(s.path)), reverse=True)
