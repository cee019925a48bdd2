"""Ctrl+C that a library swallowed still stops a headless run.

Cython's memoryview set-up, run while a compiled module loads (numpy.random's on its first
use), registers its types inside `try: ... except: pass`: a KeyboardInterrupt raised there
is lost, and the run goes on to its end.
The CLI's handler notes each Ctrl+C before it raises; the run loops check the note before
every repeat or step and raise again when it is still there.

A Ctrl+C that lands where an exception cannot propagate is only noted: in a finalizer
(`__del__`: llvmlite frees its objects that way while numba loads kernels) or in llvmlite,
whose callbacks LLVM calls from C through ctypes. Raised there, Python would print it as
"Exception ignored" with a traceback and go on; the run loop raises it at its next check.

A stop signal (Ctrl+C, SIGTERM, SIGHUP) that lands between making something that must be
cleaned up and holding it where the clean-up finds it (a shared-memory segment, made and
then handed to a `try ... finally`) leaves it behind: `deferred` handles such a signal as its
block ends instead.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_pressed = [False]


DEPTH = 30  # frames looked at (llvmlite's sit a few deep)


def on_sigint(signum, frame):
    _pressed[0] = True
    if not _cannot_raise_here(frame):
        raise KeyboardInterrupt


def _cannot_raise_here(frame) -> bool:
    for _ in range(DEPTH):
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name == "__del__" or "llvmlite" in code.co_filename:
            return True
        frame = frame.f_back
    return False


def install():
    """SIGINT to on_sigint where Python's own handler is in place; returns the handler
    replaced (to restore), or None when left alone."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return None
    return signal.signal(signal.SIGINT, on_sigint)


def handled() -> None:
    """The KeyboardInterrupt reached the code that stops the run: nothing to raise again."""
    _pressed[0] = False


def raise_if_swallowed() -> None:
    """Raise the Ctrl+C noted but never handled (see the module's docstring)."""
    if _pressed[0]:
        _pressed[0] = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred(signals: tuple[int, ...] = STOPS) -> Iterator[list]:
    """Stop signals that land inside the block are noted in the list yielded (signum, frame)
    and handled, the first of them, by their own handler as the block ends: not inside it.

    Only signals with a Python handler are deferred (an ignored one stays ignored), and only
    on the main thread, the one Python runs signal handlers on; elsewhere the block runs as
    is.
    """
    held: list = []
    previous: dict[int, Callable[..., object]] = {}  # (no typing: loaded at every start)
    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            handler = signal.getsignal(sig)
            if callable(handler):
                previous[sig] = handler
                signal.signal(sig, lambda signum, frame: held.append((signum, frame)))
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if held:
        signum, frame = held[0]
        previous[signum](signum, frame)  # default_int_handler raises KeyboardInterrupt
