"""Charts, each drawn from the model: the profile tab's (`profile`), the worker timeline
(`timeline`) and the lab's (`lab`).
"""
