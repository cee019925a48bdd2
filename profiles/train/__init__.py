"""Real SGD training of the network: sync or Hogwild!, on threads, processes or Dask, and the
data it trains on.

Public: `trainer`, `dask_trainer`, `datasets`.
"""
