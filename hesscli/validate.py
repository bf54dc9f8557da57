"""Checks of option values shared by the API and the CLI (errors name the option)."""

from __future__ import annotations

import math

from hesscli.errors import InputError


def positive(name: str, value: float) -> float:
    """``value`` if it is a finite number > 0, else an input error naming ``name``."""
    if not (value > 0 and math.isfinite(value)):
        raise InputError(f"{name} must be a positive finite number; got {value}")
    return value


def nonnegative(name: str, value: float | None) -> float | None:
    """``value`` (or None) if it is a finite number ≥ 0, else an input error."""
    if value is not None and not (value >= 0 and math.isfinite(value)):
        raise InputError(f"{name} must be a finite number ≥ 0; got {value}")
    return value
