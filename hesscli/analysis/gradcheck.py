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

Each comparison's "worst" entries are ranked by that reported relative error
(entries below resolution last), so the first one is the maximum the summary
reports; the overall list takes the failing comparisons first, gradient before
Hessian. The
Hessian comparisons need the dense Hessian: they run up to the dense limit
every command shares (:func:`hesscli.spectra.route.dense_limit`, from the
dense budget); (3) is further limited by its cost, about n² evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hesscli.jaxconf import eps
from hesscli.objective.bind import Objective

if TYPE_CHECKING:
    from hesscli.curvature.stencils import Estimate

SAFETY = 10.0
MAX_VALUE_HESSIAN = 200  # a cost limit (n² function evaluations), not a memory one


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
    counted: bool = True  # False: passing and below finite-difference resolution


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
        # failing checks first, in order (a wrong gradient explains a wrong Hessian),
        # each check's entries ranked by the relative error it reports
        order = sorted(range(len(self.checks)), key=lambda i: self.checks[i].passed is not False)
        return tuple(e for i in order for e in sorted(self.checks[i].worst, key=rank))


def rank(e: Entry) -> tuple[bool, float, float]:
    """Sort key of the worst lists: by the reported relative error (counted first)."""
    return (not e.counted, -e.rel_error, -e.ratio)


def compare(
    key: str, exact: np.ndarray, fd: np.ndarray, error: np.ndarray,
    names: Callable[[int], tuple[str, tuple[str, ...]]], dtype: str, excluded: np.ndarray,
    top: int,
) -> tuple[bool, float, tuple[Entry, ...]]:
    """Entry-wise comparison (see module docstring): passed, max relative error, worst.

    ``names(i)`` names flat entry ``i`` (called only for the worst, so an n² list of
    names is never built).
    """
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
    # ranked by the reported error: counted entries by rel (then ratio), then the rest
    order = np.lexsort((-ratio, -np.nan_to_num(rel, posinf=np.finfo(float).max),
                        ~counted, ~keep))[: min(top, int(keep.sum()))]
    worst = tuple(
        Entry(key, *names(int(i)), float(exact[i]), float(fd[i]), float(rel[i]),
              float(allowed[i]), float(ratio[i]), bool(counted[i]))
        for i in order
    )
    return passed, max_rel, worst


def gradcheck(
    objective: Objective, accuracy: str = "normal", top: int = 5, *,
    dense_limit: int | None = None,
) -> GradCheck:
    """Run the three comparisons at ``objective.x``.

    The Hessian comparisons run up to ``dense_limit`` parameters (default: the
    shared policy, :func:`hesscli.spectra.route.dense_limit`).
    """
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
    from hesscli.spectra import route

    max_dense = route.dense_limit() if dense_limit is None else dense_limit
    x = np.asarray(objective.x, dtype=np.float64)
    n, dtype, layout = objective.n, objective.dtype, objective.layout
    exact = ExactCurvature(objective)
    fx, g = exact.value_and_gradient(x)
    values = Values(objective)
    fd_g = value_gradient(values, x, ladder(1, accuracy, dtype), fx=fx)

    kink_params: set[int] = set()
    hess_checks: list[tuple[str, str, str, Estimate]] = []
    if n <= max_dense:
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
    def names_1d(i: int) -> tuple[str, tuple[str, ...]]:
        return layout.name(i), (layout.name(i),)

    passed, max_rel, worst = compare("gradient", g, fd_g.value, fd_g.error, names_1d, dtype,
                                     excluded_1d, top)
    checks = [Check("gradient", "gradient", "central differences of function values",
                    passed, max_rel, worst, fd_g.evaluations)]
    if hess_checks:
        def pair_names(k: int) -> tuple[str, tuple[str, ...]]:
            i, j = divmod(k, n)
            return f"({layout.name(i)}, {layout.name(j)})", (layout.name(i), layout.name(j))

        excluded_2d = excluded_1d[:, None] | excluded_1d[None, :]
        for key, what, reference, est in hess_checks:
            ok, mrel, w = compare(key, hess, est.value, est.error, pair_names, dtype,
                                  excluded_2d, top)
            checks.append(Check(key, what, reference, ok, mrel, w, est.evaluations))
    if n > max_dense:
        checks.append(Check("hessian_fd_gradient", "Hessian",
                            "central differences of the exact gradient", None, None, (), 0,
                            skipped=f"n = {n} > {max_dense} (dense limit): no dense "
                            "Hessian"))
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
