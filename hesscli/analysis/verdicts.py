"""Tolerances, inertia, definiteness, classification, conditioning.

Every verdict compares eigenvalues against an explicit tolerance ``tol``: an
eigenvalue with ``|λ| ≤ tol`` counts as zero. See :func:`eigen_tolerance`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.jaxconf import eps
from hesscli.vocab import Certainty, Classification, Definiteness

TOL_SAFETY = 10.0


def length_scale(x_norm: float) -> float:
    """``max(‖x‖, 1)``: the distance over which the point itself is known.

    The 1 keeps points at (or near) the origin from dividing by zero, as
    ``max(1, |x|)`` does in finite-difference step rules.
    """
    return max(abs(x_norm), 1.0)


def curvature_scale(
    eigenvalues: np.ndarray, value: float = 0.0, gradient_norm: float = 0.0,
    x_norm: float = 0.0,
) -> float:
    """The curvature magnitude that rounding in forming ``H`` is proportional to.

    ``max|λ|`` alone is not enough: where terms cancel (``logsumexp`` far from
    the origin: ``p − p²`` with ``p ≈ 1``) the computed ``H`` is rounding noise
    of the size of its *terms*, far above its eigenvalues. Terms of a Hessian
    are bounded in size by the function's own curvature scales ``|f|/L²`` and
    ``‖∇f‖/L`` with ``L = max(‖x‖, 1)``, so the scale is the largest of the three.
    """
    lam = np.abs(np.asarray(eigenvalues, dtype=np.float64))
    length = length_scale(x_norm)
    return max(float(lam.max()) if lam.size else 0.0, abs(value) / length**2,
               abs(gradient_norm) / length)


def rounding_dimension(n: int, complete: bool) -> int:
    """The n in :func:`eigen_tolerance`: n for a dense eigensolver (its backward
    error grows like n·ε·‖H‖), ⌈√n⌉ for matrix-free extremes, which carry their own
    residuals and whose HVP rounding grows like √n·ε·‖H‖ (n there would widen
    float32 tolerances to about ‖H‖ at 10⁵ parameters)."""
    return n if complete else math.isqrt(max(n, 1) - 1) + 1


def eigen_tolerance(scale: float, n: int, dtype: str, error: float = 0.0) -> float:
    """The zero tolerance for eigenvalues: ``10·n·ε·scale + error``.

    ``n·ε·‖H‖₂`` bounds the backward error of a symmetric eigensolver (the same
    bound ``numpy.linalg.matrix_rank`` uses); the factor 10 covers rounding in
    forming ``H`` itself by autodiff. ``error`` adds what the backend knows
    beyond rounding: the finite-difference error band or Lanczos residuals.
    ``scale`` is :func:`curvature_scale` (at least ``max|λ|``).
    """
    return TOL_SAFETY * max(n, 1) * eps(dtype) * abs(scale) + abs(error)


def spectrum_tolerance(spectrum: Any, scale: float, n: int, dtype: str) -> float:
    """The zero tolerance for a :class:`~hesscli.spectra.spectrum.Spectrum`.

    Dense: :func:`eigen_tolerance` with the spectrum's error band. Matrix-free:
    the HVP's rounding only (at least the bounds' δ): a residual never widens it,
    since it would swallow a proven sign (θmin = −0.496 called zero with tol 0.935).
    """
    n_eff = rounding_dimension(n, spectrum.complete)
    if spectrum.bounds is not None:
        return max(eigen_tolerance(scale, n_eff, dtype), spectrum.bounds.rounding)
    return eigen_tolerance(scale, n_eff, dtype, spectrum.certified_error)


def gradient_tolerance(
    value: float, dtype: str, *, x_norm: float = 0.0, hessian_norm: float = 0.0,
    smallest_curvature: float = 0.0, n: int = 1,
) -> float:
    """The default ``gtol``: ``10·√n·ε·‖H‖₂·L + √ε·σ·L`` with ``L = max(‖x‖, 1)``.

    ``σ`` is the smallest ``|λ|`` of the Hessian when it is known to be
    nonsingular (:func:`smallest_curvature`), else 0. Neither term depends on
    ``f``'s value (``value`` is accepted for callers): an additive constant
    changes no derivative.

    - *Representation and rounding*: ``x`` itself is only known to ``ε·L``,
      which moves the gradient by ``‖H‖·ε·L``; autodiff's rounding in ``∇f`` is
      of that order per term (its terms are curvatures times distances), and
      an entry sums up to n of them: ``√n`` for rounding that adds like a random
      walk, times :data:`TOL_SAFETY` as in :func:`eigen_tolerance` (measured:
      the tensor problem's symmetric saddle has ‖∇f‖ = 5.8·10⁻¹⁵ where
      ``ε·‖H‖·L`` = 9·10⁻¹⁶, n = 16).
    - *Half the digits of x*: the quadratic model's stationary point is
      ``‖H⁻¹g‖ ≤ ‖g‖/σ`` away. When that bound is within ``√ε·L``, the point
      agrees with a stationary point to half the digits of ``x``, the usual
      convergence floor of iterative methods. The bound is proven (σ is the
      smallest singular value), so this never calls a point critical that is
      farther away; a Rayleigh quotient such as the curvature along ``g`` would
      (in ``10⁶x² + y²`` at ``(10⁻⁹, 10⁻³)`` the gradient's curvature is 10⁶
      while the minimum is 10⁻³ away along y).

    ``f = 10¹² + ‖x − 1‖²`` at ``(30, 30)`` (‖g‖ = 82; a gradient step lowers f
    by 66) is not critical: gtol ≈ 10⁻⁶. Scaling ``f`` or ``x`` scales gtol like
    the gradient, so ``10⁻¹²·f`` and ``10¹²·f`` keep their verdicts. A
    finite-difference gradient adds its own error estimate (see ``analyze``).
    """
    del value
    length = length_scale(x_norm)
    e = eps(dtype)
    rounding = TOL_SAFETY * math.sqrt(max(n, 1)) * e * abs(hessian_norm) * length
    return rounding + math.sqrt(e) * abs(smallest_curvature) * length


def smallest_curvature(
    eigenvalues: np.ndarray, tol: float, complete: bool, converged: Any = None
) -> float:
    """``min|λ|`` when it is known and beyond ``tol``, else 0 (see :func:`gradient_tolerance`).

    Known: all eigenvalues computed (dense), or the spectrum is definite
    (λmin > tol, or λmax < −tol) with that end converged, so that end is the
    smallest magnitude. An indefinite matrix-free spectrum hides its interior.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.size == 0:
        return 0.0
    if complete:
        smallest = float(np.min(np.abs(lam)))
        return smallest if smallest > tol else 0.0
    conv_lo, conv_hi = end_converged(lam, converged)
    if conv_lo and float(lam.min()) > tol:
        return float(lam.min())
    if conv_hi and float(lam.max()) < -tol:
        return float(-lam.max())
    return 0.0


