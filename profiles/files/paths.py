"""Where partui keeps the user's files: an environment variable, else the XDG data folder."""

from __future__ import annotations

import os
from pathlib import Path


def user_data_path(override_env: str, name: str) -> Path:
    """$override_env if set, else $XDG_DATA_HOME/partui/name, else ~/.local/share/partui/name."""
    env = os.environ.get(override_env)
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(data) / "partui" / name
