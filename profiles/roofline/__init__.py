"""The roofline of this machine: roofs measured here, and runs placed under them.

- `traffic`: the traffic model (minimum bytes a repeat moves) and arithmetic intensity.
- `roofs`: the compute and memory roofs, measured in seconds and cached per CPU.
- `placing`: which roof a run is compared with, what it attains there, `of_roof`.
- `configs`: each layer's best 1-worker and N-worker configuration (book or quick run).
"""
