"""``analyze --verify``: a cheap self-test of the exact derivatives at the point.

On one seeded random unit vector ``v`` it compares

* the exact HVP ``H v`` (JAX) with central differences of the exact gradient,
  ``(∇f(x+tv) − ∇f(x−tv))/2t`` (4 gradients, two step sizes), and
* the exact directional derivative ``∇f·v`` with central differences of the
  function's *values* along ``v`` (4 evaluations), which catches a gradient
  that is wrong in the first place (a wrong ``custom_jvp``/``custom_vjp`` rule,
  a Hessian that comes out all zeros).

A comparison passes when ``|exact − fd| ≤ 10·(FD error estimate) + √ε·scale``:
the finite-difference error is estimated from the two step sizes (truncation)
plus a rounding bound, 10 is the safety factor on that estimate, and ``√ε``
relative is the most any derivative computed in floating point can be trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hesscli.jaxconf import eps
from hesscli.objective.bind import Objective

SAFETY = 10.0


@dataclass(frozen=True)
class FDComparison:
    """One exact-vs-FD comparison: relative error, the tolerance it met or not."""

    what: str
    exact_norm: float
    fd_norm: float
    relative_error: float
    tolerance: float  # relative
    passed: bool
    fd_error: float  # the FD error estimate (absolute)


@dataclass(frozen=True)
class Verification:
    performed: bool
    passed: bool | None
    why: str | None = None
    hvp: FDComparison | None = None
    directional: FDComparison | None = None
    evaluations: int = 0
    seed: int = 0


def compare(what: str, exact: np.ndarray, fd: np.ndarray, fd_error: float, dtype: str,
            scale: float | None = None) -> FDComparison:
    """Relative error ``‖exact − fd‖ / max(‖exact‖, ‖fd‖, scale)`` and its tolerance."""
    exact, fd = np.atleast_1d(exact), np.atleast_1d(fd)
    diff = float(np.linalg.norm(exact - fd))
    en, fn = float(np.linalg.norm(exact)), float(np.linalg.norm(fd))
    den = max(en, fn, scale or 0.0)
    allowed = SAFETY * fd_error + math.sqrt(eps(dtype)) * den
    if den == 0:
        return FDComparison(what, en, fn, 0.0, 0.0, True, fd_error)
    return FDComparison(what, en, fn, diff / den, allowed / den, diff <= allowed, fd_error)


def verify_derivatives(objective: Objective, seed: int = 0) -> Verification:
    """Exact HVP and directional derivative vs finite differences on a random ``v``."""
    if not objective.traceable:
        return Verification(
            performed=False, passed=None, seed=seed,
            why="no exact derivatives to verify: the objective is a black box "
            f"({objective.why_untraceable}); everything already comes from finite differences",
        )
    from hesscli.curvature.evaluators import Gradients, Values
    from hesscli.curvature.exact import ExactCurvature
    from hesscli.curvature.fd_steps import ladder
    from hesscli.curvature.stencils import gradient_hvp, gradient_pilot, value_directional

    x = np.asarray(objective.x, dtype=np.float64)
    v = np.random.default_rng(seed).standard_normal(objective.n)
    v /= np.linalg.norm(v)
    exact = ExactCurvature(objective)
    g = exact.gradient(x)
    hv = exact.hvp(x, v)
    grads, values = Gradients(objective), Values(objective)
    plan = ladder(1, "normal", objective.dtype)
    scales = gradient_pilot(grads, x).scales  # steps within the function's length scale
    fd_hv = gradient_hvp(grads, x, v, plan, scales)
    fd_dir = value_directional(values, x, v, plan, scales)
    hvp = compare("Hessian-vector product", hv, fd_hv.value,
                  float(np.linalg.norm(fd_hv.error)), objective.dtype)
    directional = compare("directional derivative ∇f·v", np.dot(g, v), fd_dir.value,
                          float(np.abs(fd_dir.error)), objective.dtype,
                          scale=float(np.linalg.norm(g)))
    return Verification(
        performed=True,
        passed=hvp.passed and directional.passed,
        hvp=hvp,
        directional=directional,
        evaluations=grads.count + values.count,
        seed=seed,
    )
