"""Who runs the tasks: inline, parked threads, a process pool, BLAS's own threads, a Dask
cluster; the worker side that stamps every task; jobs of backward and training passes.

Public: `local` (the protocol, inline, processes, blas, `make_executor`), `threads`,
`dask_cluster`, `worker`, `jobs`.
"""
