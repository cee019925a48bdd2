"""The `partui` program's first instructions: quiet on a signal from here on.

A Ctrl+C (or SIGTERM, SIGHUP) that lands while the command line's modules are still being
imported would end the program with a traceback from inside an import. Until `main` puts
its own handlers in place, one ends it at once with one line and 128 + the signal's number
(nothing has been started yet that would need stopping). A signal ignored when partui
starts (nohup's hang-up) stays ignored.
"""

from __future__ import annotations

import signal

from partui.tui.cli.startup_signal import while_starting

_STARTING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def main() -> int:
    kept = {sig: signal.getsignal(sig) for sig in _STARTING}
    for sig, handler in kept.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, while_starting)
    from partui.tui.cli.main import main as run

    # Ctrl+C goes back to Python's handler: main catches its KeyboardInterrupt. TERM and HUP
    # keep this one until main (or the dashboard) replaces it: their default in between
    # would end partui without a word.
    signal.signal(signal.SIGINT, kept[signal.SIGINT])
    return run()
