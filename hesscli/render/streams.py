"""Where reports go: the real stdout, even while user code's prints are diverted.

While a command runs, ``sys.stdout`` points at stderr, so a ``print`` in an
objective file (at import, or while JAX traces it) cannot corrupt the one JSON
document on stdout. Reports (Rich tables, JSON) are written to the stream
saved here instead.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO

_report: list[IO[str]] = []


def report_stream() -> IO[str]:
    """The stream reports are written to (the real stdout)."""
    return _report[-1] if _report else sys.stdout


def replace_report_stream(stream: IO[str]) -> None:
    """Point reports at ``stream`` for the rest of the current command."""
    if _report:
        _report[-1] = stream
    else:
        _report.append(stream)


@contextlib.contextmanager
def user_output_to_stderr() -> Iterator[None]:
    """Within the block, ``print`` goes to stderr and reports to the real stdout."""
    _report.append(sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _report.pop().flush()
