"""How data-parallel training of the network scales past this machine: a model of a
training step (compute + Dask's cost per step + the gradient exchange of a combine rule),
calibrated by measurement here and checked against real Dask training runs.

Public: `link` (units of a network link, pure), `model` (the formulas, pure), `fit` (least
squares with spreads), `calibrate` (the measurements).
"""
