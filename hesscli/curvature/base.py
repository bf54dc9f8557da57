"""The interface every curvature backend implements, and shared checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hesscli.errors import ObjectiveError
from hesscli.objective.layout import Layout


@dataclass(frozen=True)
class Kinks:
    """Where finite differences at two step sizes disagree beyond their error model.

    ``parameters`` are the flat indices involved (rows or columns of a flagged
    entry); ``slope_jump[i]`` estimates the jump of the one-sided slopes along
    parameter ``i`` (0 where its diagonal was not flagged); ``disagreement`` is
    the largest disagreement in units of what the error model allows.
    """

    parameters: tuple[int, ...]
    slope_jump: np.ndarray
    disagreement: float


@dataclass(frozen=True)
class DenseHessian:
    """A dense Hessian, symmetrized, with what is known about its accuracy.

    ``symmetry_error`` is ‖H − Hᵀ‖_F/‖H‖_F before symmetrizing (0 when exact);
    ``error`` is an absolute error estimate of the entries (0 when exact) that
    verdict tolerances add in; ``evaluations`` counts the function or gradient
    calls spent on it (0 when not counted). For finite differences ``error`` is
    ‖E‖_F of the entry errors, which bounds every eigenvalue's shift (Weyl), and
    ``kinks`` says where the objective is not smooth (None: no sign of a kink).
    """

    matrix: np.ndarray
    symmetry_error: float = 0.0
    error: float = 0.0
    evaluations: int = 0
    kinks: Kinks | None = None


@dataclass(frozen=True, eq=False)
class OperatorAt:
    """``x -> (v -> M(x) v)``: a curvature matrix linearized once per point.

    ``fn(x)`` does the work that depends only on the point (a forward pass and
    its linearization) and returns the matvec, which reuses it; traceable, so
    the eigensolvers call it once inside their compiled loop and then apply
    the matvec at every step. Compared by identity (a cache key).
    """

    fn: Callable[[Any], Callable[[Any], Any]]

    def __call__(self, x: Any) -> Callable[[Any], Any]:
        return self.fn(x)


class Curvature(Protocol):
    """Value, gradient, HVP and (when affordable) the dense Hessian of a flat objective."""

    method: str  # "exact" | "fd"
    n: int
    dtype: str

    def value(self, x: np.ndarray) -> float: ...

    def gradient(self, x: np.ndarray) -> np.ndarray: ...

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray: ...

    def hessian(self, x: np.ndarray) -> DenseHessian: ...


def symmetrize(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """(H + Hᵀ)/2 and the relative asymmetry ‖H − Hᵀ‖_F/‖H‖_F before it."""
    norm = float(np.linalg.norm(matrix))
    asym = float(np.linalg.norm(matrix - matrix.T)) / norm if norm > 0 else 0.0
    return 0.5 * (matrix + matrix.T), asym


def ensure_finite(values: np.ndarray | float, what: str, layout: Layout | None = None) -> None:
    """Raise :class:`ObjectiveError` naming where ``values`` is NaN or infinite."""
    arr = np.asarray(values)
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    if arr.ndim == 0 or layout is None:
        raise ObjectiveError(f"the objective's {what} is not finite ({arr.reshape(-1)[0]})")
    flat_bad = np.argwhere(bad)
    count = int(bad.sum())
    if arr.ndim == 1:
        names = [layout.name(int(i)) for i in flat_bad[:3, 0]]
    else:
        names = [f"({layout.name(int(i))}, {layout.name(int(j))})" for i, j in flat_bad[:3]]
    raise ObjectiveError(
        f"the objective's {what} has {count} non-finite entr{'y' if count == 1 else 'ies'} "
        f"at this point, first at {', '.join(names)}"
    )
