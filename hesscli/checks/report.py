"""What ``hesscli check`` found (:class:`Report`: each check's outcomes) and its
``hesscli.check/1`` document.

The document lives here, beside the results it writes, and not in
:mod:`hesscli.documents`: the outcomes are the expectation engine's
(:mod:`hesscli.expect`), a layer above the documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hesscli.expect import Outcome


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



def report_document(report: Report, meta: dict[str, Any]) -> dict[str, Any]:
    """The ``hesscli.check/1`` JSON document."""
    ok, total = report.counts
    return {
        "schema": "hesscli.check/1",
        "spec": report.spec,
        "passed": report.passed,
        "expectations_passed": ok,
        "expectations_total": total,
        "checks": [
            {
                "name": c.name, "objective": c.objective, "at": c.at, "n": c.n,
                "passed": c.passed,
                "results": [
                    {"key": o.key, "path": o.path, "expected": o.expected,
                     "measured": o.measured, "passed": o.passed, "detail": o.detail}
                    for o in c.outcomes
                ],
            }
            for c in report.checks
        ],
        "meta": meta,
    }
