"""The text front end: the `partui` command line, one module per subcommand, its errors.

Public: `main` (the entry point), `dashboard` (the dashboard's arguments), `commands`,
`errors`, `help`.
"""