@dataclass(frozen=True)
class Inertia:
    """Counts of eigenvalues above tol, below −tol and within it.

    ``complete`` is False when the counts are of the computed eigenvalues only
    (the matrix-free path's extremes): they are then lower bounds, not the
    Hessian's inertia, and expectations on them are refused.
    """

    positive: int
    negative: int
    zero: int
    complete: bool = True


def inertia(eigenvalues: np.ndarray, tol: float, complete: bool = True) -> Inertia:
    lam = np.asarray(eigenvalues)
    return Inertia(
        positive=int(np.sum(lam > tol)),
        negative=int(np.sum(lam < -tol)),
        zero=int(np.sum(np.abs(lam) <= tol)),
        complete=bool(complete),
    )


UNDETERMINED = Classification.UNDETERMINED  # == Definiteness.UNDETERMINED == "undetermined"
SIGNS = ("negative", "zero", "positive")  # beyond −tol, within ±tol, beyond tol


@dataclass(frozen=True)
class EndIntervals:
    """What is known of λmin and λmax: ``λmin ∈ [lo[0], lo[1]]``, ``λmax ∈ [hi[0], hi[1]]``.

    A converged (or dense) end is known: both bounds are the computed value (its
    error is in the tolerance). An unconverged matrix-free end is known on one
    side only: a Rayleigh quotient θ of unit vectors satisfies
    ``λmin ≤ θ ≤ λmax`` whatever its residual, so the smallest Ritz value bounds
    λmin from above and the largest bounds λmax from below; the other side is
    open (a Krylov method can still miss a more extreme eigenvalue).
    """

    lo: tuple[float, float]
    hi: tuple[float, float]

    @classmethod
    def of(
        cls, eigenvalues: Any, converged: Any = None
    ) -> EndIntervals:
        """From computed eigenvalues and per-eigenvalue ``converged`` flags (None: all)."""
        lam = np.asarray(eigenvalues, dtype=np.float64)
        lo, hi = float(lam.min()), float(lam.max())
        conv_lo, conv_hi = end_converged(lam, converged)
        return cls((lo if conv_lo else -math.inf, lo), (hi, hi if conv_hi else math.inf))

    @property
    def known(self) -> bool:
        return self.lo[0] == self.lo[1] and self.hi[0] == self.hi[1]


