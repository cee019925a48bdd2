"""Profile snapshots: plain, versioned JSON a person can read, written atomically.

    {"format": "partui-snapshot", "schema_version": 1, "partui_version": "0.1.0",
     "created": "2026-11-05T10:00:00+00:00", "machine": {...partui info...}, "note": "...",
     "runs": [RunResult.to_dict(), ...],   # config, times, spans, cpu_samples, on_cpu_ratio
     "memlab": [{...}, ...],               # memory-lab experiments, free-form dicts
     "baseline": {...}}                    # the honest baselines the runs were compared with

Loading validates the file and raises SnapshotError with one line naming what is wrong.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .paths import user_data_path

FORMAT = "partui-snapshot"
SCHEMA_VERSION = 1


class SnapshotError(ValueError):
    """A file that is not a readable partui snapshot; the message is one line."""


def partui_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("partui")
    except PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _machine() -> dict:
    from .machine import info
    return info()


@dataclass
class Snapshot:
    runs: list[dict] = field(default_factory=list)  # RunResult.to_dict() each
    note: str = ""
    machine: dict = field(default_factory=_machine)
    memlab: list[dict] = field(default_factory=list)
    baseline: dict = field(default_factory=dict)
    created: str = field(default_factory=_now)
    partui_version: str = field(default_factory=partui_version)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_results(cls, results, note: str = "", **kw) -> "Snapshot":
        return cls(runs=[r.to_dict() for r in results], note=note, **kw)

    def results(self) -> list:
        """The runs as RunResult objects."""
        from .engine import RunResult
        return [RunResult.from_dict(r) for r in self.runs]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "schema_version": self.schema_version,
                "partui_version": self.partui_version, "created": self.created,
                "note": self.note, "machine": self.machine, "baseline": self.baseline,
                "runs": self.runs, "memlab": self.memlab}


def json_safe(obj):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return json_safe(obj.item())
    return obj


def save(snapshot: Snapshot, path) -> Path:
    """Write atomically: a temporary file in the same folder, then rename over `path`."""
    path = Path(path)
    text = json.dumps(json_safe(snapshot.to_dict()), indent=1, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# ---- validation ------------------------------------------------------------------

_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
# required keys of a run and their JSON types (null stands for NaN / inf)
_RUN_FIELDS = {
    "config": dict, "times_ms": list, "median_ms": _NUM, "min_ms": _NUM, "max_ms": _NUM,
    "q1_ms": _NUM, "q3_ms": _NUM, "max_abs_error": _OPT_NUM, "tolerance": _NUM, "ok": bool,
    "tasks": int, "flops": int, "spans": list, "worker_busy_ms": list,
    "pool_startup_ms": _NUM, "blas_threads": int,
}
_CONFIG_FIELDS = {"layer": str, "strategy": str, "kernel": str, "executor": str,
                  "workers": int, "batch": int, "repeats": int}
_SPAN_FIELDS = {"worker": int, "tid": int, "start_ns": int, "end_ns": int, "units": int,
                "task": int, "phase": int, "repeat": int, "run": int}
_SAMPLE_FIELDS = {"t_ns": int, "per_core": list, "workers": dict, "engine_cpu": _NUM,
                  "sampler_cost_us": _NUM}
_TOP_FIELDS = {"partui_version": str, "created": str, "note": str, "machine": dict,
               "runs": list}


def _type_name(t) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer",
             bool: "true or false", float: "a number"}
    if isinstance(t, tuple):
        return names[float] if int in t else " or ".join(names.get(x, "null") for x in t)
    return names.get(t, t.__name__)


def _check_fields(obj: dict, spec: dict, where: str) -> None:
    for key, t in spec.items():
        if key not in obj:
            raise SnapshotError(f"{where}: missing field {key!r}")
        v = obj[key]
        ok = isinstance(v, t) and not (isinstance(v, bool) and t in (int, _NUM, _OPT_NUM))
        if not ok:
            raise SnapshotError(f"{where}.{key}: expected {_type_name(t)}, "
                                f"got {json.dumps(v)[:40]}")


def validate(data) -> None:
    """Raise SnapshotError naming the first thing wrong with a parsed snapshot."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SnapshotError("not a partui snapshot (no \"format\": \"partui-snapshot\")")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SnapshotError("schema_version: expected an integer")
    if version > SCHEMA_VERSION:
        raise SnapshotError(f"schema version {version} is newer than this partui reads "
                            f"({SCHEMA_VERSION}); upgrade partui to open it")
    if version < 1:
        raise SnapshotError(f"schema version {version} is not a valid version")
    _check_fields(data, _TOP_FIELDS, "snapshot")
    for key, t in (("memlab", list), ("baseline", dict)):
        if key in data and not isinstance(data[key], t):
            raise SnapshotError(f"snapshot.{key}: expected {_type_name(t)}")
    for i, run in enumerate(data["runs"]):
        where = f"runs[{i}]"
        if not isinstance(run, dict):
            raise SnapshotError(f"{where}: expected an object")
        _check_fields(run, _RUN_FIELDS, where)
        _check_fields(run["config"], _CONFIG_FIELDS, f"{where}.config")
        for j, t in enumerate(run["times_ms"]):
            if not isinstance(t, _NUM) or isinstance(t, bool):
                raise SnapshotError(f"{where}.times_ms[{j}]: expected a number")
        for j, span in enumerate(run["spans"]):
            if not isinstance(span, dict):
                raise SnapshotError(f"{where}.spans[{j}]: expected an object")
            _check_fields(span, _SPAN_FIELDS, f"{where}.spans[{j}]")
        for j, sample in enumerate(run.get("cpu_samples", [])):
            if not isinstance(sample, dict):
                raise SnapshotError(f"{where}.cpu_samples[{j}]: expected an object")
            _check_fields(sample, _SAMPLE_FIELDS, f"{where}.cpu_samples[{j}]")
    for i, item in enumerate(data.get("memlab", [])):
        if not isinstance(item, dict):
            raise SnapshotError(f"memlab[{i}]: expected an object")


