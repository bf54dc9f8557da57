"""What a ``--resume`` log must hold, checked whole before a run continues from it.

A run log is a file people keep, copy and sometimes edit; ``--resume`` turns it
back into a trajectory. Everything the resumed run reads from it is checked
here, in one place, against one description per record (:data:`HEADER`,
:data:`STATE`, :data:`STEP`, :data:`OPT_LEAF`): a field of the wrong type, a
point of the wrong length, a non-finite parameter, a step that cannot follow
the logged history or an optimizer-state array whose data does not fill its
shape is an input error (exit 2) naming the line and the field, never an
exception from deep inside the training loop and never a run that continues
from NaN.

The rules are what hesscli writes (:mod:`hesscli.training.runlog`): a state's
``step`` is a whole number at or after the last logged step record and at most
one ``monitor_every`` past it (states are written after the step they belong
to); ``x`` has the header's ``n`` finite entries in ``x_dtype`` (float64 or
float32); each optimizer-state leaf has a numeric dtype, a shape of
non-negative whole numbers and exactly ``prod(shape)`` values representable in
that dtype (finite for floating-point leaves).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hesscli.errors import InputError
from hesscli.vocab import RecordKind

Check = Callable[[Any], bool]


def whole(value: Any) -> bool:
    """A JSON whole number (``true`` is not one, nor is ``1.5``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def number(value: Any) -> bool:
    """A finite JSON number."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def at_least(low: int) -> Check:
    return lambda value: whole(value) and value >= low


def text(value: Any) -> bool:
    return isinstance(value, str)


def mapping(value: Any) -> bool:
    return isinstance(value, dict)


def flag(value: Any) -> bool:
    return isinstance(value, bool)


def numbers_by_name(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and (v is None or number(v))
                                           for k, v in value.items())


# field -> (required, check, what it must be); one description per record kind
Fields = dict[str, tuple[bool, Check, str]]

CONFIG: Fields = {
    "optimizer": (True, text, "an optimizer name"),
    "options": (True, mapping, "an object of optimizer options"),
    "lr": (True, lambda v: number(v) and v > 0, "a positive number"),
    "noise": (False, optional(lambda v: number(v) and v > 0), "null or a positive number"),
    "noise_steps": (False, optional(at_least(0)), "null or a whole number ≥ 0"),
    "seed": (True, at_least(0), "a whole number ≥ 0"),
    "batch_size": (False, optional(at_least(1)), "null or a whole number ≥ 1"),
    "monitor_every": (True, at_least(1), "a whole number ≥ 1"),
}
HEADER: Fields = {
    "objective": (True, text, "the objective's name"),
    "n": (True, at_least(1), "the number of parameters (a whole number ≥ 1)"),
    "config": (True, mapping, "an object of the run's options"),
    "start": (False, mapping, "an object"),
    "steps": (False, at_least(1), "a whole number ≥ 1"),
}
STATE: Fields = {
    "step": (True, at_least(0), "a whole number ≥ 0"),
    "start_value": (True, number, "a finite number"),
    "x": (True, lambda v: isinstance(v, list), "a list of numbers"),
    "x_dtype": (False, lambda v: v in ("float64", "float32"), "float64 or float32"),
    "opt_state": (True, lambda v: isinstance(v, list), "a list of arrays"),
}
OPT_LEAF: Fields = {
    "dtype": (True, text, "a dtype name"),
    "shape": (True, lambda v: isinstance(v, list) and all(at_least(0)(s) for s in v),
              "a list of whole numbers ≥ 0"),
    "data": (True, lambda v: isinstance(v, list), "a list of numbers"),
}
STEP: Fields = {
    "step": (True, at_least(0), "a whole number ≥ 0"),
    "value": (True, optional(number), "a number (null when not finite)"),
    "gradient_norm": (True, optional(number), "a number (null when not finite)"),
    **{name: (False, optional(number), "null or a number") for name in (
        "lambda_min", "lambda_max", "lr_times_lambda_max", "predicted_change",
        "actual_change", "model_error", "mean_step_loss", "elapsed", "x_norm",
        "curvature_error", "lambda_min_at_least", "lambda_max_at_most")},
    "lambda_min_converged": (False, optional(flag), "null, true or false"),
    "lambda_max_converged": (False, optional(flag), "null, true or false"),
    "block_lambda_max": (False, optional(numbers_by_name), "null or an object of numbers"),
}
EVENT: Fields = {
    "step": (True, at_least(0), "a whole number ≥ 0"),
    "kind": (True, text, "an event name"),
    "message": (False, text, "text"),
}
OPT_DTYPES = ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8",
              "uint64", "uint32", "uint16", "uint8", "bool")


def check_fields(line: Any, fields: Fields, where: str) -> None:
    """``line`` is an object whose fields follow ``fields`` (else an input error)."""
    if not isinstance(line, dict):
        raise InputError(f"{where}: expected an object, got {_shown(line)}")
    for name, (required, check, what) in fields.items():
        if name not in line:
            if required:
                raise InputError(f"{where}: the field {name!r} is missing")
            continue
        if not check(line[name]):
            raise InputError(f"{where}: {name} must be {what}; got {_shown(line[name])}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_header(header: dict[str, Any], where: str) -> None:
    check_fields(header, HEADER, f"{where} (header, line 1)")
    check_fields(header["config"], CONFIG, f"{where} (header config, line 1)")


def check_records(lines: list[tuple[int, dict[str, Any]]], where: str) -> None:
    """The step and event records the resumed run replays (with their line numbers):
    typed, steps never falling."""
    last = -1
    for lineno, line in lines:
        kind = line.get("record") if isinstance(line, dict) else None
        if kind == RecordKind.STEP:
            check_fields(line, STEP, f"{where} (line {lineno})")
            if line["step"] < last:
                raise InputError(f"{where}: line {lineno} has step {line['step']} after "
                                 f"step {last}; a log's steps never go back")
            last = line["step"]
        elif kind == RecordKind.EVENT:
            check_fields(line, EVENT, f"{where} (line {lineno})")


def check_state(state: dict[str, Any], header: dict[str, Any], last_step: int | None,
                where: str, line: int) -> None:
    """The state ``--resume`` continues from (on ``line``): see the module docstring."""
    here = f"{where} (the state on line {line})"
    check_fields(state, STATE, here)
    n, every = header["n"], header["config"]["monitor_every"]
    step = state["step"]
    if last_step is not None and not last_step <= step <= last_step + every:
        raise InputError(
            f"{here}: step {step} cannot follow the logged history (last logged step "
            f"{last_step}, logged every {every}); the state belongs to a step in "
            f"[{last_step}, {last_step + every}]")
    x = state["x"]
    if len(x) != n:
        raise InputError(f"{here}: x has {len(x)} entries; the log's objective has n = {n}")
    bad = [i for i, v in enumerate(x) if not number(v)]
    if bad:
        raise InputError(
            f"{here}: x[{bad[0]}] = {_shown(x[bad[0]])} is not a finite number ({len(bad)} "
            "such entries); a run cannot continue from a non-finite or missing point (did "
            "the logged run diverge? start a new run instead)")
    for j, leaf in enumerate(state["opt_state"]):
        check_leaf(leaf, f"{here}: opt_state[{j}]")


def check_leaf(leaf: Any, where: str) -> None:
    check_fields(leaf, OPT_LEAF, where)
    dtype = leaf["dtype"]
    if dtype not in OPT_DTYPES:
        raise InputError(f"{where}: dtype {_shown(dtype)} is not a numeric dtype "
                         f"({', '.join(OPT_DTYPES)})")
    size = int(np.prod(leaf["shape"], dtype=np.float64))
    data = leaf["data"]
    if len(data) != size:
        raise InputError(f"{where}: {len(data)} values for shape {leaf['shape']} "
                         f"({size} expected)")
    kind = "bool" if dtype == "bool" else ("int" if "int" in dtype else "float")
    if kind == "bool":
        ok = all(isinstance(v, bool) or (whole(v) and v in (0, 1)) for v in data)
    elif kind == "int":
        info = np.iinfo(dtype)
        ok = all(whole(v) and info.min <= v <= info.max for v in data)
    else:
        ok = all(number(v) for v in data)
        if ok and data:
            with np.errstate(over="ignore", invalid="ignore"):
                ok = bool(np.all(np.isfinite(np.asarray(data, dtype=np.float64).astype(dtype))))
    if not ok:
        what = {"bool": "true/false", "int": f"whole numbers within {dtype}",
                "float": "finite numbers"}[kind]
        raise InputError(f"{where}: the {dtype} data must be {what}; a resumed run cannot "
                         "continue from it")
