"""Heap probe for the soak (tests/benchmarks/soak_live.py --heap): with this folder on
PYTHONPATH and PARTUI_HEAP_PROBE_DIR set, the dashboard and its engine (not the pools'
processes, which fork: a thread there could hold a lock across a fork) write, every
PARTUI_HEAP_PROBE_S seconds (default 10), DIR/<pid>.json: what their allocators hold.

    py_used_mb    bytes in pymalloc's allocated blocks (Python objects of up to 512 bytes)
    py_arenas_mb  pymalloc's arenas (1 MiB each; one goes back only when it is wholly free)
    c_used_mb     glibc's bytes in use (larger objects, C libraries' allocations)
    c_free_mb     glibc's free bytes it keeps (returned pages included: mallinfo2 counts them)

Live data is py_used + c_used; the rest of the resident heap is the allocators' slack. A
benchmark tool, not part of partui: it replaces any other sitecustomize while on the path.
"""

import os
import threading

_DIR = os.environ.get("PARTUI_HEAP_PROBE_DIR")


def _pymalloc() -> tuple[float, float]:
    """(bytes in allocated blocks, arenas' bytes), read from sys._debugmallocstats, which
    prints to file descriptor 2 only: pointed at a file for the moment."""
    import re
    import sys
    import tempfile

    with tempfile.TemporaryFile("w+") as f:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(f.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read()

    def number(label: str) -> float:
        m = re.search(re.escape(label) + r"\s*=\s*([\d,]+)", text)
        return float(m.group(1).replace(",", "")) if m else float("nan")

    arenas = number("# arenas allocated current")
    size = re.search(r"arenas \* ([\d,]+) bytes/arena", text)
    per = float(size.group(1).replace(",", "")) if size else float("nan")
    return number("# bytes in allocated blocks"), arenas * per


def _glibc():
    import ctypes

    class Info(ctypes.Structure):
        _fields_ = [
            (n, ctypes.c_size_t)
            for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks "
            "keepcost".split()
        ]

    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = Info
    return fn


def _probe(every: float) -> None:
    import json
    import time

    mallinfo = _glibc()
    path = os.path.join(_DIR, f"{os.getpid()}.json")
    while True:
        used, arenas = _pymalloc()
        row = {"t": time.time(), "py_used_mb": used / 1e6, "py_arenas_mb": arenas / 1e6}
        if mallinfo is not None:
            m = mallinfo()
            row["c_used_mb"] = (m.uordblks + m.hblkhd) / 1e6
            row["c_free_mb"] = m.fordblks / 1e6
        with open(path + ".tmp", "w") as f:
            json.dump(row, f)
        os.replace(path + ".tmp", path)
        time.sleep(every)


def _probed() -> bool:
    try:
        with open("/proc/self/cmdline", "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return False
    return any(w.endswith(b"/partui") for w in words[:2]) or any(
        b"engine_child" in w for w in words
    )


if _DIR and os.path.isdir(_DIR) and _probed():
    _every = float(os.environ.get("PARTUI_HEAP_PROBE_S", "10"))
    threading.Thread(target=_probe, args=(_every,), daemon=True, name="heap-probe").start()