PROVEN = Certainty.PROVEN
PROBABILISTIC = Certainty.PROBABILISTIC


@dataclass(frozen=True)
class Evidence:
    """What is known of the two ends: ``proven`` for certain, ``probable`` with ``probability``.

    Dense (or a basis that spanned the space): both ends known, all proven. On
    the matrix-free path (:class:`~hesscli.spectra.bounds.EndBounds`) the
    Rayleigh quotients prove ``λmin ≤ θmin`` and ``λmax ≥ θmax`` (their rounding
    is in the zero tolerance) and nothing more; the far sides
    (``λmin ≥ …``, ``λmax ≤ …``) hold with a probability over the random start
    (Kuczyński–Woźniakowski), or are open when too few steps were taken. No
    residual and no Kato–Temple estimate enters a verdict: they bound the distance
    to *some* eigenvalue, not to the extreme one.
    """

    proven: EndIntervals
    probable: EndIntervals | None = None
    probability: float | None = None

    @classmethod
    def of(cls, eigenvalues: Any, converged: Any = None, bounds: Any = None) -> Evidence:
        if bounds is None:
            return cls(EndIntervals.of(eigenvalues, converged))
        lo, hi = bounds.theta_min, bounds.theta_max
        if bounds.complete:
            return cls(EndIntervals((lo, lo), (hi, hi)))
        if bounds.kw is None:
            return cls.one_sided(lo, hi)
        # the verdicts' tolerance holds the rounding δ: the sides here are without it
        reach = bounds.kw * bounds.spread_bound
        return cls.one_sided(lo, hi, lo - reach, hi + reach, bounds.probability)

    @classmethod
    def one_sided(cls, theta_min: float, theta_max: float, min_at_least: float | None = None,
                  max_at_most: float | None = None, probability: float | None = None
                  ) -> Evidence:
        """Matrix-free ends: ``λmin ≤ θmin`` and ``λmax ≥ θmax`` proven; the far sides
        ``λmin ≥ min_at_least``, ``λmax ≤ max_at_most`` with ``probability`` (when both
        are known)."""
        proven = EndIntervals((-math.inf, theta_min), (theta_max, math.inf))
        if min_at_least is None or max_at_most is None:
            return cls(proven)
        return cls(proven, EndIntervals((min_at_least, theta_min), (theta_max, max_at_most)),
                   probability)


def decide(evidence: Evidence, tol: float, verdict: Any, undetermined: Any
           ) -> tuple[Any, str | None]:
    """(answer, ``"proven"`` | ``"probabilistic"`` | None): the verdict every possible
    combination of signs agrees on, from the proven ends if they suffice, else from
    the probable ones; ``undetermined`` (None) when neither decides."""
    answer = _decide(evidence.proven, tol, verdict, undetermined)
    if answer != undetermined:
        return answer, PROVEN
    if evidence.probable is not None:
        answer = _decide(evidence.probable, tol, verdict, undetermined)
        if answer != undetermined:
            return answer, PROBABILISTIC
    return undetermined, None


def smallest_bounded(evidence: Evidence, tol: float) -> float:
    """σ for :func:`gradient_tolerance` from what is known of the ends: a lower bound on
    min|λ| when the spectrum is (proven or probably) definite beyond ``tol``, else 0."""
    ends = evidence.probable or evidence.proven
    if ends.lo[0] > tol:
        return float(ends.lo[0])
    if ends.hi[1] < -tol:
        return float(-ends.hi[1])
    return 0.0


def end_converged(eigenvalues: Any, converged: Any) -> tuple[bool, bool]:
    """(λmin end converged, λmax end converged) from per-eigenvalue flags (None: both)."""
    if converged is None:
        return True, True
    lam = np.asarray(eigenvalues, dtype=np.float64)
    flags = np.asarray(converged, dtype=bool)
    order = np.argsort(lam, kind="stable")  # ties: the first is the λmin end
    return bool(flags[int(order[0])]), bool(flags[int(order[-1])])


