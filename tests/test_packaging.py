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


def test_installed_metadata_names_the_license_and_ships_it():
    from importlib.metadata import distribution

    dist = distribution("partui")
    meta = dist.metadata
    assert meta["License-Expression"] == "MIT"
    assert any(
        c.startswith("Programming Language :: Python :: 3") for c in meta.get_all("Classifier")
    )
    license_files = [f for f in dist.files or [] if f.name == "LICENSE"]
    assert license_files and "MIT License" in license_files[0].read_text()


def test_sdist_carries_what_the_tests_need():
    """MANIFEST.in grafts tests/: conftest.py and the SVG snapshots go into the sdist
    (checked by hand with `python -m build --sdist` and `tar -tzf`)."""
    manifest = (ROOT / "MANIFEST.in").read_text().split()
    assert "graft" in manifest and "tests" in manifest
    assert (ROOT / "tests" / "conftest.py").exists()
    assert list((ROOT / "tests" / "__snapshots__").rglob("*.svg"))
