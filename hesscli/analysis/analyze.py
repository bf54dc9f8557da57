"""``hesscli analyze``: everything second-order information says about one point."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hesscli.analysis.escape import Escape, escape_direction
from hesscli.analysis.step import Stability, StepPrediction, predict_step, stability
from hesscli.analysis.verdicts import (
    Inertia,
    classify,
    condition_number,
    curvature_scale,
    definiteness,
    eigen_tolerance,
    gradient_tolerance,
    inertia,
    rounding_dimension,
)
from hesscli.analysis.verify import Verification
from hesscli.curvature.base import Curvature, ensure_finite
from hesscli.objective.bind import Objective
from hesscli.objective.layout import Layout, top_entries
from hesscli.spectra.policy import SpectrumPolicy, spectrum_at
from hesscli.spectra.spectrum import Spectrum
from hesscli.vocab import Classification, Definiteness, Dtype, FDAccuracy, FDSource, Method


@dataclass(frozen=True)
class NonSmooth:
    """The objective is not smooth at the point (finite differences found a kink).

    ``parameters`` are the names involved; ``slope_jump`` the estimated jump of
    the one-sided slopes per named parameter; ``gradient_band`` = ‖jump‖/2, how
    far the central-difference gradient may be from any one-sided gradient.
    """

    parameters: tuple[str, ...]
    slope_jump: tuple[float, ...]
    gradient_band: float
    disagreement: float


@dataclass(frozen=True)
class FDInfo:
    """How finite differences were used: from what, how hard, at what cost, and why."""

    source: FDSource
    accuracy: FDAccuracy
    evaluations: int  # function (or gradient) evaluations
    hessian_error: float  # ‖E‖_F estimate, added to the eigenvalue tolerance
    why: str
    gradient_error: float = 0.0  # ‖error‖ of a finite-difference gradient, added to gtol


@dataclass(frozen=True)
class Analysis:
    objective: str
    n: int
    method: Method
    dtype: str
    value: float
    gradient_norm: float
    gtol: float
    gradient_top: tuple[tuple[str, float], ...]
    spectrum: Spectrum
    tolerance: float
    inertia: Inertia
    definiteness: Definiteness
    critical: bool
    classification: Classification
    condition_number: float | None
    step: StepPrediction | None
    stability: Stability
    escape: Escape | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    smooth: bool | None = True  # None: not checked (exact autodiff assumes smoothness)
    nonsmooth: NonSmooth | None = None
    fd: FDInfo | None = None
    verification: Verification | None = None

    @property
    def eigenvalues(self) -> np.ndarray:
        return self.spectrum.eigenvalues


def analyze(
    objective: Objective,
    curvature: Curvature,
    *,
    lr: float = 0.01,
    spectrum: Spectrum | None = None,
    policy: SpectrumPolicy | None = None,
    gtol: float | None = None,
    tol: float | None = None,
    escape_distance: float = 0.1,
    notes: tuple[str, ...] = (),
    verification: Verification | None = None,
    fd_why: str | None = None,
) -> Analysis:
    """Value, gradient, spectrum, verdicts, step prediction and escape direction at ``x``.

    ``spectrum`` defaults to :func:`hesscli.spectra.policy.spectrum_at` by
    ``policy`` (default: auto path, k = 1), whose path note joins ``notes``.
    ``gtol``/``tol`` override the derived tolerances (see :mod:`.verdicts`).

    When finite differences find a kink (estimates at two step sizes disagree
    beyond their error model) the point is not smooth: the classification is
    ``degenerate`` (never a confident verdict) unless the gradient exceeds
    ``gtol`` by more than the kink's slope jump can explain (``not_critical``).
    """
    x = objective.x
    layout = objective.layout
    value = curvature.value(x)
    ensure_finite(value, "value")
    grad = curvature.gradient(x)
    ensure_finite(grad, "gradient", layout)
    gnorm = float(np.linalg.norm(grad))
    if spectrum is None:
        point = spectrum_at(curvature, x, layout, policy or SpectrumPolicy())
        spectrum, notes = point.spectrum, notes + point.notes
    lam = spectrum.eigenvalues
    x_norm = float(np.linalg.norm(x))
    scale = curvature_scale(lam, value, gnorm, x_norm)
    n_eff = rounding_dimension(objective.n, spectrum.complete)
    tol_used = tol if tol is not None else eigen_tolerance(
        scale, n_eff, objective.dtype, spectrum.error
    )
    hess_norm = float(np.max(np.abs(lam))) if lam.size else 0.0
    gtol_used = gtol if gtol is not None else gradient_tolerance(
        value, objective.dtype, x_norm=x_norm, hessian_norm=hess_norm
    )
    fd = curvature.fd
    grad_error = (float(np.linalg.norm(fd.gradient_error))
                  if fd is not None and fd.gradient_error is not None else 0.0)
    if gtol is None:
        gtol_used += grad_error  # a finite-difference gradient is only known to ± its error
    kind = classify(gnorm, gtol_used, lam, tol_used)
    nonsmooth = _nonsmooth(spectrum, layout)
    critical = gnorm <= gtol_used
    if nonsmooth is not None:
        critical = gnorm <= gtol_used + nonsmooth.gradient_band
        kind = Classification.DEGENERATE if critical else Classification.NOT_CRITICAL

    step = None
    if gnorm > grad_error:  # an FD gradient inside its error band is no direction
        hg = curvature.hvp(x, grad)
        ensure_finite(hg, "Hessian-vector product", layout)
        after = curvature.value(x - lr * grad)
        from hesscli.jaxconf import eps

        step = predict_step(lr, grad, hg, value, after, eps=eps(objective.dtype),
                            gtol=gtol_used, hessian_norm=hess_norm)

    escape = None
    if spectrum.lambda_min < -tol_used:
        v = spectrum.vec_min
        plus = curvature.value(x + escape_distance * v)
        minus = curvature.value(x - escape_distance * v)
        escape = escape_direction(
            spectrum.lambda_min, v, grad, layout, escape_distance, value, plus, minus
        )

    return Analysis(
        objective=objective.label,
        n=objective.n,
        method=curvature.method,
        dtype=objective.dtype,
        value=value,
        gradient_norm=gnorm,
        gtol=gtol_used,
        # a gradient within gtol is rounding noise: naming its largest entries would
        # present noise as information
        gradient_top=tuple(top_entries(grad, layout, 5)) if gnorm > max(grad_error, gtol_used)
        else (),
        spectrum=spectrum,
        tolerance=tol_used,
        inertia=inertia(lam, tol_used, spectrum.complete),
        definiteness=definiteness(lam, tol_used, spectrum.complete),
        critical=critical,
        classification=kind,
        condition_number=condition_number(lam, tol_used) if spectrum.complete else (
            condition_number(lam, tol_used)
            if float(lam.min()) > tol_used or float(lam.max()) < -tol_used
            else None
        ),
        step=step,
        stability=stability(lr, spectrum.lambda_max),
        escape=escape,
        notes=objective.notes + notes + spectrum.notes
        + precision_notes(objective.dtype, tol_used, gtol_used),
        smooth=(nonsmooth is None) if curvature.fd is not None else None,
        nonsmooth=nonsmooth,
        fd=_fd_info(curvature, spectrum, fd_why, grad_error),
        verification=verification,
    )


def precision_notes(dtype: str, tol: float, gtol: float) -> tuple[str, ...]:
    """What float32 costs: the tolerances scale with ε, 5·10⁸ times float64's."""
    if dtype != Dtype.FLOAT32:
        return ()
    from hesscli.jaxconf import eps

    return (
        f"float32: ε = {eps(dtype):.2e} (float64: {eps('float64'):.2e}), so the tolerances are "
        f"widened accordingly: tol = {tol:.3g}, gtol = {gtol:.3g}",
    )


def _nonsmooth(spectrum: Spectrum, layout: Layout) -> NonSmooth | None:
    kinks = spectrum.kinks
    if kinks is None:
        return None
    idx = list(kinks.parameters)
    jumps = [float(kinks.slope_jump[i]) for i in idx]
    return NonSmooth(
        parameters=tuple(layout.name(i) for i in idx),
        slope_jump=tuple(jumps),
        gradient_band=0.5 * float(np.linalg.norm(kinks.slope_jump)),
        disagreement=kinks.disagreement,
    )


def _fd_info(
    curvature: Curvature, spectrum: Spectrum, why: str | None, gradient_error: float
) -> FDInfo | None:
    fd = curvature.fd
    if fd is None:
        return None
    return FDInfo(
        source=fd.source,
        accuracy=fd.accuracy,
        evaluations=fd.evaluations,
        hessian_error=spectrum.error,
        why=why or "--method fd",
        gradient_error=gradient_error,
    )
