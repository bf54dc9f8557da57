"""The built-in problems: ordinary objective files shipped as ``hesscli.problems``.

Listing them reads each file's docstring and its ``hesscli.params({...})``
declaration with :mod:`ast`, so ``hesscli problems`` imports no JAX.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProblemInfo:
    name: str
    path: Path
    summary: str
    doc: str
    parameters: tuple[tuple[str, Any, str], ...]  # (name, default, description)


def problems_dir() -> Path:
    return Path(str(resources.files("hesscli.problems")))


def problem_names() -> list[str]:
    return list(_names_in(str(problems_dir())))


@cache
def _names_in(folder: str) -> tuple[str, ...]:
    """The built-in problems' names (the package's files do not change while it runs;
    a spec of 60 000 checks listed the folder 60 000 times)."""
    return tuple(sorted(p.stem for p in Path(folder).glob("*.py")
                        if not p.stem.startswith("_")))


def problem_path(name: str) -> Path | None:
    path = problems_dir() / f"{name}.py"
    return path if name in problem_names() else None


def _declared_params(tree: ast.Module) -> tuple[tuple[str, Any, str], ...]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "params"
            and node.args
            and isinstance(node.args[0], ast.Dict)
        ):
            try:
                spec = ast.literal_eval(node.args[0])
            except ValueError:
                return ()
            return tuple((k, v[0], v[1]) for k, v in spec.items())
    return ()


def describe(name: str) -> ProblemInfo:
    path = problems_dir() / f"{name}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    return ProblemInfo(name, path, summary, doc, _declared_params(tree))


def all_problems() -> list[ProblemInfo]:
    return [describe(name) for name in problem_names()]
