"""The header: what runs, what partui and other programs cost in CPU, the machine."""

from __future__ import annotations

from rich.text import Text

from partui.profiles.system.machine import MachineInfo
from partui.profiles.system.units import size_text
from partui.tui.dashboard.activity import CpuShare
from partui.tui.dashboard.widgets.painted import Painted
from partui.tui.text.safe_text import printable


def machine_line(info: MachineInfo) -> str:
    """The header's line for a MachineInfo."""
    caches = " ".join(
        f"L{c['level']} {size_text(c['size']).replace(' ', '')}"
        for c in info.caches
        if c.get("type") in ("Data", "Unified")
    )
    blas = (
        ", ".join(
            f"{b['internal_api']} {b['version']} ({b['num_threads']} thr)" for b in info.blas or []
        )
        or "no BLAS found"
    )
    if info.blas is None:  # read after the dashboard's first frame
        blas = "BLAS: reading"
    cpu = " ".join(str(info.cpu_model or "?").replace("(R)", "").split())
    return printable(
        f"{cpu} | {info.logical_cores} cores ({info.physical_cores} physical) | {caches} | {blas}"
    )


class MachineHeader(Painted):
    """What partui runs, what it and other programs cost in CPU, and the machine."""

    def show(self, info: MachineInfo, cpu: CpuShare, mode: str, width: int = 0) -> None:
        """CPU figures in % of one core (at most 100 x the logical cores); whole parts only."""

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f}%"

        ours, own, other = pct(cpu.partui), pct(cpu.dashboard), pct(cpu.others)
        room = (width or 10_000) - 2  # the padding
        for parts in (
            (
                "  % of one core: partui ",
                ours,
                "  (dashboard ",
                own,
                ")  other programs ",
                other,
                "  |  ? help",
            ),
            ("  % core: partui ", ours, " (own ", own, ")  others ", other, "  ? help"),
            ("  partui ", ours, "  own ", own, "  others ", other, ""),
        ):
            line1 = Text.assemble(
                ("partui ", "bold"),
                (f" {mode} ", "bold reverse"),
                parts[0],
                (parts[1], "bold"),
                parts[2],
                (parts[3], "bold"),
                parts[4],
                (parts[5], "bold"),
                parts[6],
            )
            if line1.cell_len <= room:
                break
        # the machine line loses whole parts from its end, never half a word
        machine = machine_line(info).split(" | ")
        while len(machine) > 1 and len(" | ".join(machine)) > room:
            machine.pop()
        text = Text("\n").join([line1, Text(" | ".join(machine), "dim")])
        text.no_wrap = True
        text.overflow = "ellipsis"
        self.paint(text)
