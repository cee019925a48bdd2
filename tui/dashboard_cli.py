"""`partui [SNAPSHOT.json] [--snapshot-dir DIR]`: open the dashboard."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from .commands.core import add_config_arguments, config_from
from .errors import UsageError


def snapshot_dir_default() -> Path:
    from partui.profiles.snapshot import default_snapshot_dir
    return Path(default_snapshot_dir())


def parser() -> argparse.ArgumentParser:
    from .cli import Parser
    p = Parser(prog="partui", description="Open the live dashboard (or a saved snapshot in it).")
    p.add_argument("snapshot", nargs="?", help="a snapshot .json to open read-only")
    p.add_argument("--snapshot-dir", metavar="DIR",
                   help="where snapshots and exports are saved (default: $PARTUI_SNAPSHOT_DIR "
                        f"or {snapshot_dir_default()})")
    add_config_arguments(p, layer_required=False)
    p.add_argument("--live", action="store_true", help="start in live mode")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    folder = Path(args.snapshot_dir).expanduser() if args.snapshot_dir else snapshot_dir_default()
    if args.snapshot_dir:
        os.environ["PARTUI_SNAPSHOT_DIR"] = str(folder)
    snapshot = None
    if args.snapshot:
        snapshot = Path(args.snapshot)
        from partui.profiles.snapshot import SnapshotError, load
        try:
            load(snapshot)
        except SnapshotError as exc:
            raise UsageError(str(exc)) from None
    cfg = config_from(args, layer=args.layer or "conv2")
    cfg.check_values()
    from .app import PartuiApp
    PartuiApp(snapshot_dir=folder, open_snapshot=snapshot, config=cfg, live=args.live).run()
    return 0