def possible_signs(bounds: tuple[float, float], tol: float) -> tuple[str, ...]:
    """The signs (``SIGNS``) an eigenvalue in ``[a, b]`` may have, with ``|λ| ≤ tol`` zero."""
    a, b = bounds
    out = []
    if a < -tol:
        out.append("negative")
    if a <= tol and b >= -tol:
        out.append("zero")
    if b > tol:
        out.append("positive")
    return tuple(out)


def _decide(ends: EndIntervals, tol: float, verdict: Any, undetermined: Any) -> Any:
    """``verdict(sign_min, sign_max)`` if every possible combination agrees, else undetermined."""
    rank = {name: i for i, name in enumerate(SIGNS)}
    answers = {
        verdict(a, b)
        for a in possible_signs(ends.lo, tol)
        for b in possible_signs(ends.hi, tol)
        if rank[a] <= rank[b]
    }
    return answers.pop() if len(answers) == 1 else undetermined


_DEFINITENESS = {
    ("positive", "positive"): Definiteness.POSITIVE_DEFINITE,
    ("zero", "positive"): Definiteness.POSITIVE_SEMIDEFINITE,
    ("negative", "positive"): Definiteness.INDEFINITE,
    ("zero", "zero"): Definiteness.ZERO,
    ("negative", "zero"): Definiteness.NEGATIVE_SEMIDEFINITE,
    ("negative", "negative"): Definiteness.NEGATIVE_DEFINITE,
}


def definiteness_of(evidence: Evidence, tol: float) -> tuple[Definiteness, str | None]:
    """(definiteness, how it is known: see :func:`decide`)."""
    return decide(evidence, tol, lambda a, b: _DEFINITENESS[(a, b)], Definiteness.UNDETERMINED)


def definiteness(
    eigenvalues: np.ndarray, tol: float, complete: bool = True, converged: Any = None
) -> Definiteness:
    """The definiteness (:class:`~hesscli.vocab.Definiteness`), from the spectrum's extremes.

    Definiteness depends only on λmin and λmax, so the matrix-free extremes
    answer it as well as all eigenvalues do (``complete`` is accepted for
    callers that know it). With ``converged`` flags, an unconverged end is
    bounded on one side only (:class:`EndIntervals`): "positive (semi)definite" needs a
    lower bound on λmin, "negative (semi)definite" an upper bound on λmax,
    "zero" both, while "indefinite" is proven by Rayleigh quotients alone.
    What the known bounds cannot decide is ``undetermined``.
    """
    del complete
    ends = EndIntervals.of(eigenvalues, converged)
    return _decide(ends, tol, lambda a, b: _DEFINITENESS[(a, b)], Definiteness.UNDETERMINED)


def _second_order(a: str, b: str) -> Classification:
    if a == "positive":
        return Classification.LOCAL_MINIMUM
    if b == "negative":
        return Classification.LOCAL_MAXIMUM
    if a == "negative" and b == "positive":
        return Classification.SADDLE_POINT
    return Classification.DEGENERATE


def classification_of(gradient_norm: float, gtol: float, evidence: Evidence, tol: float
                      ) -> tuple[Classification, str | None]:
    """(classification, how it is known: see :func:`decide`); ``not_critical`` is proven
    by the gradient alone."""
    if gradient_norm > gtol:
        return Classification.NOT_CRITICAL, PROVEN
    return decide(evidence, tol, _second_order, Classification.UNDETERMINED)


def classify(
    gradient_norm: float, gtol: float, eigenvalues: np.ndarray, tol: float,
    converged: Any = None,
) -> Classification:
    """The classification (:class:`~hesscli.vocab.Classification`).

    ``degenerate`` when the second-order test is silent.

    ``undetermined`` when the gradient vanishes but unconverged extremes
    (``converged`` flags, see :func:`definiteness`) leave more than one answer
    open: a local minimum needs a proven lower bound on λmin, a maximum an
    upper bound on λmax; a strict saddle is proven by the Ritz values alone.
    """
    if gradient_norm > gtol:
        return Classification.NOT_CRITICAL
    return _decide(EndIntervals.of(eigenvalues, converged), tol, _second_order,
                   Classification.UNDETERMINED)


def condition_number(eigenvalues: np.ndarray, tol: float) -> float | None:
    """``max|λ| / min|λ|``; None (undefined) when ``min|λ| ≤ tol``."""
    mags = np.abs(np.asarray(eigenvalues))
    smallest = float(mags.min())
    if smallest <= tol:
        return None
    return float(mags.max()) / smallest
