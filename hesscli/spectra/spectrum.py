"""Spectra of Hessians: what every verdict is computed from.

A :class:`Spectrum` holds the computed eigenvalues (all of them on the dense
path, the extremes on the matrix-free one), eigenvectors for the two ends, and
what is known of their accuracy. The dense path computes all eigenvalues with
one tridiagonalization but eigenvectors only for the two ends it reports on
(:func:`eigvals_and_end_vectors`): a full ``eigh`` costs twice ``eigvalsh`` at
n = 4000.
Below :data:`SMALL_DENSE` a full ``numpy.linalg.eigh`` is a millisecond and
spares the process the import of SciPy's LAPACK wrappers (about a quarter of a
second, more than the whole answer takes for a 2-D problem).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from hesscli.curvature.base import Curvature, Kinks, ensure_finite
from hesscli.objective.layout import Layout
from hesscli.spectra.bounds import EndBounds
from hesscli.vocab import Eigensolver, SpectrumPath

SMALL_DENSE = 256  # up to this n the dense eigen-solve is numpy.linalg.eigh (no SciPy import)


@dataclass(frozen=True)
class Spectrum:
    """Computed eigenvalues (ascending) and the eigenvectors of the two ends.

    ``error`` is an absolute error band for the eigenvalues beyond rounding
    (finite-difference error, Lanczos residuals); verdict tolerances add its
    certified part (:attr:`certified_error`). ``eigenvalue_errors`` is a half-width per eigenvalue
    (None: exact/dense) and ``converged`` a flag per eigenvalue (None: all
    converged). An unconverged end is bounded on one side only (a Ritz value
    bounds λmin from above and λmax from below), and the verdicts treat it so
    (:class:`hesscli.analysis.verdicts.EndIntervals`).

    On the matrix-free path ``eigenvalue_errors`` is the true residual
    ‖Hv − θv‖ (certified: *some* eigenvalue lies within it, Weyl),
    ``error_estimates`` the Kato–Temple estimate ``min(r, r²/gap)`` with the
    Ritz gap (an estimate, never a verdict's sole ground), ``converged`` whether
    the eigensolver's target was met (for λmin including that its sign was
    decided), and ``solver`` the eigensolver that ran (None on the dense path).
    """

    eigenvalues: np.ndarray
    complete: bool
    vec_min: np.ndarray
    vec_max: np.ndarray
    symmetry_error: float = 0.0
    error: float = 0.0
    residuals: np.ndarray | None = None  # per eigenvalue, when known
    path: SpectrumPath = SpectrumPath.DENSE
    notes: tuple[str, ...] = field(default_factory=tuple)
    kinks: Kinks | None = None  # finite differences found the objective not smooth here
    evaluations: int = 0  # function/gradient evaluations spent (finite differences)
    eigenvalue_errors: np.ndarray | None = None  # half-width per eigenvalue; None: exact
    converged: np.ndarray | None = None  # per eigenvalue; None: all converged
    error_estimates: np.ndarray | None = None  # Kato–Temple estimate per eigenvalue
    solver: Eigensolver | None = None  # None = dense
    # matrix-free: what the Rayleigh quotients prove and a random start makes likely
    bounds: EndBounds | None = None

    @property
    def lambda_min(self) -> float:
        return float(self.eigenvalues[0])

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def certified_error(self) -> float:
        """The error band the verdicts add: the largest half-width of a *converged*
        eigenvalue (``error`` when per-eigenvalue errors or flags are unknown).

        An unconverged pair's residual bounds the distance to *some* eigenvalue,
        not to the extreme one, so it certifies nothing about the end it sits at;
        the verdicts treat such an end one-sidedly instead.
        """
        if self.eigenvalue_errors is None or self.converged is None:
            return self.error
        errs = np.asarray(self.eigenvalue_errors)[np.asarray(self.converged, dtype=bool)]
        return float(np.max(errs)) if errs.size else 0.0

    @property
    def min_converged(self) -> bool:
        """Whether λmin is known from below too (dense, or a converged Lanczos end)."""
        return self.converged is None or bool(self.converged[0])

    @property
    def max_converged(self) -> bool:
        """Whether λmax is known from above too (dense, or a converged Lanczos end)."""
        return self.converged is None or bool(self.converged[-1])


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


def eigvals_and_end_vectors(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All eigenvalues (ascending) of a symmetric matrix and the eigenvectors of both ends.

    One Householder tridiagonalization ``A = Q T Qᵀ`` (LAPACK ``dsytrd``) does
    the O(n³) work once; all eigenvalues of ``T`` cost O(n²), its two end
    eigenvectors O(n) each, and mapping them back through the reflectors
    O(n²). A full ``eigh`` would also back-transform all n eigenvectors
    (about twice the time of eigenvalues only at n = 4000). Up to
    :data:`SMALL_DENSE` a full ``numpy.linalg.eigh`` is used instead: as fast
    there, and it needs no SciPy.
    """
    a = np.array(matrix, dtype=np.float64, order="F")
    n = a.shape[0]
    if n == 1:
        return a[0].copy(), np.ones(1), np.ones(1)
    if n <= SMALL_DENSE:
        eigenvalues, vectors = np.linalg.eigh(a)
        return distinct_ends(eigenvalues, vectors[:, 0].copy(), vectors[:, -1].copy())
    import scipy.linalg
    import scipy.linalg.lapack

    # The default workspace (n) forces LAPACK's unblocked reduction, 2× slower at
    # n = 4000; ask for the optimal (blocked) size first.
    work, _ = scipy.linalg.lapack.dsytrd_lwork(n, lower=1)
    c, d, e, tau, info = scipy.linalg.lapack.dsytrd(
        a, lower=1, lwork=max(int(work), n), overwrite_a=1
    )
    if info != 0:  # pragma: no cover - LAPACK argument error
        raise RuntimeError(f"dsytrd failed with info={info}")
    eigenvalues = scipy.linalg.eigvalsh_tridiagonal(d, e)
    _, zmin = scipy.linalg.eigh_tridiagonal(d, e, select="i", select_range=(0, 0))
    _, zmax = scipy.linalg.eigh_tridiagonal(d, e, select="i", select_range=(n - 1, n - 1))
    z = np.concatenate([zmin, zmax], axis=1)
    # Q = H(1) H(2) ... H(n-1), H(i) = I − τᵢ vᵢvᵢᵀ with vᵢ = (0,…,0, 1, c[i+2:, i]).
    for i in range(n - 2, -1, -1):
        if tau[i] == 0.0:
            continue
        v = np.concatenate(([1.0], c[i + 2 :, i]))
        block = z[i + 1 :]
        block -= tau[i] * np.outer(v, v @ block)
    return distinct_ends(eigenvalues, z[:, 0], z[:, 1])


