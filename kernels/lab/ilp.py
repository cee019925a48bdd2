"""Instruction-level parallelism: one sum kept in 1, 2, 4, 8 or 16 independent chains.

`sum_chains<k>(a, passes)` adds every element of a float64 array `passes` times over into k
accumulators (element i into accumulator i % k), then adds the accumulators together. Each
accumulator is a chain of additions that must wait for the previous one (the adder's
latency); k chains let k additions be in flight at once, until the adders' throughput (or
the loads) is the limit.

They are compiled WITHOUT fastmath: the compiler may then not reassociate the additions, so
it can neither fold the chains into one nor split a chain into vector partial sums; the
loop keeps exactly k scalar chains (tests check the machine code).
"""

from __future__ import annotations

from functools import cache


def _added(names: list[str]) -> str:
    """The accumulators added pairwise at the end: (s0 + s1) + (s2 + s3), and so on."""
    if len(names) == 1:
        return names[0]
    half = len(names) // 2
    sides = [_added(names[:half]), _added(names[half:])]
    return " + ".join(f"({t})" if "+" in t else t for t in sides)


def _chain_sum(k: int):
    """sum_chains<k>, written out: k named accumulators (numba keeps each in a register; an
    array of them would go through memory), then the elements left over into s0."""
    acc = [f"s{j}" for j in range(k)]
    adds = "".join(f"            {name} += a[i + {j}]\n" for j, name in enumerate(acc))
    source = (
        f"def sum_chains{k}(a, passes):\n"
        f"    {' = '.join(acc)} = 0.0\n"
        f"    n = a.size - a.size % {k}\n"
        "    for _ in range(passes):\n"
        f"        for i in range(0, n, {k}):\n"
        f"{adds}"
        "        for i in range(n, a.size):\n"
        "            s0 += a[i]\n"
        f"    return {_added(acc)}\n"
    )
    scope: dict = {}
    exec(compile(source, f"<partui.kernels.lab.ilp: sum_chains{k}>", "exec"), scope)
    return scope[f"sum_chains{k}"]


CHAINS = {k: _chain_sum(k) for k in (1, 2, 4, 8, 16)}
sum_chains1, sum_chains2, sum_chains4, sum_chains8, sum_chains16 = CHAINS.values()


@cache
def native() -> dict:
    """chain count -> the compiled sum (fastmath off: the chains stay chains)."""
    from partui.kernels.lab.jit import compile_all

    # not cached on disk: the experiment reads the machine code of what it measures
    compiled = compile_all(*CHAINS.values(), fastmath=False, cache=False)
    return {k: getattr(compiled, f.__name__) for k, f in CHAINS.items()}
