"""`partui [SNAPSHOT.json] [--snapshot-dir DIR] [--layer ...]`: open the dashboard."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from partui.tui.cli.commands.options import add_config_arguments, config_from, scheduler_from
from partui.tui.cli.errors import UsageError, stop_words

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from pathlib import Path


def snapshot_dir_default() -> Path:
    from partui.profiles.store.snapshot import default_snapshot_dir

    return default_snapshot_dir()


def add_arguments(p, positional: bool = True) -> None:
    """The dashboard's options; `partui --help` shows them too (without the positional)."""
    if positional:
        p.add_argument("snapshot", nargs="?", help="a snapshot .json to open read-only")
    p.add_argument(
        "--snapshot-dir",
        metavar="DIR",
        help="where snapshots and exports are saved (default: $PARTUI_SNAPSHOT_DIR "
        "or $XDG_DATA_HOME/partui/snapshots or ~/.local/share/partui/snapshots)",
    )
    add_config_arguments(p, layer_required=False)
    p.add_argument("--live", action="store_true", help="start in live mode")


def parser() -> argparse.ArgumentParser:
    from partui.tui.cli.parsing import Parser, add_global_options

    p = Parser(prog="partui", description="Open the live dashboard (or a saved snapshot in it).")
    add_global_options(p)
    add_arguments(p)
    return p


def main(argv: list[str]) -> int:
    from pathlib import Path

    args = parser().parse_args(argv)
    folder = Path(args.snapshot_dir).expanduser() if args.snapshot_dir else snapshot_dir_default()
    if args.snapshot_dir:
        os.environ["PARTUI_SNAPSHOT_DIR"] = str(folder)
    snapshot = opened = None
    if args.snapshot:
        snapshot = Path(args.snapshot)
        from partui.profiles.store.snapshot import load
        from partui.profiles.store.snapshot_validation import SnapshotError

        try:
            opened = load(snapshot)
        except SnapshotError as exc:
            raise UsageError(str(exc)) from None
    cfg = config_from(args, layer=args.layer or "conv2", scheduler=scheduler_from(args, ["dask"]))
    cfg.check_values()
    from partui.tui.dashboard.app import PartuiApp

    app = PartuiApp(snapshot_dir=folder, open_snapshot=snapshot, config=cfg, live=args.live)
    app.opened = opened  # read once, here: a large snapshot is not parsed twice
    # From here until the app's event loop handles them, SIGTERM, SIGHUP and SIGINT are noted,
    # never fatal: dying then would leave the terminal in the alternate screen, with mouse
    # tracking on and the cursor hidden. The app acts on a noted one as it mounts.
    stops = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda n, f: app.early_signals.append(n)) for sig in stops}
    try:
        app.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # Textual reports a stylesheet error or a crash on the screen and sets a non-zero
    # return code instead of raising: pass it on, so scripts and CI see the failure, with
    # the file that holds the traceback.
    code = app.return_code or 0
    watch = getattr(app, "stop_watch", None)  # None until the app has mounted
    stopped = watch.stopping if watch is not None else None
    said = None
    if stopped is not None:
        said = stop_words(stopped)
    elif code:
        where = f"; the traceback is in {app.crash_log}" if app.crash_log else ""
        said = f"the dashboard stopped with an error (exit {code}){where}"
    if said:
        try:
            print(f"partui: {said}", file=sys.stderr)
        except OSError:  # the terminal has gone (it hung up): nobody to tell
            pass
    return code
