"""Stochastic trace estimates from matrix-vector products: Hutchinson and Hutch++.

Both take any symmetric operator given as ``matmat(V) -> A V`` (V of shape
(n, k)): the Hessian's HVPs, a Gauss–Newton or Fisher product, or a diagonal
block of any of them. Each estimate comes with its standard error and the
number of products (HVPs) it spent.

- **Hutchinson** (1990): tr A = E[zᵀAz] for Rademacher z. With m probes the
  estimate is the sample mean and its standard error s/√m; the variance per
  probe is 2(‖A‖_F² − Σ A_ii²), so the error falls like 1/√m whatever the
  spectrum.
- **Hutch++** (Meyer, Musco, Musco & Woodruff, *Hutch++: Optimal Stochastic
  Trace Estimation*, SOSA 2021): spend m/3 products on a sketch Y = AS, take an
  orthonormal basis Q of range(Y), compute tr(QᵀAQ) exactly (m/3 products), and
  estimate the rest, tr((I − QQᵀ)A(I − QQᵀ)), by Hutchinson with the last m/3
  probes. The top of the spectrum is then captured exactly, and only the tail's
  Frobenius norm enters the variance: when the eigenvalues decay fast (a
  Hessian with a few outliers over a small bulk, the usual picture for
  networks) the error falls like 1/m instead of 1/√m. Its standard error is
  that of the residual Hutchinson part (conditional on the sketch).

``auto`` runs Hutch++ and reuses its random products as Hutchinson probes
(the sketch columns zᵢᵀ(Azᵢ) and the residual probes gᵀAg, recovered from
A(g − QQᵀg) + AQ·Qᵀg at no extra cost), so both errors are measured on the
problem at hand from one budget (Hutchinson then has ⌊m/3⌋ fewer probes than
it would alone: the price of measuring both); it keeps the estimate with the
smaller standard error and says which and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.jaxconf import jax_module

ESTIMATORS = ("hutchinson", "hutch++", "auto")
DEFAULT_HVPS = 30
MatMat = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Trace:
    """A trace estimate with its standard error and cost.

    ``probes`` is the number of random probe vectors (Hutchinson) or the
    residual probes (Hutch++); ``hvps`` counts every operator product spent.
    ``estimator`` names the method used; with ``auto``, ``choice`` says why it
    won and ``alternative_standard_error`` is the other method's standard error
    scaled to the same ``hvps``.
    """

    estimate: float
    standard_error: float
    probes: int
    seed: int
    hvps: int = 0
    estimator: str = "hutchinson"
    choice: str | None = None
    alternative_standard_error: float | None = None


def rademacher_matrix(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """n × k matrix of seeded ±1 entries."""
    return rng.choice(np.array([-1.0, 1.0]), size=(n, k))


def _se(samples: np.ndarray) -> float:
    return float(np.std(samples, ddof=1) / math.sqrt(samples.size)) if samples.size > 1 \
        else math.inf


def hutchinson(matmat: MatMat, n: int, *, hvps: int = DEFAULT_HVPS, seed: int = 0) -> Trace:
    """tr A ≈ mean of zᵀAz over ``hvps`` seeded Rademacher probes (one product each)."""
    z = rademacher_matrix(n, hvps, np.random.default_rng(seed))
    samples = np.einsum("ij,ij->j", z, np.asarray(matmat(z), dtype=np.float64))
    return Trace(float(np.mean(samples)), _se(samples), hvps, seed, hvps, "hutchinson")


@dataclass(frozen=True)
class _HutchPPParts:
    trace: Trace
    hutchinson_samples: np.ndarray  # zᵀAz for every Rademacher column drawn


def _hutch_pp(matmat: MatMat, n: int, hvps: int, seed: int) -> _HutchPPParts:
    if hvps < 3:
        raise ValueError(f"Hutch++ needs at least 3 products; got {hvps}")
    k = min(hvps // 3, n)  # a sketch wider than n adds nothing
    r = hvps - 2 * k  # the residual probes get the remainder (r ≥ k)
    rng = np.random.default_rng(seed)
    s = rademacher_matrix(n, k, rng)
    g = rademacher_matrix(n, r, rng)
    y = np.asarray(matmat(s), dtype=np.float64)
    q, _ = np.linalg.qr(y)  # orthonormal even when Y is rank-deficient
    aq = np.asarray(matmat(q), dtype=np.float64)
    ag = np.asarray(matmat(g), dtype=np.float64)
    top = float(np.trace(q.T @ aq))
    c = q.T @ g
    w, aw = g - q @ c, ag - aq @ c  # (I − QQᵀ)g and A(I − QQᵀ)g
    resid = np.einsum("ij,ij->j", w, aw)
    se = _se(resid)
    trace = Trace(top + float(np.mean(resid)), se, r, seed, 2 * k + r, "hutch++")
    plain = np.concatenate([np.einsum("ij,ij->j", s, y), np.einsum("ij,ij->j", g, ag)])
    return _HutchPPParts(trace, plain)


def hutch_plus_plus(matmat: MatMat, n: int, *, hvps: int = DEFAULT_HVPS, seed: int = 0) -> Trace:
    """Hutch++ with ``hvps`` products (⌊hvps/3⌋ sketch, as many for the basis, the rest
    residual probes); see the module docstring."""
    return _hutch_pp(matmat, n, hvps, seed).trace


def estimate_trace(matmat: MatMat, n: int, *, estimator: str = "auto",
                   hvps: int = DEFAULT_HVPS, seed: int = 0) -> Trace:
    """The trace by ``estimator`` (``hutchinson``, ``hutch++`` or ``auto``) with ``hvps`` products.

    ``auto`` (see the module docstring) falls back to Hutchinson below 3 products.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
    if estimator == "hutchinson" or (estimator == "auto" and hvps < 3):
        return hutchinson(matmat, n, hvps=hvps, seed=seed)
    parts = _hutch_pp(matmat, n, hvps, seed)
    pp = parts.trace
    if estimator == "hutch++":
        return pp
    plain = parts.hutchinson_samples
    h_est, h_se = float(np.mean(plain)), _se(plain)  # the same products, read as Hutchinson
    if pp.standard_error <= h_se:
        why = (f"auto: Hutch++ (standard error {pp.standard_error:.3g} against "
               f"{h_se:.3g} for Hutchinson from the same {hvps} HVPs)")
        return Trace(pp.estimate, pp.standard_error, pp.probes, seed, pp.hvps, "hutch++",
                     why, h_se)
    why = (f"auto: Hutchinson (standard error {h_se:.3g} against {pp.standard_error:.3g} "
           f"for Hutch++ from the same {hvps} HVPs: the spectrum does not decay fast enough "
           "for the sketch to pay)")
    return Trace(h_est, h_se, int(plain.size), seed, hvps, "hutchinson", why, pp.standard_error)


