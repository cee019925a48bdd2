"""partui's child processes as services: the engine and training runs in a child, commands
in, events out in small batches.

Public: `engine` (EngineProcess, EngineThread), `serving` (the run queue they serve),
`engine_child` (the engine's child process), `training`, `commands`, `children` (ending a
child and its processes).
"""
