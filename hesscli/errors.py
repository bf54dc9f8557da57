"""Errors that end a command, each carrying its exit code (the README's exit-code table).

Library code raises these with a complete, one-line message (what was wrong, the
value, what was expected, a fix); the CLI prints ``error: <message>`` and exits
with ``exit_code``. Nothing here imports click or JAX.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class HesscliError(Exception):
    """Base class; ``exit_code`` is decided by the subclass."""

    exit_code = 2


class InputError(HesscliError):
    """Invalid input: options, files, points, specs, shapes, requests too large."""

    exit_code = 2


class ObjectiveError(HesscliError):
    """The objective failed: import, call, missing, not a scalar, non-finite."""

    exit_code = 3


class CheckFailed(HesscliError):
    """A requested check did not hold (``check``, ``gradcheck``, ``--expect``)."""

    exit_code = 1


def closest(name: str, choices: list[str] | tuple[str, ...], n: int = 3) -> str:
    """A ``"did you mean ...?"`` phrase for ``name`` among ``choices``, or ``""``."""
    import difflib

    matches = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"


def describe_exception(exc: BaseException) -> str:
    """``TypeName: message`` with the innermost user-code location when known."""
    name = type(exc).__name__
    text = f"{name}: {exc}".strip().splitlines()[0] if str(exc) else name
    frames = traceback.extract_tb(exc.__traceback__)
    user = [
        f for f in frames if "site-packages" not in f.filename and "/hesscli/" not in f.filename
    ]
    if user:
        last = user[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno})"
    return text


@contextmanager
def user_code(what: str, after: str = "", *,
              catch: tuple[type[BaseException], ...] = (Exception,)) -> Iterator[None]:
    """Run the user's code: a failure there is the objective's (exit 3), ours passes.

    Inside the block a :class:`HesscliError` propagates unchanged (it already
    carries its message and exit code); any other exception of the types in
    ``catch`` becomes ``ObjectiveError(f"{what} raised {describe_exception(exc)}{after}")``
    with the original as ``__cause__``. ``catch`` is ``(Exception,)``, so
    ``KeyboardInterrupt`` and ``SystemExit`` pass unless a caller names
    ``SystemExit`` (a user's function that calls ``sys.exit`` has failed)::

        with user_code(f"{name}: init(key)"):
            x0 = init(key)
    """
    try:
        yield
    except HesscliError:
        raise
    except catch as exc:
        raise ObjectiveError(f"{what} raised {describe_exception(exc)}{after}") from exc
