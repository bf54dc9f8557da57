"""JSON Schemas of hesscli's documents (``<command>.schema.json``)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema for the ``name`` document (e.g. ``"analyze"``)."""
    text = resources.files("hesscli.schemas").joinpath(f"{name}.schema.json").read_text()
    return json.loads(text)
