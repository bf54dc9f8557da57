"""``--expect KEY=VALUE``: assertions on a command's JSON document, for one-line CI checks.

``KEY`` is a dotted path into the document the command prints with
``--format json`` (``classification``, ``step.increases_loss``,
``inertia.negative``, ``eigenvalues[0]``, ``eigenvalues[-1]``). The operator is
one of ``=`` (or ``==``), ``!=``, ``<=``, ``>=``, ``<``, ``>``; the first
operator in the text splits it, so keys never contain one. ``VALUE`` is read as
JSON when it can be (``0``, ``1e4``, ``true``, ``null``, ``"text"``) and as a
plain string otherwise (``local_minimum``). Order comparisons need a number on
both sides; a ``null`` field (an undefined number such as an infinite
condition number) satisfies none of them.

Usage in a command (the document is built whatever ``--format`` is)::

    pending = expectations(expects, document)   # exit 2 here on a bad key
    ... print the report ...
    pending.enforce()                            # exit 1 here when one fails

The same engine evaluates ``checks.yaml`` expectations (:mod:`hesscli.checks`):
there a key is the same dotted path, and the value is a number range
``{min, max}``, a word or a list of words (any one passes), or true/false, as the
document schema types the field (:func:`from_spec`). Both produce an
:class:`Expectation` and are evaluated by :func:`evaluate` into one
:class:`Outcome` class.

A field inside an object marked ``"complete": false`` (``inertia`` on the
matrix-free path counts only the computed eigenvalues) is partial: an
expectation on it fails, saying so, instead of passing on a lower bound.

Nothing here prints; a failure is a :class:`CheckFailed` whose message lists
what was expected and what was measured.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from hesscli.errors import CheckFailed, InputError, closest

OPERATORS = ("<=", ">=", "!=", "==", "<", ">", "=")
_SPLIT = re.compile(r"(<=|>=|!=|==|<|>|=)")
_STEP = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")
_KEY = re.compile(r"[A-Za-z_]\w*(\[-?\d+\])*(\.[A-Za-z_]\w*(\[-?\d+\])*)*")
MISSING = object()


IN = "in"  # the measured value is one of a tuple of values
WITHIN = "within"  # the measured number is within (lo, hi); either may be None


@dataclass(frozen=True)
class Expectation:
    """What must hold for the field at ``key``: ``measured <op> value``.

    ``text`` is where it came from (the ``--expect`` text, or the spec path such as
    ``checks[0].expect.lambda_min``); ``label`` the key as written when it was an
    alias (``negative_eigenvalues``); ``absent`` what to measure when the
    document lacks the field (:data:`MISSING`: the expectation fails).
    """

    text: str
    key: str
    op: str
    value: Any
    label: str | None = None
    absent: Any = MISSING

    @property
    def name(self) -> str:
        """The key as the user wrote it."""
        return self.label or self.key

    @property
    def expected(self) -> str:
        """The expected value in words (``in [0.3, 0.5]``, ``saddle_point``, ``false``)."""
        v = self.value
        if self.op == WITHIN:
            lo, hi = v
            if lo is not None and hi is not None:
                return f"in [{lo:g}, {hi:g}]"
            return f"≥ {lo:g}" if lo is not None else f"≤ {hi:g}"
        if self.op == IN:
            return " or ".join(str(w) for w in v)
        text = json.dumps(v) if isinstance(v, bool) or v is None else str(v)
        return text if self.op == "=" else f"{self.op} {text}"


@dataclass(frozen=True)
class Outcome:
    """An expectation, what was measured, and whether it held (``present``: the field
    exists in the document; ``detail``: what else the measurement says)."""

    expectation: Expectation
    measured: Any
    passed: bool
    present: bool = True
    detail: str = ""

    @property
    def key(self) -> str:
        return self.expectation.name

    @property
    def path(self) -> str:
        return self.expectation.text

    @property
    def expected(self) -> str:
        return self.expectation.expected


def parse(text: str) -> Expectation:
    """``"condition_number<=1e4"`` -> Expectation(key, op, value)."""
    parts = _SPLIT.split(text, maxsplit=1)
    if len(parts) != 3 or not parts[0].strip():
        raise InputError(
            f"--expect {text!r}: expected KEY=VALUE or KEY<op>VALUE with op one of "
            f"{' '.join(OPERATORS)}, e.g. classification=local_minimum or "
            "condition_number<=1e4"
        )
    key, op, raw = parts[0].strip(), parts[1], parts[2].strip()
    op = "=" if op == "==" else op
    if not _KEY.fullmatch(key):
        raise InputError(f"--expect {text!r}: {key!r} is not a dotted path like step.lr")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if op not in ("=", "!=") and not _is_number(value):
        raise InputError(
            f"--expect {text!r}: the operator {op} compares numbers; {raw!r} is not a number"
        )
    return Expectation(text, key, op, value)


def key_steps(key: str) -> list[str | int]:
    """``"a.b[2].c"`` -> ``["a", "b", 2, "c"]``."""
    steps: list[str | int] = []
    for m in _STEP.finditer(key):
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    return steps


def lookup(document: Any, key: str) -> Any:
    """The value at ``key`` in ``document``, or :data:`MISSING`."""
    node = document
    for step in key_steps(key):
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                return MISSING
            node = node[step]
        else:
            if not isinstance(node, dict) or step not in node:
                return MISSING
            node = node[step]
    return node


def paths(document: Any, prefix: str = "") -> list[str]:
    """Every dotted path in ``document`` (lists by their name; ``meta`` left out)."""
    out: list[str] = []
    if isinstance(document, dict):
        for name, value in document.items():
            if not prefix and name == "meta":
                continue
            here = f"{prefix}.{name}" if prefix else str(name)
            out.append(here)
            out.extend(paths(value, here))
    return out


def schema_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Property paths a JSON Schema declares (fields that may be absent in one document)."""
    out: list[str] = []
    for name, sub in schema.get("properties", {}).items():
        if not prefix and name == "meta":
            continue
        here = f"{prefix}.{name}" if prefix else name
        out.append(here)
        if isinstance(sub, dict):
            out.extend(schema_paths(sub, here))
            for alt in sub.get("anyOf", []) + sub.get("oneOf", []):
                if isinstance(alt, dict):
                    out.extend(schema_paths(alt, here))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compare(measured: Any, op: str, expected: Any) -> bool:
    """``measured <op> expected`` (see the module docstring; null satisfies no order)."""
    if op == IN:
        return any(compare(measured, "=", e) for e in expected)
    if op == WITHIN:
        lo, hi = expected
        if not _is_number(measured) or not math.isfinite(float(measured)):
            return False
        return (lo is None or measured >= lo) and (hi is None or measured <= hi)
    if op in ("=", "!="):
        if _is_number(measured) and _is_number(expected):
            same = float(measured) == float(expected)
        else:
            same = measured == expected
        return same if op == "=" else not same
    if not _is_number(measured) or (isinstance(measured, float) and math.isnan(measured)):
        return False
    m, e = float(measured), float(expected)
    return {"<=": m <= e, ">=": m >= e, "<": m < e, ">": m > e}[op]


