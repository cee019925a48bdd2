"""Errors the command line reports as one line with exit code 2 (bad input)."""
from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: a value, a file, a folder. Exit code 2."""
