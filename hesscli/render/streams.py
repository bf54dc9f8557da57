"""Where reports go: the real stdout, even while user code's prints are diverted.

While a command runs, ``sys.stdout`` points at stderr, so a ``print`` in an
objective file (at import, or while JAX traces it) cannot corrupt the one JSON
document on stdout. When stdout is the process's file descriptor 1, that
descriptor is pointed at stderr too, so ``os.write(1, ...)``, C extensions and
native libraries that print cannot corrupt it either; reports (Rich tables,
JSON) are written to the stream saved here (a duplicate of the old fd 1).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO

_report: list[IO[str]] = []
_fd_redirected: list[bool] = []


def stdout_fd_redirected() -> bool:
    """True while fd 1 points at stderr (reports keep the real stdout)."""
    return bool(_fd_redirected and _fd_redirected[-1])


def report_stream() -> IO[str]:
    """The stream reports are written to (the real stdout)."""
    return _report[-1] if _report else sys.stdout


def replace_report_stream(stream: IO[str]) -> None:
    """Point reports at ``stream`` for the rest of the current command."""
    if _report:
        _report[-1] = stream
    else:
        _report.append(stream)


def _real_fd(stream: IO[str], fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False  # e.g. a test runner's in-memory stream


@contextlib.contextmanager
def user_output_to_stderr() -> Iterator[None]:
    """Within the block, ``print`` (and anything written to fd 1) goes to stderr and
    reports to the real stdout."""
    import os

    saved = None
    if _real_fd(sys.stdout, 1) and _real_fd(sys.stderr, 2):
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
        _report.append(os.fdopen(saved, "w", encoding=sys.stdout.encoding or "utf-8",
                                 errors=getattr(sys.stdout, "errors", None) or "strict",
                                 buffering=1, closefd=False))
    else:
        _report.append(sys.stdout)
    _fd_redirected.append(saved is not None)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        stream = _report.pop()
        _fd_redirected.pop()
        try:
            stream.flush()
        finally:
            if saved is not None:
                _flush_c_stdio()  # C-buffered prints leave while fd 1 is still stderr
                os.dup2(saved, 1)
                os.close(saved)


def _flush_c_stdio() -> None:
    """``fflush(NULL)``: write out every C ``FILE*`` buffer (best effort)."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass
