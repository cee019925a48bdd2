"""partui's child processes as services: the engine, training runs and lab experiments each
in a child, commands in, events out in small batches.

Public: `engine` (EngineProcess, EngineThread), `serving` (the run queue they serve),
`engine_child` (the engine's child process), `training`, `lab`, `commands`, `children`
(ending a child and its processes).
"""
