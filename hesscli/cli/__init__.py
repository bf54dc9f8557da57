"""The command line: a thin Click layer that parses, wires and decides exit codes.

Commands are imported lazily (``hesscli --help`` must not import JAX), and every
exit goes through :meth:`HessGroup.main`, which turns whatever ended the command
into one ``error: <message>`` line on stderr and the documented exit code
(:mod:`hesscli.cli.outcome`): 2 for usage errors and bad input, 3 when the
objective failed, 4 for anything hesscli did not anticipate (a bug), 130 on
Ctrl-C. ``--debug`` adds the traceback and keeps the code.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any

import click

from hesscli.version import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, short help shown by `hesscli --help` without importing it)
    "problems": ("hesscli.cli.problems_cmd", "List built-in problems and their parameters."),
    "analyze": ("hesscli.cli.analyze_cmd", "Gradient, Hessian spectrum, verdict, step, escape."),
    "gradcheck": ("hesscli.cli.gradcheck_cmd", "Exact derivatives vs finite differences."),
    "convexity": ("hesscli.cli.convexity_cmd", "Sampled convexity test with a witness."),
    "check": ("hesscli.cli.check_cmd", "Expectations from a checks.yaml for CI (exit 1 on fail)."),
    "landscape": ("hesscli.cli.landscape_cmd",
                  "Slices of f around a point with the quadratic model overlaid."),
    "train": ("hesscli.cli.train_cmd", "GD/SGD/any optax optimizer, noisy SGD, curvature watched."),
    "spectrum": ("hesscli.cli.spectrum_cmd",
                 "Eigenvalues (all or extremes), density, trace, plot."),
}


def guard_user_output(callback: Any) -> Any:
    """Run a command with user code's prints on stderr (see :mod:`hesscli.render.streams`)
    and with ``os._exit`` from user code turned into an objective error."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        from hesscli import sigint
        from hesscli.cli.outcome import exit_guarded
        from hesscli.render.streams import user_output_to_stderr

        sigint.command_running(True)  # from here a Ctrl-C unwinds (logs, temporaries)
        with user_output_to_stderr(), exit_guarded():
            return callback(*args, **kwargs)

    return run


class HessGroup(click.Group):
    """A group that loads commands on demand and owns error reporting."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name][0])
        command: click.Command = module.command
        if not getattr(command, "_user_output_guarded", False) and command.callback:
            command.callback = guard_user_output(command.callback)
            command._user_output_guarded = True  # type: ignore[attr-defined]
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else None
        if name is not None and name not in COMMANDS and not name.startswith("-"):
            from hesscli.errors import closest

            raise click.UsageError(
                f"no such command {name!r}{closest(name, list(COMMANDS))}; see 'hesscli --help'"
            )
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, EOFError, BrokenPipeError) as exc:
            # Click would print a blank line and "Aborted!" (or exit 1 on a closed pipe);
            # report them in one place instead
            from hesscli.cli.outcome import Interrupted, Unexpected

            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted() from None
            raise Unexpected(exc) from exc

    def main(  # type: ignore[override]
        self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
        standalone_mode: bool = True, **extra: Any,
    ) -> Any:
        """Run the CLI; every ending (result, error, usage error, Ctrl-C, bug) is mapped to
        one stderr line and an exit code by :func:`hesscli.cli.outcome.finish`."""
        from hesscli.cli.outcome import finish, interrupts_end_cleanly, one_line_warnings

        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv[: argv.index("--")] if "--" in argv else "--debug" in argv
        with interrupts_end_cleanly(), one_line_warnings():
            try:
                from hesscli.cli.outcome import stderr_closed, stdout_closed

                stderr_closed()
                closed = stdout_closed()
                if closed is not None:
                    raise closed
                rv = super().main(argv, prog_name, complete_var, standalone_mode=False,
                                  **extra)
                code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
            except BaseException as exc:  # noqa: BLE001 - every ending goes through finish
                code = finish(exc, debug)
            else:
                from hesscli import sigint

                if sigint.interrupted():  # a Ctrl-C some callback swallowed: not a result
                    from hesscli.cli.outcome import Interrupted

                    code = finish(Interrupted(), debug)
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=HessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hesscli")
@click.option("--debug", is_flag=True,
              help="Show the traceback with the one-line error (exit codes stay the same).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Debug optimization with second-order information.

    Point hesscli at a loss function (a Python file, or a built-in problem) and a
    point: is it a minimum, a saddle or neither? How badly conditioned is the
    Hessian? Will a gradient step with this learning rate decrease the loss?
    Which direction escapes this saddle?

    \b
    Examples:
      hesscli problems
      hesscli analyze rosenbrock --at 1,1
      hesscli analyze saddle --at zeros
      hesscli analyze my_loss.py --at x.npy --format json
    """
    from hesscli.cli.context import App

    ctx.obj = App(debug=debug)


def main() -> None:
    """The ``hesscli`` entry point (exit codes are decided in :meth:`HessGroup.main`)."""
    cli.main(prog_name="hesscli")
