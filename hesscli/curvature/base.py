"""The interface every curvature backend implements, with its declared capabilities.

A backend (:class:`Curvature`) computes the value, gradient, Hessian-vector
products and the dense Hessian of a flat objective, and *declares* what else
it offers, so that callers branch on attributes every backend sets rather than
probing for undeclared ones:

- ``method`` (:class:`~hesscli.vocab.Method`): exact autodiff or finite differences;
- ``hvp_fn``: a compiled JAX HVP ``(x, v) -> Hv`` that Lanczos, SLQ and
  Hutchinson can run inside their own compiled loops (None: only :meth:`hvp`);
- ``host_products``: why ``hvp_fn`` is a callback to products compiled on their own
  (a convolution on the CPU, :mod:`hesscli.curvature.host_products`), None when it
  is the compiled product itself; then ``direct_hvp_fn`` is that product and
  ``host`` the :class:`~hesscli.curvature.host_products.HostProducts` behind it;
- ``linearizable``: the matrix as an :class:`OperatorAt`, linearized once per
  point so that the HVPs of a Lanczos run share it: the Hessian's when ∇f may be
  linearized in forward mode (``jax.linearize``), or a curvature matrix other than
  the Hessian (GGN, Fisher) (None: not available); the one type the eigensolvers take;
- ``kind``: the matrix that ``hvp`` and ``hessian`` apply, ``"hessian"`` except
  for the Gauss–Newton and Fisher operators (:mod:`hesscli.curvature.operators`), whose
  ``base`` is the Hessian backend they wrap (None for a backend that is its own);
- ``notes``: what the output must say about how this backend computes;
- ``output_hessian``: for the GGN, the output loss's Hessian at the point (is the
  GGN PSD here?), None otherwise;
- :meth:`Curvature.batch_value_and_gradient`: the mean loss over a minibatch and
  its gradient, for training steps taken one at a time (the sharded backend's;
  the default refuses);
- ``fd``: the finite-difference statistics (:class:`FDStatistics`: what is
  differenced, the accuracy setting, evaluations spent, the gradient's error
  band), None for exact backends;
- ``parallel`` and ``vector_sharding``: who computes (devices, processes, the
  mesh) and how flat vectors are split over it (None: not split).

Adding a backend: subclass :class:`Curvature`, set ``method``, ``n``, ``dtype``,
implement the four methods and override the capabilities it has; then teach
:func:`hesscli.curvature.choose.curvature_for` when to pick it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.devices import Parallel
from hesscli.errors import ObjectiveError
from hesscli.objective.layout import Layout
from hesscli.vocab import CurvatureKind, FDAccuracy, FDSource, Method


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

    ``hessian_of``: the flat objective when this is its Hessian
    (:func:`hesscli.curvature.exact.hessian_at`); the eigensolvers then linearize
    ∇f once at the point on the host (:func:`~hesscli.curvature.exact.linearized_hvp`,
    which keeps a sharded objective's data as operands) and run that in their loops.
    None for every other matrix (GGN, Fisher, ...), which linearizes itself in the loop.
    """

    fn: Callable[[Any], Callable[[Any], Any]]
    hessian_of: Callable[[Any], Any] | None = None

    def __call__(self, x: Any) -> Callable[[Any], Any]:
        return self.fn(x)


@dataclass(frozen=True)
class FDStatistics:
    """What a finite-difference backend has done so far.

    ``gradient_error`` is the per-entry error estimate of the last gradient it
    estimated from values (None when the gradient is exact, as for gradient
    differences); analyses widen the gradient tolerance by its norm.
    """

    source: FDSource
    accuracy: FDAccuracy
    evaluations: int  # function (or gradient) evaluations spent on differences
    gradient_error: np.ndarray | None = None


class Curvature(ABC):
    """Value, gradient, HVP and (when affordable) the dense Hessian of a flat objective,
    with declared capabilities (see the module docstring)."""

    method: Method
    n: int
    dtype: str
    kind: CurvatureKind = CurvatureKind.HESSIAN  # the matrix hvp/hessian give
    base: Curvature | None = None  # the Hessian backend an operator wraps (None: itself)
    notes: tuple[str, ...] = ()  # what the output must say about how this backend computes
    # the GGN's: the output loss's Hessian at the point (curvature.split.OutputHessian: is
    # the GGN PSD here?); None for every other matrix, or when not checked
    output_hessian: Any = None
    hvp_fn: Callable[[Any, Any], Any] | None = None
    linearizable: OperatorAt | None = None
    host_products: str | None = None  # why hvp_fn leaves compiled loops (None: it does not)
    direct_hvp_fn: Callable[[Any, Any], Any] | None = None  # the product, when hvp_fn is not
    host: Any = None  # the HostProducts behind a callback hvp_fn
    parallel: Parallel = Parallel()
    vector_sharding: Any = None

    @property
    def fd(self) -> FDStatistics | None:
        """Finite-difference statistics (None for exact backends)."""
        return None

    @abstractmethod
    def value(self, x: np.ndarray) -> float:
        """f(x)."""

    @abstractmethod
    def gradient(self, x: np.ndarray) -> np.ndarray:
        """∇f(x) as a float64 array."""

    @abstractmethod
    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """H(x) v as a float64 array."""

    @abstractmethod
    def hessian(self, x: np.ndarray) -> DenseHessian:
        """The dense Hessian at x, symmetrized, with its accuracy."""

    def value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """(f(x), ∇f(x)); backends with a fused program override it."""
        return self.value(x), self.gradient(x)

    def batch_value_and_gradient(self, x: np.ndarray, batch: Any) -> tuple[float, np.ndarray]:
        """The mean loss over ``batch`` (a minibatch of the objective's ``data``) and its
        gradient, for training steps taken one at a time from Python.

        Only a backend whose ``parallel.sharded`` is True is asked (the sharded backend,
        which keeps the batch split over the devices); the others' minibatch steps run
        inside the compiled training loop, so the default refuses.
        """
        raise NotImplementedError(
            f"{type(self).__name__} takes no minibatch steps of its own (only a sharded "
            "backend's training steps run one at a time)")


class DerivedMatrix(Curvature):
    """A curvature matrix derived from a base backend (a Gauss–Newton or Fisher operator,
    a preconditioned Hessian): the objective's value and gradient are the base's,
    ``hvp`` applies the derived matrix through ``hvp_fn`` (set by the subclass)."""

    base: Curvature
    dtype: Any

    def value(self, x: np.ndarray) -> float:
        return self.base.value(x)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.base.gradient(x)

    def value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return self.base.value_and_gradient(x)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``M(x) v`` as float64 NumPy."""
        return np.asarray(self.hvp_fn(np.asarray(x, self.dtype), np.asarray(v, self.dtype)),
                          dtype=np.float64)


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
