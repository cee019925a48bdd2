"""Who runs the tasks: inline, parked threads, a process pool, BLAS's own threads, a Dask
cluster; the worker side that stamps every task; jobs of backward and training passes.

Public: `base` (the Executor protocol, arenas), `inline` (inline, blas), `pool`
(threads-dynamic), `threads`, `processes`, `registry` (`make_executor`), `dask_connect`
(reaching a cluster), `dask_lanes` (its workers and their clocks), `dask_cluster` (the Dask
executor), `dask_step` (a training step on Dask), `worker`, `jobs`.
"""
