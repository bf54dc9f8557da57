"""Numbers as text, for every layer: the views (:mod:`hesscli.render.numbers`) and the
documents' notes (:mod:`hesscli.documents.gradcheck`) print them alike."""

from __future__ import annotations

import math


def num(value: float | None, digits: int = 4) -> str:
    """Compact, sign-preserving formatting: 0.0123, -1.5e-08, 2.5e+03, '—' for None."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    mag = abs(value)
    if 1e-3 <= mag < 1e5:
        text = f"{value:.{digits}g}"
    else:
        text = f"{value:.{max(digits - 1, 1)}e}"
    return text
