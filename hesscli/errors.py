"""Errors that end a command, each carrying its exit code (the README's exit-code table).

Library code raises these with a complete, one-line message (what was wrong, the
value, what was expected, a fix); the CLI prints ``error: <message>`` and exits
with ``exit_code``. Nothing here imports click or JAX.
"""

from __future__ import annotations


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
