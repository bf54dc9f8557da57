"""JSON documents: plain values, ``null`` for non-finite numbers, one document on stdout."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import IO, Any

import numpy as np


def jsonable(value: Any) -> Any:
    """Convert dataclasses, NumPy values and tuples to JSON types; NaN/inf -> None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def dump(document: dict[str, Any], stream: IO[str] | None = None) -> None:
    """Write exactly one JSON document (and a newline) to ``stream`` (stdout)."""
    from hesscli.render.streams import report_stream

    stream = stream or report_stream()
    json.dump(jsonable(document), stream, indent=2, allow_nan=False)
    stream.write("\n")
    stream.flush()
