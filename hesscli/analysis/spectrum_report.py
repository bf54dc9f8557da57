"""``hesscli spectrum``: eigenvalues (all, or the extremes), density, trace, histogram.

Dense path: every eigenvalue (LAPACK), the exact trace, the histogram of the
eigenvalues themselves. Matrix-free path: the ``k`` extremes with residuals
(:mod:`hesscli.spectra.lanczos`), a stochastic trace estimate (Hutchinson,
Hutch++ or whichever has the smaller error on this problem:
:mod:`hesscli.spectra.trace`) with its standard error and, with
``density=True``, the SLQ density (:mod:`.density`), whose quadrature mass gives
the histogram as *estimated* counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hesscli.analysis.verdicts import (
    Inertia,
    curvature_scale,
    inertia,
    spectrum_tolerance,
)
from hesscli.curvature.base import Curvature, ensure_finite
from hesscli.objective.bind import Objective
from hesscli.spectra.certify import Extremes
from hesscli.spectra.density import Density, slq_density
from hesscli.spectra.policy import SpectrumPolicy, choose, spectrum_at
from hesscli.spectra.route import PathChoice
from hesscli.spectra.spectrum import Spectrum
from hesscli.spectra.trace import Trace, estimate_trace, hvp_matmat
from hesscli.vocab import CurvatureKind, Method, SpectrumPath

BINS = 12


@dataclass(frozen=True)
class Histogram:
    """Eigenvalue counts per bin; ``estimated`` when they come from SLQ (× n)."""

    edges: np.ndarray
    counts: np.ndarray
    estimated: bool


@dataclass(frozen=True)
class SpectrumReport:
    objective: str
    n: int
    method: Method
    dtype: str
    path: SpectrumPath
    path_reason: str
    dense_bytes: int
    spectrum: Spectrum
    tolerance: float
    inertia: Inertia
    extremes: Extremes | None
    density: Density | None
    trace: Trace | None
    trace_exact: float | None
    histogram: Histogram
    notes: tuple[str, ...] = field(default_factory=tuple)
    curvature: CurvatureKind = CurvatureKind.HESSIAN  # the matrix the spectrum is of

    @property
    def eigenvalues(self) -> np.ndarray:
        """The computed eigenvalues, ascending (all on the dense path; the extremes
        otherwise: ``spectrum.complete`` says which), as ``Analysis.eigenvalues``."""
        return self.spectrum.eigenvalues

    @property
    def lambda_min(self) -> float:
        return self.spectrum.lambda_min

    @property
    def lambda_max(self) -> float:
        return self.spectrum.lambda_max

    @property
    def title(self) -> str:
        """The matrix's name for people ("Hessian", "GGN", "Hessian − GGN", ...)."""
        from hesscli.curvature.operators import TITLES

        return TITLES.get(self.curvature, self.curvature)


