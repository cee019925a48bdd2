"""This machine and this process: CPU, caches and memory, BLAS threads, memory limits,
Ctrl+C handling, measurement conditions, giving freed heap back, and how sizes are written.

Public: `machine`, `blas`, `memory_limits`, `interrupts`, `units`, `conditions`, `heap`.
"""