def partial_parent(document: Any, key: str) -> str | None:
    """The dotted path of an object on ``key``'s way marked ``"complete": false``, if any."""
    node, here = document, ""
    steps = key_steps(key)
    for i, step in enumerate(steps[:-1]):
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                return None
            node, here = node[step], f"{here}[{step}]"
        else:
            if not isinstance(node, dict) or step not in node:
                return None
            node, here = node[step], f"{here}.{step}" if here else str(step)
        if isinstance(node, dict) and node.get("complete") is False and \
                steps[i + 1] != "complete":
            return here
    return None


def evaluate(exp: Expectation, document: Any) -> Outcome:
    """The outcome of ``exp`` on a plain-JSON ``document``.

    A field of a partial object (``"complete": false``) fails with a detail
    saying why: its value counts only what was computed.
    """
    measured = lookup(document, exp.key)
    if measured is MISSING:
        if exp.absent is MISSING:
            return Outcome(exp, None, passed=False, present=False)
        measured = exp.absent
    if undecided(measured, exp.value):
        # only an expectation *of* the undecided value holds (KEY=undetermined, KEY=null)
        passed = (exp.op == "=" and exp.value == measured) or (
            exp.op == IN and any(e == measured for e in exp.value))
        return Outcome(exp, measured, passed, detail=undecided_detail(document))
    partial = partial_parent(document, exp.key)
    if partial is not None:
        return Outcome(exp, measured, passed=False, detail=(
            f"partial: {partial}.complete is false, it counts only the computed eigenvalues; "
            "use --dense or a larger --dense-budget (HESSCLI_DENSE_BUDGET) for the full count"))
    return Outcome(exp, measured, compare(measured, exp.op, exp.value))


UNDETERMINED = "undetermined"
UNDECIDED = "hesscli could not decide this here: see the notes"
KINK = "a kink: no second-order verdict"
UNCONVERGED = "unconverged extremes: raise --max-steps"


def undecided_detail(document: Any) -> str:
    """:data:`UNDECIDED` with the reason the document shows (a kink, unconverged ends),
    or both possible reasons when it shows neither."""
    reasons = []
    if isinstance(document, dict):
        if document.get("smooth") is False:
            reasons.append(KINK)
        converged = document.get("converged")
        if isinstance(converged, list) and not all(converged):
            reasons.append(UNCONVERGED)
    return f"{UNDECIDED} ({'; '.join(reasons or [UNCONVERGED, KINK])})"


