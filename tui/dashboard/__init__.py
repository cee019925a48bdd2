"""The Textual front end: the app, the model it draws from, keys and layout, its tabs,
widgets, charts and modal screens.

Public: `app`, `model`, `keys`, `layout`, `colors`, `snapshots`, `tabs`, `widgets`,
`charts`, `screens`.
"""
