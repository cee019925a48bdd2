"""Measuring and recording, never drawing: usable headless from the CLI and from tests.

Rooms, from the top of the layering down (a room imports only rooms below it):
`service`, `lab`, `bench`, `train`, `store`, `run`, `executors`, `records`, `system`, `files`.
"""
