"""What a check's ``expect:`` keys may be, and how each becomes an :class:`Expectation`.

A key is either

- a dotted path into the ``hesscli.analyze/1`` document, exactly as ``--expect``
  takes it (``classification``, ``inertia.negative``, ``stability.stable``,
  ``lambda_min``), with a value whose form follows the field's type in the
  schema: a word or a list of words for an enumerated field (any one passes),
  true/false for a boolean, ``{min, max}`` bounds for a number, an integer or
  bounds for an integer, a value for anything else;
- one of the documented aliases :data:`ALIASES` (older names, kept working); or
- one of :data:`ANALYSES`, which run another analysis on the check's objective
  and compare one of its fields: ``convexity: {verdict, box | around + radius,
  samples, ...}`` and ``gradcheck: passed | failed``.

Evaluation is :func:`hesscli.expect.evaluate`, the engine ``--expect`` uses.
A new analysis kind is one more entry in :data:`ANALYSES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from hesscli.errors import InputError, closest
from hesscli.expect import (
    IN,
    MISSING,
    WITHIN,
    Expectation,
    Outcome,
    evaluate,
    schema_paths,
)
from hesscli.vocab import ConvexityVerdict, WitnessKind, words

VERDICTS = words(ConvexityVerdict)


class Context(Protocol):
    """What a check has computed (lazily, at most once): see :mod:`hesscli.checks.run`."""

    def analysis(self) -> dict[str, Any]: ...  # the hesscli.analyze/1 document

    def convexity(self, options: dict[str, Any]) -> Any: ...

    def gradcheck(self) -> Any: ...


@dataclass(frozen=True)
class Alias:
    """An older ``expect:`` name for a dotted path of the analyze document."""

    path: str
    help: str
    absent: Any = None  # measured when the document lacks the field (None: fail)


#: Documented aliases: ``negative_eigenvalues``, ``stable``, ``step_increases_loss``.
ALIASES: dict[str, Alias] = {
    "negative_eigenvalues": Alias("inertia.negative",
                                  "the number of eigenvalues below −tol"),
    "stable": Alias("stability.stable", "lr < 2/λmax"),
    "step_increases_loss": Alias(
        "step.increases_loss",
        "the quadratic model says a gradient step with lr raises f (false at a zero "
        "gradient, where no step is taken)", absent=False),
}

#: Why a null field is null (the report says so beside "undefined").
NULL_MEANS = {"condition_number": "an eigenvalue is zero within tolerance"}


@dataclass(frozen=True)
class AnalysisKey:
    """An ``expect:`` key that runs another analysis: how to read and to measure it."""

    help: str
    parse: Callable[[Any, str], Any]
    expected_text: Callable[[Any], str]
    measure: Callable[[Context, Any], tuple[Any, bool, str]]  # (measured, passed, detail)


# ---- value parsers -------------------------------------------------------------------


def type_name(value: Any) -> str:
    return "null" if value is None else {
        bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
        dict: "mapping",
    }.get(type(value), type(value).__name__)


def number(value: Any, path: str) -> float:
    """A finite number; numeric strings are accepted (YAML 1.1 reads ``1e4`` as a string)."""
    if isinstance(value, bool):
        raise InputError(f"{path}: expected a number, got a boolean ({value})")
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            raise InputError(f"{path}: expected a number, got the string {value!r}") from None
    else:
        raise InputError(f"{path}: expected a number, got a {type_name(value)}")
    if not math.isfinite(out):
        raise InputError(f"{path}: expected a finite number, got {value!r}")
    return out


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{path}: expected true or false, got {type_name(value)} {value!r}")
    return value


def mapping(value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A mapping whose keys are among ``allowed`` (unknown ones named, closest suggested)."""
    if not isinstance(value, dict):
        raise InputError(f"{path}: expected a mapping, got {type_name(value)} {value!r}")
    for key in value:
        if key not in allowed:
            raise InputError(
                f"{path}: unknown key {key!r}{closest(str(key), list(allowed), n=1)}; "
                f"allowed: {', '.join(allowed)}"
            )
    return value


