"""The run context every command shares, kept on ``ctx.obj`` (after hatch's ``Application``).

The group creates one :class:`App` per invocation; a command reads its own
options from ``ctx.params`` through it instead of a long parameter list, calls
the Python API with the options that API function takes (:meth:`App.call`,
matched by name, so each option is declared once, in its decorator), and hands
the result to :meth:`App.report`, which evaluates ``--expect``, prints the
JSON document or the Rich table from process 0, and returns the pending
expectations for the command to enforce after its own checks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

#: Options every command may have that belong to the command line, not to the API.
CLI_OPTIONS = frozenset({"fmt", "expects", "coordinator", "num_processes", "process_id",
                         "progress"})


@dataclass
class App:
    """Shared state and helpers for one ``hesscli`` invocation."""

    debug: bool = False

    @staticmethod
    def current() -> App:
        """The App of the running invocation (a fresh one outside the group, e.g. in tests)."""
        ctx = click.get_current_context()
        app = ctx.find_object(App)
        return app if app is not None else App()

    @property
    def params(self) -> dict[str, Any]:
        """The running command's options, by parameter name."""
        return click.get_current_context().params

    @property
    def fmt(self) -> str:
        return str(self.params.get("fmt", "table"))

    def start(self) -> None:
        """Join a multi-process run when the command takes ``--devices`` (before loading)."""
        p = self.params
        if "devices" in p:
            from hesscli.cli.session import start

            start(p["devices"], p.get("coordinator"), p.get("num_processes"),
                  p.get("process_id"))

    def call(self, fn: Callable[..., Any], *, cli_only: tuple[str, ...] = (),
             **overrides: Any) -> Any:
        """``fn(**options)`` with the command's options that ``fn`` takes, by name.

        Every option must be taken by ``fn``, be one of :data:`CLI_OPTIONS`, or be
        named in ``cli_only`` (the command handles it): an option that matches
        nothing is a programming error, not something to drop silently.
        """
        names = inspect.signature(fn).parameters
        stray = set(self.params) - set(names) - CLI_OPTIONS - set(cli_only)
        if stray:
            raise TypeError(f"{fn.__name__} takes no option {', '.join(sorted(stray))}")
        kwargs = {k: v for k, v in self.params.items() if k in names}
        kwargs.update(overrides)
        return fn(**kwargs)

    def report(self, result: Any, table: Callable[[Any], None]) -> Any:
        """Check ``--expect`` against the result's document, then print it (JSON or
        ``table(console)``); returns the pending expectations (``.enforce()`` them last)."""
        from hesscli.cli.session import emit
        from hesscli.expect import expectations

        doc = result.document()
        pending = expectations(self.params.get("expects", ()), doc)
        emit(doc, self.fmt, table)
        return pending
