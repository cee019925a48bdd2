"""The honest baseline: the best single-worker median for a layer, kernel and batch.

A speedup is only honest against the fastest way one worker can do the same work, not
against the slowest strategy. partui keeps a small book of the best single-worker
medians measured on each machine, so a sweep of 2-worker runs is still compared with
the best 1-worker time seen here, by any strategy and executor.

Keyed by (layer, kernel, batch): the kernel is the implementation being split, so the
loops kernel gets its own baseline (its 1-worker time is ~3,000x the vectorized one;
the table shows both medians). Keyed per machine by CPU model, logical cores and host
name. The best of several medians leans fast, which only makes speedups smaller.

The book lives in $PARTUI_BASELINE_BOOK, else $XDG_DATA_HOME/partui/baselines.json
(~/.local/share/partui/baselines.json). It is a cache: a damaged book is set aside
and rebuilt.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .paths import user_data_path

FORMAT = "partui-baselines"


def baseline_key(layer: str, kernel: str, batch: int) -> str:
    return f"{layer}/{kernel}/b{batch}"


def key_of(config: dict) -> str:
    return baseline_key(config["layer"], config["kernel"], config["batch"])


def machine_fingerprint(machine: dict) -> str:
    return f"{machine.get('cpu_model')} | {machine.get('logical_cores')} cpus | " \
           f"{machine.get('hostname')}"


def default_book_path() -> Path:
    return user_data_path("PARTUI_BASELINE_BOOK", "baselines.json")


@dataclass(frozen=True)
class Baseline:
    median_ms: float
    config: dict  # the run that set it
    source: str  # "this sweep", "this snapshot" or "book (date)"

    def label(self) -> str:
        c = self.config
        return f"{c['strategy']}/{c['executor']} w=1, {self.source}"

    def to_dict(self) -> dict:
        return {"median_ms": self.median_ms, "config": self.config, "source": self.source}


class BaselineBook:
    def __init__(self, path=None, machine: dict | None = None):
        self.path = Path(path) if path is not None else default_book_path()
        if machine is None:
            from .machine import info
            machine = info()
        self.machine = machine_fingerprint(machine)
        self.problem: str | None = None  # set when the file could not be read
        self._data = {"format": FORMAT, "version": 1, "machines": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not (isinstance(data, dict) and data.get("format") == FORMAT
                    and isinstance(data.get("machines"), dict)):
                raise ValueError("not a partui baseline book")
            self._data = data
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            self.problem = f"baseline book {self.path} ignored ({exc}); it will be rebuilt"

    @property
    def _entries(self) -> dict:
        return self._data["machines"].setdefault(self.machine, {})

    def best(self, key: str) -> Baseline | None:
        e = self._entries.get(key)
        if not isinstance(e, dict):
            return None
        try:
            return Baseline(float(e["median_ms"]), dict(e["config"]),
                            f"book ({e.get('measured', '?')[:10]})")
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
        if c["workers"] != 1 or not result.ok or not result.median_ms > 0:
            return False
        key = key_of(c)
        old = self.best(key)
        if old is not None and old.median_ms <= result.median_ms:
            return False
        self._entries[key] = {
            "median_ms": result.median_ms, "config": dict(c),
            "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        return True

    def save(self) -> None:
        """Atomic, like snapshots; a book that cannot be written is only a lost cache."""
        import tempfile
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".baselines.", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._data, f, indent=1)
            os.replace(tmp, self.path)
        except OSError as exc:
            self.problem = f"baseline book {self.path} not saved: {exc.strerror or exc}"
