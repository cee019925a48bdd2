"""One module per `partui` subcommand; each has `register(subparsers)` that sets `func`."""
