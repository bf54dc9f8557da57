"""Will a gradient step with this learning rate decrease the loss? (the article's Taylor argument)

For ``x' = x − ε g`` with ``g = ∇f(x)`` the quadratic model predicts
``f(x') − f(x) ≈ −ε gᵀg + ½ ε² gᵀHg``. The step increases the loss when that is
positive; along ``g`` the model decreases for ``0 < ε < 2 gᵀg / gᵀHg`` and is
lowest at ``ε* = gᵀg / gᵀHg`` (both only when ``gᵀHg > 0``; otherwise the model
decreases for every ε and has no best step).

Overflow: with a huge ε (``--lr 1e308``) the terms ``ε gᵀg`` and ``ε² gᵀHg``
overflow, and ``−inf + inf`` would be NaN, which compares as "no increase".
:func:`predict_step` therefore writes the change in the scaled form
``ε·gᵀg·(½·ε·κ − 1)`` with ``κ = gᵀHg/gᵀg`` (the curvature along ``g``): its
sign is decided by ``ε·κ > 2`` alone, which stays meaningful when the product
overflows to ``inf``, and its magnitude saturates at ``±inf`` (JSON ``null``).
A step that lands where ``f`` is not finite (``f(x − εg)`` = inf or NaN) counts
as an increase: the loss has blown up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.vocab import Certainty


@dataclass(frozen=True)
class StepPrediction:
    lr: float
    predicted_change: float
    actual_change: float
    increases_loss: bool  # predicted by the quadratic model
    actually_increases: bool
    curvature_along_gradient: float  # gᵀHg / gᵀg, a Rayleigh quotient
    max_decreasing_lr: float | None  # 2 gᵀg / gᵀHg
    optimal_lr: float | None  # gᵀg / gᵀHg
    lr_ratio: float | None  # lr / optimal_lr
    model_error: float  # actual − predicted
    rounding_level: float = 0.0  # changes of f this small are rounding noise (see predict_step)

    def below_rounding(self, change: float) -> bool:
        """True when ``change`` (a change of f) is within the rounding level (an
        infinite change, from an overflowing step, never is)."""
        return math.isfinite(change) and abs(change) <= self.rounding_level


def predict_step(
    lr: float, gradient: np.ndarray, hg: np.ndarray, value: float, value_after: float,
    *, eps: float = 0.0, gtol: float = 0.0, hessian_norm: float = 0.0,
) -> StepPrediction:
    """Compare the quadratic model's change with the actual ``f(x − lr·g) − f(x)``.

    ``hg`` is ``H g`` (one HVP); ``value_after`` is ``f(x − lr·g)``. Computed in
    the overflow-safe scaled form of the module docstring: no NumPy warning,
    ``increases_loss`` exact in sign whatever the size of ``lr``.

    ``rounding_level`` is how small a change of f is noise: the difference of
    two values each rounded to ε·|f| (4ε·max|f|), plus what a gradient known
    only to ±gtol moves f by in the model (lr·gtol² + ½lr²‖H‖gtol²). At an
    exact minimum both changes are below it and are shown as 0, not as the
    digits of rounding (``eps``, ``gtol``, ``hessian_norm`` default to 0: no level).
    """
    g = np.asarray(gradient, dtype=np.float64)
    gmax = float(np.max(np.abs(g))) if g.size else 0.0
    if gmax == 0.0:
        return _no_gradient(lr, value, value_after,
                            _rounding_level(lr, value, value_after, eps, gtol, hessian_norm))
    gs = g / gmax  # entries in [−1, 1]: its products cannot overflow
    gsgs = float(np.dot(gs, gs))
    with np.errstate(over="ignore", invalid="ignore"):
        kappa = float(np.dot(gs, np.asarray(hg, dtype=np.float64))) / (gmax * gsgs)
    gnorm = gmax * math.sqrt(gsgs)
    half_lr_kappa = 0.5 * lr * kappa
    increases = half_lr_kappa > 1.0  # ⟺ −lr·gᵀg + ½lr²·gᵀHg > 0, for any lr > 0
    factor = half_lr_kappa - 1.0
    predicted = _product(lr * gnorm, gnorm * factor)
    actual = _actual_change(value, value_after)
    if kappa > 0:
        optimal = 1.0 / kappa  # = gᵀg / gᵀHg
        max_lr: float | None = 2.0 * optimal
        ratio: float | None = lr * kappa
    else:
        optimal = max_lr = ratio = None
    return StepPrediction(
        lr=lr,
        predicted_change=predicted,
        actual_change=actual,
        increases_loss=increases,
        actually_increases=actual > 0,
        curvature_along_gradient=kappa,
        max_decreasing_lr=max_lr,
        optimal_lr=optimal,
        lr_ratio=ratio,
        model_error=_difference(actual, predicted),
        rounding_level=_rounding_level(lr, value, value_after, eps, gtol, hessian_norm),
    )


def _rounding_level(
    lr: float, value: float, value_after: float, eps: float, gtol: float, hessian_norm: float
) -> float:
    """See :func:`predict_step`; a non-finite ``f(x')`` contributes nothing (it is no
    rounding), and the sum saturates at inf quietly for a huge lr."""
    values = [abs(v) for v in (float(value), float(value_after)) if math.isfinite(v)]
    return (4.0 * eps * max(values, default=0.0)
            + _product(lr, gtol * gtol) + _product(0.5 * lr * lr, hessian_norm * gtol * gtol))


def gradient_step(x: np.ndarray, lr: float, gradient: np.ndarray) -> np.ndarray:
    """``x − lr·g`` without NumPy's overflow warning (entries may be ±inf for a huge lr;
    the objective then decides what ``f`` is there, and :func:`predict_step` copes)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(x) - lr * np.asarray(gradient)


