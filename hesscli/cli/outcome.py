"""How a command ends: one stderr line and one exit code for every kind of ending.

:func:`finish` is the single mapping (called by :meth:`hesscli.cli.HessGroup.main`):

====  ==========================================================================
 0    done
 1    a check failed (:class:`~hesscli.errors.CheckFailed`)
 2    invalid input (:class:`~hesscli.errors.InputError`, Click usage errors,
      a full or read-only disk while writing, out of memory for the request)
 3    the objective failed (:class:`~hesscli.errors.ObjectiveError`, or any
      exception raised inside the objective file's own code)
 4    internal error: an exception hesscli did not anticipate — a bug
130   interrupted (Ctrl-C)
====  ==========================================================================

``--debug`` prints the traceback before the line and keeps the code. The
other helpers here keep stray output from breaking the one-line contract:
Python warnings become ``warning: …`` lines, a second Ctrl-C ends the process
at once instead of printing a threading traceback, and ``os._exit`` called by
user code becomes an objective error instead of a silent exit 0.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from hesscli.errors import HesscliError, ObjectiveError

INTERRUPTED = 130
INTERNAL = 4
_WRITE_ERRNOS = {"ENOSPC", "EROFS", "EDQUOT", "EACCES", "EPERM", "EFBIG", "EISDIR", "ENOENT",
                 "ENOTDIR", "ETXTBSY"}


_STREAM_ERRNOS = {"ENOSPC", "EIO", "EDQUOT", "EFBIG", "EBADF"}


def stdout_closed() -> HesscliError | None:
    """An input error when file descriptor 1 was closed before hesscli started (Python
    then sets ``sys.stdout`` to None): the report would have nowhere to go, and the
    first file hesscli opened would take descriptor 1."""
    if sys.stdout is not None:
        return None
    from hesscli.errors import InputError

    return InputError("standard output is closed, so the report has nowhere to go; run with "
                      "stdout open (redirect it to a file, e.g. > report.txt, or to /dev/null)")


def stderr_closed() -> None:
    """A closed stderr (fd 2 closed before start: ``sys.stderr`` is None) becomes
    /dev/null: the diagnostics are lost, the command and its exit code are not."""
    if sys.stderr is None:
        _quiet_stderr()


def say(line: str) -> None:
    """Write one line to stderr; a closed or full stderr loses the line, never the exit
    code (the code is what a script reads)."""
    try:
        click.echo(line, err=True)
    except (OSError, ValueError, AttributeError, TypeError):
        _quiet_stderr()
        return
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        _quiet_stderr()


def _quiet_stderr() -> None:
    """Point descriptor 2 and ``sys.stderr`` at /dev/null (what could not be written is
    dropped instead of failing again at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != 2:  # fd 2 closed: os.open took it already
            os.dup2(devnull, 2)
            os.close(devnull)
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - lives until the end
    except OSError:
        pass


class Interrupted(Exception):
    """Ctrl-C ended the command (Click would otherwise turn it into "Aborted!")."""


class Unexpected(Exception):
    """Carries an exception Click would swallow (EOFError) to :func:`finish`."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


MAX_MESSAGE = 2000  # characters of an error line: a message quoting a huge value is cut


def _one_line(text: str) -> str:
    text = str(text)
    if len(text) > 4 * MAX_MESSAGE:
        text = text[: 4 * MAX_MESSAGE]  # never split the lines of a megabyte message
    line = "; ".join(part.strip() for part in text.strip().splitlines() if part.strip())
    if len(line) > MAX_MESSAGE:
        line = f"{line[: MAX_MESSAGE - 40]}… (message cut at {MAX_MESSAGE} characters)"
    return line


def objective_frame(exc: BaseException) -> tuple[str, int] | None:
    """(file name, line) of the innermost frame of ``exc`` in an objective file, if any.

    Objective files are imported as modules named ``hesscli_objective_*``
    (:func:`hesscli.objective.files.import_file`); an exception raised by their
    code is the objective's failure (exit 3), wherever hesscli called it from.
    """
    found = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(name, str) and name.startswith("hesscli_objective_"):
            found = (os.path.basename(tb.tb_frame.f_code.co_filename), tb.tb_lineno)
        tb = tb.tb_next
    return found


def classify(exc: BaseException) -> tuple[int, str]:
    """The exit code and the ``error:`` message for an exception that ended a command."""
    if isinstance(exc, Unexpected):
        exc = exc.cause
    if isinstance(exc, HesscliError):
        return exc.exit_code, _one_line(str(exc))
    if isinstance(exc, (Interrupted, KeyboardInterrupt, click.Abort)):
        return INTERRUPTED, "interrupted"
    if isinstance(exc, click.UsageError):
        hint = ""
        if exc.ctx is not None:
            hint = f"; see '{exc.ctx.command_path} --help'"
        return 2, _one_line(exc.format_message()).rstrip(".") + hint
    if isinstance(exc, click.ClickException):
        return exc.exit_code, _one_line(exc.format_message())
    what = f"{type(exc).__name__}: {_one_line(str(exc))}" if str(exc) else type(exc).__name__
    where = objective_frame(exc)
    if where is not None:
        return ObjectiveError.exit_code, (f"the objective raised {what[:300]} "
                                          f"(at {where[0]}:{where[1]})")
    if isinstance(exc, MemoryError) or "RESOURCE_EXHAUSTED" in str(exc)[:200]:
        return 2, ("out of memory: the request is too large for this machine; ask for less "
                   "(a smaller problem, --matrix-free, fewer samples or points)")
    if isinstance(exc, RecursionError):
        return 2, "the input is nested too deeply to process (recursion limit reached)"
    if isinstance(exc, OSError) and exc.errno is not None and exc.filename is not None:
        import errno

        if errno.errorcode.get(exc.errno) in _WRITE_ERRNOS:
            return 2, f"cannot use {str(exc.filename)!r}: {exc.strerror}"
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        import errno

        if errno.errorcode.get(exc.errno) in _STREAM_ERRNOS:  # a stream, not a named file
            return 2, (f"cannot write the output: {exc.strerror} (standard output is full "
                       "or closed); send it to a file or a pipe with room")
    return INTERNAL, f"internal error: {what[:300]}; rerun with --debug and report it"


def finish(exc: BaseException, debug: bool) -> int:
    """Report ``exc`` (one line, traceback first with ``--debug``); return the exit code."""
    if isinstance(exc, SystemExit) and (where := objective_frame(exc)) is not None:
        exc = ObjectiveError(f"the objective called sys.exit({exc.code!r}) (at {where[0]}:"
                             f"{where[1]}), which would end hesscli without a result; return a "
                             "value (or raise an exception) instead")
    if isinstance(exc, SystemExit) and (exc.code is None or isinstance(exc.code, int)):
        return int(exc.code or 0)  # hesscli's own exits (and click's) keep their code
    if isinstance(exc, click.exceptions.Exit):
        return int(exc.exit_code)
    if isinstance(exc, Unexpected) and isinstance(exc.cause, BrokenPipeError):
        exc = exc.cause
    if isinstance(exc, BrokenPipeError):  # `hesscli ... | head`: the reader left; stay quiet
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", ())
    if no_args and isinstance(exc, no_args):  # bare `hesscli`: the help, as Click shows it
        exc.show()
        return int(exc.exit_code)
    from hesscli import sigint

    if sigint.interrupted():  # the real cause, even when a callback swallowed the Ctrl-C
        exc = Interrupted()
    code, message = classify(exc)
    if debug and not isinstance(exc, (click.UsageError, Interrupted, KeyboardInterrupt)):
        import traceback

        cause = exc.cause if isinstance(exc, Unexpected) else exc
        try:
            traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)
        except (OSError, ValueError, AttributeError):
            pass
    say(f"error: {message}")
    if code == INTERRUPTED:
        sigint.mark_reported()
    return code


@contextlib.contextmanager
def interrupts_end_cleanly() -> Iterator[None]:
    """Ctrl-C during the command: one ``error: interrupted`` line and 130 (:mod:`hesscli.sigint`).

    The handler is installed from the process's first instruction when it is the
    ``hesscli`` command, here otherwise (in-process runs; given back afterwards
    unless interrupted). Start-up and teardown exit at once; while the command's
    code runs the first Ctrl-C raises KeyboardInterrupt, a second one exits at
    once; an interrupt a callback swallowed still ends the command with 130.
    """
    from hesscli import sigint

    early = sigint.active()
    if not sigint.install():
        yield  # someone else (a host application, a test runner) owns Ctrl-C
        return
    if not early:  # in-process (no start-up to protect): the command's code runs now
        sigint.reset()
        sigint.command_running(True)
    try:
        yield
    finally:
        sigint.command_running(False)  # teardown: a Ctrl-C now exits at once
        if not early and not sigint.interrupted():
            sigint.uninstall()


_seen_warnings: set[str] = set()


def show_warning(message: Any, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    """``warnings.showwarning`` as one ``warning: …`` line on stderr, each text once."""
    text = _one_line(str(message))
    from hesscli.jaxconf import cache_warning

    replaced = cache_warning(text)
    if replaced is not None:
        text = replaced
    if not text or text in _seen_warnings:
        return
    _seen_warnings.add(text)
    kind = category.__name__ if category is not UserWarning else ""
    click.echo(f"warning: {text}" + (f" ({kind})" if kind else ""), err=True)


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Within the block, Python warnings are printed by :func:`show_warning`."""
    import warnings

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        _seen_warnings.clear()
        yield


@contextlib.contextmanager
def exit_guarded() -> Iterator[None]:
    """Within the block, ``os._exit`` in this process raises an objective error.

    An objective that calls ``os._exit(0)`` would otherwise end hesscli with
    exit 0 and no report at all. Forked children (multiprocessing) still exit.
    """
    real_exit = os._exit
    pid = os.getpid()

    def guarded(code: int) -> Any:
        if os.getpid() != pid:
            real_exit(code)
        raise ObjectiveError(
            f"the objective called os._exit({code}), which would end hesscli without a "
            "result; return a value (or raise an exception) instead"
        )

    os._exit = guarded
    try:
        yield
    finally:
        os._exit = real_exit
