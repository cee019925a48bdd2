"""This machine and this process: CPU, caches and memory, BLAS threads, memory limits,
Ctrl+C handling, and how sizes are written.

Public: `machine`, `blas`, `memory_limits`, `interrupts`, `units`.
"""
