"""Tolerances, inertia, definiteness, classification, conditioning.

Every verdict compares eigenvalues against an explicit tolerance ``tol``: an
eigenvalue with ``|λ| ≤ tol`` counts as zero. See :func:`eigen_tolerance`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hesscli.jaxconf import eps
from hesscli.vocab import Classification, Definiteness

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


def gradient_tolerance(
    value: float, dtype: str, *, x_norm: float = 0.0, hessian_norm: float = 0.0
) -> float:
    """The default ``gtol``: ``√ε·|f|/L + ε·‖H‖₂·L`` with ``L = max(‖x‖, 1)``.

    Two things keep a computed gradient from being exactly zero at a critical
    point. Evaluation: a gradient is trusted to about ``√ε`` relative to the
    function's own slope scale ``|f|/L`` (where central differences also lose
    their digits). Representation: ``x`` itself is only known to ``ε·L``, which
    moves the gradient by ``‖H‖·ε·L``. Both scale with the problem, so scaling
    ``f`` or ``x`` by a constant does not change the verdict.
    """
    length = length_scale(x_norm)
    e = eps(dtype)
    return math.sqrt(e) * abs(value) / length + e * abs(hessian_norm) * length


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


def definiteness(
    eigenvalues: np.ndarray, tol: float, complete: bool = True
) -> Definiteness:
    """The definiteness (:class:`~hesscli.vocab.Definiteness`), from the spectrum's extremes.

    With only the extremes computed (``complete=False``) the answer is still
    exact in kind: definiteness depends only on λmin and λmax, except that an
    unseen zero eigenvalue between them cannot be ruled out for "definite"
    claims, which the caller states by the tolerance band.
    """
    lo, hi = float(np.min(eigenvalues)), float(np.max(eigenvalues))
    if lo > tol:
        return Definiteness.POSITIVE_DEFINITE
    if hi < -tol:
        return Definiteness.NEGATIVE_DEFINITE
    if lo < -tol and hi > tol:
        return Definiteness.INDEFINITE
    if lo >= -tol and hi > tol:
        return Definiteness.POSITIVE_SEMIDEFINITE
    if hi <= tol and lo < -tol:
        return Definiteness.NEGATIVE_SEMIDEFINITE
    return Definiteness.ZERO


def classify(
    gradient_norm: float, gtol: float, eigenvalues: np.ndarray, tol: float
) -> Classification:
    """The classification (:class:`~hesscli.vocab.Classification`); ``degenerate`` when
    the second-order test is silent."""
    if gradient_norm > gtol:
        return Classification.NOT_CRITICAL
    lo, hi = float(np.min(eigenvalues)), float(np.max(eigenvalues))
    if lo > tol:
        return Classification.LOCAL_MINIMUM
    if hi < -tol:
        return Classification.LOCAL_MAXIMUM
    if lo < -tol and hi > tol:
        return Classification.SADDLE_POINT
    return Classification.DEGENERATE


def condition_number(eigenvalues: np.ndarray, tol: float) -> float | None:
    """``max|λ| / min|λ|``; None (undefined) when ``min|λ| ≤ tol``."""
    mags = np.abs(np.asarray(eigenvalues))
    smallest = float(mags.min())
    if smallest <= tol:
        return None
    return float(mags.max()) / smallest
