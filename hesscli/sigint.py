"""Ctrl-C in the ``hesscli`` process: exit 130 with one line, from its first instruction.

Python's own handler raises ``KeyboardInterrupt`` wherever the main thread
happens to be. During start-up that is inside imports of native code (JAX,
jaxlib): an interrupted import leaves half-initialized modules behind (an
``ImportError`` later, exit 4), and a ``KeyboardInterrupt`` raised inside a
garbage-collection callback is printed as "Exception ignored …" and then
*swallowed*, so the command ran on and exited 0 with a full result.

This handler (installed by ``hesscli/__init__.py`` when the process is the
``hesscli`` command, else by :func:`hesscli.cli.outcome.interrupts_end_cleanly`):

- records every Ctrl-C, so an interrupt that some callback swallowed still
  ends the command with 130 before its result is printed (:func:`check`) and
  the "Exception ignored" report of it is dropped (``sys.unraisablehook``);
- during start-up (until the command's own code runs), inside :func:`hard`
  regions (the JAX import) and after the command ended, exits at once with
  ``error: interrupted`` and 130: nothing is being written then, and nothing
  can unwind safely;
- while the command runs, raises ``KeyboardInterrupt`` as usual, so open logs
  drop a torn line and temporary files are removed (:mod:`hesscli.files`);
  a second Ctrl-C exits at once.

Nothing here imports anything beyond the standard library.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

INTERRUPTED = 130
_exit = os._exit  # captured before user code can replace it

_installed = False
_interrupted = False
_reported = False
_raising = False  # the command's own code is running: raise KeyboardInterrupt
_hard = 0  # depth of regions where nothing may unwind (imports of native code)
_previous_hook: Any = None


def _exit_now() -> None:
    global _reported
    try:
        if not _reported:
            _reported = True
            os.write(2, b"error: interrupted\n")
    except OSError:
        pass
    finally:
        _exit(INTERRUPTED)


def _handler(signum: int, frame: Any) -> None:
    global _interrupted
    first = not _interrupted
    _interrupted = True
    if not first or not _raising or _hard:
        _exit_now()
    raise KeyboardInterrupt


def _unraisable(unraisable: Any) -> None:
    """Drop the "Exception ignored" report of a Ctrl-C a callback swallowed (it is
    recorded and acted on by :func:`check`); report everything else as before."""
    if _interrupted and isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    (_previous_hook or sys.__unraisablehook__)(unraisable)


def install(early: Any = None) -> bool:
    """Take over Ctrl-C (main thread, and only from Python's default handler or from
    ``early``, the package's first handler); start-up mode: a Ctrl-C exits at once.
    True when this handler is (now) in place."""
    global _installed, _previous_hook
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGINT)
    if current is _handler:
        return True
    if current is not signal.default_int_handler and (early is None or current is not early):
        return False  # someone else (a host application, a test runner) owns Ctrl-C
    signal.signal(signal.SIGINT, _handler)
    if sys.unraisablehook is not _unraisable:
        _previous_hook = sys.unraisablehook
        sys.unraisablehook = _unraisable
    _installed = True
    return True


def uninstall() -> None:
    """Give Ctrl-C back to Python (in-process runs: tests, host applications)."""
    global _installed, _raising
    if signal.getsignal(signal.SIGINT) is _handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if sys.unraisablehook is _unraisable:
        sys.unraisablehook = _previous_hook or sys.__unraisablehook__
    _installed = _raising = False


def active() -> bool:
    return _installed and signal.getsignal(signal.SIGINT) is _handler


def command_running(running: bool) -> None:
    """Mark the command's own code as running (raise) or not (start-up, teardown: exit)."""
    global _raising
    _raising = running


def reset() -> None:
    """Forget an earlier interrupt (a new in-process invocation)."""
    global _interrupted, _reported
    _interrupted = _reported = False


@contextlib.contextmanager
def hard() -> Iterator[None]:
    """Within the block a Ctrl-C exits at once (imports of native code such as JAX)."""
    global _hard
    _hard += 1
    try:
        yield
    finally:
        _hard -= 1


def interrupted() -> bool:
    """True once a Ctrl-C arrived (even one that a callback swallowed)."""
    return _interrupted


def mark_reported() -> None:
    """The ``error: interrupted`` line has been printed."""
    global _reported
    _reported = True


def check() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C arrived, e.g. before printing a result."""
    if _interrupted:
        raise KeyboardInterrupt