def undecided(measured: Any, expected: Any) -> bool:
    """Whether ``measured`` is a verdict hesscli could not decide.

    ``"undetermined"`` (a classification or definiteness the evidence leaves
    open) and ``null`` where a true/false answer is expected (``stability.stable``
    on an unconverged λmax) satisfy no expectation, not even ``!=``: "not a
    saddle" is as unproven as "a saddle". Only an expectation of the undecided
    value itself (``KEY=undetermined``, ``KEY=null``) holds.
    """
    expects_bool = isinstance(expected, bool) or (
        isinstance(expected, tuple) and any(isinstance(e, bool) for e in expected))
    return measured == UNDETERMINED or (measured is None and expects_bool)


@dataclass(frozen=True)
class Pending:
    """Expectations checked against a document; :meth:`enforce` raises on failure."""

    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed)

    def enforce(self) -> None:
        failed = self.failed
        if not failed:
            return
        parts = []
        for o in failed:
            if o.detail.startswith("partial"):
                parts.append(f"{o.expectation.text} ({o.expectation.key} = "
                             f"{json.dumps(o.measured)} is {o.detail})")
                continue
            got = json.dumps(o.measured) if o.present else "absent from this document"
            if o.present and o.detail.startswith(UNDECIDED):
                got += f", which {o.detail.removeprefix('hesscli ')}"
            parts.append(f"{o.expectation.text} (measured {o.expectation.key} = {got})"
                         if o.present else f"{o.expectation.text} ({o.expectation.key} is "
                         f"{got})")
        raise CheckFailed(
            f"{len(failed)} of {len(self.outcomes)} expectation"
            f"{'s' if len(self.outcomes) != 1 else ''} failed: " + "; ".join(parts)
        )


def expectations(
    items: tuple[str, ...] | list[str], document: dict[str, Any],
    schema: dict[str, Any] | None = None,
) -> Pending:
    """Parse ``--expect`` items and evaluate them against ``document``.

    A key that is neither in the document nor declared by ``schema`` is an
    :class:`InputError` naming the closest field. A key the schema declares
    but this document lacks (``escape`` at a minimum) fails the expectation.
    """
    from hesscli.documents.jsonable import jsonable
    from hesscli.schemas import schema_of

    document = jsonable(document)  # the document exactly as --format json prints it
    if schema is None:
        schema = schema_of(document.get("schema"))
    known = paths(document)
    declared = set(schema_paths(schema)) if schema else set()
    outcomes = []
    for text in items:
        exp = parse(text)
        measured = lookup(document, exp.key)
        if measured is MISSING:
            out_of_range(document, exp)
            plain = re.sub(r"\[-?\d+\]", "", exp.key)
            if plain not in declared and plain not in known:
                raise InputError(
                    f"--expect {text!r}: no field {exp.key!r} in the "
                    f"{document.get('schema', 'JSON')} document{closest(plain, known, n=1)}"
                )
            outcomes.append(evaluate(exp, document))
            continue
        if exp.op not in ("=", "!=") and not (_is_number(measured) or measured is None):
            raise InputError(
                f"--expect {text!r}: {exp.key} is {json.dumps(measured)[:60]}, not a number; "
                "use = or != for it"
            )
        same_kind(exp, measured)
        outcomes.append(evaluate(exp, document))
    return Pending(tuple(outcomes))


def _kind(value: Any) -> str | None:
    """The JSON kind of a value for comparisons (None: null, comparable with anything)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "a boolean (true/false)"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def same_kind(exp: Expectation, measured: Any) -> None:
    """An expected value that can never equal the field (``critical=yes`` for a boolean,
    ``inertia.negative=zero`` for a number) is an invalid expectation, not a failure."""
    if exp.op not in ("=", "!="):
        return
    have, want = _kind(measured), _kind(exp.value)
    if have is None or want is None or have == want:
        return
    raise InputError(f"--expect {exp.text!r}: {exp.key} is {have}, so {json.dumps(exp.value)} "
                     "can never match it")


def out_of_range(document: Any, exp: Expectation) -> None:
    """An index past the end of a list the document has is an invalid expectation."""
    node = document
    for step in key_steps(exp.key):
        if isinstance(step, int):
            if not isinstance(node, list):
                return
            if not -len(node) <= step < len(node):
                raise InputError(f"--expect {exp.text!r}: index {step} is out of range; this "
                                 f"list has {len(node)} entries")
            node = node[step]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return

