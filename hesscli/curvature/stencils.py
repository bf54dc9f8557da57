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


def value_gradient(f: Values, x: np.ndarray, plan: Ladder, pilot: Pilot | None = None
                   ) -> Estimate:
    """Central differences of values on every rung of ``plan``, steps scaled by the pilot's
    scales (computed here when not given)."""
    n = x.size
    start = f.count
    if pilot is None:
        pilot = value_pilot(f, x)
    rungs, rho = [], []
    for rel in plan.relative_steps():
        h = coordinate_steps(x, rel, pilot.scales)
        pts = np.concatenate([x + np.diag(h), x - np.diag(h)])
        vals = f(pts)
        if rel == plan.base:
            ensure_finite(vals, "value next to the point")
        fp, fm = vals[:n], vals[n:]
        rungs.append((fp - fm) / (2 * h))
        big = np.maximum(np.abs(fp), np.abs(fm))
        rho.append(ROUND_VALUES * eps(f.dtype) * big / h)
    out = combine(np.array(rungs), np.array(rho), plan)
    return Estimate(out.estimate, out.error, f.count - start)


def _value_hessian_rung(
    f: Values, x: np.ndarray, h: np.ndarray, fx: float, strict: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """One rung of the value stencil: (D, rounding bound), ``n² + n`` evaluations."""
    n = x.size
    diag = np.diag(h)
    vals = f(np.concatenate([x + diag, x - diag]), strict=strict)
    fp, fm = vals[:n], vals[n:]
    e = eps(f.dtype)
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
    # |coefficients| sum to 4/h² (diagonal) and 8/2hᵢhⱼ (mixed)
    rho = ROUND_VALUES * e * big * 4.0 / np.outer(h, h)
    return d, rho


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
    rungs, rho, steps = [], [], []
    for k, rel in enumerate(plan.relative_steps()):
        h = coordinate_steps(x, rel, pilot.scales)
        d, r = _value_hessian_rung(fr, x, h, fx, strict=k < 2)
        if k < 2:
            ensure_finite(d, "finite-difference Hessian")
        rungs.append(d)
        rho.append(r)
        steps.append(h)
    return _finish_ladder(rungs, rho, steps, plan, pilot, f.count - start,
                          jump_factor=2.0, diagonal=True)


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
    the result is cross-checked against the pilot's columns.
    """
    n = x.size
    start = g.count
    if pilot is None:
        pilot = gradient_pilot(g, x)
    else:
        start -= pilot.evaluations
    gr = _Reuse(g, pilot.known)
    rungs, rho, steps = [], [], []
    e = eps(g.dtype)
    for rel in plan.relative_steps():
        h = coordinate_steps(x, rel, pilot.scales)
        diag = np.diag(h)
        grads = gr(np.concatenate([x + diag, x - diag]))
        gp, gm = grads[:n], grads[n:]
        # row i of gp is ∇f(x + a_i): column i of the Hessian is (gp[i] − gm[i]) / 2h_i
        d = ((gp - gm) / (2 * h[:, None])).T
        big = np.maximum(np.abs(gp), np.abs(gm)).max(axis=1)
        rungs.append(d)
        rho.append(ROUND_GRADIENTS * e * np.broadcast_to(big / h, (n, n)))
        steps.append(h)
    ensure_finite(rungs[0], "finite-difference Hessian")
    return _finish_ladder(rungs, rho, steps, plan, pilot, g.count - start,
                          jump_factor=4.0, diagonal=False)


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
) -> Estimate:
    """Extrapolate a Hessian ladder, flag kinks, cross-check against the pilot."""
    rungs_a, rho_a = np.array(rungs), np.array(rho)
    out = combine(rungs_a, rho_a, plan)
    kinks, error = _kinks(rungs_a, rho_a, out.error, steps[0], plan.ratio,
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