def load(path) -> Snapshot:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SnapshotError(f"{path}: is a folder, not a snapshot file") from None
    except UnicodeDecodeError:
        raise SnapshotError(f"{path}: not a partui snapshot (not UTF-8 text)") from None
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        body = text.strip()
        cut = body[:1] in "{[" and body[-1:] not in "}]"  # a JSON document that stops early
        what = "truncated" if cut or exc.pos >= len(body) else "not valid JSON"
        raise SnapshotError(f"{path}: {what} (line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg})") from None
    try:
        validate(data)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None
    return Snapshot(runs=data["runs"], note=data["note"], machine=data["machine"],
                    memlab=data.get("memlab", []), baseline=data.get("baseline", {}),
                    created=data["created"], partui_version=data["partui_version"],
                    schema_version=data["schema_version"])


# ---- finding snapshots -----------------------------------------------------------

def default_snapshot_dir() -> Path:
    """$PARTUI_SNAPSHOT_DIR, else $XDG_DATA_HOME/partui/snapshots, else ~/.local/share/..."""
    return user_data_path("PARTUI_SNAPSHOT_DIR", "snapshots")


def default_snapshot_path(folder=None, stem: str = "sweep") -> Path:
    """A new file name in `folder` (default folder if None): stem-YYYYmmdd-HHMMSS[-n].json."""
    folder = Path(folder) if folder is not None else default_snapshot_dir()
    base = f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path, n = folder / f"{base}.json", 1
    while path.exists():
        n += 1
        path = folder / f"{base}-{n}.json"
    return path


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


def _label(config: dict) -> str:
    return (f"{config.get('layer')} {config.get('strategy')}/{config.get('kernel')}/"
            f"{config.get('executor')} w={config.get('workers')} b={config.get('batch')}")


def summarize_snapshot(snap: Snapshot, path) -> SnapshotSummary:
    return SnapshotSummary(Path(path), snap.created, str(snap.machine.get("cpu_model", "?")),
                           snap.machine.get("logical_cores"), len(snap.runs),
                           [_label(r["config"]) for r in snap.runs], snap.note)


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
