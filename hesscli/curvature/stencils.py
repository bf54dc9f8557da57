"""Finite-difference stencils: gradients, Hessians and HVPs with error estimates.

Two sources of information:

* **values only** (black boxes): the gradient by central differences
  ``(f(x+hᵢeᵢ) − f(x−hᵢeᵢ))/2hᵢ``; the Hessian by second differences with a
  symmetric stencil that costs ``n² + n + 1`` evaluations per step instead of the
  usual ``2n² + 1`` (numdifftools, Ridout 2009)::

      Hᵢᵢ ≈ (f(x+aᵢ) − 2f(x) + f(x−aᵢ)) / hᵢ²
      Hᵢⱼ ≈ (f(x+aᵢ+aⱼ) + f(x−aᵢ−aⱼ) − f(x±aᵢ) − f(x±aⱼ) + 2f(x)) / 2hᵢhⱼ

  (``aᵢ = hᵢeᵢ``; the second is second-order accurate because the odd Taylor
  terms cancel in ``f(x+d) + f(x−d)``, and it reuses the diagonal's points);
* **gradient differences** (traceable objectives, ``--method fd``): Hessian
  columns ``(∇f(x+aᵢ) − ∇f(x−aᵢ))/2hᵢ`` and HVPs ``(∇f(x+tv) − ∇f(x−tv))/2t``.

Steps are scaled per coordinate by a pilot difference at the small absolute
step along every large coordinate (:func:`value_pilot`, :func:`gradient_pilot`;
the why is in :mod:`.steps`), and the final estimate is cross-checked against
it. Every estimate is computed on at least two step sizes (:mod:`.steps`), which
gives its error estimate and the kink test: for a smooth function the two
differ by the ``h²`` truncation term; across a kink (hinge margin, ReLU, |x| at
0) the difference grows like ``1/h``. Entries whose two estimates disagree by
more than ``KINK_ROUNDING`` times their rounding bounds plus ``KINK_RELATIVE``
of the Hessian's scale are flagged, and their error is widened to cover the
spurious ``1/h`` part so that no verdict rests on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hesscli.curvature.base import Kinks, ensure_finite
from hesscli.curvature.evaluators import Gradients, Values
from hesscli.curvature.fd_steps import (
    Ladder,
    combine,
    coordinate_steps,
    curvature_scale,
    direction_step,
    representable,
    scale,
)
from hesscli.jaxconf import eps

KINK_ROUNDING = 10.0  # disagreement allowed, in units of the rounding bounds
KINK_RELATIVE = 0.01  # ... plus this fraction of max|H|: a smooth function's h² term
ROUND_VALUES = 2.0  # each f(x) is assumed correct to 2ε|f|
ROUND_GRADIENTS = 4.0  # each gradient entry to 4ε·max|∇f| (autodiff of a sum)
PILOT_ABOVE = 2.0  # coordinates that get a pilot: |x_i| above this (one ladder ratio)
PILOT_AGREE = 2.0  # a pilot/final gap beyond this many pilot rounding bounds is real
PAIR_BLOCK = 1 << 21  # stencil points × n per batch (16 MB of float64)
NOISE_BOUND = 3.0  # each evaluation is assumed correct to this many measured noise levels


def noise_level(center: np.ndarray, plus: np.ndarray, minus: np.ndarray, ratio: float
                ) -> np.ndarray:
    """The rounding noise of the evaluated quantity near ``x``, measured on the stencil.

    ``center`` is the quantity at ``x`` (f, or ∇f), ``plus[k, i]``/``minus[k, i]``
    at ``x ± h·ratioᵏ·eᵢ``. The model ``ε·|f|`` misses the rounding of f's
    intermediates: at Himmelblau's minimum f = 0 while each evaluation next to it
    carries the rounding of terms of size 11; at Goldstein–Price's minimum f = 3
    while its factors cancel terms of size 400. So the noise is measured
    (Moré & Wild 2011, "Estimating computational noise"): the fourth difference
    ``Δ⁴ = f(x−2h) − 4f(x−h) + 6f(x) − 4f(x+h) + f(x+2h)`` is ``h⁴f⁗`` (negligible
    at these steps) plus noise of standard deviation ``√70·σ``; with a third
    rung, ``Δ⁴(h) − Δ⁴(2h)/16`` removes the ``h⁴`` term too. The largest over the
    coordinates (one sample each) estimates σ of f (per entry of ∇f for
    gradients: ``center`` of shape ``(m,)``, ``plus`` ``(K, n, m)``). Needs
    ``ratio == 2``; non-finite samples (steps outside the domain) are skipped.
    """
    if ratio != 2.0 or plus.shape[0] < 2:
        return np.zeros(np.shape(center))
    c = np.asarray(center, dtype=np.float64)
    d4 = minus[1] - 4 * minus[0] + 6 * c - 4 * plus[0] + plus[1]
    spread = np.sqrt(70.0)
    if plus.shape[0] >= 3:
        d4_2 = minus[2] - 4 * minus[1] + 6 * c - 4 * plus[1] + plus[2]
        both = d4 - d4_2 / 16.0
        ok = np.isfinite(both)
        d4 = np.where(ok, both, d4)
        # noise weights: centre 6 − 6/16, ±h −4, ±2h 1 + 4/16, ±4h −1/16
        spread = np.where(ok, np.sqrt(5.625**2 + 2 * 16 + 2 * 1.25**2 + 2 / 256), spread)
    sample = np.abs(d4) / spread
    # a kink at x (|t|, a hinge) is no noise: its second differences grow linearly with
    # the step, D²(2h) = 2·D²(h), and Δ⁴ = −D²(2h) (it would hide itself in the band;
    # its effect on the gradient is the analysis' nonsmooth band)
    d2 = plus[0] - 2 * c + minus[0]
    d2_2 = plus[1] - 2 * c + minus[1]
    kink = (np.abs(np.abs(d4) - np.abs(d2_2)) <= 0.25 * np.abs(d2_2)) & (
        np.abs(d2_2 - 2 * d2) <= 0.25 * np.abs(d2_2))
    sample = np.where(np.isfinite(sample) & ~kink, sample, 0.0)
    return np.max(sample, axis=0) if sample.ndim else sample


def input_rounding(x: np.ndarray, slope: np.ndarray, curvature: np.ndarray, h: np.ndarray,
                   e: float) -> np.ndarray:
    """The rounding of f at ``x ± hᵢeᵢ`` that grows with the step, per coordinate ``i``.

    Rounding the arguments (``1e-3·x``, ``x² + y − 11``) perturbs them by about
    ``ε|yⱼ|``, which changes f by ``ε·Σⱼ|yⱼ·∂ⱼf(y)|``. Next to a minimiser
    ``∂ⱼf(x + hᵢeᵢ) ≈ Hⱼᵢhᵢ`` grows with the step, so the noise measured at the two
    smallest rungs (:func:`noise_level`) misses it on the larger rungs of a
    ladder. ``slope``/``curvature`` are the differences' estimates of ``|∂ⱼf|``
    and ``|Hⱼⱼ|``; ``|Hⱼᵢ|`` is taken as ``max(|Hᵢᵢ|, |Hⱼⱼ|)`` (a bound for
    positive semidefinite H). Returns ``e·(Σⱼ|xⱼ||∂ⱼf| + hᵢ·Σⱼ|xⱼ|·max(|Hᵢᵢ|, |Hⱼⱼ|))``.
    """
    ax = np.abs(np.asarray(x, dtype=np.float64))
    c = np.where(np.isfinite(curvature), np.abs(curvature), 0.0)
    s = np.where(np.isfinite(slope), np.abs(slope), 0.0)
    coupled = np.maximum(c[:, None], c[None, :]) @ ax  # Σⱼ |xⱼ|·max(cᵢ, cⱼ)
    return e * (float(ax @ s) + np.abs(h) * coupled)


@dataclass(frozen=True)
class Estimate:
    """A finite-difference estimate, its absolute error per entry, its cost."""

    value: np.ndarray
    error: np.ndarray
    evaluations: int
    kinks: Kinks | None = None


# -------------------------------------------------------------------- pilots


@dataclass(frozen=True)
class Pilot:
    """Step scales at a point, from a pilot difference at the small absolute step.

    Only coordinates with ``|x_i| > PILOT_ABOVE`` (``index``) get a pilot:
    where ``max(1, |x_i|) ≤ 2`` the scaled rungs ``(h·s, 2h·s)`` stay within
    ``[h, 4h]`` of the absolute ones, the regime trusted for every ``|x_i| ≤ 1``
    anyway, so ``max(1, |x_i|)`` is kept there (and costs nothing).
    ``d``/``rho`` are the pilot's estimates (the diagonal of the Hessian for
    values, its columns ``index`` for gradients) and rounding bounds, for the
    cross-check; ``known`` maps the pilot's points to what was
    evaluated there, so a rung that lands on them (scale 1) does not pay twice.
    """

    scales: np.ndarray
    index: np.ndarray
    h: np.ndarray
    d: np.ndarray
    rho: np.ndarray
    known: dict[bytes, object]
    evaluations: int = 0


class _Reuse:
    """An evaluator that answers the pilot's points from memory, the rest from ``f``."""

    def __init__(self, f: Values | Gradients, known: dict[bytes, object]) -> None:
        self.f, self.known, self.dtype = f, known, f.dtype

    @property
    def count(self) -> int:
        return self.f.count

    def __call__(self, points: np.ndarray, **kw: bool) -> np.ndarray:
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        if not self.known:
            return self.f(points, **kw)
        keys = [row.tobytes() for row in points]
        todo = [i for i, k in enumerate(keys) if k not in self.known]
        fresh = self.f(points[todo], **kw) if todo else None
        out = [None] * len(keys)
        for j, i in enumerate(todo):
            out[i] = fresh[j]
        for i, k in enumerate(keys):
            if out[i] is None:
                out[i] = self.known[k]
        return np.asarray(np.stack([np.asarray(o, dtype=np.float64) for o in out]))

    def one(self, x: np.ndarray) -> float:
        return float(self(np.asarray(x)[None, :])[0])


