"""Spectra of Hessians: what every verdict is computed from.

A :class:`Spectrum` holds the computed eigenvalues (all of them on the dense
path, the extremes on the matrix-free one), eigenvectors for the two ends, and
what is known of their accuracy. The dense path computes all eigenvalues with
LAPACK's symmetric solver but eigenvectors only for the two ends it reports on
(``scipy.linalg.eigh(subset_by_index=...)``): a full ``eigh`` costs twice
``eigvalsh`` at n = 4000.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from hesscli.curvature.base import Curvature, Kinks, ensure_finite
from hesscli.layout import Layout


@dataclass(frozen=True)
class Spectrum:
    """Computed eigenvalues (ascending) and the eigenvectors of the two ends.

    ``error`` is an absolute error band for the eigenvalues beyond rounding
    (finite-difference error, Lanczos residuals); verdict tolerances add it.
    """

    eigenvalues: np.ndarray
    complete: bool
    vec_min: np.ndarray
    vec_max: np.ndarray
    symmetry_error: float = 0.0
    error: float = 0.0
    residuals: np.ndarray | None = None  # per eigenvalue, when known
    path: str = "dense"  # "dense" | "matrix-free"
    notes: tuple[str, ...] = field(default_factory=tuple)
    kinks: Kinks | None = None  # finite differences found the objective not smooth here
    evaluations: int = 0  # function/gradient evaluations spent (finite differences)

    @property
    def lambda_min(self) -> float:
        return float(self.eigenvalues[0])

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[-1])


def dense_spectrum(
    curvature: Curvature, x: np.ndarray, layout: Layout | None = None
) -> Spectrum:
    """All eigenvalues of the dense Hessian at ``x``, eigenvectors of both ends."""
    hess = curvature.hessian(x)
    ensure_finite(hess.matrix, "Hessian", layout)
    spectrum = spectrum_of_matrix(hess.matrix, hess.symmetry_error, hess.error)
    if hess.kinks is None and not hess.evaluations:
        return spectrum
    return dataclasses.replace(spectrum, kinks=hess.kinks, evaluations=hess.evaluations)


def spectrum_of_matrix(
    matrix: np.ndarray, symmetry_error: float = 0.0, error: float = 0.0
) -> Spectrum:
    """Spectrum of a symmetric matrix (all eigenvalues, end eigenvectors)."""
    n = matrix.shape[0]
    eigenvalues = scipy.linalg.eigh(matrix, eigvals_only=True, check_finite=False)
    _, vmin = scipy.linalg.eigh(matrix, subset_by_index=[0, 0], check_finite=False)
    if n > 1:
        _, vmax = scipy.linalg.eigh(matrix, subset_by_index=[n - 1, n - 1], check_finite=False)
    else:
        vmax = vmin
    return Spectrum(
        eigenvalues=np.asarray(eigenvalues, dtype=np.float64),
        complete=True,
        vec_min=fix_sign(vmin[:, 0]),
        vec_max=fix_sign(vmax[:, 0]),
        symmetry_error=symmetry_error,
        error=error,
    )


def fix_sign(v: np.ndarray) -> np.ndarray:
    """Make an eigenvector's sign deterministic: its largest-magnitude entry is positive.

    Ties go to the first such index. Eigenvectors are defined up to sign, so
    without this two runs (or two backends) could report opposite directions.
    """
    v = np.asarray(v, dtype=np.float64)
    norm = np.linalg.norm(v)
    if norm > 0:
        v = v / norm
    i = int(np.argmax(np.abs(v)))
    return -v if v[i] < 0 else v
