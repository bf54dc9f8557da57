"""Number formatting shared by the Rich views (:func:`num` itself is :mod:`hesscli.numfmt`'s,
which the documents use too)."""

from __future__ import annotations

import math
from typing import Any

from hesscli.numfmt import num

__all__ = ["eigen_list", "end_cell", "num", "small"]


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


def end_cell(value: float | None, bounds: Any, end: str, digits: int = 4) -> str:
    """One end of a spectrum in a table cell, as what is known. Dense (``bounds`` None):
    the value. Matrix-free: when the end is resolved, the Rayleigh quotient to as many
    significant digits (at most ``digits``) as its certified half-width r + δ leaves
    correct (the error under half a unit of the last digit printed); else only the
    proven one-sided bound ("≤ −0.127" for λmin, "≥ 2.3" for λmax). Never a bare
    number whose digits the run did not certify."""
    if bounds is None:
        return num(value, digits)
    if end == "min":
        theta, half, resolved = bounds.theta_min, bounds.min_halfwidth, bounds.min_resolved
        if not resolved:
            return f"≤ {num(bounds.min_interval[1], digits)}"
    else:
        theta, half, resolved = bounds.theta_max, bounds.max_halfwidth, bounds.max_resolved
        if not resolved:
            return f"≥ {num(bounds.max_interval[0], digits)}"
    return num(theta, certified_digits(theta, half, digits))


def certified_digits(value: float, half_width: float, most: int = 4) -> int:
    """Significant digits of ``value`` that an error of ``half_width`` leaves correct
    (the error below half a unit of the last digit), between 1 and ``most``."""
    if half_width <= 0 or not math.isfinite(half_width):
        return most if half_width == 0 else 1
    if value == 0:
        return 1
    d = math.floor(math.log10(abs(value) / (2 * half_width))) + 1
    return max(1, min(most, d))
