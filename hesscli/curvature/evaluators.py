"""Batched, counted evaluation of an objective's values and gradients at many points.

Finite differences evaluate the objective at whole stencils of points. A black
box (plain NumPy, SciPy, a simulator) is called once per point in a plain loop
with NumPy arrays, under ``np.errstate(all="ignore")`` so a far step that
leaves the function's domain yields NaN (and loses the extrapolation) instead
of printing warnings. A traceable objective is ``jit(vmap(f))``-ed and fed in
fixed-size chunks (padded, so it compiles once). Every evaluator counts the
points it evaluated: that count is the ``evaluations`` reported with each
estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hesscli.errors import ObjectiveError, user_code
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import Objective

CHUNK = 256


class Values:
    """``values(points) -> f at each row``, counted (``count``)."""

    def __init__(self, objective: Objective, *, batched: bool | None = None) -> None:
        self.objective = objective
        self.dtype = objective.dtype
        self.count = 0
        if batched is None:
            batched = objective.traceable or objective.values_traceable
        self.batched = batched
        self._where = f"{objective.file.path.name}:{objective.file.function_name}"
        if self.batched:
            jax = jax_module()
            self._fn = jax.jit(jax.vmap(objective.flat_fn))

    def __call__(self, points: np.ndarray, *, strict: bool = True) -> np.ndarray:
        """f at each row. ``strict=False`` (far extrapolation steps): a point where
        the user's function raises gives NaN instead of an error."""
        points = np.atleast_2d(np.asarray(points, dtype=self.dtype))
        m = points.shape[0]
        self.count += m
        if m == 0:
            return np.zeros(0)
        if self.batched:
            return _chunked(self._fn, points, CHUNK)
        out = np.empty(m)
        with np.errstate(all="ignore"):
            for i in range(m):
                try:
                    out[i] = self._one(points[i])
                except ObjectiveError:
                    if strict:
                        raise
                    out[i] = np.nan
        return out

    def one(self, x: np.ndarray) -> float:
        return float(self(np.asarray(x)[None, :])[0])

    def _one(self, x: np.ndarray) -> float:
        with user_code(self._where):
            out = self.objective.flat_fn(x.copy())
            return float(np.asarray(out, dtype=np.float64))


class Gradients:
    """``gradients(points) -> ∇f at each row`` of a traceable objective, counted."""

    def __init__(self, objective: Objective) -> None:
        jax = jax_module()
        self.dtype = objective.dtype
        self.count = 0
        self._fn = jax.jit(jax.vmap(jax.grad(objective.flat_fn)))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(np.asarray(points, dtype=self.dtype))
        self.count += points.shape[0]
        if points.shape[0] == 0:
            return np.zeros((0, points.shape[1]))
        return _chunked(self._fn, points, max(8, CHUNK // 4))


def _chunked(fn: Any, points: np.ndarray, chunk: int) -> np.ndarray:
    """Apply a vmapped ``fn`` in chunks of ``chunk`` rows, padded to a power of two.

    Padding bounds the number of distinct shapes (compilations) to ``log₂ chunk``.
    """
    m = points.shape[0]
    size = chunk if m >= chunk else 1 << max(0, (m - 1).bit_length())
    outs = []
    for start in range(0, m, size):
        block = points[start : start + size]
        real = block.shape[0]
        if real < size:
            pad = np.repeat(block[-1:], size - real, axis=0)
            block = np.concatenate([block, pad])
        outs.append(np.asarray(fn(block), dtype=np.float64)[:real])
    return np.concatenate(outs)
