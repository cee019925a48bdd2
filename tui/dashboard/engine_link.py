"""The profile engine's lifecycle: started at first need, started anew when it died, closed
at quit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class EngineLink:
    """Holds the engine (an EngineProcess, or an EngineThread in tests) the profile tab drives."""

    def __init__(self, factory: Callable[[], Any] | None = None):
        self._factory = factory
        self.engine: Any = None

    def start(self) -> Any:
        """The engine, running: started now if there is none or it died."""
        if self.engine is not None and not self.engine.alive:
            self.engine.close()  # it died (killed, crashed): end its orphans, start anew
            self.engine = None
        if self.engine is None:
            if self._factory is None:
                from functools import partial

                from partui.profiles.service.engine import EngineProcess

                # first run after an install: kernels compile in the engine, before need
                self._factory = partial(EngineProcess, compile_ahead=True)
            self.engine = self._factory()
            self.engine.start()
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
