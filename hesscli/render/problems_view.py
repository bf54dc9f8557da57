"""The ``problems`` listing."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hesscli.problems_index import ProblemInfo


def render_problems(problems: list[ProblemInfo], console: Console) -> None:
    table = Table(title="Built-in problems (hesscli analyze NAME -p KEY=VALUE ...)",
                  title_justify="left", show_lines=True)
    table.add_column("name", style="bold")
    table.add_column("what it shows")
    table.add_column("parameters (-p KEY=VALUE)")
    for p in problems:
        params = "\n".join(f"{k}={d!r}  {desc}" for k, d, desc in p.parameters) or "—"
        table.add_row(p.name, p.summary, params)
    console.print(table)
