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

Every estimate is computed on at least two step sizes (:mod:`.steps`), which
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
from hesscli.curvature.steps import (
    Ladder,
    combine,
    coordinate_steps,
    direction_step,
)
from hesscli.jaxconf import eps

KINK_ROUNDING = 10.0  # disagreement allowed, in units of the rounding bounds
KINK_RELATIVE = 0.01  # ... plus this fraction of max|H|: a smooth function's h² term
ROUND_VALUES = 2.0  # each f(x) is assumed correct to 2ε|f|
ROUND_GRADIENTS = 4.0  # each gradient entry to 4ε·max|∇f| (autodiff of a sum)
PAIR_BLOCK = 1 << 21  # stencil points × n per batch (16 MB of float64)


@dataclass(frozen=True)
class Estimate:
    """A finite-difference estimate, its absolute error per entry, its cost."""

    value: np.ndarray
    error: np.ndarray
    evaluations: int
    kinks: Kinks | None = None


# ---------------------------------------------------------------- values only


def value_gradient(f: Values, x: np.ndarray, plan: Ladder) -> Estimate:
    """Central differences of values on every rung of ``plan``."""
    n = x.size
    start = f.count
    rungs, rho = [], []
    for rel in plan.relative_steps():
        h = coordinate_steps(x, rel)
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


def value_hessian(f: Values, x: np.ndarray, plan: Ladder, fx: float | None = None) -> Estimate:
    """Second differences of values on every rung; kinks from the first two rungs."""
    start = f.count
    if fx is None:
        fx = f.one(x)
    else:
        start -= 1  # f(x) was evaluated by the caller; it is part of the stencil
    rungs, rho, steps = [], [], []
    for k, rel in enumerate(plan.relative_steps()):
        h = coordinate_steps(x, rel)
        d, r = _value_hessian_rung(f, x, h, fx, strict=k < 2)
        if k < 2:
            ensure_finite(d, "finite-difference Hessian")
        rungs.append(d)
        rho.append(r)
        steps.append(h)
    rungs_a, rho_a = np.array(rungs), np.array(rho)
    out = combine(rungs_a, rho_a, plan)
    kinks, error = _kinks(rungs_a, rho_a, out.error, steps[0], plan.ratio, jump_factor=2.0)
    return Estimate(out.estimate, error, f.count - start, kinks)


def value_hvp(f: Values, x: np.ndarray, v: np.ndarray, dtype: str) -> Estimate:
    """``H v`` from values only: ``4n`` evaluations of a mixed second difference.

    ``(Hv)ᵢ ≈ (f(x+aᵢ+tv) − f(x+aᵢ−tv) − f(x−aᵢ+tv) + f(x−aᵢ−tv)) / 4hᵢt`` with
    ``ε^(1/4)`` steps; the error estimate is the rounding bound only.
    """
    n = x.size
    start = f.count
    rel = eps(dtype) ** 0.25
    h = coordinate_steps(x, rel)
    t = direction_step(x, v, rel)
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


def gradient_hessian(g: Gradients, x: np.ndarray, plan: Ladder) -> Estimate:
    """Hessian columns by central differences of the exact gradient (not symmetrized)."""
    n = x.size
    start = g.count
    rungs, rho, steps = [], [], []
    e = eps(g.dtype)
    for rel in plan.relative_steps():
        h = coordinate_steps(x, rel)
        diag = np.diag(h)
        grads = g(np.concatenate([x + diag, x - diag]))
        gp, gm = grads[:n], grads[n:]
        # row i of gp is ∇f(x + a_i): column i of the Hessian is (gp[i] − gm[i]) / 2h_i
        d = ((gp - gm) / (2 * h[:, None])).T
        big = np.maximum(np.abs(gp), np.abs(gm)).max(axis=1)
        rungs.append(d)
        rho.append(ROUND_GRADIENTS * e * np.broadcast_to(big / h, (n, n)))
        steps.append(h)
    rungs_a, rho_a = np.array(rungs), np.array(rho)
    ensure_finite(rungs_a[0], "finite-difference Hessian")
    out = combine(rungs_a, rho_a, plan)
    kinks, error = _kinks(rungs_a, rho_a, out.error, steps[0], plan.ratio, jump_factor=4.0)
    return Estimate(out.estimate, error, g.count - start, kinks)


def gradient_hvp(g: Gradients, x: np.ndarray, v: np.ndarray, plan: Ladder) -> Estimate:
    """``(∇f(x+tv) − ∇f(x−tv))/2t`` on every rung of ``plan`` (2 gradients per rung)."""
    start = g.count
    e = eps(g.dtype)
    rungs, rho = [], []
    v = np.asarray(v, dtype=np.float64)
    for rel in plan.relative_steps():
        t = direction_step(x, v, rel)
        if t == 0:
            return Estimate(np.zeros_like(x), np.zeros_like(x), 0)
        grads = g(np.stack([x + t * v, x - t * v]))
        rungs.append((grads[0] - grads[1]) / (2 * t))
        rho.append(ROUND_GRADIENTS * e * np.max(np.abs(grads)) / t * np.ones_like(x))
    out = combine(np.array(rungs), np.array(rho), plan)
    return Estimate(out.estimate, out.error, g.count - start)


# ----------------------------------------------------------------------- kinks


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


def value_directional(f: Values, x: np.ndarray, v: np.ndarray, plan: Ladder) -> Estimate:
    """The directional derivative ``∇f·v`` by central differences of values along ``v``."""
    start = f.count
    rungs, rho = [], []
    for rel in plan.relative_steps():
        t = direction_step(x, v, rel)
        if t == 0:
            return Estimate(np.zeros(()), np.zeros(()), 0)
        vals = f(np.stack([x + t * v, x - t * v]))
        rungs.append(np.asarray((vals[0] - vals[1]) / (2 * t)))
        rho.append(np.asarray(ROUND_VALUES * eps(f.dtype) * np.max(np.abs(vals)) / t))
    out = combine(np.array(rungs), np.array(rho), plan)
    return Estimate(out.estimate, out.error, f.count - start)
