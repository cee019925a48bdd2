"""`partui bench`: the kernels against this machine's GEMM limit, and the fixed cost of a
repeat.

Public: `suite` (the bench), `overhead`, `targets` (met or not), `environment` (other load,
peak memory).
"""
