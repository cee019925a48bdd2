"""SIMD: y = a*x + y over two arrays, compiled twice: vectorized, and with vectorization off.

The two compiled loops do the same arithmetic on the same data in the same order (each
element is independent, so the vector loop needs no reassociation and gives bit-identical
results); they differ only in the instructions: one float per instruction, or as many as a
vector register holds. The scalar version is compiled with numba's loop vectorizer switched
off (the SLP vectorizer is off by default), so LLVM emits scalar instructions; tests and the
experiment check that in the machine code.
"""

from __future__ import annotations

from functools import cache


def axpy(x, y, a, passes):
    """y[i] = a * x[i] + y[i] for every i, `passes` times over."""
    for _ in range(passes):
        for i in range(x.size):
            y[i] = a * x[i] + y[i]


def axpy_scalar(x, y, a, passes):
    """The same loop as `axpy`; compiled without vector instructions."""
    for _ in range(passes):
        for i in range(x.size):
            y[i] = a * x[i] + y[i]


DTYPES = ("float32", "float64")


@cache
def native():
    """`.axpy` (vectorized by the compiler) and `.axpy_scalar` (not), for float32/float64."""
    from types import SimpleNamespace

    import numba

    from partui.kernels.lab.jit import compile_unvectorized

    # both compiled now and not cached on disk: the experiment reads their machine code
    return SimpleNamespace(
        axpy=numba.njit(_signatures(), nogil=True)(axpy),
        axpy_scalar=compile_unvectorized(axpy_scalar, _signatures()),
    )


def _signatures() -> list:
    import numba

    return [
        (numba.types.Array(t, 1, "C"), numba.types.Array(t, 1, "C"), t, numba.types.int64)
        for t in (numba.float32, numba.float64)
    ]
