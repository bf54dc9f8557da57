"""The ``stream`` field of the analyze and spectrum documents (streamed data sets)."""

from __future__ import annotations

from typing import Any

from hesscli.curvature.streamed import BatchSpread, Spread
from hesscli.objective.streaming import BatchStream


def spread_document(s: Spread) -> dict[str, Any]:
    return {"per_batch": s.per_batch, "mean": s.mean, "std": s.std, "stderr": s.stderr,
            "weighted_mean": s.weighted_mean}


def stream_document(stream: BatchStream, spread: BatchSpread | None,
                    hvps: int) -> dict[str, Any]:
    """Which batches made the data set and, for two or more, their variability."""
    doc: dict[str, Any] = {
        "source": stream.source,
        "batch_size": stream.batch_size,
        "batches": stream.count,
        "available_batches": stream.available,
        "samples": stream.samples,
        "batch_sizes": list(stream.sizes),
        "passes": stream.passes,
        "hvps": hvps,
    }
    if spread is not None:
        doc["variability"] = {
            "curvature": spread.kind,
            "estimated": True,
            "lanczos_steps": spread.lanczos_steps,
            "trace_probes": spread.probes,
            "seed": spread.seed,
            "lambda_max": spread_document(spread.lambda_max),
            "trace": spread_document(spread.trace),
        }
    return doc
