"""JSON Schemas of hesscli's documents (``<command>.schema.json``)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema for the ``name`` document (e.g. ``"analyze"``)."""
    text = resources.files("hesscli.schemas").joinpath(f"{name}.schema.json").read_text()
    return json.loads(text)


def schema_of(document_name: Any) -> dict[str, Any] | None:
    """The schema of a document named ``hesscli.<command>/<version>``, or None."""
    if not isinstance(document_name, str) or not document_name.startswith("hesscli."):
        return None
    try:
        return load_schema(document_name.split(".", 1)[1].split("/", 1)[0])
    except (FileNotFoundError, OSError, ValueError):
        return None


def field_schema(schema: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The subschema of the dotted path ``key`` (``a.b``, ``eigenvalues[0]``), or None."""
    import re

    node: Any = schema
    for name, index in re.findall(r"([^.\[\]]+)|\[(-?\d+)\]", key):
        if not isinstance(node, dict):
            return None
        if index:
            node = node.get("items")
            continue
        candidates = [node] + [n for n in node.get("anyOf", []) + node.get("oneOf", [])
                               if isinstance(n, dict)]
        node = next((c["properties"][name] for c in candidates
                     if name in c.get("properties", {})), None)
    return node if isinstance(node, dict) else None
