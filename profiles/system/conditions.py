"""Measurement conditions: what on this machine could make figures less stable.

Read from /proc and /sys before a run (frequency governor, turbo/boost, ASLR, isolated CPUs,
load average, thermal throttling) and completed after it (throttle events during the run,
the CPU other programs took, from the sampler's samples). Every file is read defensively: a
file that is missing or unreadable is "unknown", never an error, so the same code runs on
bare metal, in a VM (no cpufreq) and in a container (no /sys).

`read_conditions()` is the one entry; `Conditions.reasons()` says in plain words what makes
figures less stable, `quiet` is True when nothing known does.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from partui.profiles.files.checked_json import Check

ROOT = Path("/")
BUSY_OTHERS = 50.0  # % of one core: other programs above half a core mark a run as busy
STEADY_GOVERNORS = ("performance",)


def _text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except (OSError, ValueError):
        return None


def _int(path: Path) -> int | None:
    try:
        return int(_text(path) or "")
    except ValueError:
        return None


def _cpu_dirs(root: Path) -> list[Path]:
    base = root / "sys/devices/system/cpu"
    try:
        names = os.listdir(base)
    except OSError:
        return []
    cpus = [n for n in names if n.startswith("cpu") and n[3:].isdigit()]
    return [base / n for n in sorted(cpus, key=lambda n: int(n[3:]))]


def _governors(cpus: list[Path]) -> list[str]:
    """The distinct scaling governors of the CPUs that have cpufreq, in CPU order."""
    seen: dict[str, None] = {}
    for cpu in cpus:
        g = _text(cpu / "cpufreq/scaling_governor")
        if g:
            seen[g] = None
    return list(seen)


def _boost(root: Path) -> bool | None:
    """Turbo/boost on (True), off (False) or not reported (None).

    intel_pstate says no_turbo (1: off); acpi-cpufreq and amd-pstate say cpufreq/boost (1: on).
    """
    base = root / "sys/devices/system/cpu"
    no_turbo = _int(base / "intel_pstate/no_turbo")
    if no_turbo is not None:
        return no_turbo == 0
    boost = _int(base / "cpufreq/boost")
    if boost is not None:
        return boost == 1
    return None


def throttle_count(root: Path = ROOT) -> int | None:
    """Thermal throttle events since boot, summed over CPUs (core and package counts), or
    None where the kernel reports none (no thermal_throttle in sysfs: most VMs, non-Intel)."""
    total, seen = 0, False
    for cpu in _cpu_dirs(root):
        for name in ("core_throttle_count", "package_throttle_count"):
            v = _int(cpu / "thermal_throttle" / name)
            if v is not None:
                total += v
                seen = True
    return total if seen else None


def _load(root: Path) -> list[float] | None:
    text = _text(root / "proc/loadavg")
    try:
        return [float(v) for v in (text or "").split()[:3]] or None
    except ValueError:
        return None


@dataclass
class Conditions:
    """What a run ran under. None (or an empty list) means the machine does not say."""

    governors: list[str] = field(default_factory=list)  # distinct scaling governors
    boost: bool | None = None  # turbo/boost enabled
    aslr: int | None = None  # /proc/sys/kernel/randomize_va_space: 0 off, 1, 2 full
    isolated: str | None = None  # isolated CPUs as the kernel lists them ("" none)
    load: list[float] | None = None  # load average over 1, 5 and 15 minutes, at the start
    cpus: int | None = None  # logical CPUs online (for the load average)
    throttle_since_boot: int | None = None  # thermal throttle events, at the start
    throttled: int | None = None  # thermal throttle events during the run
    others_cpu: float | None = None  # % of one core other programs used during the run
    others_max: float | None = None  # the highest sample of it

    @property
    def busy(self) -> bool:
        """Other programs held more than half a core during the run."""
        return self.others_cpu is not None and self.others_cpu > BUSY_OTHERS

    @property
    def quiet(self) -> bool:
        return not self.reasons()

    def reasons(self) -> list[str]:
        """What is known to make figures less stable, in plain words (empty: nothing known)."""
        out = []
        if self.others_cpu is not None and self.busy:
            out.append(f"other programs used {self.others_cpu / 100:.1f} core during the run")
        if self.throttled:
            out.append(f"CPU throttled by heat {self.throttled} times during the run")
        moving = [g for g in self.governors if g not in STEADY_GOVERNORS]
        if moving:
            out.append(f"CPU governor {'/'.join(moving)}: the clock follows the load")
        if self.boost:
            out.append("turbo boost on: the clock varies with heat and busy cores")
        # the load average counts partui's own threads too (a sweep's previous runs): only
        # more runnable threads than CPUs says for sure that work waited for a CPU
        if self.load is not None and self.cpus and self.load[0] > self.cpus:
            out.append(f"load average {self.load[0]:.1f} on {self.cpus} CPUs: threads waited")
        return out

    def notes(self) -> list[str]:
        """Known and milder: they move figures between separate runs, not within one."""
        out = []
        if self.aslr:
            out.append("ASLR on: memory layout differs from one start of partui to the next")
        if self.isolated:
            out.append(f"isolated CPUs {self.isolated}: the kernel keeps other work off them")
        return out

    def unknown(self) -> list[str]:
        """What this machine does not report."""
        names = {
            "CPU governor": not self.governors,
            "turbo": self.boost is None,
            "ASLR": self.aslr is None,
            "isolated CPUs": self.isolated is None,
            "load average": self.load is None,
            "throttling": self.throttle_since_boot is None,
        }
        return [name for name, missing in names.items() if missing]

    def line(self, unknown: bool = True) -> str:
        """One line in plain words: quiet or not, and why; `unknown`: also what this machine
        does not report."""
        reasons = self.reasons()
        head = "not quiet: " + "; ".join(reasons) if reasons else "quiet"
        if not reasons and self.others_cpu is not None:
            head += f" (other programs {self.others_cpu / 100:.1f} core during the run)"
        missing = self.unknown() if unknown else []
        return head + (f"; unknown here: {', '.join(missing)}" if missing else "")

    def finished(self, samples, root: Path = ROOT) -> Conditions:
        """A copy completed after a run (the reading sent with RunStarted stays as it was):
        throttle events since the start, and the CPU other programs used over the run's
        samples (weighted by each sample's window)."""
        after, before = throttle_count(root), self.throttle_since_boot
        others, highest = others_during(samples)
        return replace(
            self,
            throttled=after - before if after is not None and before is not None else None,
            others_cpu=others,
            others_max=highest,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["quiet"] = self.quiet
        d["busy"] = self.busy
        d["reasons"] = self.reasons()
        d["notes"] = self.notes()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Conditions:
        """From `to_dict()` (derived keys are ignored); checked by snapshot_validation."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


_DERIVED = ("quiet", "busy", "reasons", "notes")  # written for people; recomputed on load
_KEYS = {f.name for f in fields(Conditions)} | set(_DERIVED)
BIG = 2**63 - 1


def check_conditions(d, where: str) -> dict:
    """Raise FileProblem naming the first field of a saved Conditions that is wrong."""
    Check.obj(d, where)
    Check.keys(d, _KEYS, where)
    for j, g in enumerate(Check.array(d.get("governors", []), f"{where}.governors", 64)):
        Check.text(g, f"{where}.governors[{j}]", 100)
    if d.get("boost") is not None:
        Check.boolean(d["boost"], f"{where}.boost")
    for key, hi in (("aslr", 9), ("cpus", 1 << 20), ("throttle_since_boot", BIG)):
        if d.get(key) is not None:
            Check.integer(d[key], f"{where}.{key}", 0, hi)
    if d.get("throttled") is not None:  # a counter reset (a CPU taken offline) reads negative
        Check.integer(d["throttled"], f"{where}.throttled", -BIG, BIG)
    Check.text(d.get("isolated"), f"{where}.isolated", 10_000, null=True)
    if d.get("load") is not None:
        for j, v in enumerate(Check.array(d["load"], f"{where}.load", 3, 1)):
            Check.number(v, f"{where}.load[{j}]", 0, 1e9)
    for key in ("others_cpu", "others_max"):  # % of one core
        Check.number(d.get(key), f"{where}.{key}", 0, 1e9, null=True)
    for key in ("reasons", "notes"):
        for j, t in enumerate(Check.array(d.get(key, []), f"{where}.{key}", 100)):
            Check.text(t, f"{where}.{key}[{j}]", 1000)
    for key in ("quiet", "busy"):
        if key in d:
            Check.boolean(d[key], f"{where}.{key}")
    return d


def others_during(samples) -> tuple[float | None, float | None]:
    """The mean (weighted by window) and highest `others_cpu` of CPU samples, or None."""
    known = [(s.others_cpu, s.window_ns or 1) for s in samples if s.others_cpu is not None]
    if not known:
        return None, None
    weight = sum(w for _, w in known)
    return sum(v * w for v, w in known) / weight, max(v for v, _ in known)


def read_conditions(root: Path = ROOT) -> Conditions:
    """The machine's conditions now. Never raises: what cannot be read stays unknown."""
    cpus = _cpu_dirs(root)
    isolated = _text(root / "sys/devices/system/cpu/isolated")
    return Conditions(
        governors=_governors(cpus),
        boost=_boost(root),
        aslr=_int(root / "proc/sys/kernel/randomize_va_space"),
        isolated=isolated,
        load=_load(root),
        cpus=len(cpus) or None,
        throttle_since_boot=throttle_count(root),
    )
