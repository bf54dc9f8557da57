"""The API's arguments, checked by the command line's rules before any work.

One table, :data:`RULES` (with per-command :data:`OVERRIDES`), says for every
option what a value must be: the bounds and choices the Click options of the
commands declare (``--k`` is an ``IntRange(min=1)``, ``--dtype`` a choice of
float64/float32, ...) and the checks the API made of the rest (``--lr`` a
positive finite number). :func:`validated` applies it to every call of an API
function, so ``hesscli.analyze(f, x, k=2.5)`` is an :class:`InputError` naming
``--k`` instead of a TypeError from deep inside a solver, and ``method="magic"``
or ``max_steps=0`` no longer run. ``tests/test_hostile_exit_codes.py`` checks
that the table and the commands' Click types agree.

Values are normalized where the meaning is unambiguous: ``dtype=np.float32``
becomes ``"float32"`` (the JSON ``meta`` then holds the name, not a class), a
:class:`pathlib.Path` objective or point becomes its string, an integer
``blocks`` depth its digits. Wrong types are refused, never coerced: ``k="3"``
is an error, as ``--k three`` is.

``hesscli.train`` also takes the optimizer's own command-line options
(``momentum``, ``nesterov``, ``b1``, ``b2``, ``eps``, ``weight_decay``,
``decay``) as keyword arguments; they join ``options``.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePath
from typing import Any

from hesscli.errors import InputError, closest
from hesscli.vocab import (
    Dtype,
    EigensolverRequest,
    Ends,
    Estimator,
    FDAccuracy,
    MethodRequest,
    PathRequest,
    words,
)

Rule = Callable[[str, Any], Any]  # (option name, value) -> the value to use

OPTIMIZER_FLAGS = ("momentum", "nesterov", "b1", "b2", "eps", "weight_decay", "decay")
FLAGS = {"curvature_kind": "--curvature", "boxes": "--box", "params": "-p", "path":
         "--dense/--matrix-free", "objective": "OBJECTIVE", "spec": "SPEC"}


def option(name: str) -> str:
    """The command-line spelling of the API argument ``name``."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return text
    return f"{text} (a {type(value).__name__})"


