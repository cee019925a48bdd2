"""The `partui` program's first instructions: quiet on a signal from here on.

A Ctrl+C (or SIGTERM, SIGHUP) that lands while the command line's modules are still being
imported would end the program with a traceback from inside an import. Until `main` puts
its own handlers in place, one ends it at once with one line and 128 + the signal's number
(nothing has been started yet that would need stopping).
"""

from __future__ import annotations

import os
import signal

_STARTING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _while_starting(signum, frame) -> None:
    name = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    os.write(2, f"partui: {name}\n".encode())
    os._exit(128 + signum)


def main() -> int:
    previous = {sig: signal.signal(sig, _while_starting) for sig in _STARTING}
    from partui.tui.cli.main import main as run

    for sig, handler in previous.items():  # main installs its own from here
        signal.signal(sig, handler)
    return run()