def distinct_ends(
    eigenvalues: np.ndarray, vmin: np.ndarray, vmax: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(eigenvalues, vmin, vmax)``, with ``vmax`` made orthogonal to ``vmin`` when all
    eigenvalues are equal (then every vector is an eigenvector)."""
    n = vmin.size
    if eigenvalues[-1] - eigenvalues[0] <= 4 * n * np.finfo(np.float64).eps * max(
        abs(eigenvalues[0]), abs(eigenvalues[-1])
    ):
        # All eigenvalues equal: H = cI and every vector is an eigenvector, so
        # report two orthogonal ones rather than the same vector twice.
        j = int(np.argmin(np.abs(vmin)))
        other = -vmin[j] * vmin
        other[j] += 1.0
        vmax = other / np.linalg.norm(other)
    return eigenvalues, vmin, vmax


def spectrum_of_matrix(
    matrix: np.ndarray, symmetry_error: float = 0.0, error: float = 0.0
) -> Spectrum:
    """Spectrum of a symmetric matrix (all eigenvalues, end eigenvectors)."""
    eigenvalues, vmin, vmax = eigvals_and_end_vectors(matrix)
    return Spectrum(
        eigenvalues=np.asarray(eigenvalues, dtype=np.float64),
        complete=True,
        vec_min=fix_sign(vmin),
        vec_max=fix_sign(vmax),
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