def hvp_matmat(hvp_fn: Any, x: np.ndarray, dtype: str = "float64") -> MatMat:
    """``V -> [hvp_fn(x, v) for v in V's columns]`` as one jitted ``lax.map`` (memory: one
    HVP at a time), for the estimators above."""
    jax = jax_module()
    jnp = jax.numpy
    xj = jnp.asarray(x, dtype=dtype)
    kernel = _map_kernel(hvp_fn)

    def matmat(v: np.ndarray) -> np.ndarray:
        out = kernel(xj, jnp.asarray(np.asarray(v).T, dtype=dtype))
        return np.asarray(out, dtype=np.float64).T

    return matmat


_KERNELS: dict[Any, Any] = {}


def _map_kernel(hvp_fn: Any) -> Any:
    """Jitted ``(x, rows) -> hvp of every row``; a Partial ``hvp_fn`` (sharded data) is an
    argument rather than a constant (see :func:`hesscli.spectra.lanczos.split_operator`)."""
    from hesscli.spectra.lanczos import split_operator

    jax = jax_module()
    (static, _), (dynamic, _) = split_operator(hvp_fn, None)
    key = (static, jax.tree_util.tree_structure(dynamic))
    if key not in _KERNELS:

        def rows(ops: Any, x: Any, vs: Any) -> Any:
            fn = static if ops is None else ops
            return jax.lax.map(lambda v: fn(x, v), vs)

        _KERNELS[key] = jax.jit(rows)
    compiled = _KERNELS[key]
    return lambda x, vs: compiled(dynamic, x, vs)


def hutchinson_trace(
    hvp_fn: Any, x: np.ndarray, *, probes: int = 50, seed: int = 0, dtype: str = "float64",
) -> Trace:
    """tr H ≈ mean of zᵀHz over ``probes`` seeded Rademacher z (JAX HVPs), with its
    standard error s/√probes."""
    return hutchinson(hvp_matmat(hvp_fn, x, dtype), int(np.size(x)), hvps=probes, seed=seed)
