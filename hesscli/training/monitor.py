"""What is watched at each logged step: value, gradient, extreme eigenvalues, step model.

The eigenvalues come from :func:`extreme_eigenvalues` through the same entry
point every command uses (:func:`hesscli.spectra.policy.spectrum_at`): the
dense Hessian's eigenvalues (LAPACK, no eigenvectors) when the dense budget
allows (the one limit every command uses, :mod:`hesscli.spectra.route`),
otherwise the matrix-free extremes (Lanczos on Hessian-vector products,
k = 1 at each end, seed 0 so every log step starts alike), whose largest
residual is the error band.

The step prediction is the article's Taylor argument for the plain gradient
step ``x − lr·g`` at the logged point (:func:`hesscli.analysis.step.predict_step`):
quadratic-model change against the actual change, one HVP and one extra value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hesscli.analysis.step import gradient_step, predict_step
from hesscli.curvature.base import Curvature, ensure_finite
from hesscli.errors import ObjectiveError
from hesscli.spectra.policy import SpectrumPolicy, spectrum_at
from hesscli.spectra.route import PathChoice
from hesscli.vocab import Ends, SpectrumPath

#: The monitor's spectrum policy: k = 1 at each end, seed 0 (every log step starts alike).
MONITOR_POLICY = SpectrumPolicy(k=1, seed=0)

MATRIX_FREE_NOTE = (
    "curvature monitored matrix-free ({reason}), so λmin and λmax come from Lanczos "
    "on Hessian-vector products (k = 1 at each end, seed 0); their residuals are the error band"
)


@dataclass(frozen=True)
class MonitoredExtremes:
    """The smallest and largest Hessian eigenvalue and how they were computed."""

    lambda_min: float
    lambda_max: float
    path: SpectrumPath
    error: float = 0.0  # absolute error band beyond rounding (converged Lanczos residuals, fd)
    min_converged: bool = True  # False: λmin only bounded from above (unconverged Lanczos)
    max_converged: bool = True  # False: λmax only bounded from below
    blocks: dict[str, float] | None = None  # λmax of each diagonal block, when asked
    # matrix-free: the far sides with the random start's probability (None: none / dense)
    min_at_least: float | None = None
    max_at_most: float | None = None


def block_maxima(curvature: Curvature, x: np.ndarray, blocks: list, dense: bool
                 ) -> dict[str, float]:
    """λmax of each diagonal block (:mod:`hesscli.spectra.blocks`): from the dense
    Hessian's diagonal blocks on the dense path, else Lanczos on each block's
    restricted products."""
    import scipy.linalg

    if dense:
        hess = curvature.hessian(x).matrix
        return {b.name: float(scipy.linalg.eigh(hess[np.ix_(b.indices, b.indices)],
                                                eigvals_only=True, check_finite=False)[-1])
                for b in blocks}
    from hesscli.analysis.blocks import block_solver, matmat_of
    from hesscli.spectra.blocks import extremes_iterative, restricted

    solve = block_solver(curvature, x)  # the certified restarted Lanczos, per block
    if solve is not None:
        return {b.name: solve(b).lambda_max for b in blocks}
    op = matmat_of(curvature, x)
    n = int(np.asarray(x).size)
    return {b.name: extremes_iterative(restricted(op, n, b.indices), b.size, 0).lambda_max
            for b in blocks}


def extreme_eigenvalues(
    curvature: Curvature, x: np.ndarray, *, policy: SpectrumPolicy = MONITOR_POLICY,
    choice: PathChoice | None = None, blocks: list | None = None,
) -> MonitoredExtremes:
    """λmin and λmax of the Hessian at ``x``.

    ``policy`` (the run's: :data:`MONITOR_POLICY` with its path request and dense
    budget) gives every eigenvalue of the dense Hessian when the budget allows, else
    the matrix-free extremes with the largest residual ‖Hv − λv‖ as ``error``;
    ``choice`` is the path already chosen for the run (None: chosen here). With
    ``blocks`` (a partition from :func:`hesscli.spectra.blocks.group_blocks`) also
    each diagonal block's λmax.
    """
    # Eigenvalues only on the dense path: the monitor needs no eigenvectors, and one
    # LAPACK eigvalsh measured 8x faster than the end-vector solve at n = 1584.
    point = spectrum_at(curvature, np.asarray(x), policy=policy, vectors=False,
                        choice=choice)
    sp = point.spectrum
    if sp.path == SpectrumPath.MATRIX_FREE:
        ensure_finite(sp.eigenvalues, "Hessian eigenvalues")
    per_block = (block_maxima(curvature, np.asarray(x), blocks, sp.path == SpectrumPath.DENSE)
                 if blocks else None)
    b = sp.bounds
    if b is None:
        return MonitoredExtremes(sp.lambda_min, sp.lambda_max, sp.path, sp.certified_error,
                        sp.min_converged, sp.max_converged, per_block)
    # matrix-free: the zero band is the HVP's rounding (a residual never widens it), and
    # the far sides are the random-start bounds, never a residual or Kato–Temple estimate
    return MonitoredExtremes(sp.lambda_min, sp.lambda_max, sp.path, b.rounding,
                    sp.min_converged, sp.max_converged, per_block,
                    min_at_least=_finite(b.min_at_least), max_at_most=_finite(b.max_at_most))


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


@dataclass(frozen=True)
class Record:
    """One logged step of the history: step, value, gradient_norm, eigenvalues, step model."""

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
    # matrix-free: λmin ≥ …, λmax ≤ … with the random start's probability (None: no bound)
    lambda_min_at_least: float | None = None
    lambda_max_at_most: float | None = None
    block_lambda_max: dict[str, float] | None = None  # per diagonal block (--monitor-blocks)
    # Adam-type optimizers: λmax(P⁻¹H) with P from the optimizer state at this step
    # (:mod:`hesscli.analysis.preconditioned`), lr times it, the bound on that product
    # ((2 + 2β₁)/(1 − β₁)) and the threshold bound/lr on λmax(P⁻¹H) itself
    preconditioned_lambda_max: float | None = None
    lr_times_preconditioned_lambda_max: float | None = None
    preconditioned_bound: float | None = None
    preconditioned_threshold: float | None = None
    # matrix-free: λmax(P⁻¹H) ≥ … (proven) and ≤ … (the random start's bound)
    preconditioned_lambda_max_at_least: float | None = None
    preconditioned_lambda_max_at_most: float | None = None


def monitor(
    curvature: Curvature,
    x: np.ndarray,
    step: int,
    lr: float,
    *,
    curvature_on: bool = True,
    mean_step_loss: float | None = None,
    elapsed: float = 0.0,
    policy: SpectrumPolicy = MONITOR_POLICY,
    choice: PathChoice | None = None,
    blocks: list | None = None,
    preconditioner: Any = None,
) -> tuple[Record, np.ndarray, MonitoredExtremes | None]:
    """The record at ``x`` (plus the full gradient and the extremes, for the event logic).

    ``policy`` is the run's spectrum policy and ``choice`` the path chosen for the run
    once (None: chosen here from ``policy``).

    ``preconditioner`` (:class:`~hesscli.curvature.preconditioned.Preconditioner`, from the
    optimizer state at this step) adds λmax(P⁻¹H) and its threshold.
    """
    value, grad = curvature.value_and_gradient(x)
    gnorm = float(np.linalg.norm(grad))
    ext = None
    fields: dict[str, Any] = {}
    finite = np.isfinite(value) and np.all(np.isfinite(grad))
    if curvature_on and finite:
        try:
            ext = extreme_eigenvalues(curvature, x, policy=policy, choice=choice,
                                      blocks=blocks)
        except ObjectiveError:  # a non-finite Hessian at a finite point: no curvature here
            ext = None
        if ext is not None and np.isfinite(ext.lambda_min) and np.isfinite(ext.lambda_max):
            fields.update(
                lambda_min=ext.lambda_min,
                lambda_max=ext.lambda_max,
                lr_times_lambda_max=lr * ext.lambda_max,
                curvature_error=ext.error,
            )
            if ext.path == SpectrumPath.MATRIX_FREE:
                fields.update(lambda_min_converged=ext.min_converged,
                              lambda_max_converged=ext.max_converged,
                              lambda_min_at_least=ext.min_at_least,
                              lambda_max_at_most=ext.max_at_most)
            if ext.blocks is not None:
                fields["block_lambda_max"] = ext.blocks
        else:
            ext = None
        if preconditioner is not None:
            fields.update(preconditioned_fields(curvature, x, preconditioner, lr, policy))
        if gnorm > 0:
            hg = curvature.hvp(x, grad)
            after = curvature.value(gradient_step(x, lr, grad))
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


def preconditioned_fields(curvature: Curvature, x: np.ndarray, pre: Any, lr: float,
                          policy: SpectrumPolicy = MONITOR_POLICY) -> dict[str, Any]:
    """The record's λmax(P⁻¹H) fields (the run's ``policy``: k = 1, seed 0, its path and
    budget; the top end only has to meet the target)."""
    from hesscli.analysis.preconditioned import preconditioned_sharpness

    policy = replace(policy, ends=Ends.MAX)
    try:
        ps = preconditioned_sharpness(curvature, x, pre, lr, policy)
    except ObjectiveError:
        return {}
    if not np.isfinite(ps.lambda_max):
        return {}
    out: dict[str, Any] = {
        "preconditioned_lambda_max": ps.lambda_max,
        "lr_times_preconditioned_lambda_max": lr * ps.lambda_max,
        "preconditioned_bound": ps.bound, "preconditioned_threshold": ps.threshold}
    if ps.path == SpectrumPath.MATRIX_FREE:
        out["preconditioned_lambda_max_at_least"] = ps.interval[0]
        out["preconditioned_lambda_max_at_most"] = ps.stability.lambda_max_at_most
    return out
