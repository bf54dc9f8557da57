"""Tolerances, inertia, definiteness, classification, conditioning.

Every verdict compares eigenvalues against an explicit tolerance ``tol``: an
eigenvalue with ``|λ| ≤ tol`` counts as zero. See :func:`eigen_tolerance`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hesscli.jaxconf import eps

TOL_SAFETY = 10.0


def eigen_tolerance(scale: float, n: int, dtype: str, error: float = 0.0) -> float:
    """The zero tolerance for eigenvalues: ``10·n·ε·scale + error``.

    ``n·ε·‖H‖₂`` bounds the backward error of a symmetric eigensolver (the same
    bound ``numpy.linalg.matrix_rank`` uses); the factor 10 covers rounding in
    forming ``H`` itself by autodiff. ``error`` adds what the backend knows
    beyond rounding: the finite-difference error band or Lanczos residuals.
    ``scale`` is ``max|λ|`` of the computed eigenvalues.
    """
    return TOL_SAFETY * max(n, 1) * eps(dtype) * abs(scale) + abs(error)


def gradient_tolerance(value: float, dtype: str) -> float:
    """The default ``gtol``: ``√ε · max(1, |f|)``.

    A gradient computed in floating point cannot be trusted below roughly
    ``√ε`` relative to the function's magnitude (it is also where a central
    difference check loses its digits), so smaller norms count as zero.
    """
    return math.sqrt(eps(dtype)) * max(1.0, abs(value))


@dataclass(frozen=True)
class Inertia:
    positive: int
    negative: int
    zero: int


def inertia(eigenvalues: np.ndarray, tol: float) -> Inertia:
    lam = np.asarray(eigenvalues)
    return Inertia(
        positive=int(np.sum(lam > tol)),
        negative=int(np.sum(lam < -tol)),
        zero=int(np.sum(np.abs(lam) <= tol)),
    )


def definiteness(eigenvalues: np.ndarray, tol: float, complete: bool = True) -> str:
    """One of DESIGN.md's definiteness words, from the extremes of the spectrum.

    With only the extremes computed (``complete=False``) the answer is still
    exact in kind: definiteness depends only on λmin and λmax, except that an
    unseen zero eigenvalue between them cannot be ruled out for "definite"
    claims, which the caller states by the tolerance band.
    """
    lo, hi = float(np.min(eigenvalues)), float(np.max(eigenvalues))
    if lo > tol:
        return "positive_definite"
    if hi < -tol:
        return "negative_definite"
    if lo < -tol and hi > tol:
        return "indefinite"
    if lo >= -tol and hi > tol:
        return "positive_semidefinite"
    if hi <= tol and lo < -tol:
        return "negative_semidefinite"
    return "zero"


def classify(gradient_norm: float, gtol: float, eigenvalues: np.ndarray, tol: float) -> str:
    """DESIGN.md's classification; ``degenerate`` when the second-order test is silent."""
    if gradient_norm > gtol:
        return "not_critical"
    lo, hi = float(np.min(eigenvalues)), float(np.max(eigenvalues))
    if lo > tol:
        return "local_minimum"
    if hi < -tol:
        return "local_maximum"
    if lo < -tol and hi > tol:
        return "saddle_point"
    return "degenerate"


def condition_number(eigenvalues: np.ndarray, tol: float) -> float | None:
    """``max|λ| / min|λ|``; None (undefined) when ``min|λ| ≤ tol``."""
    mags = np.abs(np.asarray(eigenvalues))
    smallest = float(mags.min())
    if smallest <= tol:
        return None
    return float(mags.max()) / smallest
