"""Glue shared by the commands: load and bind the objective, pick a backend, emit output."""

from __future__ import annotations

import sys
from typing import Any

from hesscli import __version__
from hesscli.bind import Objective, bind
from hesscli.errors import InputError
from hesscli.objective import load_file
from hesscli.params import parse_assignments


def load(
    objective: str, at: str | None, params: tuple[str, ...], *, seed: int, dtype: str,
    method: str,
) -> Objective:
    """OBJECTIVE + POINT + ``-p`` -> a checked flat objective."""
    overrides = parse_assignments(params)
    file = load_file(objective, overrides)
    return bind(file, at, seed=seed, dtype=dtype, method=method)


def curvature_for(
    obj: Objective, method: str, accuracy: str = "normal"
) -> tuple[Any, tuple[str, ...]]:
    """The backend that ``--method`` and the objective call for, with notes to print.

    ``accuracy`` is ``--fd-accuracy`` (used by the finite-difference backends).
    """
    if method == "fd" or not obj.traceable:
        from hesscli.curvature import finite_diff

        notes = () if obj.traceable else (
            f"method fd: {obj.why_untraceable}; derivatives come from finite differences "
            "of function values",
        )
        return finite_diff.curvature(obj, accuracy), notes
    from hesscli.curvature.exact import ExactCurvature

    return ExactCurvature(obj), ()


def fd_reason(obj: Objective, method: str) -> str | None:
    """Why finite differences are used (None when they are not)."""
    if not obj.traceable:
        return obj.why_untraceable
    return "--method fd" if method == "fd" else None


def meta(seed: int, dtype: str, **options: Any) -> dict[str, Any]:
    """The ``meta`` block every JSON document carries (for reproducing a CI log)."""
    import jax
    import numpy

    return {
        "hesscli": __version__,
        "jax": jax.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
        "dtype": dtype,
        "seed": seed,
        "argv": sys.argv[1:],
        "options": options,
    }


def positive(name: str, value: float) -> float:
    if not value > 0:
        raise InputError(f"{name} must be positive; got {value}")
    return value
