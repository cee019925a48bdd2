"""Backward passes and training: loop and vectorized gradients, the fused training step, how
partial gradients meet, the jobs a strategy cuts a pass into, and running them.

Public: `loops`, `vectorized`, `native` (numba, imported lazily), `network`, `training`,
`combine`, `jobs` (the plan), `execution` (running one job), `sgd` (the update), `reference`.
"""
