"""The forward pass: per-pixel loops, numpy/BLAS kernels with numba where numpy is slow, and
the one function that runs a task on its slice of the run's arrays.

Public: `loops`, `vectorized`, `native` (numba, imported lazily), `compute`.
"""
