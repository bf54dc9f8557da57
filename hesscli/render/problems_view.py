"""The ``problems`` listing: one block per problem, its ``-p`` parameters below it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hesscli.objective.problems_index import ProblemInfo


def render_problems(problems: list[ProblemInfo], console: Console) -> None:
    console.print(Text("Built-in problems: hesscli analyze NAME [-p KEY=VALUE ...]", style="bold"))
    for p in problems:
        console.print()
        console.print(Text(p.name, style="bold"))
        console.print(Text(f"  {p.summary}"))
        if not p.parameters:
            console.print(Text("  (no parameters)", style="dim"))
            continue
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(style="dim")
        for key, default, description in p.parameters:
            grid.add_row(f"  -p {key}={default!r}", description)
        console.print(grid)
