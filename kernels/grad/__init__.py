"""Backward passes and training: loop and vectorized gradients, the fused training step, how
partial gradients meet, and the jobs a strategy cuts a pass into.

Public: `loops`, `vectorized`, `native` (numba, imported lazily), `network`, `training`,
`combine`, `jobs`, `reference`.
"""
