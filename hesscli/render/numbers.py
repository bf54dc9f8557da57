"""Number formatting shared by the Rich views (:func:`num` itself is :mod:`hesscli.numfmt`'s,
which the documents use too)."""

from __future__ import annotations

from hesscli.numfmt import num

__all__ = ["eigen_list", "num", "small"]


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
