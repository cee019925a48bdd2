"""Two ways to increment an int64 counter in memory, for the false-sharing experiment, and an
atomic load (Hogwild!'s version stamps read counters other workers add to).

- `atomic_add`: a locked read-modify-write (`lock xadd` on x86), through LLVM's
  `atomicrmw add` because numba has no atomic add of its own.
- `stored_increment`: a plain, unlocked increment that the compiler must store every time.
  A plain `c[k] += 1` in a loop is kept in a register by LLVM and stored once at the end,
  which would hide any cache-line traffic; a relaxed ("monotonic") atomic load and store
  compiles to the same unlocked instructions (`incq (mem)`) but may not be merged away.

As Python functions they do the same arithmetic (used by the tests on small arrays);
`register()` makes numba compile calls to them into the intrinsics below.
"""

from __future__ import annotations

_registered = False


def atomic_add(arr, index, value):
    """arr[index] += value atomically; returns the old value."""
    old = arr[index]
    arr[index] = old + value
    return old


def atomic_load(arr, index):
    """arr[index], read whole (never torn) and without a lock."""
    return arr[index]


def stored_increment(arr, index):
    """arr[index] += 1, stored to memory at every call (not atomic)."""
    arr[index] += 1


def register() -> None:
    """Teach numba to compile `atomic_add` and `stored_increment` (once per process)."""
    global _registered
    if _registered:
        return
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic, overload

    def is_int64_array(arr) -> bool:
        return isinstance(arr, types.Array) and arr.dtype == types.int64

    def element_pointer(context, builder, aryty, ary_value, idxty, idx_value):
        ary = context.make_array(aryty)(context, builder, ary_value)
        i = context.cast(builder, idx_value, idxty, types.intp)
        return cgutils.get_item_pointer(context, builder, aryty, ary, [i], wraparound=False)

    @intrinsic
    def _atomic_add(typingctx, arr, index, value):
        if not (
            is_int64_array(arr)
            and isinstance(index, types.Integer)
            and isinstance(value, types.Integer)
        ):
            return None

        def codegen(context, builder, sig, args):
            aryty, idxty, valty = sig.args
            ptr = element_pointer(context, builder, aryty, args[0], idxty, args[1])
            v = context.cast(builder, args[2], valty, types.int64)
            return builder.atomic_rmw("add", ptr, v, "monotonic")

        return types.int64(arr, index, value), codegen

    @intrinsic
    def _atomic_load(typingctx, arr, index):
        if not (is_int64_array(arr) and isinstance(index, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            aryty, idxty = sig.args
            ptr = element_pointer(context, builder, aryty, args[0], idxty, args[1])
            return builder.load_atomic(ptr, "monotonic", 8)

        return types.int64(arr, index), codegen

    @intrinsic
    def _stored_increment(typingctx, arr, index):
        if not (is_int64_array(arr) and isinstance(index, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            aryty, idxty = sig.args
            ptr = element_pointer(context, builder, aryty, args[0], idxty, args[1])
            old = builder.load_atomic(ptr, "monotonic", 8)
            builder.store_atomic(builder.add(old, old.type(1)), ptr, "monotonic", 8)
            return context.get_dummy_value()

        return types.void(arr, index), codegen

    @overload(atomic_add)
    def _atomic_add_impl(arr, index, value):
        if is_int64_array(arr):
            return lambda arr, index, value: _atomic_add(arr, index, value)

    @overload(atomic_load)
    def _atomic_load_impl(arr, index):
        if is_int64_array(arr):
            return lambda arr, index: _atomic_load(arr, index)

    @overload(stored_increment)
    def _stored_increment_impl(arr, index):
        if is_int64_array(arr):
            return lambda arr, index: _stored_increment(arr, index)

    _registered = True
