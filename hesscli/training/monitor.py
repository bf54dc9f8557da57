"""What is watched at each logged step: value, gradient, extreme eigenvalues, step model.

The eigenvalues come from :func:`extreme_eigenvalues`, the one place that picks
how: the dense Hessian's eigenvalues (exact backend, LAPACK) up to
``DENSE_LIMIT`` parameters, nothing above it yet. The matrix-free path
(Lanczos on Hessian-vector products) plugs in there; until it does, a large
model's history has value and gradient norm but no curvature, and the run
says so in a note.

The step prediction is the article's Taylor argument for the plain gradient
step ``x − lr·g`` at the logged point (:func:`hesscli.analysis.step.predict_step`):
quadratic-model change against the actual change, one HVP and one extra value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from hesscli.analysis.step import predict_step
from hesscli.curvature.base import ensure_finite
from hesscli.errors import ObjectiveError

DENSE_LIMIT = 2000  # above this, forming H (n HVPs + an O(n³) eigensolve) per log is too slow

MATRIX_FREE_NOTE = (
    "curvature not monitored: n = {n} > {limit}, and monitoring needs the matrix-free "
    "(Lanczos) path, which is not plugged in yet (hesscli.training.monitor.extreme_eigenvalues)"
)


@dataclass(frozen=True)
class Extremes:
    """The smallest and largest Hessian eigenvalue and how they were computed."""

    lambda_min: float
    lambda_max: float
    path: str  # "dense" | "matrix-free"
    error: float = 0.0  # absolute error band beyond rounding (Lanczos residuals, fd)


def extreme_eigenvalues(curvature: object, x: np.ndarray) -> Extremes | None:
    """λmin and λmax of the Hessian at ``x``, or None when not affordable.

    Hook for the matrix-free path: above :data:`DENSE_LIMIT` return Lanczos
    extremes here (with their residuals as ``error``) and every monitor uses them.
    """
    n = int(np.asarray(x).size)
    if n > DENSE_LIMIT:
        return None
    hess = curvature.hessian(x)  # type: ignore[attr-defined]
    ensure_finite(hess.matrix, "Hessian")
    # Eigenvalues only: the monitor needs no eigenvectors, and one LAPACK eigvalsh
    # measured 8x faster than dense_spectrum's three eigh calls at n = 1584.
    lam = scipy.linalg.eigh(hess.matrix, eigvals_only=True, check_finite=False)
    return Extremes(float(lam[0]), float(lam[-1]), "dense", hess.error)


@dataclass(frozen=True)
class Record:
    """One logged step of the history (DESIGN.md: step, value, gradient_norm, eigenvalues)."""

    step: int
    value: float
    gradient_norm: float
    lambda_min: float | None = None
    lambda_max: float | None = None
    lr_times_lambda_max: float | None = None
    predicted_change: float | None = None  # GD step lr·g, quadratic model
    actual_change: float | None = None
    model_error: float | None = None  # actual − predicted
    mean_step_loss: float | None = None  # mean loss over the steps since the last log
    elapsed: float = 0.0  # seconds since the run (or resumed run) started


def monitor(
    curvature: object,
    x: np.ndarray,
    step: int,
    lr: float,
    *,
    curvature_on: bool = True,
    mean_step_loss: float | None = None,
    elapsed: float = 0.0,
) -> tuple[Record, np.ndarray, Extremes | None]:
    """The record at ``x`` (plus the full gradient and the extremes, for the event logic)."""
    value, grad = curvature.value_and_gradient(x)  # type: ignore[attr-defined]
    gnorm = float(np.linalg.norm(grad))
    ext = None
    fields: dict[str, float | None] = {}
    finite = np.isfinite(value) and np.all(np.isfinite(grad))
    if curvature_on and finite:
        try:
            ext = extreme_eigenvalues(curvature, x)
        except ObjectiveError:  # a non-finite Hessian at a finite point: no curvature here
            ext = None
        if ext is not None and np.isfinite(ext.lambda_min) and np.isfinite(ext.lambda_max):
            fields.update(
                lambda_min=ext.lambda_min,
                lambda_max=ext.lambda_max,
                lr_times_lambda_max=lr * ext.lambda_max,
            )
        else:
            ext = None
        if gnorm > 0:
            hg = curvature.hvp(x, grad)  # type: ignore[attr-defined]
            after = curvature.value(x - lr * grad)  # type: ignore[attr-defined]
            pred = predict_step(lr, grad, hg, value, after)
            fields.update(
                predicted_change=pred.predicted_change,
                actual_change=pred.actual_change,
                model_error=pred.model_error,
            )
    record = Record(
        step=step, value=float(value), gradient_norm=gnorm, mean_step_loss=mean_step_loss,
        elapsed=elapsed, **fields,
    )
    return record, grad, ext
