"""How work is cut: the axes of a run (strategy, kernel, executor, pass, combine) and which
combinations apply, and the split of a layer into tasks.

Public: `axes`, `pass_axes`, `strategies`.
"""
