"""Test helpers: analyze an objective through the library API (no CLI)."""

from __future__ import annotations

import itertools
from pathlib import Path

from hesscli.analysis.analyze import Analysis, analyze
from hesscli.curvature.exact import ExactCurvature
from hesscli.objective.bind import Objective, bind
from hesscli.objective.files import load_file

_count = itertools.count()


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