def _no_pilot(x: np.ndarray) -> Pilot:
    empty = np.zeros(0)
    return Pilot(scale(x), np.zeros(0, dtype=int), empty, empty, empty, {})


def value_pilot(f: Values, x: np.ndarray, fx: float | None = None) -> Pilot:
    """Second differences at the absolute step ``ε^(1/4)`` along every ``|x_i| > 2``.

    ``2`` evaluations per such coordinate (plus ``f(x)`` when not given). The
    scale is ``clip(√(|f|/|Dᵢᵢ|), 1, |x_i|)`` (:func:`.steps.curvature_scale`).
    """
    index = np.flatnonzero(np.abs(x) > PILOT_ABOVE)
    if index.size == 0:
        return _no_pilot(x)
    start = f.count
    if fx is None:
        fx = f.one(x)
    e = eps(f.dtype)
    m = index.size
    h = representable(x[index], np.full(m, e**0.25)).astype(np.float64)
    step = np.zeros((m, x.size))
    step[np.arange(m), index] = h
    pts = np.concatenate([x + step, x - step])
    vals = f(pts)
    fp, fm = vals[:m], vals[m:]
    d = (fp - 2 * fx + fm) / h**2
    level = np.maximum(abs(fx), np.maximum(np.abs(fp), np.abs(fm)))
    rho = ROUND_VALUES * e * level * 4.0 / h**2
    scales = scale(x)
    scales[index] = curvature_scale(scales[index], level, d, rho, power=2)
    known = {row.tobytes(): v for row, v in zip(pts, vals, strict=True)}
    return Pilot(scales, index, h, d, rho, known, f.count - start)


