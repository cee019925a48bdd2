"""The network itself: layer shapes and FLOPs, seeded parameters and inputs, the float64
references that every kernel is checked against, and the letters data set.

Public: `layers`, `reference`, `letters`.
"""
