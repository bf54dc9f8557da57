"""Will a gradient step with this learning rate decrease the loss? (the article's Taylor argument)

For ``x' = x − ε g`` with ``g = ∇f(x)`` the quadratic model predicts
``f(x') − f(x) ≈ −ε gᵀg + ½ ε² gᵀHg``. The step increases the loss when that is
positive; along ``g`` the model decreases for ``0 < ε < 2 gᵀg / gᵀHg`` and is
lowest at ``ε* = gᵀg / gᵀHg`` (both only when ``gᵀHg > 0``; otherwise the model
decreases for every ε and has no best step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
        """True when ``change`` (a change of f) is within the rounding level."""
        return abs(change) <= self.rounding_level


def predict_step(
    lr: float, gradient: np.ndarray, hg: np.ndarray, value: float, value_after: float,
    *, eps: float = 0.0, gtol: float = 0.0, hessian_norm: float = 0.0,
) -> StepPrediction:
    """Compare the quadratic model's change with the actual ``f(x − lr·g) − f(x)``.

    ``hg`` is ``H g`` (one HVP); ``value_after`` is ``f(x − lr·g)``.

    ``rounding_level`` is how small a change of f is noise: the difference of
    two values each rounded to ε·|f| (4ε·max|f|), plus what a gradient known
    only to ±gtol moves f by in the model (lr·gtol² + ½lr²‖H‖gtol²). At an
    exact minimum both changes are below it and are shown as 0, not as the
    digits of rounding (``eps``, ``gtol``, ``hessian_norm`` default to 0: no level).
    """
    gg = float(np.dot(gradient, gradient))
    ghg = float(np.dot(gradient, hg))
    predicted = -lr * gg + 0.5 * lr * lr * ghg
    actual = float(value_after - value)
    if ghg > 0:
        optimal = gg / ghg
        max_lr: float | None = 2.0 * optimal
        ratio: float | None = lr / optimal
    else:
        optimal = max_lr = ratio = None
    return StepPrediction(
        lr=lr,
        predicted_change=predicted,
        actual_change=actual,
        increases_loss=predicted > 0,
        actually_increases=actual > 0,
        curvature_along_gradient=ghg / gg if gg > 0 else 0.0,
        max_decreasing_lr=max_lr,
        optimal_lr=optimal,
        lr_ratio=ratio,
        model_error=actual - predicted,
        rounding_level=4.0 * eps * max(abs(value), abs(value_after))
        + lr * gtol**2 + 0.5 * lr * lr * hessian_norm * gtol**2,
    )


@dataclass(frozen=True)
class Stability:
    """Gradient descent near here is stable along every eigendirection iff lr < 2/λmax."""

    lambda_max: float
    max_stable_lr: float | None  # 2 / λmax, None when λmax ≤ 0
    lr: float
    stable: bool
    lr_times_lambda_max: float


def stability(lr: float, lambda_max: float) -> Stability:
    bound = 2.0 / lambda_max if lambda_max > 0 else None
    return Stability(
        lambda_max=lambda_max,
        max_stable_lr=bound,
        lr=lr,
        stable=bound is None or lr < bound,
        lr_times_lambda_max=lr * lambda_max,
    )