def _product(a: float, b: float) -> float:
    """``a·b`` in Python floats (overflow gives ±inf silently; inf·0 is 0 here, not NaN)."""
    if a == 0.0 or b == 0.0:
        return 0.0
    return a * b


def _difference(a: float, b: float) -> float:
    """``a − b``; NaN (inf − inf: both changes saturated) when undefined."""
    if math.isinf(a) and math.isinf(b) and (a > 0) == (b > 0):
        return math.nan
    return a - b


def _actual_change(value: float, value_after: float) -> float:
    """``f(x') − f(x)``; +inf when ``f(x')`` is not finite (NaN or +inf: the loss blew up)."""
    after = float(value_after)
    if math.isnan(after) or after == math.inf:
        return math.inf
    return after - float(value)


def _no_gradient(lr: float, value: float, value_after: float, level: float) -> StepPrediction:
    actual = _actual_change(value, value_after)
    return StepPrediction(lr=lr, predicted_change=0.0, actual_change=actual,
                          increases_loss=False, actually_increases=actual > 0,
                          curvature_along_gradient=0.0, max_decreasing_lr=None,
                          optimal_lr=None, lr_ratio=None, model_error=actual,
                          rounding_level=level)


@dataclass(frozen=True)
class Stability:
    """Gradient descent near here is stable along every eigendirection iff lr < 2/λmax.

    ``stable`` needs an *upper* bound on λmax, "unstable" a lower one. Dense:
    both are λmax. Matrix-free: the largest Rayleigh quotient θ proves
    ``λmax ≥ θ − δ`` (so ``lr·(θ − δ) ≥ 2`` proves "unstable", ``certainty``
    "proven"), and only a probabilistic bound (Kuczyński–Woźniakowski, random
    start) gives ``λmax ≤ lambda_max_at_most``: "stable" is then stated with its
    ``probability`` (``certainty`` "probabilistic"), or ``stable`` is None
    (undetermined) when ``lr·lambda_max_at_most ≥ 2 > lr·(θ − δ)``. No residual
    or Kato–Temple estimate decides it. ``max_stable_lr`` is 2/λmax from the
    computed λmax (an upper bound on the true one on the matrix-free path).
    """

    lambda_max: float
    max_stable_lr: float | None  # 2 / λmax, None when λmax ≤ 0
    lr: float
    stable: bool | None
    lr_times_lambda_max: float
    lambda_max_converged: bool = True
    certainty: Certainty | None = Certainty.PROVEN  # None: undetermined
    lambda_max_at_most: float | None = None  # the upper bound "stable" rests on (matrix-free)
    probability: float | None = None  # of that bound (None: proven or none)


def stability(lr: float, lambda_max: float, converged: bool = True,
              bounds: Any = None, *, bound: float = 2.0) -> Stability:
    """Stability of gradient descent with ``lr`` from λmax (see :class:`Stability`).

    ``bounds`` (:class:`~hesscli.spectra.bounds.EndBounds`, matrix-free) replaces
    ``converged``: what the Rayleigh quotients prove and the random start makes likely.
    ``bound``: the value of lr·λmax above which the method is unstable (2 for gradient
    descent; Adam's (2 + 2β₁)/(1 − β₁) on λmax(P⁻¹H), :mod:`.preconditioned`).
    """
    limit = bound
    bound = limit / lambda_max if lambda_max > 0 else None
    if bounds is not None:
        unstable = lr * bounds.max_at_least >= limit
        upper = bounds.max_at_most
        likely_stable = bool(np.isfinite(upper)) and lr * upper < limit
        stable: bool | None = False if unstable else (True if likely_stable else None)
        certainty = (Certainty.PROVEN if unstable or (likely_stable and bounds.complete)
                     else Certainty.PROBABILISTIC if likely_stable else None)
        return Stability(
            lambda_max=lambda_max, max_stable_lr=bound, lr=lr, stable=stable,
            lr_times_lambda_max=lr * lambda_max, lambda_max_converged=converged,
            certainty=certainty,
            lambda_max_at_most=float(upper) if np.isfinite(upper) else None,
            probability=(bounds.probability if certainty == Certainty.PROBABILISTIC else None),
        )
    unstable = bound is not None and not lr < bound
    stable = not unstable if converged or unstable else None
    return Stability(
        lambda_max=lambda_max,
        max_stable_lr=bound,
        lr=lr,
        stable=stable,
        lr_times_lambda_max=lr * lambda_max,
        lambda_max_converged=converged,
        certainty=Certainty.PROVEN if stable is not None else None,
    )
