"""Finite-difference step sizes and Richardson extrapolation.

Step sizes are derived, not hard-coded (the approach of scipy's ``_numdiff`` and
numdifftools). A central difference of order 2 for the ``d``-th derivative has
truncation error ``c·h²`` and rounding error about ``ε·|f|/h^d``; balancing the
two gives ``h ≈ ε^(1/(2+d))``: ``ε^(1/3)`` for first derivatives (central
differences of values, or of an exact gradient), ``ε^(1/4)`` for second
differences of values. These are steps in units of the function's length
scale, and each step is replaced by the representable step ``(x + h) − x``, so
the divisor is exactly the displacement the function saw.

The length scale. scipy and numdifftools scale steps by ``max(1, |x_i|)``
(relative steps for large coordinates, absolute near zero): right when the
function varies on the scale of its coordinates (``x²`` at 10⁶, whose rounding
noise ``ε|f|`` needs the large step), wrong when it does not: at ``x ≈ 10⁶``
the step of ``0.1(x − C)² + cos x`` becomes ``6`` (gradients) or ``120``
(values), two such rungs "agree" on a cosine of period 2π, and the error
estimate vouches for a curvature of 0.2 where the truth is −0.8. So the scale
is ``max(1, |x_i|)`` only as an upper bound: a pilot difference at the small
absolute step measures the curvature ``c_i`` along each coordinate with
``|x_i| > 2`` (:func:`.stencils.value_pilot`), and
the scale becomes Numerical Recipes' curvature scale (§5.7, the rounding-optimal
step ``h ≈ ε^(1/(2+d))·x_c``) ``x_c = (level/|c_i|)^(1/p)``, clamped to
``[1, max(1, |x_i|)]``: ``level`` is the magnitude of the differenced quantity
(``|f|``, p = 2, for second differences of values; ``|∇f|``, p = 1, for
differences of gradients). Where the pilot sees no curvature above its rounding
noise there is no evidence of a shorter scale and ``max(1, |x_i|)`` stays. The
pilot also cross-checks the final estimate (:mod:`.stencils`): an entry whose
large-step estimate disagrees with it beyond both error bounds gets an error
band covering the disagreement.

``high`` accuracy evaluates a geometric ladder of steps ``h₀·rᵏ`` and
extrapolates (Romberg's table: each level removes the next even power of
``h``). Every candidate in the table gets an error estimate, the difference to
its neighbour one rung up plus its propagated rounding bound, and the candidate
with the smallest estimate wins, entry by entry (numdifftools' strategy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hesscli.jaxconf import eps
from hesscli.vocab import FDAccuracy

ACCURACIES = ("normal", "high")


@dataclass(frozen=True)
class Ladder:
    """A plan of step sizes: ``rungs`` steps ``base·ratioᵏ`` (relative to the scale).

    ``levels`` is how many Richardson levels ``high`` extrapolates (0: none,
    the plain central scheme at the first rung, checked against the second).
    """

    base: float
    ratio: float
    rungs: int
    levels: int

    def relative_steps(self) -> np.ndarray:
        return self.base * self.ratio ** np.arange(self.rungs)


def ladder(derivative: int, accuracy: str, dtype: str) -> Ladder:
    """The step plan for a central difference of the ``derivative``-th order.

    ``normal``: the error-balancing step ``ε^(1/(2+d))`` and its double (the
    second rung only checks the first: error estimate and kink detection).
    ``high``: ladders of ratio 2 starting below the fourth-order optimum
    ``ε^(1/(4+d))`` and extrapolated up to 3 levels. Second differences of values
    use 12 rungs from ``ε^(1/6)/2`` up to about 2.5 in scaled units: the large
    steps are what lets low-degree polynomials (Rosenbrock) reach ``ε`` — the
    error estimate picks them only where they agree with the small ones — and
    on Rosenbrock and a non-polynomial test function
    (``tests/benchmarks/bench_fd.py``) this matches or beats numdifftools'
    accuracy with about 40% of its evaluations (numdifftools' own steps reach
    about 1.5). Rungs beyond the second may
    leave the function's domain; they are simply not selected.
    """
    e = eps(dtype)
    if accuracy == FDAccuracy.NORMAL:
        return Ladder(e ** (1.0 / (2 + derivative)), 2.0, 2, 0)
    if accuracy != FDAccuracy.HIGH:
        raise ValueError(f"unknown accuracy {accuracy!r}")
    if derivative == 2:
        return Ladder(e ** (1.0 / 6.0) / 2.0, 2.0, 12, 3)
    return Ladder(e ** (1.0 / 5.0) / 4.0, 2.0, 8, 3)


def scale(x: np.ndarray) -> np.ndarray:
    """Per-coordinate scale ``max(1, |x_i|)``: relative steps, absolute near zero."""
    return np.maximum(1.0, np.abs(np.asarray(x, dtype=np.float64)))


def representable(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The step the function actually sees: ``(x + h) − x`` (exact in floating point)."""
    x = np.asarray(x)
    return (x + h) - x


