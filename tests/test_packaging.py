"""The package list in pyproject.toml names every package in the tree.

setuptools installs only the packages it is told about; an editable install
finds the rest anyway, so a forgotten one fails only after a plain
``pip install .`` (as hesscli.documents once did).
"""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "hesscli").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set(), f"packages missing from pyproject.toml: {found - listed}"
    package_dirs = config["tool"]["setuptools"].get("package-dir", {})
    assert listed - found - set(package_dirs) == set()