def gradient_pilot(g: Gradients, x: np.ndarray) -> Pilot:
    """Gradient differences at the absolute step ``ε^(1/3)`` along every ``|x_i| > 2``.

    ``2`` gradients per such coordinate; the scale is ``clip(max|∇f|/max|Hₖᵢ|,
    1, |x_i|)`` over the pilot's column ``i``.
    """
    index = np.flatnonzero(np.abs(x) > PILOT_ABOVE)
    if index.size == 0:
        return _no_pilot(x)
    start = g.count
    e = eps(g.dtype)
    m = index.size
    h = representable(x[index], np.full(m, e ** (1.0 / 3.0))).astype(np.float64)
    step = np.zeros((m, x.size))
    step[np.arange(m), index] = h
    pts = np.concatenate([x + step, x - step])
    grads = g(pts)
    gp, gm = grads[:m], grads[m:]
    d = ((gp - gm) / (2 * h[:, None])).T  # columns `index` of the Hessian
    big = np.maximum(np.abs(gp), np.abs(gm)).max(axis=1)
    rho = ROUND_GRADIENTS * e * np.broadcast_to(big / h, d.shape)
    scales = scale(x)
    col = np.abs(d).max(axis=0)
    scales[index] = curvature_scale(scales[index], big, col, rho.max(axis=0), power=1)
    known = {row.tobytes(): v for row, v in zip(pts, grads, strict=True)}
    return Pilot(scales, index, h, d, np.array(rho), known, g.count - start)


