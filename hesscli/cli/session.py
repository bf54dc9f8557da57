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


def curvature_for(obj: Objective, method: str) -> tuple[Any, tuple[str, ...]]:
    """The backend that ``--method`` and the objective call for, with notes to print."""
    if method == "fd" or not obj.traceable:
        from hesscli.curvature import finite_diff

        notes = () if obj.traceable else (
            f"method fd: {obj.why_untraceable}; derivatives come from finite differences",
        )
        return finite_diff.curvature(obj), notes
    from hesscli.curvature.exact import ExactCurvature

    return ExactCurvature(obj), ()


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


def chunked(obj: Objective, chunk_size: int | None) -> tuple[Objective, tuple[str, ...]]:
    """``--chunk-size``: the full-data objective in chunks (see :mod:`hesscli.chunked`)."""
    if chunk_size is None:
        return obj, ()
    from hesscli.chunked import with_chunks

    obj, note = with_chunks(obj, chunk_size)
    return obj, (note,)


def spectrum_for(
    obj: Objective, curvature: Any, *, path: str = "auto", k: int = 3, seed: int = 0,
    solver: str = "lanczos", rtol: float | None = None, max_steps: int | None = None,
) -> tuple[Any, Any, tuple[str, ...]]:
    """The spectrum ``analyze`` should use: None on the dense path (it forms H itself),
    the matrix-free extremes otherwise; with the :class:`PathChoice` and notes.

    ``path`` is auto|dense|matrix-free (``--dense``/``--matrix-free``); ``--dense``
    beyond the available memory raises InputError (exit 2) with the size needed.
    """
    from hesscli.curvature.paths import choose_path

    choice = choose_path(obj.n, path)
    if choice.path == "dense":
        return None, choice, ()
    from hesscli.analysis.matrix_free import extremes_of, matrix_free_spectrum

    ex = extremes_of(curvature, obj.x, k=k, seed=seed, solver=solver, rtol=rtol,
                     max_steps=max_steps)
    return matrix_free_spectrum(ex, obj.dtype), choice, (choice.reason,)
