"""The vectorization ladder: the same arithmetic one number at a time in Python, as a list
comprehension, as one numpy call, as a compiled loop; a matrix multiply as three Python loops,
one numpy call per row, and one `@`.

The Python rungs work on lists of Python floats (float64), the numpy and native rungs on
float64 arrays: the same numbers and the same arithmetic, so the results are equal.
"""

from __future__ import annotations

from functools import cache

import numpy as np


def product_loop(a: list, b: list) -> list:
    """out[i] = a[i] * b[i], one element per trip round a Python loop."""
    out = [0.0] * len(a)
    for i in range(len(a)):
        out[i] = a[i] * b[i]
    return out


def product_comprehension(a: list, b: list) -> list:
    return [x * y for x, y in zip(a, b)]


def product_numpy(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The whole product in one call (numpy's compiled, vectorized loop)."""
    return np.multiply(a, b, out=out)


def product_native(a, b, out):
    """The Python loop's code, compiled (numba)."""
    for i in range(a.size):
        out[i] = a[i] * b[i]
    return out


def matmul_loops(a: list, b: list) -> list:
    """c = a @ b for lists of rows: three nested Python loops, one multiply-add per trip."""
    n, m, p = len(a), len(b), len(b[0])
    c = [[0.0] * p for _ in range(n)]
    for i in range(n):
        for j in range(p):
            s = 0.0
            for k in range(m):
                s += a[i][k] * b[k][j]
            c[i][j] = s
    return c


def matmul_rows(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """One numpy call per row of the result: out[i] = a[i] @ b."""
    for i in range(a.shape[0]):
        np.matmul(a[i], b, out=out[i])
    return out


def matmul_at(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """One call: numpy hands the whole product to BLAS."""
    return np.matmul(a, b, out=out)


@cache
def native():
    from partui.kernels.lab.jit import compile_all

    return compile_all(product_native)
