"""One run: the engine's sequence (warm-ups, timed repeats, verification, result), the passes
it runs, seeded inputs, the pipeline strategy and the CPU sampler.

Public: `engine`, `passes`, `dask_step`, `repeats`, `inputs`, `verification`, `pipeline`,
`sampler`.
"""
