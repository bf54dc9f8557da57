"""Evaluating a spec: each check's expectations against the same analyses the commands run.

A check loads its objective once, then computes on demand and at most once
what its expectations need: :func:`hesscli.analysis.analyze.analyze` (the
``analyze`` command's numbers), :func:`hesscli.analysis.convexity.convexity`
(the ``convexity`` command's test, once per distinct region) and gradcheck.
Loading and backend choice come from the CLI's session glue, passed in as
``session`` so this module imports neither click nor the CLI. The dense or
matrix-free choice is the one every command makes
(:func:`hesscli.spectra.paths.choose_path`, from ``$HESSCLI_DENSE_BUDGET`` or
the default budget), so a check measures what ``analyze`` prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from hesscli.checks.registry import KINDS, Measured
from hesscli.checks.spec import CheckSpec, Spec
from hesscli.errors import HesscliError, InputError


class Session(Protocol):
    def load(self, objective: str, at: str | None, params: tuple[str, ...], *, seed: int,
             dtype: str, method: str) -> Any: ...

    def curvature_for(self, obj: Any, method: str) -> tuple[Any, tuple[str, ...]]: ...


@dataclass(frozen=True)
class Outcome:
    key: str
    path: str
    expected: str
    measured: Any
    passed: bool
    detail: str


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

    def __init__(self, check: CheckSpec, session: Session) -> None:
        self.check = check
        self.session = session
        self.obj = session.load(check.objective, check.at, check.params, seed=check.seed,
                                dtype=check.dtype, method=check.method)
        self._curvature: tuple[Any, tuple[str, ...]] | None = None
        self._analysis: Any = None
        self._convexity: dict[str, Any] = {}
        self._gradcheck: Any = None

    def curvature(self) -> tuple[Any, tuple[str, ...]]:
        if self._curvature is None:
            self._curvature = self.session.curvature_for(self.obj, self.check.method)
        return self._curvature

    def analysis(self) -> Any:
        if self._analysis is None:
            from hesscli.analysis.analyze import analyze
            from hesscli.spectra.paths import choose_path

            curvature, notes = self.curvature()
            c = self.check
            spectrum = None  # dense: analyze forms H itself
            choice = choose_path(self.obj.n)
            if choice.path == "matrix-free":
                from hesscli.spectra.matrix_free import extremes_of, matrix_free_spectrum

                ex = extremes_of(curvature, self.obj.x, k=1, seed=c.seed)
                spectrum = matrix_free_spectrum(ex, self.obj.dtype)
                notes = notes + (choice.reason,)
            self._analysis = analyze(self.obj, curvature, lr=c.lr, gtol=c.gtol, tol=c.tol,
                                     spectrum=spectrum, notes=notes)
        return self._analysis

    def convexity(self, options: dict[str, Any]) -> Any:
        key = json.dumps({k: v for k, v in options.items() if k != "verdict"}, sort_keys=True)
        if key not in self._convexity:
            from hesscli.analysis.convexity import (
                ball,
                box,
                convexity,
                eigen_test_spectrum,
                hessian_backend,
            )

            obj = self.obj
            if "box" in options:
                region: Any = box(options["box"], obj.n)
            else:
                center = obj.x
                if "around" in options:
                    center = self.session.load(
                        self.check.objective, options["around"], self.check.params,
                        seed=self.check.seed, dtype=self.check.dtype, method=self.check.method,
                    ).x
                region = ball(center, options.get("radius", 1.0))
            curvature, skipped, notes = hessian_backend(
                obj, self.check.method, lambda o, m: self.curvature())
            spectrum_fn = None
            if curvature is not None and skipped is None:
                seed = options.get("seed", self.check.seed)
                spectrum_fn, free_notes = eigen_test_spectrum(obj, seed)
                notes = notes + free_notes
            self._convexity[key] = convexity(
                obj, curvature, region, pairs=options.get("samples", 1000),
                hessian_points=options.get("hessian_points", 20),
                seed=options.get("seed", self.check.seed), rtol=options.get("rtol"),
                atol=options.get("atol", 0.0), hessian_skipped=skipped, notes=notes,
                spectrum_fn=spectrum_fn,
            )
        return self._convexity[key]

    def gradcheck(self) -> Any:
        # The one adapter to the gradcheck analysis (exact derivatives vs finite
        # differences; it needs no curvature backend).
        if self._gradcheck is None:
            from hesscli.analysis.gradcheck import gradcheck

            self._gradcheck = gradcheck(self.obj)
        return self._gradcheck


def run_check(check: CheckSpec, session: Session) -> CheckResult:
    try:
        ctx = CheckContext(check, session)
        outcomes = []
        for exp in check.expectations:
            kind = KINDS[exp.key]
            measured: Measured = kind.measure(ctx, exp.value)
            outcomes.append(Outcome(exp.key, exp.path, kind.expected_text(exp.value),
                                    measured.value, measured.passed, measured.detail))
    except HesscliError as exc:
        exc.args = (f"check {check.name!r}: {exc}",)
        raise
    return CheckResult(check.name, check.objective, check.at, ctx.obj.n, tuple(outcomes))


def run_spec(spec: Spec, session: Session) -> Report:
    """Every check of ``spec``, in order (an objective that fails ends the run: exit 3)."""
    if not spec.checks:
        raise InputError("the spec holds no checks")
    return Report(spec.path, tuple(run_check(c, session) for c in spec.checks))
