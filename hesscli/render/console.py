"""The Rich consoles: reports on stdout, diagnostics and progress on stderr."""

from __future__ import annotations

from rich.console import Console


def stdout_console() -> Console:
    from hesscli.render.streams import report_stream

    return Console(file=report_stream(), highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)
