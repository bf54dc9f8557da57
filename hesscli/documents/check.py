"""The ``hesscli.check/1`` document: a :class:`~hesscli.checks.run.Report` as JSON."""

from __future__ import annotations

from typing import Any

from hesscli.checks.run import Report


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
