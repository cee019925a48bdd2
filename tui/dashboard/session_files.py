"""The keys of every tab that write files: save the session, export it with a screenshot."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from partui.profiles.system.machine import MachineInfo
from partui.tui.dashboard.model import Model
from partui.tui.dashboard.snapshots import export_session, save_session


def save(app: App, model: Model, machine: MachineInfo, folder: Path, lab: list) -> None:
    """Save `model` (and the lab's results) as a snapshot; say where, or why not."""
    try:
        path = save_session(model, machine, folder, lab)
    except OSError as exc:
        app.notify(f"could not save: {exc}", severity="error")
        return
    app.notify(f"snapshot saved: {path}", timeout=6)


def export(app: App, model: Model, machine: MachineInfo, folder: Path, lab: list) -> None:
    """The snapshot, its trace and CSV, and an SVG of the screen once the toasts are gone."""
    try:
        paths = export_session(model, machine, folder, lab)
    except OSError as exc:
        app.notify(f"could not export: {exc}", severity="error")
        return
    screenshot_without_toasts(app, paths[-1], "exported:\n" + "\n".join(map(str, paths)))


def screenshot_without_toasts(app: App, path: Path, done: str) -> None:
    """Write the screen as SVG to `path` once the toasts over it are gone (next refresh),
    then say `done`."""
    app.clear_notifications()

    def take() -> None:
        from partui.profiles.files.safe_files import write_text

        try:
            write_text(path, app.export_screenshot())
        except (OSError, ValueError) as exc:
            app.notify(f"could not save the screenshot: {exc}", severity="error")
            return
        app.notify(done, timeout=8)

    app.call_after_refresh(take)
