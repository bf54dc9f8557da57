"""Stochastic trace estimates from matrix-vector products: Hutchinson and Hutch++.

Both take any symmetric operator given as ``matmat(V) -> A V`` (V of shape
(n, k)): the Hessian's HVPs, a Gauss–Newton or Fisher product, or a diagonal
block of any of them. Each estimate comes with its standard error, the degrees
of freedom of that standard error, a confidence interval (95% by default) and
the number of products (HVPs) it spent.

- **Hutchinson** (1990): tr A = E[zᵀAz] for Rademacher z. With m probes the
  estimate is the sample mean and its standard error s/√m (m − 1 degrees of
  freedom); the variance per probe is 2(‖A‖_F² − Σ A_ii²), so the error falls
  like 1/√m whatever the spectrum.
- **Hutch++** (Meyer, Musco, Musco & Woodruff, *Hutch++: Optimal Stochastic
  Trace Estimation*, SOSA 2021): spend m/3 products on a sketch Y = AS, take an
  orthonormal basis Q of range(Y), compute tr(QᵀAQ) exactly (m/3 products), and
  estimate the rest, tr((I − QQᵀ)A(I − QQᵀ)), by Hutchinson with the last r
  probes. The top of the spectrum is then captured exactly, and only the tail's
  Frobenius norm enters the variance: when the eigenvalues decay fast (a
  Hessian with a few outliers over a small bulk, the usual picture for
  networks) the error falls like 1/m instead of 1/√m. Given the sketch, the r
  residual values gᵀ(I − QQᵀ)A(I − QQᵀ)g are independent draws of one
  distribution, so the standard error is their sample standard deviation over
  √r, with r − 1 degrees of freedom (all the estimate's randomness beyond the
  sketch; the sketch's own values are not samples of the remainder).

**The interval.** A standard error estimated from few probes is itself noisy
(Hutch++ with 30 products has 10 residual probes, 9 degrees of freedom), so
``estimate ± 1.96·s.e.`` covers the trace less often than 95%. The interval is
``estimate ± t·s.e.`` with t the Student-t quantile for the degrees of freedom
actually used (2.26 at 9, 2.05 at 29), plus a small rounding allowance
(20·u·‖v‖‖Av‖ per form vᵀAv, that is 10·ε·‖v‖‖Av‖ with ε = 2u, weighted as the form
enters the estimate, u the unit roundoff of the products) so that an estimate exact
up to rounding still contains the trace. It models the products' rounding as the
eigenvalues' estimates do (``10·ε·max|θ|`` per unit vector, δ without its worst-case
√n): on the example transformer in float32 (n = 7,520 and 117,376) each form differed
from its float64 twin by at most 0.06·u·‖v‖‖Av‖, not growing with n. The earlier
``4n·u·‖v‖‖Av‖`` (a length-n dot product's worst case, though the forms are summed in
float64) made a float32 interval at n = 10⁶ read [−2.7e5, 2.7e5] around 1116 ± 210.

**auto** decides between the two on the sketch's geometry, never on the
quadratic forms it reports nor on their spread (choosing the estimator whose
estimated standard error came out smaller, from the very products reported,
biased the interval: a run whose probes happened to agree looked precise and
won). It spends the first k = ⌊m/3⌋ products on the sketch Y = AS, which both
estimators can use, and measures the share ρ of ‖A‖_F² that the sketch leaves
out: ρ = Σᵢ‖(I − Q₋ᵢQ₋ᵢᵀ)yᵢ‖² / Σᵢ‖yᵢ‖², Q₋ᵢ spanning the other k − 1 columns
(each term an unbiased estimate of ‖(I − Q₋ᵢQ₋ᵢᵀ)A‖_F², since sᵢ is independent
of Q₋ᵢ). Hutch++'s remainder (I − QQᵀ)A(I − QQᵀ) is deflated on both sides, so
its squared Frobenius norm is about ρ²‖A‖_F²; Hutch++ wins when its predicted
variance 2ρ²‖A‖_F²/(m − 2k) is below Hutchinson's 2‖A‖_F²/m, i.e. when
ρ² < (m − 2k)/m (1/3 at 30 HVPs). Both predictions ignore the diagonal terms
of the Rademacher variance, so a strongly diagonal operator may get Hutch++
where Hutchinson would have been better. Hutch++ then continues on the same
sketch with fresh residual probes (its interval rests only on probes drawn
after the decision); Hutchinson reuses the k sketch columns as probes and draws
m − k fresh ones, so neither pays for the decision. The sketch reaches the
decision only through ρ, a ratio of energies that is blind to the values
sᵢᵀAsᵢ and their spread; tests/test_trace_coverage.py checks the interval's
coverage over 300 seeds, on a network where the choice changes with the seed.
A sketch of n columns spans Rⁿ and makes Hutch++ exact (ρ = 0). Below 6
products (a sketch of fewer than 2 columns leaves no column out) ``auto`` is
plain Hutchinson.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.vocab import Estimator, TraceMethod, words

ESTIMATORS = words(Estimator)
DEFAULT_HVPS = 30
CONFIDENCE = 0.95  # the level of the reported interval
AUTO_MIN_HVPS = 6  # auto's sketch needs 2 columns to leave one out
MatMat = Callable[[np.ndarray], np.ndarray]
PROBE_ROWS = 1 << 16  # rows of Rademacher probes drawn per call (bounded temporaries)
UNIT_ROUNDOFF = float(np.finfo(np.float64).eps) / 2


@dataclass(frozen=True)
class Trace:
    """A trace estimate with its standard error, its interval and its cost.

    ``probes`` is the number of random probe vectors whose values make the
    estimate's randomness (Hutchinson: all of them; Hutch++: the residual
    probes); ``hvps`` counts every operator product spent (with ``auto``, also
    the sketch that decided). ``degrees_of_freedom`` is that of
    ``standard_error`` (probes − 1; None when exact); ``interval`` is the
    ``confidence`` (two-sided) Student-t interval around ``estimate`` with a
    rounding allowance, ``(-inf, inf)`` when there are too few probes for a
    standard error. ``estimator`` names the method used; with ``auto``,
    ``choice`` says why it won and ``alternative_standard_error`` is the other
    method's standard error as predicted from the sketch.
    """

    estimate: float
    standard_error: float
    probes: int
    seed: int
    hvps: int = 0
    estimator: str = TraceMethod.HUTCHINSON
    choice: str | None = None
    alternative_standard_error: float | None = None
    degrees_of_freedom: int | None = None
    confidence: float = CONFIDENCE
    interval: tuple[float, float] | None = None
    rounding: float = 0.0  # the rounding allowance inside ``interval``

    def interval_at(self, confidence: float) -> tuple[float, float]:
        """The two-sided Student-t interval at another ``confidence`` (same allowance)."""
        half = _half_width(self.standard_error, self.degrees_of_freedom, confidence,
                           self.rounding)
        return (self.estimate - half, self.estimate + half)


def _half_width(se: float, dof: int | None, confidence: float, rounding: float) -> float:
    if dof is None:  # exact
        return rounding
    if dof < 1 or not math.isfinite(se):
        return math.inf
    import scipy.stats

    return float(scipy.stats.t.ppf(0.5 + confidence / 2, dof)) * se + rounding


def _trace(estimate: float, samples: np.ndarray, rounding: float, *, seed: int, hvps: int,
           estimator: str, confidence: float, choice: str | None = None,
           alternative: float | None = None) -> Trace:
    """A Trace whose randomness is the mean of ``samples`` (i.i.d. given what came before)."""
    m = int(samples.size)
    se = _se(samples)
    half = _half_width(se, m - 1, confidence, rounding)
    return Trace(estimate, se, m, seed, hvps, estimator, choice, alternative, m - 1,
                 confidence, (estimate - half, estimate + half), rounding)


def rademacher_matrix(n: int, k: int, rng: np.random.Generator,
                      dtype: Any = np.float64) -> np.ndarray:
    """n × k matrix of seeded ±1 entries (as ``dtype``; int8 holds probes in n·k bytes).

    The entries are those of ``rng.choice([-1.0, 1.0], size=(n, k))`` (whose draws are
    ``rng.integers(0, 2, size=(n, k))``), drawn :data:`PROBE_ROWS` rows at a time so no
    n × k int64 temporary is ever held (at 10⁷ parameters and 20 probes that was 1.6 GB).
    """
    out = np.empty((n, k), dtype)
    for start in range(0, n, PROBE_ROWS):
        stop = min(n, start + PROBE_ROWS)
        out[start:stop] = 2 * rng.integers(0, 2, size=(stop - start, k)) - 1
    return out


def _se(samples: np.ndarray) -> float:
    return float(np.std(samples, ddof=1) / math.sqrt(samples.size)) if samples.size > 1 \
        else math.inf


#: the rounding allowance per form, in units of u·‖v‖‖Av‖ (10·ε, see the module docstring)
ROUNDING_FACTOR = 20.0


def _forms(v: np.ndarray, av: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->j", v, av)


def _norms(v: np.ndarray) -> np.ndarray:
    """The columns' 2-norms, without an n × k temporary (``np.linalg.norm(v, axis=0)``
    squares a copy of v)."""
    return np.sqrt(_forms(v, v))


def _rounding(u: float, v: np.ndarray, av: np.ndarray, weight: float) -> float:
    """20·u·Σ‖v‖‖Av‖·weight: the allowance for the products' rounding in the forms vᵀ(Av)
    (module docstring: it does not grow with n)."""
    if v.size == 0:
        return 0.0
    return float(ROUNDING_FACTOR * u * weight * np.sum(_norms(v) * _norms(av)))


def _blocks(matmat: MatMat, probes: np.ndarray, width: int) -> Any:
    """``(z, A z)`` in float64 for the columns of ``probes`` taken ``width`` at a time.

    Memory: one block of probes and products at a time, never all the probes' products
    (at 10⁷ parameters a float64 column is 80 MB; 30 probes with their products and
    temporaries were most of ``spectrum``'s peak). Equal widths compile one product
    program: the estimators use the sketch width k for every block.
    """
    width = max(1, int(width))
    for start in range(0, probes.shape[1], width):
        z = np.asarray(probes[:, start:start + width], dtype=np.float64)
        az = np.asarray(matmat(z), dtype=np.float64)
        block = (z, az if az.flags.writeable else np.array(az))  # updated in place
        del z, az
        yield block
        del block  # before the next block is formed (the caller drops its names too)


def _hutchinson_from(matmat: MatMat, n: int, z: np.ndarray, *, seed: int, hvps: int, u: float,
                     confidence: float, width: int, choice: str | None = None,
                     alternative: float | None = None, known: tuple[Any, ...] = ()) -> Trace:
    """Hutchinson over the probes ``z`` applied ``width`` columns at a time; ``known``:
    ``(forms, Σ‖z‖‖Az‖)`` of probes already applied (auto's sketch), counted first."""
    forms = [known[0]] if known else []
    norms = known[1] if known else 0.0
    for zb, azb in _blocks(matmat, z, width):
        forms.append(_forms(zb, azb))
        norms += float(np.sum(_norms(zb) * _norms(azb)))
        del zb, azb
    samples = np.concatenate(forms) if forms else np.zeros(0)
    rounding = float(ROUNDING_FACTOR * u * norms / max(samples.size, 1))
    return _trace(float(np.mean(samples)), samples, rounding, seed=seed, hvps=hvps,
                  estimator=TraceMethod.HUTCHINSON, confidence=confidence, choice=choice,
                  alternative=alternative)


def hutchinson(matmat: MatMat, n: int, *, hvps: int = DEFAULT_HVPS, seed: int = 0,
               confidence: float = CONFIDENCE, unit_roundoff: float = UNIT_ROUNDOFF) -> Trace:
    """tr A ≈ mean of zᵀAz over ``hvps`` seeded Rademacher probes (one product each)."""
    z = rademacher_matrix(n, hvps, np.random.default_rng(seed), np.int8)
    return _hutchinson_from(matmat, n, z, seed=seed, hvps=hvps, u=unit_roundoff,
                            confidence=confidence, width=_width(hvps, n))


def _split(hvps: int, n: int) -> tuple[int, int]:
    """Hutch++'s sketch width k and residual probes r for ``hvps`` products."""
    if hvps < 3:
        raise ValueError(f"Hutch++ needs at least 3 products; got {hvps}")
    k = min(hvps // 3, n)  # a sketch wider than n adds nothing
    return k, hvps - 2 * k  # the residual probes get the remainder (r ≥ k)


def _width(hvps: int, n: int) -> int:
    """Probes per product call: the sketch width ⌊hvps/3⌋ (one compiled shape for the
    default estimators), at least 1."""
    return max(1, min(hvps // 3, n))


def _hutch_pp_from(matmat: MatMat, n: int, q: np.ndarray, r: int,
                   rng: np.random.Generator, *, seed: int, u: float, confidence: float,
                   choice: str | None = None, alternative: float | None = None) -> Trace:
    """Hutch++ on the orthonormal basis ``q`` of the sketch ``A s`` with ``r`` fresh
    residual probes from ``rng``, applied k (sketch width) at a time."""
    k = q.shape[1]
    g = rademacher_matrix(n, r, rng, np.int8)
    aq = np.asarray(matmat(q), dtype=np.float64)
    top_forms = _forms(q, aq)
    rounding = _rounding(u, q, aq, 1.0)
    resid = []
    for gb, agb in _blocks(matmat, g, k):
        c = q.T @ gb
        # (I − QQᵀ)g and A(I − QQᵀ)g, in place: the probes are no longer needed once
        # their own allowance is taken
        rounding += _rounding(u, gb, agb, 1.0 / max(r, 1))
        for i in range(gb.shape[1]):  # a column at a time: no n × k temporary
            gb[:, i] -= q @ c[:, i]
            agb[:, i] -= aq @ c[:, i]
        resid.append(_forms(gb, agb))
        rounding += _rounding(u, gb, agb, 1.0 / max(r, 1))
        del gb, agb
    resid_all = np.concatenate(resid) if resid else np.zeros(0)
    estimate = float(np.sum(top_forms)) + float(np.mean(resid_all))
    return _trace(estimate, resid_all, rounding, seed=seed, hvps=2 * k + r,
                  estimator=TraceMethod.HUTCH_PLUS_PLUS, confidence=confidence, choice=choice,
                  alternative=alternative)


def _sketch(matmat: MatMat, n: int, k: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """(s, y = A s): the k sketch probes (int8) and their products (float64)."""
    s = rademacher_matrix(n, k, rng, np.int8)
    return s, np.asarray(matmat(np.asarray(s, dtype=np.float64)), dtype=np.float64)


def _basis(y: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(y)  # orthonormal even when Y is rank-deficient
    return q


def hutch_plus_plus(matmat: MatMat, n: int, *, hvps: int = DEFAULT_HVPS, seed: int = 0,
                    confidence: float = CONFIDENCE,
                    unit_roundoff: float = UNIT_ROUNDOFF) -> Trace:
    """Hutch++ with ``hvps`` products (⌊hvps/3⌋ sketch, as many for the basis, the rest
    residual probes); see the module docstring."""
    k, r = _split(hvps, n)
    rng = np.random.default_rng(seed)
    _, y = _sketch(matmat, n, k, rng)
    q = _basis(y)
    del y
    return _hutch_pp_from(matmat, n, q, r, rng, seed=seed, u=unit_roundoff,
                          confidence=confidence)


def leave_one_out_residuals(y: np.ndarray) -> np.ndarray:
    """‖(I − P₋ᵢ)yᵢ‖² for every column yᵢ of ``y``, P₋ᵢ the projector on the other columns.

    The residual of regressing column i on the rest is 1/((YᵀY)⁻¹)ᵢᵢ; with
    Y = UΣVᵀ, ((YᵀY)⁻¹)ᵢᵢ = Σⱼ Vᵢⱼ²/σⱼ² (one SVD instead of k projections). A
    column in the span of the others has residual 0 (to rounding). The SVD is
    that of R in Y = QR (the same Σ and V; Q, n × k, is never formed).
    """
    if y.shape[1] == 1:
        return np.sum(y**2, axis=0)
    rmat = np.linalg.qr(y, mode="r") if y.shape[0] > y.shape[1] else y
    _, sig, vt = np.linalg.svd(rmat, full_matrices=False)
    if sig.size == 0 or sig[0] == 0.0:
        return np.zeros(y.shape[1])
    # σ floored at rounding level: a column in a dependency weighs O(1) on the null
    # direction (residual ~ floor², i.e. 0), an independent one only ~u (no effect)
    floor = sig[0] * np.finfo(np.float64).eps * max(y.shape)
    g_inv_diag = np.sum(vt.T**2 / np.maximum(sig, floor) ** 2, axis=1)  # ((YᵀY)⁻¹)ᵢᵢ
    return 1.0 / g_inv_diag


def _auto(matmat: MatMat, n: int, hvps: int, seed: int, u: float,
          confidence: float) -> Trace:
    k, r = _split(hvps, n)
    rng = np.random.default_rng(seed)
    s, y = _sketch(matmat, n, k, rng)
    # the decision: from the geometry of the sketch alone (how much of ‖A‖_F² lies
    # outside the span of the other columns), never from the quadratic forms sᵢᵀAsᵢ
    # that Hutchinson reports nor from their spread
    energy = float(np.mean(_forms(y, y)))  # ≈ ‖A‖_F²
    left = 0.0 if k == n else float(np.mean(leave_one_out_residuals(y)))
    rho = left / energy if energy > 0 else 0.0
    se_h = math.sqrt(2 * energy / hvps)  # predicted, diagonal terms ignored on both sides
    se_pp = math.sqrt(2 * rho**2 * energy / r)
    share = f"{100 * rho:.3g}%"
    if se_pp < se_h:
        why = (f"auto: Hutch++ (its {k}-HVP sketch leaves {share} of ‖H‖_F² outside the span "
               f"of {k - 1} columns: predicted standard error {se_pp:.3g} against {se_h:.3g} "
               f"for Hutchinson on the same {hvps} HVPs)")
        del s
        q = _basis(y)
        del y
        return _hutch_pp_from(matmat, n, q, r, rng, seed=seed, u=u, confidence=confidence,
                              choice=why, alternative=se_h)
    why = (f"auto: Hutchinson (a {k}-HVP sketch leaves {share} of ‖H‖_F² outside the span "
           f"of {k - 1} columns: predicted standard error {se_h:.3g} against {se_pp:.3g} for "
           f"Hutch++ on the same {hvps} HVPs; the spectrum does not decay fast enough for the "
           "sketch to pay, and its products are reused as probes)")
    # the sketch's products are reused as probes: their forms and norms now, then the
    # sketch goes and the fresh probes are applied k at a time
    s64 = np.asarray(s, dtype=np.float64)
    known = (_forms(s64, y), float(np.sum(_norms(s64) * _norms(y))))
    del s, s64, y
    z = rademacher_matrix(n, hvps - k, rng, np.int8)
    return _hutchinson_from(matmat, n, z, seed=seed, hvps=hvps, u=u, confidence=confidence,
                            width=k, choice=why, alternative=se_pp, known=known)


def estimate_trace(matmat: MatMat, n: int, *, estimator: str = Estimator.AUTO,
                   hvps: int = DEFAULT_HVPS, seed: int = 0, confidence: float = CONFIDENCE,
                   unit_roundoff: float = UNIT_ROUNDOFF) -> Trace:
    """The trace by ``estimator`` (``hutchinson``, ``hutch++`` or ``auto``) with ``hvps`` products.

    ``auto`` (see the module docstring) is plain Hutchinson below :data:`AUTO_MIN_HVPS`
    products. ``unit_roundoff`` is that of the products (float32 HVPs: 2⁻²⁴).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    opts = {"hvps": hvps, "seed": seed, "confidence": confidence,
            "unit_roundoff": unit_roundoff}
    if estimator == Estimator.HUTCHINSON or (estimator == Estimator.AUTO
                                             and (hvps < AUTO_MIN_HVPS or n < 2)):
        return hutchinson(matmat, n, **opts)
    if estimator == Estimator.HUTCH_PLUS_PLUS:
        return hutch_plus_plus(matmat, n, **opts)
    return _auto(matmat, n, hvps, seed, unit_roundoff, confidence)


def hvp_matmat(hvp_fn: Any, x: np.ndarray, dtype: str = "float64") -> MatMat:
    """``V -> [hvp_fn(x, v) for v in V's columns]``, one product at a time from the host
    (memory: one HVP at a time), for the estimators above.

    Each column goes through ``hvp_fn`` itself, the single-product program the
    eigensolver's residual checks already compiled (:func:`hesscli.spectra.lanczos.
    ritz_pairs` calls it the same way): no program of its own. A ``lax.map`` over the
    columns compiled one more program per column count (Hutch++'s sketch, then its
    basis and residual probes: two), each as slow to compile as the eigensolver's
    loop (issue 19: tens of seconds on the example transformer), to save a host
    dispatch per product that costs microseconds next to the product itself.
    """
    xj = np.asarray(x, dtype=dtype)

    def matmat(v: np.ndarray) -> np.ndarray:
        cols = np.asarray(v)
        out = np.empty((cols.shape[0], cols.shape[1]), dtype=np.float64)
        for i in range(cols.shape[1]):
            out[:, i] = np.asarray(hvp_fn(xj, np.ascontiguousarray(cols[:, i], dtype=dtype)),
                                   dtype=np.float64).reshape(-1)
        return out

    return matmat


def hutchinson_trace(
    hvp_fn: Any, x: np.ndarray, *, probes: int = 50, seed: int = 0, dtype: str = "float64",
) -> Trace:
    """tr H ≈ mean of zᵀHz over ``probes`` seeded Rademacher z (JAX HVPs), with its
    standard error s/√probes."""
    return hutchinson(hvp_matmat(hvp_fn, x, dtype), int(np.size(x)), hvps=probes, seed=seed)
