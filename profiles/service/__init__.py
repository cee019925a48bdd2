"""partui's child processes as services: the engine and training runs in a child, commands
in, events out in small batches.

Public: `engine`, `training`, `commands`.
"""