def histogram(values: np.ndarray, weights: np.ndarray | None, bins: int = BINS) -> Histogram:
    """Counts of ``values`` (weighted) in ``bins`` equal bins over their range."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        pad = max(abs(lo), 1.0) * 1e-3
        lo, hi = lo - pad, hi + pad
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi), weights=weights)
    return Histogram(edges, counts, weights is not None)


def product_at(curvature: Curvature, x: np.ndarray) -> Any:
    """The single-product ``(x, v) -> M(x) v`` the eigensolver's residual checks used at
    ``x``: the Hessian linearized at ``x`` (:func:`hesscli.spectra.lanczos.at_point`,
    whose linearizer and product programs are compiled by then), any other operator's
    HVP as given. The trace's products go through it, so they compile no program of
    their own and skip the primal pass a full HVP repeats (issue 19's fixed cost).
    """
    from hesscli.spectra.lanczos import at_point

    hvp, _ = at_point(curvature.hvp_fn, curvature.linearizable,
                      np.asarray(x, dtype=curvature.dtype))
    return hvp


def spectrum_report(
    obj: Objective, curvature: Curvature, *, policy: SpectrumPolicy | None = None,
    choice: PathChoice | None = None, density: bool = False, probes: int = 8,
    steps: int = 80, sigma: float | None = None, trace_probes: int = 30, bins: int = BINS,
    notes: tuple[str, ...] = (), trace_estimator: str = "auto",
    estimate_trace_dense: bool = False,
) -> SpectrumReport:
    """Compute what ``hesscli spectrum`` reports (see module docstring).

    ``policy`` defaults to k = 3 at each end; the path is ``choice`` when given,
    else the one ``policy`` picks for ``obj.n``. ``trace_probes`` is the trace
    estimate's budget of HVPs, spent by ``trace_estimator`` (0: no estimate);
    ``estimate_trace_dense`` also estimates it on the dense path, beside the exact
    trace (to see an estimator's error on a small problem).
    """
    policy = policy or SpectrumPolicy(k=3)
    x = obj.x
    # where f is NaN or infinite its derivatives describe nothing (log at a negative x
    # has a finite Hessian): refuse as analyze does, rather than report a spectrum
    # value and gradient from one program, now (the gradient is the zero tolerance's, at
    # the end): two programs compiled for them cost seconds each on a network
    value, grad = curvature.value_and_gradient(x)
    ensure_finite(value, "value")
    if curvature.kind != CurvatureKind.HESSIAN:  # say how the GGN/Fisher was computed
        notes = notes + tuple(curvature.notes)
    dens = tr = None
    trace_exact = None
    choice = choice or choose(obj.n, policy)
    point = spectrum_at(curvature, x, obj.layout, policy, choice=choice)
    sp, ex = point.spectrum, point.extremes
    seed = policy.seed
    if choice.path == SpectrumPath.DENSE:
        trace_exact = float(np.sum(sp.eigenvalues))
        hist = histogram(sp.eigenvalues, None, bins)
        hvp_fn = curvature.hvp_fn
        if estimate_trace_dense and hvp_fn is not None and trace_probes:
            tr = estimate_trace(hvp_matmat(hvp_fn, x, obj.dtype), obj.n,
                                estimator=trace_estimator, hvps=trace_probes, seed=seed,
                                unit_roundoff=float(np.finfo(obj.dtype).eps) / 2)
    else:
        hvp_fn = curvature.hvp_fn
        if sp.complete:  # the Krylov basis spanned the space: every eigenvalue is known
            trace_exact = float(np.sum(sp.eigenvalues))
            if density:
                notes = notes + ("--density: the Lanczos basis spanned the space, so every "
                                 "eigenvalue is known; the histogram shows them exactly",)
        elif hvp_fn is not None:
            if trace_probes:
                tr = estimate_trace(hvp_matmat(product_at(curvature, x), x, obj.dtype),
                                    obj.n, estimator=trace_estimator, hvps=trace_probes,
                                    seed=seed,
                                    unit_roundoff=float(np.finfo(obj.dtype).eps) / 2)
            else:
                notes = notes + ("--trace-probes 0: no trace estimate",)
            if density:
                dens = slq_density(hvp_fn, x, probes=probes, steps=steps, sigma=sigma,
                                   seed=seed, dtype=obj.dtype, f=curvature.linearizable)
        else:
            notes = notes + ("trace and density need the exact (JAX) HVP; skipped",)
        if dens is not None:
            hist = histogram(dens.nodes, dens.weights * obj.n / dens.probes, bins)
        else:
            hist = histogram(sp.eigenvalues, None, bins)
    if curvature.host is not None:  # products left the loops: drop the host's linearization
        curvature.host.release()
    lam = sp.eigenvalues
    # the same zero tolerance as analyze (curvature scale, rounding dimension)
    scale = curvature_scale(lam, value, float(np.linalg.norm(grad)), float(np.linalg.norm(x)))
    tol = spectrum_tolerance(sp, scale, obj.n, obj.dtype)
    return SpectrumReport(
        objective=obj.label, n=obj.n, method=curvature.method, dtype=obj.dtype,
        path=choice.path, path_reason=choice.reason, dense_bytes=choice.dense_bytes,
        spectrum=sp, tolerance=tol,
        inertia=inertia(lam, tol, sp.complete), extremes=ex, density=dens, trace=tr,
        trace_exact=trace_exact, histogram=hist, notes=obj.notes + notes + sp.notes,
        curvature=curvature.kind,
    )
