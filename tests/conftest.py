"""Shared test setup: x64 JAX, deterministic keys, a CLI runner that keeps streams apart."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.pop("HESSCLI_DENSE_BUDGET", None)  # the default budget, whatever the caller set

from hesscli.jaxconf import jax_module  # noqa: E402

jax = jax_module()  # x64 on before any test builds arrays

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    def json(self) -> dict:
        return json.loads(self.stdout)


def run_cli(*args: str) -> Result:
    """Run ``hesscli ARGS`` in-process with separate stdout/stderr."""
    from click.testing import CliRunner

    from hesscli.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return Result(res.exit_code, res.stdout, res.stderr)


@pytest.fixture
def hess():
    """``hess("analyze", "saddle", ...)`` -> Result."""
    return run_cli


@pytest.fixture
def write(tmp_path):
    """Write a text file under tmp_path: ``write("f.py", source)`` -> Path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


@pytest.fixture
def quadratic(tmp_path):
    """A file with ``tests.helpers.QUADRATIC``: f = ½(x₀² + 2x₁²) − x₀ at (0.5, −1)."""
    from tests.helpers import QUADRATIC

    path = tmp_path / "quad.py"
    path.write_text(QUADRATIC)
    return path
