"""Where the traceback of an error that ends the dashboard goes."""

from __future__ import annotations

import time
from pathlib import Path


def write_crash_log(error: BaseException, folder: Path) -> Path | None:
    """The traceback of `error` in partui-crash-<time>.log beside the snapshots (or in the
    temporary folder); None when neither can be written."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    name = time.strftime("partui-crash-%Y%m%d-%H%M%S.log")
    for where in (folder, Path(tempfile.gettempdir())):
        try:
            where.mkdir(parents=True, exist_ok=True)
            path = where / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None
