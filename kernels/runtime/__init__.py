"""What every kernel runs on: per-worker scratch buffers and the cancel signal, this machine's
cache sizes, numba's cache folder, and an atomic add for native loops.

Public: `scratch`, `caches`, `jitcache`, `atomics`.
"""