def _refuse(name: str, value: Any, what: str) -> InputError:
    return InputError(f"{option(name)} must be {what}; got {_shown(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and \
        type(value).__name__ != "bool_"


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        type(value).__name__ != "bool_"


def integer(low: int, high: int | None = None, optional: bool = False) -> Rule:
    what = (f"an integer in [{low}, {high}]" if high is not None else f"an integer ≥ {low}")
    what += " (or None)" if optional else ""

    def rule(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        if not _is_int(value) or value < low or (high is not None and value > high):
            raise _refuse(name, value, what)
        return int(value)

    rule.bounds = (low, high)  # type: ignore[attr-defined]
    rule.kind = "int"  # type: ignore[attr-defined]
    return rule


def trace_probes_rule(name: str, value: Any) -> Any:
    """0 (no trace estimate) or an integer ≥ 2 (a standard error needs two probes)."""
    if not _is_int(value) or value < 0 or value == 1:
        raise _refuse(name, value, "0 (no trace estimate) or an integer ≥ 2")
    return int(value)


trace_probes_rule.bounds = (0, None)  # type: ignore[attr-defined]
trace_probes_rule.kind = "int"  # type: ignore[attr-defined]


def real(low: float | None = None, *, strict: bool = False, optional: bool = False) -> Rule:
    """A finite number; ``low``: > low (``strict``) or ≥ low."""
    if low is None:
        what = "a finite number"
    elif low == 0 and strict:
        what = "a positive finite number"
    else:
        what = f"a finite number {'>' if strict else '≥'} {low:g}"
    what += " (or None)" if optional else ""

    def rule(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        ok = _is_real(value) and math.isfinite(float(value))
        if ok and low is not None:
            ok = float(value) > low if strict else float(value) >= low
        if not ok:
            raise _refuse(name, value, what)
        return float(value) if not _is_int(value) else value

    rule.kind = "float"  # type: ignore[attr-defined]
    return rule


def fraction(*, optional: bool = False) -> Rule:
    """A number in [0, 1) (a moment's decay rate, β₁ or β₂)."""
    what = "a number in [0, 1)" + (" (or None)" if optional else "")

    def rule(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        if not (_is_real(value) and 0.0 <= float(value) < 1.0):
            raise _refuse(name, value, what)
        return float(value)

    rule.kind = "float"  # type: ignore[attr-defined]
    return rule


def choice(values: Iterable[str], optional: bool = False) -> Rule:
    allowed = tuple(values)

    def rule(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        word = getattr(value, "value", value)  # an enum member
        if not isinstance(word, str) or word not in allowed:
            hint = closest(word, allowed, n=1) if isinstance(word, str) else ""
            raise _refuse(name, value, "one of " + ", ".join(allowed) + hint)
        return word

    rule.choices = allowed  # type: ignore[attr-defined]
    rule.kind = "choice"  # type: ignore[attr-defined]
    return rule


def dtype_rule(name: str, value: Any) -> Any:
    """float64 or float32, by name or as a NumPy/JAX dtype or type (``np.float32``)."""
    word = value
    if not isinstance(value, str):
        try:
            import numpy as np

            word = np.dtype(value).name
        except TypeError:
            word = value
    if word not in words(Dtype):
        extra = ("; half precision cannot resolve curvature (a point stored in float16 or "
                 "bfloat16 is computed in float32 or float64 with a note)"
                 if word in ("float16", "bfloat16") else "")
        raise _refuse(name, value, "float64 or float32" + extra)
    return word


dtype_rule.choices = words(Dtype)  # type: ignore[attr-defined]
dtype_rule.kind = "choice"  # type: ignore[attr-defined]


def boolean(name: str, value: Any) -> Any:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise _refuse(name, value, "True or False")


def optional_boolean(name: str, value: Any) -> Any:
    return None if value is None else boolean(name, value)


def text(optional: bool = True, paths: bool = False) -> Rule:
    def rule(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        if paths and isinstance(value, PurePath):
            return value if name == "plot" else str(value)
        if not isinstance(value, str):
            raise _refuse(name, value, "a string" + (" or a path" if paths else ""))
        return value

    return rule


def objective_rule(name: str, value: Any) -> Any:
    """A callable, a file (a string or a path), a built-in name or a loaded objective."""
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, str) or callable(value):
        return value
    from hesscli.objective.bind import Objective

    if isinstance(value, Objective):
        return value
    raise InputError(f"the objective must be a Python callable, an objective file (a path or "
                     f"'file.py:name'), a built-in problem name or a loaded objective; got "
                     f"{_shown(value)}")


def point_rule(name: str, value: Any) -> Any:
    """A POINT string, a path (its string), a pytree of arrays or None."""
    return str(value) if isinstance(value, PurePath) else value


def devices_rule(name: str, value: Any) -> Any:
    if _is_int(value) and value >= 1:
        return int(value)
    if isinstance(value, str) and (value.strip() == "all" or value.strip().isdigit()):
        return value
    raise _refuse(name, value, "a number of devices ≥ 1 or 'all'")


def blocks_rule(name: str, value: Any) -> Any:
    """leaf, a depth (an integer ≥ 1 or its digits), prefixes, or a bool (the bare flag)."""
    if value is None or isinstance(value, bool):
        return value
    if _is_int(value):
        if value < 1:
            raise _refuse(name, value, "'leaf', a depth ≥ 1 or comma-separated prefixes")
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value
    raise _refuse(name, value, "'leaf', a depth ≥ 1 or comma-separated prefixes")


def size_rule(name: str, value: Any) -> Any:
    """A memory size: None, text such as ``1GiB``, or a number of bytes."""
    if value is None or isinstance(value, str) or (_is_real(value) and value >= 0):
        return value
    raise _refuse(name, value, "a size such as '1GiB' or a number of bytes (or None)")


def params_rule(name: str, value: Any) -> Any:
    if value is None or isinstance(value, (Mapping, str)):
        return value
    if isinstance(value, Iterable):
        items = tuple(value)
        if all(isinstance(v, str) for v in items):
            return items
    raise _refuse(name, value, "a mapping or KEY=VALUE strings")


def mapping_rule(name: str, value: Any) -> Any:
    if value is None or isinstance(value, Mapping):
        return value
    raise _refuse(name, value, "a mapping (or None)")


def kinds_rule(name: str, value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)
    raise _refuse(name, value, "a matrix name (hessian, ggn, fisher, empirical-fisher) or a "
                  "list of them")


def boxes_rule(name: str, value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    try:
        items = list(items)
    except TypeError:
        raise _refuse(name, value, "LO,HI strings or (lo, hi) pairs") from None
    for item in items:
        if isinstance(item, str):
            continue
        try:
            ok = len(item) == 2 and all(_is_real(v) and math.isfinite(float(v)) for v in item)
        except TypeError:
            ok = False
        if not ok:
            raise _refuse(name, item, "a LO,HI string or a (lo, hi) pair of finite numbers")
    return tuple(items)


def plane_rule(name: str, value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _refuse(name, value, "two of grad, max, min, e.g. 'grad,min'")


def anything(name: str, value: Any) -> Any:
    return value


def spec_rule(name: str, value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (str, Mapping)):
        return value
    raise _refuse(name, value, "a checks.yaml path or a mapping like {'checks': [...]}")


RULES: dict[str, Rule] = {
    "objective": objective_rule, "at": point_rule, "around": point_rule,
    "spec": spec_rule,
    "params": params_rule,
    "method": choice(words(MethodRequest)),
    "dtype": dtype_rule,
    "seed": integer(0),
    "lr": real(0, strict=True),
    "gtol": real(0, optional=True),
    "tol": real(0, optional=True),
    "escape_step": real(0, strict=True),
    "fd_accuracy": choice(words(FDAccuracy)),
    "verify": boolean,
    "devices": devices_rule,
    "path": choice(words(PathRequest), optional=True),
    "k": integer(1),
    "eigensolver": choice(words(EigensolverRequest)),
    "rtol": real(0, strict=True, optional=True),
    "max_steps": integer(1, optional=True),
    "chunk_size": integer(1, optional=True),
    "curvature": anything,  # a backend object; checked where it is used
    "dense_budget": size_rule,
    "ends": choice(words(Ends)),
    "blocks": blocks_rule,
    "null_space": boolean,
    "curvature_kind": kinds_rule,
    "density": boolean,
    "probes": integer(1),
    "steps": integer(1),
    "sigma": real(0, strict=True, optional=True),
    "trace_probes": trace_probes_rule,
    "bins": integer(2, 40),
    "plot": text(paths=True),
    "estimator": choice((Estimator.AUTO, Estimator.HUTCHINSON, Estimator.HUTCH_PLUS_PLUS)),
    "trace": boolean,
    "top": integer(1),
    "boxes": boxes_rule,
    "radius": real(0, strict=True),
    "samples": integer(0),
    "hessian_points": integer(0),
    "atol": real(0),
    "plane": plane_rule,
    "points": integer(3),
    "grid": integer(3),
    "optimizer": text(optional=False),
    "options": mapping_rule,
    "batch_size": integer(1, optional=True),
    "noise": real(0, strict=True, optional=True),
    "noise_steps": integer(0, optional=True),
    "monitor_every": integer(1, optional=True),
    "curvature_on": boolean,
    "epochs": integer(1, optional=True),
    "noisy": boolean,
    "noise_scale": real(0, strict=True),
    "compare": text(),
    "monitor_blocks": blocks_rule,
    # the optimizer's own options (train's --momentum, ...): finite numbers, or a flag
    "momentum": real(optional=True), "b1": real(optional=True), "b2": real(optional=True),
    "eps": real(optional=True), "weight_decay": real(optional=True),
    "decay": real(optional=True), "nesterov": optional_boolean,
}
# where one name means something else in one command
OVERRIDES: dict[tuple[str, str], Rule] = {
    ("spectrum", "steps"): integer(2),  # Lanczos steps per density probe
    ("train", "steps"): integer(1, optional=True),  # None: from --epochs, a resumed log or 1000
    ("landscape", "radius"): real(0, strict=True, optional=True),  # None: from the curvature
    ("convexity", "rtol"): real(0, optional=True),  # the midpoint test's relative slack
    # analyze --preconditioner: the optimizer behind a saved state (None: not given)
    ("analyze", "lr"): real(0, strict=True, optional=True),  # None: 0.01, no threshold
    ("analyze", "b1"): fraction(optional=True), ("analyze", "b2"): fraction(optional=True),
    ("analyze", "eps"): real(0, optional=True),
    ("analyze", "weight_decay"): real(0, optional=True),
}


def rule_for(command: str, name: str) -> Rule | None:
    return OVERRIDES.get((command, name)) or RULES.get(name)


def check(command: str, name: str, value: Any) -> Any:
    """``value`` checked (and normalized) by the rule of ``command``'s option ``name``."""
    rule = rule_for(command, name)
    return value if rule is None else rule(name, value)


def validated(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate an API function: every argument is checked by :func:`check` first; an
    unknown keyword is an input error naming the closest option."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn)
        names = list(signature.parameters)

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            folded: dict[str, Any] = {}
            if command == "train":
                for key in [k for k in kwargs if k in OPTIMIZER_FLAGS and k not in names]:
                    folded[key] = kwargs.pop(key)
            unknown = [k for k in kwargs if k not in names]
            if unknown:
                raise InputError(f"hesscli.{command}() takes no option {unknown[0]!r}"
                                 f"{closest(unknown[0], names, n=1)}; its options are "
                                 f"{', '.join(names[1:])}")
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise InputError(f"hesscli.{command}(): {exc}") from None
            for name, value in list(bound.arguments.items()):
                bound.arguments[name] = check(command, name, value)
            if folded:
                options = dict(bound.arguments.get("options") or {})
                for key, value in folded.items():
                    value = check(command, key, value)
                    if value is not None:
                        options[key] = value
                bound.arguments["options"] = options
            return fn(*bound.args, **bound.kwargs)

        return checked

    return wrap
