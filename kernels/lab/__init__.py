"""Kernels of the memory lab: strides, the memory mountain, traversal order, false sharing,
cyclic against block partition.

Each module holds its kernels as plain Python functions (they run as they are, slowly, on
small arrays: the tests use them as references) and a `native()` that returns them compiled
by numba with `nogil=True`, so threads running them really run in parallel. numba is
imported only when `native()` is first called: importing this package stays cheap.
"""
