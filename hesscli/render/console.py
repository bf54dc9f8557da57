"""The Rich consoles: reports on stdout, diagnostics and progress on stderr.

A report stream that cannot encode the tables' symbols (``PYTHONIOENCODING=ascii``,
a ``C`` locale, a Latin-1 terminal) gets them spelled in ASCII (``λ`` as
``lambda``, ``‖∇f‖`` as ``||grad f||``, ``≤`` as ``<=``) by the ``hesscli-ascii``
error handler, and Rich draws its boxes in ASCII there by itself: the report is
the same, never a UnicodeEncodeError.
"""

from __future__ import annotations

import codecs
from typing import IO

from rich.console import Console

ASCII_HANDLER = "hesscli-ascii"
SPELLED = {
    "λ": "lambda", "Λ": "Lambda", "‖": "||", "∇": "grad ", "≤": "<=", "≥": ">=", "≠": "!=",
    "−": "-", "–": "-", "—": "--", "×": "x", "·": "*", "ε": "eps", "δ": "delta",
    "η": "eta", "β": "beta", "σ": "sigma", "θ": "theta", "μ": "mu", "α": "alpha",
    "Σ": "sum", "∞": "inf", "±": "+/-", "≈": "~", "→": "->", "←": "<-", "…": "...",
    "√": "sqrt", "ᵀ": "^T", "⁻": "^-", "¹": "^1", "²": "^2", "³": "^3", "⁴": "^4",
    "₀": "0", "₁": "1", "₂": "2", "∈": " in ", "∑": "sum", "│": "|", "─": "-", "━": "=",
    "╸": "-", "╺": "-", "█": "#", "▏": "|", "°": " deg", "’": "'", "“": '"', "”": '"',
}


def _spell(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start:error.end]
    spelled = "".join(SPELLED.get(ch, "?") for ch in text)
    after = error.object[error.end:error.end + 1]
    if spelled[-1:].isalpha() and after.isalpha():
        spelled += "_"  # λmin -> lambda_min
    return spelled, error.end


codecs.register_error(ASCII_HANDLER, _spell)


def encodes_symbols(stream: IO[str]) -> bool:
    """Whether ``stream``'s encoding can write the reports' symbols (λ, ‖, ≤)."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        "λ‖∇≤−·".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def spell_in_ascii(stream: IO[str]) -> None:
    """Make ``stream`` spell what its encoding lacks in ASCII (when it can be told to)."""
    if encodes_symbols(stream):
        return
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors=ASCII_HANDLER)
        except (ValueError, OSError, TypeError):
            pass


def stdout_console() -> Console:
    from hesscli.render.streams import report_stream

    stream = report_stream()
    spell_in_ascii(stream)
    return Console(file=stream, highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    import sys

    spell_in_ascii(sys.stderr)
    return Console(stderr=True, highlight=False)
