"""``hesscli analyze``: everything second-order information says about one point."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hesscli.analysis.escape import Escape, escape_direction
from hesscli.analysis.kinks import Direction, Kink, Probe, probe_kinks
from hesscli.analysis.step import (
    Stability,
    StepPrediction,
    gradient_step,
    predict_step,
    stability,
)
from hesscli.analysis.verdicts import (
    PROBABILISTIC,
    PROVEN,
    Evidence,
    Inertia,
    classification_of,
    condition_number,
    curvature_scale,
    definiteness_of,
    gradient_tolerance,
    inertia,
    length_scale,
    smallest_bounded,
    smallest_curvature,
    spectrum_tolerance,
)
from hesscli.analysis.verify import Verification
from hesscli.curvature.base import Curvature, ensure_finite
from hesscli.jaxconf import eps
from hesscli.objective.bind import Objective
from hesscli.objective.layout import Layout, top_entries
from hesscli.spectra.policy import SpectrumPolicy, spectrum_at
from hesscli.spectra.route import PathChoice
from hesscli.spectra.spectrum import Spectrum
from hesscli.vocab import (
    Classification,
    CurvatureKind,
    Definiteness,
    Dtype,
    FDAccuracy,
    FDSource,
    KinkSource,
    Method,
)


@dataclass(frozen=True)
class NonSmooth:
    """The objective is not smooth at the point (a kink was found).

    ``parameters`` are the names involved; ``slope_jump`` the estimated jump of
    the one-sided slopes per named parameter (NaN: not measured along it alone).
    Finite differences: ``gradient_band`` = ‖jump‖/2, how far the
    central-difference gradient may be from any one-sided gradient. The probe of
    exact derivatives (``source="probe"``): the largest gap between a one-sided
    slope and the gradient's prediction; ``kinks`` lists each direction's finding.
    """

    parameters: tuple[str, ...]
    slope_jump: tuple[float, ...]
    gradient_band: float
    disagreement: float
    source: KinkSource = KinkSource.FINITE_DIFFERENCES  # PROBE: exact derivatives (.kinks)
    kinks: tuple[Kink, ...] = ()  # the probe's findings per direction
    evaluations: int = 0  # function values the probe spent


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
    classification: Classification | None  # None: the curvature is not the Hessian
    condition_number: float | None
    step: StepPrediction | None
    stability: Stability
    escape: Escape | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    smooth: bool | None = True  # None: not checked (kink probe off); see .kinks
    nonsmooth: NonSmooth | None = None
    fd: FDInfo | None = None
    verification: Verification | None = None
    curvature: CurvatureKind = CurvatureKind.HESSIAN  # hessian, ggn, fisher, empirical-fisher
    # how each verdict is known: "proven" | "probabilistic" | None, and the probability
    certainty: dict[str, object] = field(default_factory=dict)

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
    choice: PathChoice | None = None,
    gtol: float | None = None,
    tol: float | None = None,
    escape_distance: float = 0.1,
    notes: tuple[str, ...] = (),
    verification: Verification | None = None,
    fd_why: str | None = None,
    kink_probe: bool = True,
) -> Analysis:
    """Value, gradient, spectrum, verdicts, step prediction and escape direction at ``x``.

    ``spectrum`` defaults to :func:`hesscli.spectra.policy.spectrum_at` by
    ``policy`` (default: auto path, k = 1) on the path ``choice`` already chosen for
    this objective (None: chosen here), whose path note joins ``notes``.
    ``gtol``/``tol`` override the derived tolerances (see :mod:`.verdicts`).

    When finite differences find a kink (estimates at two step sizes disagree
    beyond their error model), or, for exact derivatives, the one-sided probe
    of :mod:`.kinks` does (``kink_probe``), the point is not smooth: the
    classification and definiteness are ``undetermined`` (never a confident
    verdict from a Hessian that does not exist) unless the gradient exceeds
    ``gtol`` by more than the kink's slope mismatch can explain
    (``not_critical``).

    A backend whose ``kind`` is not the Hessian (Gauss–Newton, Fisher: positive
    semidefinite by construction) yields its spectrum, definiteness,
    conditioning, stability and step model, but no classification (None) and
    no escape direction: minimum-versus-saddle is a statement about the
    Hessian, and a PSD matrix cannot show a saddle.
    """
    kind_used = curvature.kind
    x = objective.x
    layout = objective.layout
    value = curvature.value(x)
    ensure_finite(value, "value")
    grad = curvature.gradient(x)
    ensure_finite(grad, "gradient", layout)
    gnorm = float(np.linalg.norm(grad))
    if spectrum is None:
        point = spectrum_at(curvature, x, layout, policy or SpectrumPolicy(), choice=choice)
        spectrum, notes = point.spectrum, notes + point.notes
    lam = spectrum.eigenvalues
    x_norm = float(np.linalg.norm(x))
    scale = curvature_scale(lam, value, gnorm, x_norm)
    bounds = spectrum.bounds
    if tol is not None:
        tol_used = tol
        if bounds is not None and tol < bounds.rounding:
            # the proven sides hold only beyond the HVP's rounding: a smaller --tol would
            # let a Rayleigh quotient within rounding of zero decide a sign
            tol_used = bounds.rounding
            notes = notes + (f"--tol {tol:.3g} raised to the HVP's rounding δ = "
                             f"{bounds.rounding:.3g}: no sign is proven within it",)
    else:
        tol_used = spectrum_tolerance(spectrum, scale, objective.n, objective.dtype)
    evidence = Evidence.of(lam, spectrum.converged, bounds)
    hess_norm = hessian_norm_bound(spectrum)
    gtol_used = gtol if gtol is not None else gradient_tolerance(
        value, objective.dtype, x_norm=x_norm, hessian_norm=hess_norm,
        smallest_curvature=smallest_known_curvature(lam, tol_used, spectrum, evidence),
        n=objective.n,
    )
    fd = curvature.fd
    grad_error = (float(np.linalg.norm(fd.gradient_error))
                  if fd is not None and fd.gradient_error is not None else 0.0)
    if gtol is None:
        gtol_used += grad_error  # a finite-difference gradient is only known to ± its error
    kind, kind_basis = classification_of(gnorm, gtol_used, evidence, tol_used)
    shape, shape_basis = definiteness_of(evidence, tol_used)
    step = None
    if gnorm > grad_error:  # an FD gradient inside its error band is no direction
        hg = curvature.hvp(x, grad)
        ensure_finite(hg, "Hessian-vector product", layout)
        after = curvature.value(gradient_step(x, lr, grad))
        step = predict_step(lr, grad, hg, value, after, eps=eps(objective.dtype),
                            gtol=gtol_used, hessian_norm=hess_norm)

    nonsmooth = _nonsmooth(spectrum, layout)
    probe = None
    # the probe checks f's one-sided second differences against the curvatures used,
    # which only the Hessian predicts (a GGN's dᵀGd is not f's curvature): Hessian only
    if (nonsmooth is None and kink_probe and curvature.fd is None
            and kind_used == CurvatureKind.HESSIAN):
        probe = probe_kinks(
            curvature.value, curvature.hvp, x, value, grad,
            _probe_directions(spectrum, grad, step), gtol=gtol_used, tol=tol_used,
            dtype=objective.dtype, layout=layout,
        )
        nonsmooth = _probe_nonsmooth(probe)
    critical = gnorm <= gtol_used
    if (critical and step is not None and nonsmooth is None and gtol is None
            and gnorm > 2.0 * hess_norm * eps(objective.dtype) * length_scale(x_norm)
            and first_order_measured(step, gnorm, value, objective.dtype)):
        # the rounding model put ‖∇f‖ within gtol, but f measurably moved to first order
        # along −g, by more than x's own representation (‖H‖·ε·‖x‖) explains: the
        # gradient is not autodiff rounding (float32 at 10⁶ called ‖∇f‖ = 61 critical)
        critical = False
        kind, kind_basis = Classification.NOT_CRITICAL, PROVEN
        notes = notes + (
            f"‖∇f‖ = {gnorm:.4g} is within the rounding model's gtol = {gtol_used:.4g}, but a "
            f"gradient step changed f to first order (by {step.actual_change:.4g}, beyond "
            "the second-order and higher terms and f's rounding): the gradient is not "
            "zero, so the point is not critical",)
    if nonsmooth is not None:
        # No Hessian exists at a kink: no second-order verdict, and the gradient is
        # only known to within the one-sided slopes' spread.
        critical = gnorm <= gtol_used + nonsmooth.gradient_band
        kind = Classification.UNDETERMINED if critical else Classification.NOT_CRITICAL
        shape = Definiteness.UNDETERMINED
        kind_basis = PROVEN if kind == Classification.NOT_CRITICAL else None
        shape_basis = None

    escape = None
    if spectrum.lambda_min < -tol_used and kind_used == CurvatureKind.HESSIAN:
        v = spectrum.vec_min
        check_escape_step(escape_distance, spectrum.lambda_min, x, v)
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
        definiteness=shape,
        critical=critical,
        classification=kind if kind_used == CurvatureKind.HESSIAN else None,
        condition_number=_condition(spectrum, tol_used, shape),
        step=step,
        # GD's 2/λmax bound is the Hessian's: another matrix's λmax cannot decide it
        stability=_stability(lr, spectrum, kind_used),
        escape=escape,
        notes=objective.notes + notes + spectrum.notes
        + precision_notes(objective.dtype, tol_used, gtol_used)
        + undetermined_notes(spectrum, tol_used, kind, shape)
        + probability_notes(spectrum, kind_basis, shape_basis) + kink_notes(nonsmooth)
        + curvature_notes(curvature, kind_used),
        smooth=(nonsmooth is None) if curvature.fd is not None or probe is not None else None,
        nonsmooth=nonsmooth,
        fd=_fd_info(curvature, spectrum, fd_why, grad_error),
        verification=verification,
        curvature=kind_used,
        certainty={"classification": kind_basis if kind_used == CurvatureKind.HESSIAN else None,
                   "definiteness": shape_basis,
                   "probability": (bounds.probability if bounds is not None and PROBABILISTIC
                                   in (kind_basis, shape_basis) else None)},
    )


def first_order_measured(step: StepPrediction, gnorm: float, value: float,
                         dtype: str) -> bool:
    """Did a gradient step change f to first order, beyond what a zero gradient allows?

    With ∇f(x) = 0, ``f(x − lr·g) − f(x)`` is ``½lr²·gᵀHg`` plus third-order terms,
    whatever the computed g. The step's measured change minus that second-order term
    is then the first-order term ``−lr·∇fᵀg`` plus the model's error (the third- and
    higher-order terms, measured as actual − predicted). When it exceeds three times
    the model error and f's rounding (10·ε·max|f|), ∇f(x) ≠ 0: a fact measured, not
    the rounding model's estimate.
    """
    after = value + step.actual_change
    if not (np.isfinite(step.actual_change) and np.isfinite(after)):
        return False
    second = 0.5 * step.lr**2 * step.curvature_along_gradient * gnorm**2
    first = step.actual_change - second
    noise = 10.0 * eps(dtype) * max(abs(value), abs(after))
    return abs(first) > 3.0 * abs(step.model_error) + noise and first < 0


def _stability(lr: float, spectrum: Spectrum, kind: str) -> Stability:
    """GD stability at ``lr``: the Hessian's λmax only (a GGN's cannot decide it)."""
    if kind != CurvatureKind.HESSIAN:
        return stability(lr, spectrum.lambda_max, False)
    return stability(lr, spectrum.lambda_max, spectrum.max_converged, spectrum.bounds)


def hessian_norm_bound(spectrum: Spectrum) -> float:
    """An upper bound on ‖H‖₂ for the gradient tolerance.

    Dense: max|λ|. Matrix-free: the probabilistic bound of the random start
    (:attr:`~hesscli.spectra.bounds.EndBounds.norm_at_most`), else the extremes
    widened by their residuals — never a bare Ritz value, and (since every
    reported value is a Rayleigh quotient of a vector actually formed) never one
    beyond the spectrum.
    """
    lam = spectrum.eigenvalues
    if lam.size == 0:
        return 0.0
    b = spectrum.bounds
    if b is None:
        return float(np.max(np.abs(lam)))
    if np.isfinite(b.norm_at_most):
        return float(b.norm_at_most)
    return max(abs(b.min_interval[0]), abs(b.max_interval[1]))


def smallest_known_curvature(lam: np.ndarray, tol: float, spectrum: Spectrum,
                             evidence: Evidence) -> float:
    """σ for the gradient tolerance: min|λ| where a lower bound on it is known (> tol)."""
    if spectrum.bounds is None:
        return smallest_curvature(lam, tol, spectrum.complete, spectrum.converged)
    return smallest_bounded(evidence, tol)


def probability_notes(spectrum: Spectrum, *bases: str | None) -> tuple[str, ...]:
    """What a probabilistic verdict rests on (the random start, its probability, the steps)."""
    b = spectrum.bounds
    if b is None or PROBABILISTIC not in bases or b.probability is None:
        return ()
    return (
        f"probabilistic: a Krylov run from one start can miss an eigenvector, so the far "
        f"sides λmin ≥ {b.min_at_least:.4g} and λmax ≤ {b.max_at_most:.4g} hold with "
        f"probability ≥ {b.probability:.3g} over the random start (Kuczyński–Woźniakowski "
        f"after {b.krylov_steps} Lanczos steps); verdicts that need them say so. A second "
        "--seed that agrees makes them more likely",
    )


def curvature_notes(curvature: Curvature, kind: str) -> tuple[str, ...]:
    """What a curvature other than the Hessian can and cannot say."""
    if kind == CurvatureKind.HESSIAN:
        return ()
    from hesscli.curvature.operators import TITLES

    title = TITLES.get(kind, kind)
    # whether the matrix is PSD here (for the GGN: checked on the output loss's Hessian)
    # is one of the backend's notes; either way its signs are not the Hessian's
    return tuple(curvature.notes) + (
        f"the {title} is not the Hessian, so the signs of its eigenvalues decide no minimum "
        "or saddle: no classification (minimum, saddle) and no escape direction are reported "
        "from it; run with --curvature hessian for those",
        f"the step model uses gᵀMg with M the {title} (a Gauss–Newton-type quadratic model)",
    )


def _probe_directions(
    spectrum: Spectrum, grad: np.ndarray, step: StepPrediction | None
) -> list[Direction]:
    """The directions the kink probe walks along, each with its curvature ``dᵀHd``.

    The gradient (curvature from the step prediction's HVP) and the two extreme
    eigenvectors (their Ritz values): the directions the verdicts rest on.
    """
    dirs = []
    if step is not None:
        dirs.append(Direction("the gradient", grad / np.linalg.norm(grad),
                              step.curvature_along_gradient))
    dirs.append(Direction("the λmin eigenvector", spectrum.vec_min, spectrum.lambda_min))
    if spectrum.eigenvalues.size > 1:
        dirs.append(Direction("the λmax eigenvector", spectrum.vec_max, spectrum.lambda_max))
    return dirs


def _probe_nonsmooth(probe: Probe) -> NonSmooth | None:
    if probe.smooth:
        return None
    return NonSmooth(
        parameters=probe.parameters,
        slope_jump=probe.parameter_jumps,
        gradient_band=probe.gradient_band,
        disagreement=max(k.significance for k in probe.kinks),
        source=KinkSource.PROBE,
        kinks=probe.kinks,
        evaluations=probe.evaluations,
    )


def kink_notes(nonsmooth: NonSmooth | None) -> tuple[str, ...]:
    """The kink in words: where, how found, which parameters (for the JSON notes too)."""
    if nonsmooth is None:
        return ()
    names = ", ".join(nonsmooth.parameters[:6]) + (
        f" and {len(nonsmooth.parameters) - 6} more" if len(nonsmooth.parameters) > 6 else "")
    if nonsmooth.source == KinkSource.PROBE:
        k = max(nonsmooth.kinks, key=lambda k: k.significance)
        how = (f"the one-sided probe found a {k.kind} jump along {k.direction} "
               f"({k.side} side, {k.kind} off the derivatives' prediction by {k.mismatch:.4g})")
    else:
        how = "finite differences at two step sizes disagree beyond their error model"
    return (f"not smooth here: {how}; parameters {names}. The Hessian does not exist at a "
            "kink, so classification and definiteness are undetermined",)


def _condition(spectrum: Spectrum, tol: float, shape: str) -> float | None:
    """max|λ|/min|λ| when both ends are known and min|λ| is beyond tol, else None.

    On the matrix-free path only a definite spectrum (both extremes of one
    sign, proven or probable: ``shape``) bounds min|λ|; an unconverged end
    leaves the ratio unknown.
    """
    lam = spectrum.eigenvalues
    if spectrum.bounds is not None and not spectrum.complete and shape not in (
            Definiteness.POSITIVE_DEFINITE, Definiteness.NEGATIVE_DEFINITE):
        return None
    if not (spectrum.min_converged and spectrum.max_converged):
        return None
    if spectrum.complete or float(lam.min()) > tol or float(lam.max()) < -tol:
        return condition_number(lam, tol)
    return None


def undetermined_notes(
    spectrum: Spectrum, tol: float, classification: str, shape: str
) -> tuple[str, ...]:
    """Why a verdict is ``undetermined`` on the matrix-free path, and what to do."""
    words = [w for w, undecided in (
        ("classification", classification == Classification.UNDETERMINED),
        ("definiteness", shape == Definiteness.UNDETERMINED)) if undecided]
    if spectrum.bounds is not None:
        return _bounds_undetermined_note(spectrum, tol, words)
    if spectrum.min_converged and spectrum.max_converged:
        return ()
    ends = [e for e, ok in (("λmin", spectrum.min_converged),
                            ("λmax", spectrum.max_converged)) if not ok]
    proven = []
    if spectrum.lambda_min < -tol:
        proven.append(f"negative curvature (a Ritz value {spectrum.lambda_min:.4g} < −tol)")
    if spectrum.lambda_max > tol:
        proven.append(f"positive curvature (a Ritz value {spectrum.lambda_max:.4g} > tol)")
    text = (
        f"{' and '.join(ends)} not converged: a Ritz value bounds λmin only from above and "
        "λmax only from below, so claims that need the other side (positive/negative "
        "(semi)definite, a local minimum or maximum, zero, stable) are not proven"
    )
    text += "; proven: " + ", ".join(proven) if proven else "; nothing is proven about the sign"
    if words:
        text += f"; {' and '.join(words)} undetermined"
    return (text + ". Raise --max-steps (or --rtol) until the end converges",)


def _bounds_undetermined_note(spectrum: Spectrum, tol: float, words: list[str]
                              ) -> tuple[str, ...]:
    b = spectrum.bounds
    if not words or b is None:
        return ()
    proven = []
    if b.theta_min < -tol:
        proven.append(f"negative curvature (λmin ≤ {b.min_at_most:.4g})")
    if b.theta_max > tol:
        proven.append(f"positive curvature (λmax ≥ {b.max_at_least:.4g})")
    text = (f"{' and '.join(words)} undetermined: the Rayleigh quotients prove "
            + (", ".join(proven) if proven else "nothing about the sign")
            + "; the far sides (a lower bound on λmin, an upper bound on λmax) are not proven "
            "by a Krylov run from one start")
    if b.probability is not None:
        text += (f", and the random-start bound (probability {b.probability:.3g} after "
                 f"{b.krylov_steps} Lanczos steps: λmin ≥ {b.min_at_least:.4g}, "
                 f"λmax ≤ {b.max_at_most:.4g}) does not decide it either")
    else:
        text += f", and {b.krylov_steps} Lanczos steps give no random-start bound"
    return (text + ". A dense run (--dense, when it fits) proves both sides",)


def precision_notes(dtype: str, tol: float, gtol: float) -> tuple[str, ...]:
    """What float32 costs: the tolerances scale with ε, 5·10⁸ times float64's."""
    if dtype != Dtype.FLOAT32:
        return ()
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


def check_escape_step(distance: float, eigenvalue: float, x: np.ndarray, v: np.ndarray) -> None:
    """Refuse an escape distance t for which x ± t·v or ½·λ·t² overflow the float range:
    the report would be infinities computed from a step no one can take."""
    from hesscli.errors import InputError

    with np.errstate(over="ignore", invalid="ignore"):
        t = np.float64(distance)
        moved = np.asarray(x, dtype=np.float64) + t * np.asarray(v, dtype=np.float64)
        model = 0.5 * np.float64(eigenvalue) * t * t
    if not (np.all(np.isfinite(moved)) and np.isfinite(model)):
        raise InputError(f"--escape-step {distance:g}: the step overflows float64 here "
                         f"(½·λmin·t² with λmin = {eigenvalue:.4g}); give a distance on the "
                         "scale of the parameters (default 0.1)")
