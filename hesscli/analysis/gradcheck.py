"""``hesscli gradcheck``: are the objective's exact derivatives right?

Three comparisons, each against a reference that does not trust the derivative
it checks:

1. the exact gradient (JAX, honouring ``custom_jvp``/``custom_vjp`` rules)
   against central differences of the function's **values**;
2. the exact Hessian against central differences of the exact gradient (does
   the second-derivative rule agree with the first?);
3. the exact Hessian against second differences of **values** only (n ≤
   ``MAX_VALUE_HESSIAN``; about n² evaluations, batched with ``vmap``).

A wrong rule shows up in (1) (gradient rules) or (3) (rules whose derivative is
consistently wrong, which (2) cannot see). An entry passes when

    |exact − fd| ≤ 10 · (its FD error estimate) + √ε · max(|exact|, |fd|)

The FD error estimate comes from two (``normal``) or more (``high``) step
sizes plus a rounding bound (:mod:`hesscli.curvature.stencils`); 10 is the
safety factor on that estimate; ``√ε`` relative is the most a derivative
computed in floating point can be trusted. The relative error reported for an
entry is ``|exact − fd| / max(|exact|, |fd|, 10·error)``, so entries too small
for finite differences to resolve are judged against that resolution instead
of blowing up; the maximum reported leaves out passing entries below that
resolution (they say nothing about accuracy). Parameters where finite
differences find a kink are left out of the verdict (the derivative does not
exist there) and named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hesscli.jaxconf import eps
from hesscli.objective.bind import Objective

if TYPE_CHECKING:
    from hesscli.curvature.stencils import Estimate

SAFETY = 10.0
MAX_VALUE_HESSIAN = 200
MAX_DENSE = 2000


@dataclass(frozen=True)
class Entry:
    """One compared entry: its name, both values, relative error and what was allowed."""

    check: str
    name: str
    parameters: tuple[str, ...]
    exact: float
    fd: float
    rel_error: float
    allowed: float  # absolute
    ratio: float  # |exact − fd| / allowed; > 1 fails


@dataclass(frozen=True)
class Check:
    key: str
    what: str
    reference: str
    passed: bool | None  # None: skipped
    max_rel_error: float | None
    worst: tuple[Entry, ...]
    evaluations: int
    skipped: str | None = None


@dataclass(frozen=True)
class GradCheck:
    objective: str
    n: int
    dtype: str
    accuracy: str
    tolerance: float  # the relative floor √ε
    checks: tuple[Check, ...]
    nonsmooth: tuple[str, ...]
    passed: bool

    @property
    def gradient_max_rel_error(self) -> float | None:
        return self.checks[0].max_rel_error

    @property
    def hessian_max_rel_error(self) -> float | None:
        errs = [c.max_rel_error for c in self.checks[1:] if c.max_rel_error is not None]
        return max(errs) if errs else None

    @property
    def worst(self) -> tuple[Entry, ...]:
        entries = [e for c in self.checks for e in c.worst]
        return tuple(sorted(entries, key=lambda e: -e.ratio))


def compare(
    key: str, exact: np.ndarray, fd: np.ndarray, error: np.ndarray, names: list[str],
    dtype: str, excluded: np.ndarray, top: int,
) -> tuple[bool, float, tuple[Entry, ...]]:
    """Entry-wise comparison (see module docstring): passed, max relative error, worst."""
    exact, fd = np.asarray(exact, np.float64).ravel(), np.asarray(fd, np.float64).ravel()
    error = np.asarray(error, np.float64).ravel()
    diff = np.abs(exact - fd)
    mag = np.maximum(np.abs(exact), np.abs(fd))
    allowed = SAFETY * error + math.sqrt(eps(dtype)) * mag
    den = np.maximum(mag, SAFETY * error)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.where(den > 0, den, np.inf))
        rel = np.where((diff > 0) & (den == 0), np.inf, rel)
        ratio = np.where(diff == 0, 0.0, diff / allowed)
    keep = ~excluded.ravel()
    if not keep.any():
        return True, 0.0, ()
    passed = bool(np.all(ratio[keep] <= 1.0))
    # entries below finite-difference resolution that pass say nothing about accuracy
    counted = keep & ((mag > SAFETY * error) | (ratio > 1.0))
    max_rel = float(np.max(rel[counted])) if counted.any() else 0.0
    order = np.argsort(-np.where(keep, ratio, -1.0), kind="stable")[: min(top, int(keep.sum()))]
    worst = tuple(
        Entry(key, names[i][0], names[i][1], float(exact[i]), float(fd[i]), float(rel[i]),
              float(allowed[i]), float(ratio[i]))
        for i in order
    )
    return passed, max_rel, worst


def gradcheck(objective: Objective, accuracy: str = "normal", top: int = 5) -> GradCheck:
    """Run the three comparisons at ``objective.x``."""
    if not objective.traceable:
        from hesscli.objective.bind import no_derivatives_error

        raise no_derivatives_error(objective)(
            f"gradcheck compares JAX's derivatives with finite differences, but for "
            f"{objective.label} {objective.why_untraceable}; there "
            "are no exact derivatives to check. Use 'hesscli analyze' (it falls back to "
            "finite differences)"
        )
    from hesscli.curvature.evaluators import Gradients, Values
    from hesscli.curvature.exact import ExactCurvature
    from hesscli.curvature.fd_steps import ladder
    from hesscli.curvature.stencils import gradient_hessian, value_gradient, value_hessian

    x = np.asarray(objective.x, dtype=np.float64)
    n, dtype, layout = objective.n, objective.dtype, objective.layout
    exact = ExactCurvature(objective)
    fx, g = exact.value_and_gradient(x)
    values = Values(objective)
    fd_g = value_gradient(values, x, ladder(1, accuracy, dtype))

    kink_params: set[int] = set()
    hess_checks: list[tuple[str, str, str, Estimate]] = []
    if n <= MAX_DENSE:
        hess = exact.hessian(x).matrix
        grads = Gradients(objective)
        fd_hg = gradient_hessian(grads, x, ladder(1, accuracy, dtype))
        if fd_hg.kinks is not None:
            kink_params.update(fd_hg.kinks.parameters)
        hess_checks.append(("hessian_fd_gradient", "Hessian",
                            "central differences of the exact gradient", fd_hg))
        if n <= MAX_VALUE_HESSIAN:
            fd_hv = value_hessian(values, x, ladder(2, accuracy, dtype), fx)
            if fd_hv.kinks is not None:
                kink_params.update(fd_hv.kinks.parameters)
            hess_checks.append(("hessian_fd_values", "Hessian",
                                "second differences of function values", fd_hv))

    excluded_1d = np.zeros(n, dtype=bool)
    excluded_1d[list(kink_params)] = True
    names_1d = [(layout.name(i), (layout.name(i),)) for i in range(n)]
    passed, max_rel, worst = compare("gradient", g, fd_g.value, fd_g.error, names_1d, dtype,
                                     excluded_1d, top)
    checks = [Check("gradient", "gradient", "central differences of function values",
                    passed, max_rel, worst, fd_g.evaluations)]
    if hess_checks:
        pair_names = [
            (f"({layout.name(i)}, {layout.name(j)})", (layout.name(i), layout.name(j)))
            for i in range(n) for j in range(n)
        ]
        excluded_2d = excluded_1d[:, None] | excluded_1d[None, :]
        for key, what, reference, est in hess_checks:
            ok, mrel, w = compare(key, hess, est.value, est.error, pair_names, dtype,
                                  excluded_2d, top)
            checks.append(Check(key, what, reference, ok, mrel, w, est.evaluations))
    if n > MAX_DENSE:
        checks.append(Check("hessian_fd_gradient", "Hessian",
                            "central differences of the exact gradient", None, None, (), 0,
                            skipped=f"n = {n} > {MAX_DENSE}: no dense Hessian"))
    if n > MAX_VALUE_HESSIAN:
        checks.append(Check(
            "hessian_fd_values", "Hessian", "second differences of function values", None,
            None, (), 0,
            skipped=f"n = {n} > {MAX_VALUE_HESSIAN}: would need about n² = {n * n} evaluations",
        ))
    return GradCheck(
        objective=objective.label,
        n=n,
        dtype=dtype,
        accuracy=accuracy,
        tolerance=math.sqrt(eps(dtype)),
        checks=tuple(checks),
        nonsmooth=tuple(layout.name(i) for i in sorted(kink_params)),
        passed=all(c.passed is not False for c in checks),
    )
