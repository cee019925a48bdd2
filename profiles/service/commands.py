"""The command side of partui's child processes (the engine's, a training run's): a thread
that reads commands from the parent's pipe and hands each to its handler."""

from __future__ import annotations

import threading
from collections.abc import Callable


def serve_commands(
    conn, handlers: dict[str, Callable], on_end: Callable[[], None], name: str
) -> threading.Thread:
    """Start a daemon thread reading `(command, *args)` tuples from `conn`: each calls
    `handlers[command](*args)` (unknown commands are ignored). "stop", or the parent gone
    (the pipe closed), ends the thread after `on_end()`."""

    def loop() -> None:
        try:
            while True:
                cmd = conn.recv()
                if cmd[0] == "stop":
                    break
                handler = handlers.get(cmd[0])
                if handler is not None:
                    handler(*cmd[1:])
        except (EOFError, OSError):  # the parent is gone: stop too
            pass
        on_end()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