def bounds(value: Any, path: str) -> tuple[float | None, float | None]:
    """``{min: a, max: b}`` (either may be left out)."""
    if not isinstance(value, dict):
        raise InputError(
            f"{path}: expected bounds like {{min: 0.1, max: 10}}, got {type_name(value)} "
            f"{value!r}"
        )
    mapping(value, path, ("min", "max"))
    if not value:
        raise InputError(f"{path}: give min, max or both")
    lo = number(value["min"], f"{path}.min") if "min" in value else None
    hi = number(value["max"], f"{path}.max") if "max" in value else None
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"{path}: min {lo:g} is above max {hi:g}")
    return lo, hi


def one_of(choices: tuple[str, ...]) -> Callable[[Any, str], tuple[str, ...]]:
    """A word among ``choices``, or a list of them (any one passes)."""

    def parse(value: Any, path: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise InputError(f"{path}: empty list")
        for item in items:
            if not isinstance(item, str):
                raise InputError(f"{path}: expected one of {', '.join(choices)}; got "
                                 f"{type_name(item)} {item!r}")
            if item not in choices:
                raise InputError(f"{path}: {item!r} is not one of {', '.join(choices)}"
                                 f"{closest(item, list(choices))}")
        return tuple(items)

    return parse


# ---- convexity ---------------------------------------------------------------------------

CONVEXITY_KEYS = ("verdict", "box", "around", "radius", "samples", "hessian_points", "seed",
                  "rtol", "atol")


def parse_convexity(value: Any, path: str) -> dict[str, Any]:
    """``{verdict: no_violation_found, box: [-3, 3] | [[lo, hi], ...], samples: 500, ...}``."""
    mapping(value, path, CONVEXITY_KEYS)
    if "verdict" not in value:
        raise InputError(f"{path}: missing 'verdict' ({' or '.join(VERDICTS)})")
    verdict = value["verdict"]
    if not isinstance(verdict, str) or verdict not in VERDICTS:
        hint = closest(verdict, list(VERDICTS)) if isinstance(verdict, str) else ""
        raise InputError(f"{path}.verdict: expected {' or '.join(VERDICTS)}, got "
                         f"{verdict!r}{hint}")
    out: dict[str, Any] = {"verdict": verdict}
    if "box" in value and "around" in value:
        raise InputError(f"{path}: give either box or around, not both")
    if "box" in value:
        raw = value["box"]
        pairs = raw if isinstance(raw, list) and raw and isinstance(raw[0], list) else [raw]
        box = []
        for i, pair in enumerate(pairs):
            where = f"{path}.box" + (f"[{i}]" if pairs is raw else "")
            if not isinstance(pair, list) or len(pair) != 2:
                raise InputError(f"{where}: expected [lo, hi] (or a list of them, one per "
                                 f"coordinate), got {pair!r}")
            lo, hi = number(pair[0], f"{where}[0]"), number(pair[1], f"{where}[1]")
            if not lo < hi:
                raise InputError(f"{where}: need lo < hi, got [{lo:g}, {hi:g}]")
            box.append((lo, hi))
        out["box"] = box
    if "around" in value:
        out["around"] = point(value["around"], f"{path}.around")
    if "radius" in value:
        out["radius"] = number(value["radius"], f"{path}.radius")
        if out["radius"] <= 0:
            raise InputError(f"{path}.radius: must be positive")
    for key in ("samples", "hessian_points", "seed"):
        if key in value:
            out[key] = integer(value[key], f"{path}.{key}", minimum=0)
    for key in ("rtol", "atol"):
        if key in value:
            out[key] = number(value[key], f"{path}.{key}")
    return out


def integer(value: Any, path: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{path}: expected an integer, got {type_name(value)} {value!r}")
    if minimum is not None and value < minimum:
        raise InputError(f"{path}: must be ≥ {minimum}, got {value}")
    return value


def point(value: Any, path: str) -> str:
    """POINT as the command line takes it: a string, or a flat list of numbers."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        return ",".join(repr(number(v, f"{path}[{i}]")) for i, v in enumerate(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    raise InputError(f"{path}: expected a POINT (a string such as 'zeros' or 'w.npy', or a "
                     f"list of numbers), got {type_name(value)} {value!r}")


def measure_convexity(ctx: Context, options: dict[str, Any]) -> tuple[Any, bool, str]:
    result = ctx.convexity(options)
    detail = ""
    w = result.witness
    if w is not None and w.kind == WitnessKind.MIDPOINT:
        detail = f"midpoint margin {w.margin:.4g}"
    elif w is not None:
        detail = f"λmin {w.eigenvalue:.4g}"
    else:
        detail = f"{result.midpoint.pairs} pairs, {result.hessian.points} points"
    return result.verdict, result.verdict == options["verdict"], detail


# ---- gradcheck -----------------------------------------------------------------------------


def parse_gradcheck(value: Any, path: str) -> bool:
    if value not in ("passed", "failed", True, False):
        raise InputError(f"{path}: expected 'passed' or 'failed', got {value!r}")
    return value in ("passed", True)


def measure_gradcheck(ctx: Context, want_pass: bool) -> tuple[Any, bool, str]:
    passed = bool(ctx.gradcheck().passed)
    return "passed" if passed else "failed", passed == want_pass, ""


ANALYSES: dict[str, AnalysisKey] = {
    "convexity": AnalysisKey("{verdict, box | around + radius, samples, hessian_points, seed}",
                          parse_convexity, lambda o: o["verdict"], measure_convexity),
    "gradcheck": AnalysisKey("passed or failed", parse_gradcheck,
                          lambda p: "passed" if p else "failed", measure_gradcheck),
}


@cache
def analyze_schema() -> dict[str, Any]:
    from hesscli.schemas import load_schema

    return load_schema("analyze")


def keys() -> list[str]:
    """Every key ``expect:`` accepts: analyze's dotted paths, the aliases, the analyses."""
    return schema_paths(analyze_schema()) + list(ALIASES) + list(ANALYSES)


def document_expectation(key: str, value: Any, where: str) -> Expectation:
    """The expectation ``key: value`` on the analyze document (``where``: the ``expect``
    mapping's path in the spec, for errors).

    The value's form follows the field's schema (see the module docstring).
    """
    from hesscli.schemas import field_schema

    path = f"{where}.{key}"
    alias = ALIASES.get(key)
    target = alias.path if alias is not None else key
    node = field_schema(analyze_schema(), target)
    if node is None:
        raise InputError(f"{where}: unknown key {key!r}"
                         f"{closest(key, keys(), n=1)}; see docs/checks.md for the keys")
    absent = alias.absent if alias is not None and alias.absent is not None else MISSING
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "enum" in node:
        choices = tuple(str(c) for c in node["enum"])
        return Expectation(path, target, IN, one_of(choices)(value, path), key, absent)
    if "boolean" in types:
        return Expectation(path, target, "=", boolean(value, path), key, absent)
    if "integer" in types and not isinstance(value, dict):
        return Expectation(path, target, "=", integer(value, path), key, absent)
    if "number" in types or "integer" in types:
        return Expectation(path, target, WITHIN, bounds(value, path), key, absent)
    if "object" in types or "array" in types:
        raise InputError(f"{path}: {target} is a{'n' if types[0][0] in 'ao' else ''} "
                         f"{types[0]}; expect one of its fields (e.g. {target}.…)")
    return Expectation(path, target, "=", value, key, absent)


def measure(ctx: Context, exp: Expectation) -> Outcome:
    """Evaluate a document expectation on the check's analyze document."""
    outcome = evaluate(exp, ctx.analysis())
    if outcome.present and outcome.measured is None and exp.key in NULL_MEANS:
        return Outcome(exp, None, outcome.passed, detail=f"undefined: {NULL_MEANS[exp.key]}")
    return outcome
