"""What is watched at each logged step: value, gradient, extreme eigenvalues, step model.

The eigenvalues come from :func:`extreme_eigenvalues`, the one place that picks
how: the dense Hessian's eigenvalues (exact backend, LAPACK) up to
``DENSE_LIMIT`` parameters, and above it the matrix-free extremes (Lanczos on
Hessian-vector products, k = 1 at each end, the same solver as ``spectrum`` and
``analyze`` use: :func:`hesscli.spectra.matrix_free.extremes_of`), whose
largest residual is the error band.

The step prediction is the article's Taylor argument for the plain gradient
step ``x − lr·g`` at the logged point (:func:`hesscli.analysis.step.predict_step`):
quadratic-model change against the actual change, one HVP and one extra value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from hesscli.analysis.step import gradient_step, predict_step
from hesscli.curvature.base import ensure_finite
from hesscli.errors import ObjectiveError

DENSE_LIMIT = 2000  # above this, forming H (n HVPs + an O(n³) eigensolve) per log is too slow

MATRIX_FREE_NOTE = (
    "curvature monitored matrix-free: n = {n} > {limit}, so λmin and λmax come from Lanczos "
    "on Hessian-vector products (k = 1 at each end, seed 0); their residuals are the error band"
)


@dataclass(frozen=True)
class Extremes:
    """The smallest and largest Hessian eigenvalue and how they were computed."""

    lambda_min: float
    lambda_max: float
    path: str  # "dense" | "matrix-free"
    error: float = 0.0  # absolute error band beyond rounding (converged Lanczos residuals, fd)
    min_converged: bool = True  # False: λmin only bounded from above (unconverged Lanczos)
    max_converged: bool = True  # False: λmax only bounded from below


def extreme_eigenvalues(
    curvature: object, x: np.ndarray, *, dense_limit: int | None = None
) -> Extremes:
    """λmin and λmax of the Hessian at ``x``.

    Dense (every eigenvalue, LAPACK) up to ``dense_limit`` parameters
    (default :data:`DENSE_LIMIT`); above it the matrix-free extremes (k = 1 at
    each end, seed 0 so every log step starts alike), with the largest
    residual ‖Hv − λv‖ as ``error``.
    """
    n = int(np.asarray(x).size)
    if n > (DENSE_LIMIT if dense_limit is None else dense_limit):
        return matrix_free_extremes(curvature, x)
    hess = curvature.hessian(x)  # type: ignore[attr-defined]
    ensure_finite(hess.matrix, "Hessian")
    # Eigenvalues only: the monitor needs no eigenvectors, and one LAPACK eigvalsh
    # measured 8x faster than dense_spectrum's three eigh calls at n = 1584.
    lam = scipy.linalg.eigh(hess.matrix, eigvals_only=True, check_finite=False)
    return Extremes(float(lam[0]), float(lam[-1]), "dense", hess.error)


def matrix_free_extremes(curvature: object, x: np.ndarray) -> Extremes:
    """λmin and λmax from :func:`hesscli.spectra.matrix_free.extremes_of` (k = 1)."""
    from hesscli.spectra.matrix_free import extremes_of

    ex = extremes_of(curvature, np.asarray(x), k=1, seed=0)
    ensure_finite(ex.eigenvalues, "Hessian eigenvalues")
    converged = np.asarray(ex.converged, dtype=bool)
    certified = np.asarray(ex.residuals)[converged]  # an unconverged residual bounds nothing
    error = float(np.max(certified)) if certified.size else 0.0
    return Extremes(float(ex.eigenvalues[0]), float(ex.eigenvalues[-1]), "matrix-free", error,
                    bool(converged[0]), bool(converged[-1]))


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
    x_norm: float | None = None  # ‖x‖, the length scale of the gradient tolerance
    curvature_error: float | None = None  # error band of λmin/λmax beyond rounding
    lambda_min_converged: bool | None = None  # None: dense (known); False: upper bound only
    lambda_max_converged: bool | None = None  # None: dense (known); False: lower bound only


def monitor(
    curvature: object,
    x: np.ndarray,
    step: int,
    lr: float,
    *,
    curvature_on: bool = True,
    mean_step_loss: float | None = None,
    elapsed: float = 0.0,
    dense_limit: int | None = None,
) -> tuple[Record, np.ndarray, Extremes | None]:
    """The record at ``x`` (plus the full gradient and the extremes, for the event logic)."""
    value, grad = curvature.value_and_gradient(x)  # type: ignore[attr-defined]
    gnorm = float(np.linalg.norm(grad))
    ext = None
    fields: dict[str, float | None] = {}
    finite = np.isfinite(value) and np.all(np.isfinite(grad))
    if curvature_on and finite:
        try:
            ext = extreme_eigenvalues(curvature, x, dense_limit=dense_limit)
        except ObjectiveError:  # a non-finite Hessian at a finite point: no curvature here
            ext = None
        if ext is not None and np.isfinite(ext.lambda_min) and np.isfinite(ext.lambda_max):
            fields.update(
                lambda_min=ext.lambda_min,
                lambda_max=ext.lambda_max,
                lr_times_lambda_max=lr * ext.lambda_max,
                curvature_error=ext.error,
            )
            if ext.path == "matrix-free":
                fields.update(lambda_min_converged=ext.min_converged,
                              lambda_max_converged=ext.max_converged)
        else:
            ext = None
        if gnorm > 0:
            hg = curvature.hvp(x, grad)  # type: ignore[attr-defined]
            after = curvature.value(gradient_step(x, lr, grad))  # type: ignore[attr-defined]
            pred = predict_step(lr, grad, hg, value, after)
            fields.update(
                predicted_change=pred.predicted_change,
                actual_change=pred.actual_change,
                model_error=pred.model_error,
            )
    record = Record(
        step=step, value=float(value), gradient_norm=gnorm, mean_step_loss=mean_step_loss,
        elapsed=elapsed, x_norm=float(np.linalg.norm(x)), **fields,  # type: ignore[arg-type]
    )
    return record, grad, ext