# Pilot curvature counts above this many rounding bounds. The bound is already
# about 4× the typical rounding noise, and a false positive is benign (the step
# stays ≥ h/√(8ε) ≈ 3000·h, where the rounding error is bounded and reported).
PILOT_SIGNIFICANT = 3.0


def curvature_scale(
    upper: np.ndarray, level: np.ndarray, curvature: np.ndarray, rounding: np.ndarray,
    power: int,
) -> np.ndarray:
    """Step scales ``clip((level/|curvature|)^(1/power), 1, upper)`` from a pilot.

    ``upper`` is ``max(1, |x_i|)``; ``curvature`` the pilot's estimate (second
    difference of values, ``power`` 2, or gradient difference, ``power`` 1) with
    its rounding bound; ``level`` the magnitude of the differenced quantity.
    Entries whose curvature is not significant (≤ ``PILOT_SIGNIFICANT``
    rounding bounds, or non-finite) keep ``upper``.
    """
    upper = np.asarray(upper, dtype=np.float64)
    c = np.abs(np.asarray(curvature, dtype=np.float64))
    ok = np.isfinite(c) & np.isfinite(level) & (c > PILOT_SIGNIFICANT * rounding) & (c > 0)
    with np.errstate(all="ignore"):
        xc = np.where(ok, (np.abs(level) / np.where(ok, c, 1.0)) ** (1.0 / power), np.inf)
    return np.minimum(upper, np.maximum(1.0, xc))


def coordinate_steps(
    x: np.ndarray, relative: float, scales: np.ndarray | None = None
) -> np.ndarray:
    """Representable steps ``relative·sᵢ`` (``sᵢ`` = ``scales``, default ``max(1,|x_i|)``)."""
    s = scale(x) if scales is None else np.asarray(scales, dtype=np.float64)
    return representable(x, relative * s).astype(np.float64)


def direction_step(
    x: np.ndarray, v: np.ndarray, relative: float, scales: np.ndarray | None = None
) -> float:
    """A step ``t`` along ``v``: ``t·|v_i| ≤ relative·sᵢ`` for every coordinate.

    Without ``scales``: ``t·|v|∞ = relative·max(1, |x|∞)``.
    """
    vmax = float(np.max(np.abs(v)))
    if vmax == 0:
        return 0.0
    if scales is None:
        return relative * max(1.0, float(np.max(np.abs(x)))) / vmax
    return relative / float(np.max(np.abs(v) / np.asarray(scales, dtype=np.float64)))


@dataclass(frozen=True)
class Extrapolated:
    """An estimate with its absolute error estimate, entry by entry."""

    estimate: np.ndarray
    error: np.ndarray


