"""Charts, each drawn from the model. The profile tab's: `base` (what they share: throttle,
messages, errors), `worker_timeline`, `cpu`, `speedup`, `history`; the timeline's drawing
(`timeline`) and the lab's chart (`lab`).
"""
