"""partui's child processes as services: the engine, training runs and lab experiments each
in a child, commands in, events out in small batches.

Public: `engine`, `training`, `lab`, `commands`.
"""
