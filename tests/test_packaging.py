"""Every code folder with an __init__.py is a package pyproject.toml installs (a non-editable
install, as CI does, leaves out any package the list forgets)."""
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    dirs = config["package-dir"]
    for top in ("kernels", "profiles", "tui"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).as_posix()
            name = "partui." + rel.replace("/", ".")
            assert name in listed, f"{name} ({rel}) is not in [tool.setuptools] packages"
            assert dirs.get(name) == rel, f"{name} has no package-dir entry {rel!r}"
