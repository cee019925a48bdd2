"""The Textual front end: the app, the model it draws from, the activity the header reads,
its messages, keys and layout, its tabs, widgets, charts and modal screens.

Public: `app`, `model`, `activity`, `messages`, `engine_link`, `keys`, `layout`, `colors`,
`snapshots`, `session_files`, `crash`, `tabs`, `widgets`, `charts`, `screens`.
"""
