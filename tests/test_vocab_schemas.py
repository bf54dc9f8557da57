"""The vocabulary's enums are the words the JSON Schemas allow.

Each enum of ``hesscli/vocab.py`` that names a field's values must list the same
words as that field's ``enum`` in the command's schema (read from the schema
files, not from the program's output): a member added, renamed or dropped on one
side only fails here.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from hesscli import vocab

SCHEMAS = Path(vocab.__file__).parent / "schemas"


def _enums_of(node: Any, key: str) -> list[set[str]]:
    """Every ``enum`` given for a property named ``key`` anywhere in the schema."""
    found: list[set[str]] = []
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and isinstance(props.get(key), dict) \
                and "enum" in props[key]:
            found.append({w for w in props[key]["enum"] if w is not None})
        for value in node.values():
            found += _enums_of(value, key)
    elif isinstance(node, list):
        for value in node:
            found += _enums_of(value, key)
    return found


CASES = [
    ("analyze", "trace_estimator", vocab.TraceMethod),  # --blocks: each block's trace
    ("spectrum", "estimator", vocab.TraceMethod),  # the trace: Hutchinson, Hutch++ or exact
    ("analyze", "method", vocab.BlockMethod),  # --blocks: each block's extremes
    ("analyze", "certainty", vocab.Certainty),
    ("analyze", "source", vocab.KinkSource),  # nonsmooth.source
    ("analyze", "source", vocab.StreamSource),  # stream.source
    ("spectrum", "source", vocab.StreamSource),
    ("analyze", "kind", vocab.KinkKind),  # nonsmooth.kinks[].kind
    ("analyze", "kind", vocab.NullSource),  # null_space.sources[].kind
    ("landscape", "direction", vocab.PlaneDirection),
    ("spectrum", "solver", vocab.Eigensolver),
    ("analyze", "method", vocab.Method),
]


@pytest.mark.parametrize(("schema", "key", "enum"), CASES,
                         ids=[f"{s}.{k}-{e.__name__}" for s, k, e in CASES])
def test_the_schema_allows_exactly_the_enums_words(schema: str, key: str,
                                                   enum: type[StrEnum]) -> None:
    doc = json.loads((SCHEMAS / f"{schema}.schema.json").read_text())
    enums = _enums_of(doc, key)
    assert enums, f"{schema}.schema.json has no enum for {key!r}"
    assert set(vocab.words(enum)) in enums, (
        f"{enum.__name__} = {vocab.words(enum)}; {schema}.schema.json's {key!r} enums: {enums}")


def test_the_result_words_serialize_as_their_strings() -> None:
    # StrEnum members are their strings: documents and run logs keep plain JSON words
    doc = {"method": vocab.BlockMethod.LANCZOS, "estimator": vocab.TraceMethod.EXACT,
           "record": vocab.RecordKind.STATE, "kind": vocab.NullSource.DEAD_UNIT}
    assert json.dumps(doc) == ('{"method": "lanczos", "estimator": "exact", '
                               '"record": "state", "kind": "dead_unit"}')
