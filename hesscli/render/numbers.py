"""Number formatting shared by the Rich views."""

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


def eigen_list(values: list[float], limit: int = 8) -> str:
    if len(values) <= limit:
        return ", ".join(num(v) for v in values)
    half = limit // 2
    head = ", ".join(num(v) for v in values[:half])
    tail = ", ".join(num(v) for v in values[-half:])
    return f"{head}, … ({len(values) - limit} more) …, {tail}"


def small(value: float, below_rounding: bool) -> str:
    """``value``, or "0 (below rounding)" when it is within its own rounding level."""
    return "0 (below rounding)" if below_rounding else num(value)
