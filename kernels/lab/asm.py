"""Reading x86-64 machine code that numba shows (`inspect_asm`): loops and their instructions.

Used to check that a kernel compiled the way an experiment says: scalar or vector
instructions, and which register width.
"""

from __future__ import annotations

import re

PACKED_FP = re.compile(
    r"^\s+v?(?:add|sub|mul|div|min|max|fn?m(?:add|sub)\d*)p[sd]\s+(.*)$", re.MULTILINE
)
SCALAR_ADD = re.compile(r"^\s+v?adds[sd]\s+(.*)$", re.MULTILINE)
REGISTER_BITS = {"xmm": 128, "ymm": 256, "zmm": 512}


def first_function(asm: str) -> str:
    """The kernel itself: numba's helper functions follow its `.Lfunc_end0` label."""
    return asm.split(".Lfunc_end0")[0]


def loop_bodies(asm: str) -> list[str]:
    """The instructions between a label and a later jump back to it, in the first function."""
    lines = first_function(asm).splitlines()
    labels = {line[:-1]: i for i, line in enumerate(lines) if re.match(r"^\.\w+:$", line)}
    bodies = []
    for j, line in enumerate(lines):
        m = re.match(r"^\s+j\w+\s+(\.\w+)$", line)
        if m and labels.get(m.group(1), j) < j:
            bodies.append("\n".join(lines[labels[m.group(1)] : j]))
    return bodies


def packed_width(code: str) -> int:
    """The widest register (bits) used by packed floating-point arithmetic in `code`; 0: none."""
    widths = [
        REGISTER_BITS[r]
        for operands in PACKED_FP.findall(code)
        for r in re.findall(r"%([xyz]mm)\d+", operands)
    ]
    return max(widths, default=0)


def scalar_add_targets(code: str) -> set[str]:
    """The registers that scalar floating-point additions in `code` write (AT&T: the last
    operand): one per independent accumulator chain."""
    return {operands.split(",")[-1].strip() for operands in SCALAR_ADD.findall(code)}


def asm_of(dispatcher, *arg_types) -> str:
    """The machine code of a compiled numba function, for its first (or the matching) signature."""
    sigs = dispatcher.signatures
    sig = next(
        (s for s in sigs if not arg_types or tuple(s[: len(arg_types)]) == arg_types), sigs[0]
    )
    return dispatcher.inspect_asm(sig)
