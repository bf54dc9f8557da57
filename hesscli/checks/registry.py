"""The kinds of expectation a check may state: how each is validated and measured.

One entry per key of a check's ``expect:`` mapping. ``parse`` validates the
expected value from the spec (raising :class:`InputError` with its path);
``measure`` gets the check's lazily computed :class:`Context` and returns what
was measured and whether it satisfies the expectation. A new kind (such as
``gradcheck`` once its analysis exists) is one more entry in :data:`KINDS`.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hesscli.errors import InputError, closest

CLASSIFICATIONS = ("local_minimum", "local_maximum", "saddle_point", "degenerate",
                   "not_critical", "undetermined")
DEFINITENESS = ("positive_definite", "positive_semidefinite", "negative_definite",
                "negative_semidefinite", "indefinite", "zero", "undetermined")
UNDECIDED = ("undetermined: the evidence (unconverged matrix-free extremes or a kink) does "
             "not decide it; see the analysis notes")
VERDICTS = ("not_convex", "no_violation_found")


class Context(Protocol):
    """What a check has computed (lazily, at most once): see :mod:`hesscli.checks.run`."""

    def analysis(self) -> Any: ...

    def convexity(self, options: dict[str, Any]) -> Any: ...

    def gradcheck(self) -> Any: ...


@dataclass(frozen=True)
class Measured:
    value: Any  # JSON-able measured value (None: undefined)
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Kind:
    help: str
    parse: Callable[[Any, str], Any]
    expected_text: Callable[[Any], str]
    measure: Callable[[Context, Any], Measured]
    available: Callable[[], str | None] = lambda: None  # None, or why it is not


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


# ---- expected-value text and comparisons -----------------------------------------------


def bounds_text(b: tuple[float | None, float | None]) -> str:
    lo, hi = b
    if lo is not None and hi is not None:
        return f"in [{lo:g}, {hi:g}]"
    return f"≥ {lo:g}" if lo is not None else f"≤ {hi:g}"


def within(value: float | None, b: tuple[float | None, float | None]) -> bool:
    if value is None or not math.isfinite(value):
        return False
    lo, hi = b
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def bool_text(flag: bool) -> str:
    return "true" if flag else "false"


def words_text(words: tuple[str, ...]) -> str:
    return " or ".join(words)


def analysis_number(get: Callable[[Any], float | None], why_none: str = "") -> Callable[
    [Context, Any], Measured
]:
    def measure(ctx: Context, b: Any) -> Measured:
        value = get(ctx.analysis())
        return Measured(value, within(value, b), why_none if value is None else "")

    return measure


def analysis_word(get: Callable[[Any], str]) -> Callable[[Context, Any], Measured]:
    def measure(ctx: Context, words: Any) -> Measured:
        value = get(ctx.analysis())
        return Measured(value, value in words, UNDECIDED if value == "undetermined" else "")

    return measure


def analysis_flag(get: Callable[[Any], bool | None]) -> Callable[[Context, Any], Measured]:
    """A true/false measurement; None (undetermined) satisfies neither expectation."""

    def measure(ctx: Context, flag: Any) -> Measured:
        value = get(ctx.analysis())
        if value is None:
            return Measured(None, False, UNDECIDED)
        return Measured(bool(value), bool(value) == flag)

    return measure


def _step_increases(a: Any) -> bool:
    return a.step.increases_loss if a.step is not None else False  # zero gradient: no step


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


def measure_convexity(ctx: Context, options: dict[str, Any]) -> Measured:
    result = ctx.convexity(options)
    detail = ""
    w = result.witness
    if w is not None and w.kind == "midpoint":
        detail = f"midpoint margin {w.margin:.4g}"
    elif w is not None:
        detail = f"λmin {w.eigenvalue:.4g}"
    else:
        detail = f"{result.midpoint.pairs} pairs, {result.hessian.points} points"
    return Measured(result.verdict, result.verdict == options["verdict"], detail)


# ---- gradcheck -----------------------------------------------------------------------------


def gradcheck_available() -> str | None:
    if importlib.util.find_spec("hesscli.analysis.gradcheck") is None:
        return "gradcheck expectations are not available in this version of hesscli"
    return None


def parse_gradcheck(value: Any, path: str) -> bool:
    if value not in ("passed", "failed", True, False):
        raise InputError(f"{path}: expected 'passed' or 'failed', got {value!r}")
    return value in ("passed", True)


def measure_gradcheck(ctx: Context, want_pass: bool) -> Measured:
    result = ctx.gradcheck()
    passed = bool(result.passed)
    return Measured("passed" if passed else "failed", passed == want_pass)


KINDS: dict[str, Kind] = {
    "classification": Kind(
        "one of the classifications (or a list of them)", one_of(CLASSIFICATIONS),
        words_text, analysis_word(lambda a: a.classification)),
    "definiteness": Kind(
        "one of the definiteness words (or a list of them)", one_of(DEFINITENESS),
        words_text, analysis_word(lambda a: a.definiteness)),
    "critical": Kind("true or false", boolean, bool_text, analysis_flag(lambda a: a.critical)),
    "lambda_min": Kind("{min, max} bounds on the smallest eigenvalue", bounds, bounds_text,
                       analysis_number(lambda a: a.spectrum.lambda_min)),
    "lambda_max": Kind("{min, max} bounds on the largest eigenvalue", bounds, bounds_text,
                       analysis_number(lambda a: a.spectrum.lambda_max)),
    "condition_number": Kind(
        "{min, max} bounds on max|λ|/min|λ|", bounds, bounds_text,
        analysis_number(lambda a: a.condition_number,
                        "undefined: an eigenvalue is zero within tolerance")),
    "gradient_norm": Kind("{min, max} bounds on ‖∇f‖", bounds, bounds_text,
                          analysis_number(lambda a: a.gradient_norm)),
    "value": Kind("{min, max} bounds on f", bounds, bounds_text,
                  analysis_number(lambda a: a.value)),
    "negative_eigenvalues": Kind(
        "{min, max} bounds on the number of eigenvalues below −tol", bounds, bounds_text,
        analysis_number(lambda a: a.inertia.negative)),
    "step_increases_loss": Kind(
        "true or false: the quadratic model says a gradient step with lr raises f",
        boolean, bool_text, analysis_flag(_step_increases)),
    "stable": Kind("true or false: lr < 2/λmax", boolean, bool_text,
                   analysis_flag(lambda a: a.stability.stable)),
    "convexity": Kind("{verdict, box | around + radius, samples, hessian_points, seed}",
                      parse_convexity, lambda o: o["verdict"], measure_convexity),
    "gradcheck": Kind("passed or failed", parse_gradcheck,
                      lambda p: "passed" if p else "failed", measure_gradcheck,
                      gradcheck_available),
}
