"""The honest baseline: the best single-worker median for a layer, kernel and batch.

A speedup is only honest against the fastest way one worker can do the same work, not
against the slowest strategy. partui keeps a small book of the best single-worker
medians measured on each machine, so a sweep of 2-worker runs is still compared with
the best 1-worker time seen here, by any strategy and executor.

Keyed by (layer, kernel, batch): the kernel is the implementation being split, so the
loops kernel gets its own baseline (its 1-worker time is orders of magnitude longer;
the table shows both medians). Keyed per machine by CPU model, logical cores and host
name. The best of several medians leans fast, which only makes speedups smaller.

The book lives in $PARTUI_BASELINE_BOOK, else $XDG_DATA_HOME/partui/baselines.json
(~/.local/share/partui/baselines.json). It is a cache: a damaged book is ignored (with a
one-line note naming what is wrong) and rebuilt at the next save. Loading goes through the
same bounded parser and field checks as snapshots; saving through the safe writer.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partui.profiles.files.checked_json import Check, FileProblem, parse_bounded, shown
from partui.profiles.files.paths import user_data_path
from partui.profiles.records.config import RunConfig

if TYPE_CHECKING:
    from partui.profiles.system.machine import MachineInfo

FORMAT = "partui-baselines"
MAX_BYTES = 8 * 2**20
MAX_DEPTH = 8  # book, machines, machine, entry, config
MAX_MACHINES = 1000
MAX_ENTRIES = 10_000  # per machine: layers x kernels x batch sizes
MAX_VALUES = 500_000  # an entry is about 15 values: 8 MiB of real entries hold fewer


def validate_book(data) -> None:
    """Raise FileProblem naming the first thing in a parsed book the code could not use."""
    from partui.profiles.records.config import check_config

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FileProblem("not a partui baseline book")
    machines = Check.obj(Check.field(data, "machines", "book"), "book.machines")
    if len(machines) > MAX_MACHINES:
        raise FileProblem(f"book.machines: {len(machines)} machines, more than {MAX_MACHINES}")
    for fp, entries in machines.items():
        where = f"machines[{shown(fp)}]"
        Check.obj(entries, where)
        if len(entries) > MAX_ENTRIES:
            raise FileProblem(f"{where}: {len(entries)} entries, more than {MAX_ENTRIES}")
        for key, e in entries.items():
            at = f"{where}[{shown(key)}]"
            Check.obj(e, at)
            Check.number(Check.field(e, "median_ms", at), f"{at}.median_ms", 0, 1e9, positive=True)
            c = RunConfig.from_dict(check_config(Check.field(e, "config", at), f"{at}.config"))
            if c.workers != 1:
                raise FileProblem(f"{at}.config.workers: a baseline is a 1-worker run")
            if key != key_of(c):
                raise FileProblem(f"{at}: the key does not match its config")
            Check.text(e.get("measured", ""), f"{at}.measured", 100)


def baseline_key(layer: str, kernel: str, batch: int) -> str:
    return f"{layer}/{kernel}/b{batch}"


def key_of(config: RunConfig) -> str:
    return baseline_key(config.layer, config.kernel, config.batch)


def default_book_path() -> Path:
    return user_data_path("PARTUI_BASELINE_BOOK", "baselines.json")


@dataclass(frozen=True)
class Baseline:
    median_ms: float
    config: RunConfig  # the run that set it
    source: str  # "this sweep", "this snapshot" or "book (date)"

    def label(self) -> str:
        return f"{self.config.strategy}/{self.config.executor} w=1, {self.source}"

    def to_dict(self) -> dict:
        return {"median_ms": self.median_ms, "config": self.config.to_dict(), "source": self.source}


class BaselineBook:
    def __init__(self, path=None, machine: MachineInfo | None = None):
        self.path = Path(path) if path is not None else default_book_path()
        if machine is None:
            from partui.profiles.system.machine import info

            machine = info()
        self.machine = machine.fingerprint()
        self.problem: str | None = None  # set when the file could not be read
        self._data: dict[str, Any] = self._read(note=True)
        self._offered: dict[str, dict] = {}  # this book's own entries, merged in at save()

    def _read(self, note: bool) -> dict[str, Any]:
        """The book on disk (an empty one when missing or unusable; `note`: say why)."""
        try:
            data = parse_bounded(self.path, MAX_BYTES, MAX_DEPTH, "baseline book", MAX_VALUES)
            validate_book(data)
            return data
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            if note:
                self.problem = f"baseline book {self.path} is a folder; it is not used"
        except FileProblem as exc:
            if note:
                reason = str(exc).removeprefix(f"{self.path}: ")
                self.problem = f"baseline book {self.path} ignored ({reason}); it will be rebuilt"
        return {"format": FORMAT, "version": 1, "machines": {}}

    @property
    def _entries(self) -> dict:
        return self._data["machines"].setdefault(self.machine, {})

    def best(self, key: str) -> Baseline | None:
        e = self._entries.get(key)
        if not isinstance(e, dict):
            return None
        try:
            return Baseline(
                float(e["median_ms"]),
                RunConfig.from_dict(e["config"]),
                f"book ({e.get('measured', '?')[:10]})",
            )
        except (KeyError, TypeError, ValueError):
            return None

    def known(self, results) -> dict[str, Baseline]:
        """The book's best single-worker run for each (layer, kernel, batch) among `results`."""
        out = {}
        for k in {key_of(r.config) for r in results}:
            b = self.best(k)
            if b is not None:
                out[k] = b
        return out

    def offer(self, result) -> bool:
        """Keep `result` if it is a verified 1-worker run faster than the book's best."""
        c = result.config
        if c.workers != 1 or not result.ok or not result.median_ms > 0:
            return False
        key = key_of(c)
        old = self.best(key)
        if old is not None and old.median_ms <= result.median_ms:
            return False
        entry = {
            "median_ms": result.median_ms,
            "config": c.to_dict(),
            "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._entries[key] = self._offered[key] = entry
        return True

    def save(self) -> None:
        """Through the safe writer, like snapshots; a book not written is only a lost cache."""
        from partui.profiles.files.checked_json import json_safe
        from partui.profiles.files.safe_files import write_text

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _locked(self.path):
                # Another partui may have written since this one read: merge into what is
                # there now, so parallel sweeps keep every entry.
                data = self._read(note=False)
                entries = data["machines"].setdefault(self.machine, {})
                for key, entry in self._offered.items():
                    old = entries.get(key)
                    if not isinstance(old, dict) or not (
                        isinstance(old.get("median_ms"), int | float)
                        and old["median_ms"] <= entry["median_ms"]
                    ):
                        entries[key] = entry
                write_text(
                    self.path,
                    json.dumps(json_safe(data), indent=1, allow_nan=False),
                    overwrite=True,
                )
                self._data = data
        except OSError as exc:
            self.problem = f"baseline book not saved: {exc.strerror or exc}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the book (PATH.lock) for its read-merge-write."""
    import fcntl

    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
