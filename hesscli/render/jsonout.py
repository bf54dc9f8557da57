"""JSON documents: plain values, ``null`` for non-finite numbers, one document on stdout."""

from __future__ import annotations

import json
from typing import IO, Any

from hesscli.documents.jsonable import jsonable


def dump(document: dict[str, Any], stream: IO[str] | None = None) -> None:
    """Write exactly one JSON document (and a newline) to ``stream`` (stdout)."""
    from hesscli.render.streams import report_stream

    stream = stream or report_stream()
    json.dump(jsonable(document), stream, indent=2, allow_nan=False)
    stream.write("\n")
    stream.flush()
