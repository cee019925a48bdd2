"""A run's progress on stderr, on one line redrawn in place."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:  # loads on first use: `partui --help` does not need it
    from partui.profiles.records.config import RunConfig


class RunProgress:
    """What a run is doing, on stderr, on one line redrawn in place: the pool starting, the
    repeat under way and the last one's time, the check. Only on a terminal; the line is
    wiped when the run ends, so the report stays as it was."""

    def __init__(self, cfg: RunConfig, prefix: str = "", stream=None, redraw: bool = True):
        """`redraw`: False while --stream writes events: they may reach the same terminal,
        and a line redrawn in place would run into theirs."""
        from partui.profiles.records.events import RepeatDone, RunStarted

        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() and redraw
        self.kinds = (RunStarted, RepeatDone)
        self.warmup, self.repeats = cfg.warmup, cfg.repeats
        self.prefix = prefix or "partui run: "
        self.count = 0
        self.width = 0
        self.say("starting...")

    def say(self, text: str) -> None:
        if not self.tty:
            return
        import shutil

        # a line longer than the terminal would wrap, and \r would not go back over it
        line = (self.prefix + text)[: shutil.get_terminal_size().columns - 1]
        print("\r" + line.ljust(self.width), end="", file=self.stream, flush=True)
        self.width = max(self.width, len(line))

    def __call__(self, event) -> None:
        from partui.profiles.records.events import repeat_progress

        started, repeat = self.kinds
        if isinstance(event, started):
            self.count = 0
        elif isinstance(event, repeat):
            self.count += 1
        else:
            return
        text = repeat_progress(self.count, self.warmup, self.repeats) + "..."
        if isinstance(event, repeat):
            last = "warm-up" if event.repeat < 0 else f"repeat {event.repeat + 1}"
            text += f" ({last}: {event.wall_ns / 1e6:.1f} ms)"
        self.say(text)

    def done(self) -> None:
        if self.tty and self.width:
            print("\r" + " " * self.width + "\r", end="", file=self.stream, flush=True)
            self.width = 0
