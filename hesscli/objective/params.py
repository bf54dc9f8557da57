"""Parameters of objective files: ``-p KEY=VALUE`` on the command line.

A built-in problem (or any objective file) declares its parameters as one
module-level mapping of name -> (default, description[, limits])::

    import hesscli

    P = hesscli.params({
        "n": (2, "number of variables", {"min": 1}),
        "kappa": (100.0, "condition number", {"min": 1.0}),
    })
    x0 = jnp.ones(P.n)

While hesscli loads the file, ``params`` returns the defaults overridden by the
``-p`` values, each converted to its default's type (an int parameter takes an
integer literal only: ``n=1e9`` is refused, not rounded) and checked against the
optional limits ``min``/``max`` (inclusive), so a bad value is an input error
(exit 2) before the file builds anything with it. Run as a plain script (or
imported by other code) it returns the defaults. This module imports no JAX so
that ``hesscli problems`` can read the declarations cheaply.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

from hesscli.errors import InputError, closest

_overrides: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "hesscli_param_overrides", default=None
)
_declared: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "hesscli_param_declared", default=None
)

ParamSpec = Mapping[str, "tuple[Any, str] | tuple[Any, str, Mapping[str, Any]]"]


def coerce(name: str, raw: str, default: Any) -> Any:
    """Convert the string ``raw`` to the type of ``default``."""
    kind = type(default)
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw.strip(), 10)
        if kind is float:
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(raw)
            return value
        return kind(raw)
    except ValueError:
        hint = ""
        if kind is int:
            try:
                float(raw)
                hint = "; write an integer such as 1000, not a float such as 1e3 or 2.0"
            except ValueError:
                pass
        raise InputError(
            f"parameter {name}={raw!r}: expected {kind.__name__} (default {default!r}){hint}"
        ) from None


LIMITS = ("min", "max")


def check_limits(name: str, value: Any, limits: Mapping[str, Any], description: str) -> None:
    """Raise an input error when ``value`` breaks the declared ``min``/``max``."""
    low, high = limits.get("min"), limits.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            wanted = f"{low} <= {name} <= {high}"
        else:
            wanted = f"{name} >= {low}" if low is not None else f"{name} <= {high}"
        raise InputError(f"parameter {name}={value!r}: needs {wanted} ({description})")


def params(spec: ParamSpec) -> SimpleNamespace:
    """Return the parameters declared in ``spec``, overridden by ``-p`` values.

    ``spec`` maps each name to ``(default, description)``. An override naming no
    declared parameter is an input error that lists the declared ones.
    """
    values = {}
    limits: dict[str, Mapping[str, Any]] = {}
    for name, entry in spec.items():
        if not (isinstance(entry, tuple) and len(entry) in (2, 3)):
            raise TypeError(f"params: {name!r} must map to (default, description[, limits])")
        values[name] = entry[0]
        if len(entry) == 3:
            bad = set(entry[2]) - set(LIMITS) if isinstance(entry[2], Mapping) else {"?"}
            if bad:
                raise TypeError(f"params: {name!r}: limits are a mapping with keys "
                                f"{' and '.join(LIMITS)}")
            limits[name] = entry[2]
    overrides = _overrides.get() or {}
    for key, raw in overrides.items():
        if key not in values:
            known = ", ".join(sorted(values)) or "none"
            raise InputError(
                f"unknown parameter -p {key}{closest(key, list(values))}; "
                f"this objective takes: {known}"
            )
        values[key] = coerce(key, raw, values[key])
        if key in limits:
            check_limits(key, values[key], limits[key], spec[key][1])
    declared = _declared.get()
    if declared is not None:
        declared.append(dict(values))
    return SimpleNamespace(**values)


@contextlib.contextmanager
def overriding(overrides: Mapping[str, str]) -> Iterator[list[dict[str, Any]]]:
    """Within the block, ``params`` applies ``overrides``; yields the declarations seen."""
    seen: list[dict[str, Any]] = []
    tok_o = _overrides.set(dict(overrides))
    tok_d = _declared.set(seen)
    try:
        yield seen
    finally:
        _overrides.reset(tok_o)
        _declared.reset(tok_d)


def parse_assignments(items: tuple[str, ...] | list[str], option: str = "-p") -> dict[str, str]:
    """Parse ``KEY=VALUE`` strings (repeatable options) into a dict."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{option} {item!r}: expected KEY=VALUE")
        out[key] = value.strip()
    return out
