"""Evaluating a spec: each check's expectations against the same analyses the commands run.

A check loads its objective once, then computes on demand and at most once
what its expectations need, through the Python API (:mod:`hesscli.api`), so
the numbers are the commands' own: :func:`hesscli.api.analyze` (with the same
spectrum policy: dense within the dense budget, matrix-free above it),
:func:`hesscli.api.convexity` (once per distinct region, sharing the analysis's
backend) and :func:`hesscli.api.gradcheck`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hesscli import api
from hesscli.checks.registry import ANALYSES, measure
from hesscli.checks.spec import CheckSpec, Spec
from hesscli.errors import HesscliError, InputError
from hesscli.expect import Expectation, Outcome


@dataclass(frozen=True)
class CheckResult:
    name: str
    objective: str
    at: str | None
    n: int
    outcomes: tuple[Outcome, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)


@dataclass(frozen=True)
class Report:
    spec: str
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def counts(self) -> tuple[int, int]:
        """(passed, total) expectations."""
        outcomes = [o for c in self.checks for o in c.outcomes]
        return sum(o.passed for o in outcomes), len(outcomes)


class CheckContext:
    """The objective of one check and its lazily computed analyses."""

    def __init__(self, check: CheckSpec, dense_budget: int | str | None = None) -> None:
        self.check = check
        self.dense_budget = dense_budget
        self.obj = api.load(check.objective, check.at, check.params, seed=check.seed,
                            dtype=check.dtype, method=check.method)
        self._analysis: api.Result | None = None
        self._document: dict[str, Any] = {}
        self._convexity: dict[str, Any] = {}
        self._gradcheck: Any = None

    def analysis(self) -> dict[str, Any]:
        """The ``hesscli.analyze/1`` document of the check's point (what ``analyze`` prints)."""
        if self._analysis is None:
            c = self.check
            # the optional reports run when some expectation reads them (blocks.*, null_space.*)
            heads = {e.expectation.key.split(".")[0] for e in c.expectations
                     if e.expectation is not None}
            self._analysis = api.analyze(self.obj, method=c.method, dtype=c.dtype, seed=c.seed,
                                         lr=c.lr, gtol=c.gtol, tol=c.tol,
                                         dense_budget=self.dense_budget,
                                         blocks="leaf" if "blocks" in heads else None,
                                         null_space="null_space" in heads)
            self._document = self._analysis.to_json()
        return self._document

    def convexity(self, options: dict[str, Any]) -> Any:
        key = json.dumps({k: v for k, v in options.items() if k != "verdict"}, sort_keys=True)
        if key not in self._convexity:
            c = self.check
            around = options.get("around")
            if around is not None:  # the center, as the check's own point is read
                around = api.load(self.obj, around, seed=c.seed, dtype=c.dtype,
                                  method=c.method).x
            self._convexity[key] = api.convexity(
                self.obj, boxes=options.get("box", ()), around=around,
                radius=options.get("radius", 1.0), samples=options.get("samples", 1000),
                hessian_points=options.get("hessian_points", 20),
                seed=options.get("seed", c.seed), rtol=options.get("rtol"),
                atol=options.get("atol", 0.0), method=c.method, dtype=c.dtype,
                curvature=self._analysis.curvature if self._analysis is not None else None,
                dense_budget=self.dense_budget,
            ).output
        return self._convexity[key]

    def gradcheck(self) -> Any:
        if self._gradcheck is None:
            self._gradcheck = api.gradcheck(self.obj, dtype=self.check.dtype,
                                            seed=self.check.seed,
                                            dense_budget=self.dense_budget).output
        return self._gradcheck


def run_check(check: CheckSpec, dense_budget: int | str | None = None) -> CheckResult:
    try:
        ctx = CheckContext(check, dense_budget)
        outcomes = []
        for exp in check.expectations:
            if exp.expectation is not None:
                outcomes.append(measure(ctx, exp.expectation))
                continue
            kind = ANALYSES[exp.key]
            value, passed, detail = kind.measure(ctx, exp.value)
            said = Expectation(exp.path, exp.key, "=", kind.expected_text(exp.value))
            outcomes.append(Outcome(said, value, passed, detail=detail))
    except HesscliError as exc:
        exc.args = (f"check {check.name!r}: {exc}",)
        raise
    return CheckResult(check.name, check.objective, check.at, ctx.obj.n, tuple(outcomes))


def run_spec(spec: Spec, dense_budget: int | str | None = None) -> Report:
    """Every check of ``spec``, in order (an objective that fails ends the run: exit 3).

    ``dense_budget``: the dense path's budget (None: the environment or the default).
    """
    if not spec.checks:
        raise InputError("the spec holds no checks")
    return Report(spec.path, tuple(run_check(c, dense_budget) for c in spec.checks))
