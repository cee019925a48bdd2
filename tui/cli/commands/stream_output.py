"""`--stream`: a run's events on stdout, one JSON object per line (profiles.records.event_lines).

Nothing is written while a repeat is timed: spans (and CPU samples, which come from the
sampler's thread) are held and written once the repeat's RepeatDone is out, each line
flushed on its own. A reader that goes away (`| head`) ends the command quietly: the first
write that finds the pipe closed points stdout at /dev/null and raises BrokenPipeError on
the command's own thread, which the command line turns into exit 0.
"""

from __future__ import annotations

import os
import sys
import threading

# The event records load on first use (they import dataclasses and json): `partui --help`
# and `partui list` load this module and need neither.


class LineStream:
    """An engine's `emit` that writes version-1 event lines to `out` (stdout)."""

    def __init__(self, command: str, out=None):
        from partui.profiles.records.event_lines import EventLines, header
        from partui.profiles.records.events import (
            RepeatDone,
            RunCancelled,
            RunFailed,
            RunFinished,
            RunStarted,
        )
        from partui.tui.cli.parsing import package_version

        # events after which nothing is timed until the next repeat starts: held lines go out
        self._write_after = (RunStarted, RepeatDone, RunFinished, RunFailed, RunCancelled)
        self.out = out if out is not None else sys.stdout
        self.lines = EventLines()
        self._held: list = []  # list.append is atomic: the sampler's thread appends too
        self._owner = threading.get_ident()  # only this thread writes
        self._lock = threading.Lock()
        self.closed = False
        self._write([header(command, package_version(), os.cpu_count())])

    def __call__(self, event) -> None:
        self._held.append(event)
        if isinstance(event, self._write_after) and threading.get_ident() == self._owner:
            self.write_held()

    def write_held(self) -> None:
        """Write every event held so far (the command's thread; after the timing)."""
        with self._lock:
            held, self._held = self._held, []
        lines = [d for d in map(self.lines.line, held) if d is not None]
        self._write(lines)

    def _write(self, lines: list) -> None:
        if self.closed:
            raise BrokenPipeError("the reader of the stream has gone")
        import json

        try:
            for d in lines:
                self.out.write(json.dumps(d, allow_nan=False, separators=(",", ":")) + "\n")
                self.out.flush()
        except BrokenPipeError:
            self.closed = True
            _silence(self.out)
            raise


def _silence(out) -> None:
    """Point the closed stdout at /dev/null, so the interpreter's last flush at exit does
    not complain about the pipe again (Python's documented way out of SIGPIPE)."""
    try:
        fd = out.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test's StringIO)
        pass


def add_stream_argument(p) -> None:
    p.add_argument(
        "--stream",
        action="store_true",
        help="write the run's events to stdout as they happen, one JSON object per line "
        "(run started, each task's span, CPU samples, each repeat, the result; format in "
        "the README, 'The event stream'); the report goes to stderr",
    )


def stream_or_json(args) -> None:
    """--stream and --json both want stdout: one of them."""
    if args.stream and args.json:
        from partui.tui.cli.errors import UsageError

        raise UsageError("--stream and --json both write to stdout; choose one")


def tee(*consumers):
    """One `emit` that hands each event to every consumer in turn."""
    consumers = tuple(c for c in consumers if c is not None)

    def emit(event) -> None:
        for consume in consumers:
            consume(event)

    return emit
