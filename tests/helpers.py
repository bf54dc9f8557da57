"""Test helpers: analyze an objective through the library API (no CLI), shared objective
sources, the one-error-line check and JSON Schema validation."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import jsonschema

from hesscli.analysis.analyze import Analysis, analyze
from hesscli.curvature.exact import ExactCurvature
from hesscli.objective.bind import Objective, bind
from hesscli.objective.files import load_file
from hesscli.schemas import load_schema
from tests.conftest import Result

_count = itertools.count()

# f = ½(x₀² + 2x₁²) − x₀: H = diag(1, 2), minimum at (1, 0); the `quadratic` fixture
QUADRATIC = """
import jax.numpy as jnp
def objective(x):
    return 0.5 * jnp.sum(jnp.arange(1.0, x.size + 1) * x ** 2) - x[0]
x0 = jnp.array([0.5, -1.0])
"""

# f = c + Σ(x − 1)²: ∇f = 2(x − 1), H = 2I whatever the constant c
SHIFTED = """import jax.numpy as jnp
def objective(x):
    return {c} + jnp.sum((x - 1) ** 2)
"""


def objective_file(tmp_path: Path, source: str) -> Path:
    path = tmp_path / f"obj_{next(_count)}.py"
    path.write_text(source)
    return path


def bound(spec: str, at: str | None = None, params: dict | None = None, **kw) -> Objective:
    return bind(load_file(spec, {k: str(v) for k, v in (params or {}).items()}), at, **kw)


def analyzed(spec: str, at: str | None = None, params: dict | None = None, lr: float = 0.01,
             dtype: str = "float64", **kw) -> tuple[Analysis, Objective, ExactCurvature]:
    obj = bound(spec, at, params, dtype=dtype)
    curv = ExactCurvature(obj)
    return analyze(obj, curv, lr=lr, **kw), obj, curv


def validate(doc: dict, name: str = "analyze") -> None:
    """``doc`` is valid against the shipped JSON Schema of command ``name``."""
    jsonschema.validate(doc, load_schema(name))


def one_error(res: Result, code: int, text: str = "", progress: bool = False) -> str:
    """The result ended with exit ``code`` and exactly one ``error:`` line, no traceback.

    ``progress``: a finished ``train`` run's progress line may come before the error
    (the run completed; writing its result failed).
    """
    assert res.exit_code == code, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    if progress:
        lines = lines[-1:]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.stderr
    assert text in lines[0], res.output
    if res.stdout.strip():
        json.loads(res.stdout)  # whatever reached stdout is one JSON document
    return lines[0]
