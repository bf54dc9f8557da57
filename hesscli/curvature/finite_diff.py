"""Finite-difference curvature backends (the :class:`~.base.Curvature` interface).

* :class:`GradientDifferences` — for a traceable objective under ``--method fd``:
  exact value and gradient (JAX), Hessian columns and HVPs by central
  differences of the gradient, the article's ``Hu ≈ (∇f(x+hu) − ∇f(x−hu))/2h``.
* :class:`ValueDifferences` — for black boxes JAX cannot trace: everything from
  function values (gradient by central differences, Hessian by second
  differences, HVPs by mixed differences or from the dense estimate).

``accuracy`` is ``normal`` (central differences at the error-balancing step,
checked against twice that step) or ``high`` (a ladder of steps with Richardson
extrapolation); see :mod:`.fd_steps` and :mod:`.stencils`. Every dense Hessian
carries its error (‖E‖_F of the per-entry estimates, a bound on eigenvalue
shifts), its asymmetry before symmetrizing, its evaluation count and the kinks
found.
"""

from __future__ import annotations

import numpy as np

from hesscli.curvature.base import Curvature, DenseHessian, FDStatistics, symmetrize
from hesscli.curvature.evaluators import Gradients, Values
from hesscli.curvature.fd_steps import ACCURACIES, ladder
from hesscli.curvature.stencils import (
    PILOT_ABOVE,
    Estimate,
    Pilot,
    gradient_hessian,
    gradient_hvp,
    gradient_pilot,
    value_gradient,
    value_hessian,
    value_hvp,
    value_pilot,
)
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import Objective
from hesscli.vocab import FDAccuracy, FDSource, Method


def _dense(est: Estimate) -> DenseHessian:
    sym, asym = symmetrize(np.asarray(est.value, dtype=np.float64))
    err = np.asarray(est.error, dtype=np.float64)
    return DenseHessian(
        sym,
        symmetry_error=asym,
        error=float(np.linalg.norm(0.5 * (err + err.T))),
        evaluations=est.evaluations,
        kinks=est.kinks,
    )


class GradientDifferences(Curvature):
    """Exact gradient (JAX), Hessian and HVPs by central differences of it."""

    method = Method.FD
    source = FDSource.GRADIENTS

    def __init__(self, objective: Objective, accuracy: str = "normal") -> None:
        jax = jax_module()
        self.objective = objective
        self.n = objective.n
        self.dtype = objective.dtype
        self.accuracy = FDAccuracy(accuracy)
        self.grads = Gradients(objective)
        self._value = jax.jit(objective.flat_fn)
        self._grad = jax.jit(jax.grad(objective.flat_fn))
        self.last_gradient_error: np.ndarray | None = None
        self.values_count = 0
        self._pilot: tuple[bytes, Pilot] | None = None

    def pilot(self, x: np.ndarray) -> Pilot:
        """The step scales at ``x`` (:func:`.stencils.gradient_pilot`), once per point."""
        key = np.asarray(x, dtype=np.float64).tobytes()
        if self._pilot is None or self._pilot[0] != key:
            self._pilot = (key, gradient_pilot(self.grads, np.asarray(x, np.float64)))
        return self._pilot[1]

    @property
    def evaluations(self) -> int:
        """Gradient evaluations spent on finite differences so far."""
        return self.grads.count

    @property
    def fd(self) -> FDStatistics:
        return FDStatistics(self.source, self.accuracy, self.evaluations,
                            self.last_gradient_error)

    def value(self, x: np.ndarray) -> float:
        self.values_count += 1
        return float(self._value(np.asarray(x, dtype=self.dtype)))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._grad(np.asarray(x, dtype=self.dtype)), dtype=np.float64)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.hvp_estimate(x, v).value

    def hvp_estimate(self, x: np.ndarray, v: np.ndarray) -> Estimate:
        scales = self.pilot(x).scales
        return gradient_hvp(self.grads, np.asarray(x, np.float64), np.asarray(v, np.float64),
                            ladder(1, self.accuracy, self.dtype), scales)

    def hessian(self, x: np.ndarray) -> DenseHessian:
        est = gradient_hessian(self.grads, np.asarray(x, np.float64),
                               ladder(1, self.accuracy, self.dtype), self.pilot(x))
        return _dense(est)


class ValueDifferences(Curvature):
    """Everything from function values: the black-box backend."""

    method = Method.FD
    source = FDSource.VALUES

    def __init__(self, objective: Objective, accuracy: str = "normal",
                 *, batched: bool | None = None) -> None:
        self.objective = objective
        self.n = objective.n
        self.dtype = objective.dtype
        self.accuracy = FDAccuracy(accuracy)
        self.values = Values(objective, batched=batched)
        self._fx: dict[bytes, float] = {}
        self._hessian: tuple[bytes, np.ndarray] | None = None
        self.last_gradient_error: np.ndarray | None = None
        self._pilot: tuple[bytes, Pilot] | None = None

    def pilot(self, x: np.ndarray) -> Pilot:
        """The step scales at ``x`` (:func:`.stencils.value_pilot`), once per point."""
        key = self._key(x)
        if self._pilot is None or self._pilot[0] != key:
            x = np.asarray(x, dtype=np.float64)
            fx = self.value(x) if np.any(np.abs(x) > PILOT_ABOVE) else None
            self._pilot = (key, value_pilot(self.values, x, fx))
        return self._pilot[1]

    @property
    def evaluations(self) -> int:
        """Function evaluations spent so far (including plain values)."""
        return self.values.count

    @property
    def fd(self) -> FDStatistics:
        return FDStatistics(self.source, self.accuracy, self.evaluations,
                            self.last_gradient_error)

    def _key(self, x: np.ndarray) -> bytes:
        return np.asarray(x, dtype=np.float64).tobytes()

    def value(self, x: np.ndarray) -> float:
        key = self._key(x)
        if key not in self._fx:
            self._fx[key] = self.values.one(np.asarray(x, dtype=np.float64))
        return self._fx[key]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        est = self.gradient_estimate(x)
        return est.value

    def gradient_estimate(self, x: np.ndarray) -> Estimate:
        x = np.asarray(x, dtype=np.float64)
        est = value_gradient(self.values, x, ladder(1, self.accuracy, self.dtype),
                             self.pilot(x), fx=self.value(x))
        self.last_gradient_error = est.error
        return est

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``H v``: from the dense estimate at this point when one exists (free and
        consistent with the reported spectrum), else ``4n`` mixed differences."""
        if self._hessian is not None and self._hessian[0] == self._key(x):
            return self._hessian[1] @ np.asarray(v, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64)
        return value_hvp(self.values, x, np.asarray(v, np.float64), self.dtype,
                         self.pilot(x).scales).value

    def hessian(self, x: np.ndarray) -> DenseHessian:
        x = np.asarray(x, dtype=np.float64)
        fx = self.value(x)
        est = value_hessian(self.values, x, ladder(2, self.accuracy, self.dtype), fx,
                            self.pilot(x))
        dense = _dense(est)
        self._hessian = (self._key(x), dense.matrix)
        return dense


def curvature(objective: Objective, accuracy: str = "normal") -> Curvature:
    """The finite-difference backend an objective calls for.

    Traceable objectives difference their exact gradient (one HVP costs two
    gradients, accuracy ≈ ε^(2/3)); black boxes difference values (≈ ε^(1/2)).
    """
    if accuracy not in ACCURACIES:
        raise ValueError(f"accuracy must be one of {ACCURACIES}; got {accuracy!r}")
    if objective.traceable:
        return GradientDifferences(objective, accuracy)
    return ValueDifferences(objective, accuracy)