def _cross_check(pilot: Pilot, est: np.ndarray, error: np.ndarray, h: np.ndarray,
                 diagonal: bool) -> np.ndarray:
    """Widen the error where a larger-step estimate disagrees with the pilot.

    The pilot (smallest step, so the smallest truncation error) is trusted up
    to its rounding bound ``ρ_p``. Where it is informative (``|D − D_p| >
    PILOT_AGREE·ρ_p``: the gap is not rounding noise) and the final estimate's
    band ``err`` does not reach it, the larger steps were not asymptotic (a
    periodic or strongly curved function made their rungs agree by accident):
    the entry's error becomes the gap plus ``ρ_p``, so the band covers the
    pilot's interval and no verdict rests on the larger steps. Where the pilot
    is rounding noise (``x²`` at 10⁶) or agrees, nothing changes.
    """
    if pilot.index.size == 0:
        return error
    error = np.array(error, dtype=np.float64, copy=True)
    larger = h[pilot.index] > pilot.h * (1 + 1e-12)
    idx = pilot.index[larger]
    if idx.size == 0:
        return error
    if diagonal:
        final, err = est[idx, idx], error[idx, idx]
        dp, rp = pilot.d[larger], pilot.rho[larger]
    else:
        final, err = est[:, idx], error[:, idx]
        dp, rp = pilot.d[:, larger], pilot.rho[:, larger]
    gap = np.abs(final - dp)
    bad = (gap > err) & (gap > PILOT_AGREE * rp)
    widened = np.where(bad, np.maximum(err, gap + rp), err)
    if diagonal:
        error[idx, idx] = widened
    else:
        error[:, idx] = widened
        error[idx, :] = np.maximum(error[idx, :], widened.T)
    return error


# ---------------------------------------------------------------- values only


def value_gradient(f: Values, x: np.ndarray, plan: Ladder, pilot: Pilot | None = None,
                   fx: float | None = None) -> Estimate:
    """Central differences of values on every rung of ``plan``, steps scaled by the pilot's
    scales (computed here when not given).

    ``f(x)`` (``fx``, evaluated here when not given, and counted either way: it is
    part of the stencil) measures the noise of f (:func:`noise_level`); each value
    is taken as correct to ``max(ROUND_VALUES·ε·|f|, NOISE_BOUND·σ)``.
    """
    n = x.size
    start = f.count
    if fx is None:
        fx = f.one(x)
    else:
        start -= 1
    if pilot is None:
        pilot = value_pilot(f, x, fx)
    rungs, steps, plus, minus, big = [], [], [], [], []
    for rel in plan.relative_steps():
        h = coordinate_steps(x, rel, pilot.scales)
        pts = np.concatenate([x + np.diag(h), x - np.diag(h)])
        vals = f(pts)
        if rel == plan.base:
            ensure_finite(vals, "value next to the point")
        fp, fm = vals[:n], vals[n:]
        rungs.append((fp - fm) / (2 * h))
        steps.append(h)
        plus.append(fp)
        minus.append(fm)
        big.append(np.maximum(np.abs(fp), np.abs(fm)))
    sigma = noise_level(fx, np.array(plus), np.array(minus), plan.ratio)
    e = eps(f.dtype)
    k = min(1, len(steps) - 1)
    slope = rungs[0]
    curv = (plus[k] - 2 * fx + minus[k]) / steps[k] ** 2
    # |coefficients| of (f₊ − f₋)/2h sum to 1/h
    rho = [np.maximum(np.maximum(ROUND_VALUES * e * b, NOISE_BOUND * sigma),
                      ROUND_VALUES * input_rounding(x, slope, curv, h, e)) / h
           for b, h in zip(big, steps, strict=True)]
    out = combine(np.array(rungs), np.array(rho), plan)
    return Estimate(out.estimate, out.error, f.count - start)