# The truncation estimates below are the next term of the error expansion, exact
# only asymptotically: for a polynomial of low degree ``|D(h) − D(2h)|/3`` *is*
# the error of ``D(h)`` (true error / estimate = 1.00 on Rosenbrock, Himmelblau,
# Beale, x⁴ in tests/test_fd_coverage.py), and a next term of opposite sign makes
# it an underestimate. Measured over that corpus (14 functions, 61 points, both
# accuracies; bands with the measured rounding of f, see stencils.noise_level):
# max(true error / band) was 1.00 (gradients) and 1.13 (Hessian columns) with
# factor 1 and no rounding term for the check rung; with this factor 2 and the
# check rung's rounding included it is 0.50 (gradients), 0.71 (Hessian columns).
TRUNCATION_SAFETY = 2.0


def two_rungs(d0: np.ndarray, d1: np.ndarray, rho0: np.ndarray, rho1: np.ndarray,
              ratio: float) -> Extrapolated:
    """The plain central estimate at the first step, checked against the second.

    With ``D(h) = H + c·h² + …`` the difference ``D(rh) − D(h) ≈ (r² − 1)·c·h²``,
    so ``|D(h) − D(rh)|/(r² − 1)`` estimates the truncation error of ``D(h)``
    (times ``TRUNCATION_SAFETY``); that difference carries both rungs' rounding,
    ``(ρ₀ + ρ₁)/(r² − 1)``, which is added with ``D(h)``'s own ``ρ₀``.
    """
    trunc = np.abs(d0 - d1) / (ratio**2 - 1.0)
    noise = (rho0 + rho1) / (ratio**2 - 1.0)
    return Extrapolated(d0, TRUNCATION_SAFETY * trunc + noise + rho0)


def romberg(
    rungs: np.ndarray, rho: np.ndarray, ratio: float, levels: int
) -> Extrapolated:
    """Richardson extrapolation over a ladder, best candidate per entry.

    ``rungs[k]`` is the central estimate with step ``h₀·ratioᵏ`` (error
    expansion in even powers of h), ``rho[k]`` its rounding bound. Level ``l``
    combines neighbours as ``(r^{2l}·T[k] − T[k+1])/(r^{2l} − 1)``; the error
    estimate of ``T_l[k]`` is ``TRUNCATION_SAFETY·|T_l[k] − T_l[k+1]|`` plus the
    propagated rounding bounds of both (the difference carries both).
    Non-finite rungs (a step that left the function's domain) lose.
    """
    table, rtab = [np.asarray(rungs, dtype=np.float64)], [np.asarray(rho, dtype=np.float64)]
    for level in range(1, levels + 1):
        prev, rprev = table[-1], rtab[-1]
        if prev.shape[0] < 2:
            break
        p = ratio ** (2 * level)
        table.append((p * prev[:-1] - prev[1:]) / (p - 1.0))
        rtab.append((p * rprev[:-1] + rprev[1:]) / (p - 1.0))
    cands, errs = [], []
    for level in range(len(table)):
        t, r = table[level], rtab[level]
        for k in range(t.shape[0] - 1):
            err = TRUNCATION_SAFETY * np.abs(t[k] - t[k + 1]) + r[k] + r[k + 1]
            cands.append(t[k])
            errs.append(np.where(np.isfinite(err), err, np.inf))
    cand = np.stack(cands)
    err = np.stack(errs)
    best = np.argmin(err, axis=0)
    estimate = np.take_along_axis(cand, best[None], axis=0)[0]
    error = np.take_along_axis(err, best[None], axis=0)[0]
    return Extrapolated(estimate, error)


def combine(rungs: np.ndarray, rho: np.ndarray, plan: Ladder) -> Extrapolated:
    """``normal``: the first rung checked by the second; ``high``: :func:`romberg`."""
    if plan.levels == 0:
        return two_rungs(rungs[0], rungs[1], rho[0], rho[1], plan.ratio)
    return romberg(rungs, rho, plan.ratio, plan.levels)
