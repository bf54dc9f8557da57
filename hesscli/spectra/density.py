"""Spectral density by stochastic Lanczos quadrature (trace estimates: :mod:`.trace`).

SLQ (Ubaru, Chen & Saad 2017; the method behind Ghorbani et al.'s and
PyHessian's density plots): for a random unit probe v, m Lanczos steps give a
tridiagonal T = S diag(θ) Sᵀ, and the Gauss quadrature with nodes θ_i and
weights τ_i = S_0i² integrates any polynomial of degree < 2m exactly against
v's spectral measure Σ_j (vᵀu_j)² δ(λ − λ_j), whose expectation over probes is
the eigenvalue density (1/n) Σ_j δ(λ − λ_j). Averaging over probes and
smoothing each node with a Gaussian of width σ gives a density that integrates
to 1. Probes are Rademacher (±1/√n), which minimize the variance of quadratic
forms among i.i.d. probes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.curvature.base import OperatorAt
from hesscli.spectra.lanczos import BLOCK, at_point, lanczos_kernel, tridiag_eigh

DEFAULT_PROBES = 8
DEFAULT_STEPS = 80
GRID = 400
SIGMA_FRACTION = 0.01  # default smoothing width, as a fraction of the spectrum's span


@dataclass(frozen=True)
class Density:
    """SLQ nodes/weights per probe and the smoothed density on a grid.

    ``nodes[p, i]``, ``weights[p, i]``: Gauss quadrature of probe p (weights of
    each probe sum to 1); ``grid``/``density``: Σ over probes and nodes of
    weight·N(λ; node, σ²) / probes, integrating to 1; ``negative_fraction``:
    the estimated fraction of eigenvalues below ``-tol`` (0 when none).
    """

    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sigma: float
    probes: int
    steps: int
    seed: int
    hvps: int

    def fraction_below(self, t: float) -> float:
        """The estimated fraction of eigenvalues ≤ t (quadrature CDF, unsmoothed)."""
        return float(np.sum(self.weights * (self.nodes <= t)) / self.probes)


def rademacher(n: int, seed: int) -> np.ndarray:
    """Seeded ±1 vector."""
    return np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=n)


def slq_density(
    hvp_fn: Any, x: np.ndarray, *, probes: int = DEFAULT_PROBES, steps: int = DEFAULT_STEPS,
    sigma: float | None = None, seed: int = 0, dtype: str = "float64", grid: int = GRID,
    f: OperatorAt | None = None,
) -> Density:
    """Stochastic Lanczos quadrature (see module docstring).

    ``steps`` Lanczos steps per probe (capped at n; with full reorthogonalization,
    so nodes are not ghost copies); ``sigma`` defaults to
    :data:`SIGMA_FRACTION` of the span of all nodes: fine enough to separate
    outliers from the bulk, coarse enough not to show single nodes as spikes.
    ``f``: the matrix as an :class:`~hesscli.curvature.base.OperatorAt` (a curvature's
    ``linearizable``), linearized once for every probe (see
    :func:`~hesscli.spectra.lanczos.at_point`).
    """
    n = int(np.size(x))
    m = max(1, min(steps, n))
    rows = BLOCK * math.ceil((m + 1) / BLOCK)
    xj = np.asarray(x, dtype=dtype)
    hvp_fn, f = at_point(hvp_fn, f, xj)
    extend = lanczos_kernel(hvp_fn, n, dtype, rows, f)
    nodes = np.zeros((probes, m))
    weights = np.zeros((probes, m))
    for p in range(probes):
        v = rademacher(n, seed * 7919 + p) / math.sqrt(n)
        basis = np.zeros((rows, n), dtype)
        basis[0] = v
        alpha = np.zeros(rows, dtype)
        beta = np.zeros(rows, dtype)
        basis, alpha, beta = extend(xj, basis, alpha, beta, 0, m,
                                    float(p) * 0.618)
        theta, s = tridiag_eigh(np.asarray(alpha), np.asarray(beta), m)
        nodes[p] = theta
        weights[p] = s[0, :] ** 2
    lo, hi = float(nodes.min()), float(nodes.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    sig = sigma if sigma is not None else SIGMA_FRACTION * span
    axis = np.linspace(lo - 4 * sig, hi + 4 * sig, grid)
    dens = np.zeros(grid)
    for th, w in zip(nodes.reshape(-1), weights.reshape(-1), strict=True):
        dens += w * np.exp(-0.5 * ((axis - th) / sig) ** 2)
    dens /= probes * sig * math.sqrt(2 * math.pi)
    return Density(nodes, weights, axis, dens, sig, probes, m, seed, probes * m)