def _value_hessian_rung(
    f: Values, x: np.ndarray, h: np.ndarray, fx: float, strict: bool = True
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """One rung of the value stencil, ``n² + n`` evaluations: (D, max|f| on it,
    f(x + hᵢeᵢ), f(x − hᵢeᵢ))."""
    n = x.size
    diag = np.diag(h)
    vals = f(np.concatenate([x + diag, x - diag]), strict=strict)
    fp, fm = vals[:n], vals[n:]
    big = max(abs(fx), float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 0.0)
    d = np.empty((n, n))
    d[np.diag_indices(n)] = (fp - 2 * fx + fm) / h**2
    iu, ju = np.triu_indices(n, 1)
    # points x ± (a_i + a_j) for i < j, in blocks of rows to bound memory
    block = max(1, PAIR_BLOCK // max(n, 1))
    for start in range(0, iu.size, block):
        i, j = iu[start : start + block], ju[start : start + block]
        step = np.zeros((i.size, n))
        rows = np.arange(i.size)
        step[rows, i] = h[i]
        step[rows, j] = h[j]
        pv = f(np.concatenate([x + step, x - step]), strict=strict)
        pp, pm = pv[: i.size], pv[i.size :]
        if np.isfinite(pv).any():
            big = max(big, float(np.nanmax(np.abs(pv))))
        mixed = (pp + pm - fp[i] - fm[i] - fp[j] - fm[j] + 2 * fx) / (2 * h[i] * h[j])
        d[i, j] = mixed
        d[j, i] = mixed
    return d, big, fp, fm


def value_hessian(f: Values, x: np.ndarray, plan: Ladder, fx: float | None = None,
                  pilot: Pilot | None = None) -> Estimate:
    """Second differences of values on every rung; kinks from the first two rungs.

    Steps are scaled by the pilot's scales (computed here when not given; its
    points are reused by a rung that lands on them), and the result is
    cross-checked against the pilot.
    """
    start = f.count
    if fx is None:
        fx = f.one(x)
    else:
        start -= 1  # f(x) was evaluated by the caller; it is part of the stencil
    if pilot is None:
        pilot = value_pilot(f, x, fx)
    else:
        start -= pilot.evaluations  # the pilot's cost belongs to this estimate
    fr = _Reuse(f, pilot.known)
    rungs, big, steps, plus, minus = [], [], [], [], []
    for k, rel in enumerate(plan.relative_steps()):
        h = coordinate_steps(x, rel, pilot.scales)
        d, b, fp, fm = _value_hessian_rung(fr, x, h, fx, strict=k < 2)
        if k < 2:
            ensure_finite(d, "finite-difference Hessian")
        rungs.append(d)
        big.append(b)
        steps.append(h)
        plus.append(fp)
        minus.append(fm)
    sigma = noise_level(fx, np.array(plus), np.array(minus), plan.ratio)
    e = eps(f.dtype)
    slope = (plus[0] - minus[0]) / (2 * steps[0])
    curv = np.diag(rungs[min(1, len(rungs) - 1)])
    grow = [ROUND_VALUES * input_rounding(x, slope, curv, h, e)
            for h in steps]
    # |coefficients| sum to 4/h² (diagonal) and 8/2hᵢhⱼ (mixed); the points of entry
    # (i, j) move along eᵢ and eⱼ, so the larger growth of the two applies
    rho = [np.maximum(np.maximum(ROUND_VALUES * e * b, NOISE_BOUND * sigma),
                      np.maximum(gr[:, None], gr[None, :])) * 4.0 / np.outer(h, h)
           for b, h, gr in zip(big, steps, grow, strict=True)]
    # the kink test keeps the ε|f| model: a kink inflates the measured "noise" (Δ⁴ of
    # |x| at 0 is 4h) and would hide itself
    plain = [ROUND_VALUES * e * b * 4.0 / np.outer(h, h) for b, h in zip(big, steps,
                                                                         strict=True)]
    return _finish_ladder(rungs, rho, steps, plan, pilot, f.count - start,
                          jump_factor=2.0, diagonal=True, kink_rho=plain)


def value_hvp(f: Values, x: np.ndarray, v: np.ndarray, dtype: str,
              scales: np.ndarray | None = None) -> Estimate:
    """``H v`` from values only: ``4n`` evaluations of a mixed second difference.

    ``(Hv)ᵢ ≈ (f(x+aᵢ+tv) − f(x+aᵢ−tv) − f(x−aᵢ+tv) + f(x−aᵢ−tv)) / 4hᵢt`` with
    ``ε^(1/4)`` steps; the error estimate is the rounding bound only.
    """
    n = x.size
    start = f.count
    rel = eps(dtype) ** 0.25
    h = coordinate_steps(x, rel, scales)
    t = direction_step(x, v, rel, scales)
    if t == 0:
        return Estimate(np.zeros(n), np.zeros(n), 0)
    tv = t * np.asarray(v, dtype=np.float64)
    diag = np.diag(h)
    pts = np.concatenate([x + diag + tv, x + diag - tv, x - diag + tv, x - diag - tv])
    vals = f(pts)
    a, b, c, d = vals[:n], vals[n : 2 * n], vals[2 * n : 3 * n], vals[3 * n :]
    est = (a - b - c + d) / (4 * h * t)
    rho = ROUND_VALUES * eps(dtype) * np.max(np.abs(vals)) / (h * t)
    return Estimate(est, rho * np.ones(n), f.count - start)


# -------------------------------------------------------- gradient differences


def gradient_hessian(g: Gradients, x: np.ndarray, plan: Ladder, pilot: Pilot | None = None
                     ) -> Estimate:
    """Hessian columns by central differences of the exact gradient (not symmetrized).

    Steps are scaled by the pilot's scales (computed here when not given), and
    the result is cross-checked against the pilot's columns. ``∇f(x)`` (one more
    gradient) measures the gradient's noise (:func:`noise_level`): each entry
    ``∂ⱼf`` is taken as correct to ``max(ROUND_GRADIENTS·ε·max|∇f|, NOISE_BOUND·σⱼ)``.
    """
    n = x.size
    start = g.count
    if pilot is None:
        pilot = gradient_pilot(g, x)
    else:
        start -= pilot.evaluations
    gr = _Reuse(g, pilot.known)
    gx = gr(x[None, :])[0]
    rungs, big, steps, plus, minus = [], [], [], [], []
    e = eps(g.dtype)
    for rel in plan.relative_steps():
        h = coordinate_steps(x, rel, pilot.scales)
        diag = np.diag(h)
        grads = gr(np.concatenate([x + diag, x - diag]))
        gp, gm = grads[:n], grads[n:]
        # row i of gp is ∇f(x + a_i): column i of the Hessian is (gp[i] − gm[i]) / 2h_i
        d = ((gp - gm) / (2 * h[:, None])).T
        big.append(np.maximum(np.abs(gp), np.abs(gm)).max(axis=1))
        rungs.append(d)
        steps.append(h)
        plus.append(gp)
        minus.append(gm)
    ensure_finite(rungs[0], "finite-difference Hessian")
    sigma = noise_level(gx, np.array(plus), np.array(minus), plan.ratio)  # per entry j
    # entry (j, i) = (∂ⱼf(x + aᵢ) − ∂ⱼf(x − aᵢ))/2hᵢ: |coefficients| sum to 1/hᵢ
    plain = [np.broadcast_to(ROUND_GRADIENTS * e * b[None, :] / h[None, :], (n, n))
             for b, h in zip(big, steps, strict=True)]
    rho = [np.maximum(p, NOISE_BOUND * sigma[:, None] / h[None, :])
           for p, h in zip(plain, steps, strict=True)]
    # the kink test keeps the plain model (a kink inflates the measured noise)
    return _finish_ladder(rungs, rho, steps, plan, pilot, g.count - start,
                          jump_factor=4.0, diagonal=False, kink_rho=plain)


def gradient_hvp(g: Gradients, x: np.ndarray, v: np.ndarray, plan: Ladder,
                 scales: np.ndarray | None = None) -> Estimate:
    """``(∇f(x+tv) − ∇f(x−tv))/2t`` on every rung of ``plan`` (2 gradients per rung);
    ``scales``: a pilot's step scales (default ``max(1, |x|∞)``, see :func:`.direction_step`)."""
    start = g.count
    e = eps(g.dtype)
    rungs, rho = [], []
    v = np.asarray(v, dtype=np.float64)
    for rel in plan.relative_steps():
        t = direction_step(x, v, rel, scales)
        if t == 0:
            return Estimate(np.zeros_like(x), np.zeros_like(x), 0)
        grads = g(np.stack([x + t * v, x - t * v]))
        rungs.append((grads[0] - grads[1]) / (2 * t))
        rho.append(ROUND_GRADIENTS * e * np.max(np.abs(grads)) / t * np.ones_like(x))
    out = combine(np.array(rungs), np.array(rho), plan)
    return Estimate(out.estimate, out.error, g.count - start)


# ----------------------------------------------------------------------- kinks


def _finish_ladder(
    rungs: list[np.ndarray], rho: list[np.ndarray], steps: list[np.ndarray], plan: Ladder,
    pilot: Pilot, evaluations: int, *, jump_factor: float, diagonal: bool,
    kink_rho: list[np.ndarray],
) -> Estimate:
    """Extrapolate a Hessian ladder, flag kinks, cross-check against the pilot.

    ``rho`` are the rounding bounds of the error band, ``kink_rho`` those the kink
    test allows for (the ``ε·|f|`` model, without the measured noise).
    """
    rungs_a, rho_a = np.array(rungs), np.array(rho)
    out = combine(rungs_a, rho_a, plan)
    kinks, error = _kinks(rungs_a, np.array(kink_rho), out.error, steps[0], plan.ratio,
                          jump_factor=jump_factor)
    error = _cross_check(pilot, out.estimate, error, steps[0], diagonal=diagonal)
    return Estimate(out.estimate, error, evaluations, kinks)


def _kinks(
    rungs: np.ndarray,
    rho: np.ndarray,
    error: np.ndarray,
    h: np.ndarray,
    ratio: float,
    jump_factor: float,
) -> tuple[Kinks | None, np.ndarray]:
    """Flag entries whose first two rungs disagree beyond the error model.

    A kink with slope jump ``J`` along ``eᵢ`` adds ``J/h`` to a second
    difference of values (``J/2h`` to a gradient difference), so the two rungs
    differ by ``J/2h`` (``J/4h``): ``J ≈ jump_factor·h·|D(h) − D(2h)|``.
    Flagged entries get an error covering both rungs' values.
    """
    d0, d1 = rungs[0], rungs[1]
    diff = np.abs(d0 - d1)
    scale = float(np.nanmax(np.abs(np.concatenate([d0.ravel(), d1.ravel()]))))
    allowed = KINK_ROUNDING * (rho[0] + rho[1]) + KINK_RELATIVE * scale
    flagged = diff > allowed
    if not flagged.any():
        return None, error
    error = np.where(flagged, np.maximum(error, np.abs(d0) + np.abs(d1)), error)
    rows = np.flatnonzero(flagged.any(axis=0) | flagged.any(axis=1))
    jump = jump_factor * h * np.abs(np.diag(d0) - np.diag(d1)) / (ratio - 1.0)
    jump = np.where(np.diag(flagged), jump, 0.0)
    ratio_ = np.where(allowed > 0, diff / allowed, np.inf)
    return Kinks(
        parameters=tuple(int(i) for i in rows),
        slope_jump=jump,
        disagreement=float(np.max(ratio_)),
    ), error


def value_directional(f: Values, x: np.ndarray, v: np.ndarray, plan: Ladder,
                      scales: np.ndarray | None = None) -> Estimate:
    """The directional derivative ``∇f·v`` by central differences of values along ``v``."""
    start = f.count
    rungs, rho = [], []
    for rel in plan.relative_steps():
        t = direction_step(x, v, rel, scales)
        if t == 0:
            return Estimate(np.zeros(()), np.zeros(()), 0)
        vals = f(np.stack([x + t * v, x - t * v]))
        rungs.append(np.asarray((vals[0] - vals[1]) / (2 * t)))
        rho.append(np.asarray(ROUND_VALUES * eps(f.dtype) * np.max(np.abs(vals)) / t))
    out = combine(np.array(rungs), np.array(rho), plan)
    return Estimate(out.estimate, out.error, f.count - start)
