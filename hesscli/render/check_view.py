"""The ``check`` report: pass/fail per expectation, measured beside expected."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hesscli.checks.report import Report
from hesscli.render.numbers import num


def measured_text(value: Any) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return num(float(value), 6) if isinstance(value, float) else str(value)
    return str(value)


def render_report(report: Report, console: Console) -> None:
    table = Table(title=f"hesscli check {report.spec}", title_justify="left")
    table.add_column("check", max_width=14)
    table.add_column("expectation", no_wrap=True)
    table.add_column("expected", overflow="fold")
    table.add_column("measured", overflow="fold")
    table.add_column("result", no_wrap=True)
    for check in report.checks:
        for i, o in enumerate(check.outcomes):
            measured = measured_text(o.measured) + (f"  ({o.detail})" if o.detail else "")
            table.add_row(
                check.name if i == 0 else "",
                o.key, o.expected, measured,
                Text("pass", style="green") if o.passed else Text("FAIL", style="bold red"),
            )
        table.add_section()
    console.print(table)
    ok, total = report.counts
    checks_ok = sum(c.passed for c in report.checks)
    line = (f"{ok} of {total} expectations hold; {checks_ok} of {len(report.checks)} checks "
            "pass.")
    console.print(Text(line, style="green" if report.passed else "bold red"))
