"""``hesscli problems``: the built-in problems and their ``-p`` parameters."""

from __future__ import annotations

import click

from hesscli.cli.options import format_option


@click.command("problems")
@format_option
def command(fmt: str) -> None:
    """List built-in problems and their parameters (-p KEY=VALUE).

    Each built-in problem is an ordinary objective file; read it to learn the
    protocol (its path is shown with --format json).
    """
    from hesscli.objective.problems_index import all_problems

    problems = all_problems()
    if fmt == "json":
        from hesscli.render.jsonout import dump

        dump({
            "schema": "hesscli.problems/1",
            "problems": [
                {
                    "name": p.name,
                    "summary": p.summary,
                    "path": str(p.path),
                    "parameters": [
                        {"name": k, "default": d, "description": desc}
                        for k, d, desc in p.parameters
                    ],
                }
                for p in problems
            ],
        })
        return
    from hesscli.render.console import stdout_console
    from hesscli.render.problems_view import render_problems

    render_problems(problems, stdout_console())
