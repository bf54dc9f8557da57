"""Evaluating a spec: each check's expectations against the same analyses the commands run.

A check loads its objective once, then computes on demand and at most once
what its expectations need, through the Python API (:mod:`hesscli.api`, which
hands its functions to :func:`run_spec` as :class:`Commands`), so
the numbers are the commands' own: :func:`hesscli.api.analyze` (with the same
spectrum policy: dense within the dense budget, matrix-free above it),
:func:`hesscli.api.convexity` (once per distinct region, sharing the analysis's
backend) and :func:`hesscli.api.gradcheck`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hesscli.checks.registry import ANALYSES, measure
from hesscli.checks.report import CheckResult, Report
from hesscli.checks.spec import CheckSpec, Spec
from hesscli.errors import HesscliError, InputError
from hesscli.expect import Expectation, Outcome


@dataclass(frozen=True)
class Commands:
    """The API functions a check computes with. :func:`hesscli.api.check` passes its own
    (``load``, ``analyze``, ``convexity``, ``gradcheck``), so a check's numbers are the
    commands' while this module, below the API, imports nothing above it."""

    load: Callable[..., Any]
    analyze: Callable[..., Any]
    convexity: Callable[..., Any]
    gradcheck: Callable[..., Any]


class CheckContext:
    """The objective of one check and its lazily computed analyses."""

    def __init__(self, check: CheckSpec, api: Commands,
                 dense_budget: int | str | None = None) -> None:
        self.check = check
        self.api = api
        self.dense_budget = dense_budget
        self.obj = api.load(check.objective, check.at, check.params, seed=check.seed,
                            dtype=check.dtype, method=check.method)
        self._analysis: Any = None  # the api.Result of analyze
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
            self._analysis = self.api.analyze(self.obj, method=c.method, dtype=c.dtype,
                                              seed=c.seed, lr=c.lr, gtol=c.gtol, tol=c.tol,
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
                around = self.api.load(self.obj, around, seed=c.seed, dtype=c.dtype,
                                  method=c.method).x
            self._convexity[key] = self.api.convexity(
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
            self._gradcheck = self.api.gradcheck(self.obj, dtype=self.check.dtype,
                                                 seed=self.check.seed,
                                                 dense_budget=self.dense_budget).output
        return self._gradcheck


def run_check(check: CheckSpec, api: Commands,
              dense_budget: int | str | None = None) -> CheckResult:
    try:
        ctx = CheckContext(check, api, dense_budget)
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


def run_spec(spec: Spec, api: Commands, dense_budget: int | str | None = None) -> Report:
    """Every check of ``spec``, in order (an objective that fails ends the run: exit 3).

    ``api``: the API functions the checks compute with; ``dense_budget``: the dense
    path's budget (None: the environment or the default).
    """
    if not spec.checks:
        raise InputError("the spec holds no checks")
    return Report(spec.path, tuple(run_check(c, api, dense_budget) for c in spec.checks))
