"""``hesscli analyze``: everything second-order information says about one point."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hesscli.analysis.escape import Escape, escape_direction
from hesscli.analysis.spectrum import Spectrum, dense_spectrum
from hesscli.analysis.step import Stability, StepPrediction, predict_step, stability
from hesscli.analysis.verdicts import (
    Inertia,
    classify,
    condition_number,
    definiteness,
    eigen_tolerance,
    gradient_tolerance,
    inertia,
)
from hesscli.bind import Objective
from hesscli.curvature.base import Curvature, ensure_finite
from hesscli.layout import top_entries


@dataclass(frozen=True)
class Analysis:
    objective: str
    n: int
    method: str
    dtype: str
    value: float
    gradient_norm: float
    gtol: float
    gradient_top: tuple[tuple[str, float], ...]
    spectrum: Spectrum
    tolerance: float
    inertia: Inertia
    definiteness: str
    critical: bool
    classification: str
    condition_number: float | None
    step: StepPrediction | None
    stability: Stability
    escape: Escape | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def eigenvalues(self) -> np.ndarray:
        return self.spectrum.eigenvalues


def analyze(
    objective: Objective,
    curvature: Curvature,
    *,
    lr: float = 0.01,
    spectrum: Spectrum | None = None,
    gtol: float | None = None,
    tol: float | None = None,
    escape_distance: float = 0.1,
    notes: tuple[str, ...] = (),
) -> Analysis:
    """Value, gradient, spectrum, verdicts, step prediction and escape direction at ``x``.

    ``spectrum`` defaults to the dense one; pass a matrix-free one for large n.
    ``gtol``/``tol`` override the derived tolerances (see :mod:`.verdicts`).
    """
    x = objective.x
    layout = objective.layout
    value = curvature.value(x)
    ensure_finite(value, "value")
    grad = curvature.gradient(x)
    ensure_finite(grad, "gradient", layout)
    gnorm = float(np.linalg.norm(grad))
    if spectrum is None:
        spectrum = dense_spectrum(curvature, x, layout)
    lam = spectrum.eigenvalues
    scale = float(np.max(np.abs(lam))) if lam.size else 0.0
    tol_used = tol if tol is not None else eigen_tolerance(
        scale, objective.n, objective.dtype, spectrum.error
    )
    gtol_used = gtol if gtol is not None else gradient_tolerance(value, objective.dtype)
    kind = classify(gnorm, gtol_used, lam, tol_used)

    step = None
    if gnorm > 0:
        hg = curvature.hvp(x, grad)
        ensure_finite(hg, "Hessian-vector product", layout)
        after = curvature.value(x - lr * grad)
        step = predict_step(lr, grad, hg, value, after)

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
        gradient_top=tuple(top_entries(grad, layout, 5)) if gnorm > 0 else (),
        spectrum=spectrum,
        tolerance=tol_used,
        inertia=inertia(lam, tol_used),
        definiteness=definiteness(lam, tol_used, spectrum.complete),
        critical=gnorm <= gtol_used,
        classification=kind,
        condition_number=condition_number(lam, tol_used) if spectrum.complete else (
            condition_number(lam, tol_used)
            if float(lam.min()) > tol_used or float(lam.max()) < -tol_used
            else None
        ),
        step=step,
        stability=stability(lr, spectrum.lambda_max),
        escape=escape,
        notes=notes + spectrum.notes,
    )
