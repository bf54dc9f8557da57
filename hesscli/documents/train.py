"""The ``hesscli.train/1`` and ``hesscli.train-compare/1`` documents (one run, several)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from hesscli.vocab import Method

SCHEMA = "hesscli.train/1"
COMPARE_SCHEMA = "hesscli.train-compare/1"


def _event_dict(event: Any) -> dict[str, Any]:
    return {"step": event.step, "kind": event.kind, "message": event.message, **event.data}


def run_fields(s: Any) -> dict[str, Any]:
    """The fields of one run in the ``hesscli.train/1`` document (without schema/meta)."""
    r = s.result
    c = r.config
    final = r.final
    a = s.analysis
    doc: dict[str, Any] = {
        "objective": s.objective,
        "n": s.n,
        "method": Method.EXACT,  # train needs exact derivatives
        "dtype": s.dtype,
        "optimizer": {"name": c.optimizer, "lr": c.lr, "options": dict(c.options)},
        "noise": None if c.noise is None else {"scale": c.noise, "steps": c.noise_steps,
                                              "kind": "unit_sphere"},
        "batch_size": c.batch_size,
        "seed": c.seed,
        "monitor_every": c.monitor_every,
        "steps": r.steps,
        "steps_requested": s.requested_steps,
        "diverged": r.diverged,
        "final_value": final.value,
        "final_gradient_norm": final.gradient_norm,
        "final_classification": a.classification if a is not None else None,
        "final_certainty": a.certainty if a is not None else None,
        "final_lambda_min": a.spectrum.lambda_min if a is not None else final.lambda_min,
        "final_lambda_max": a.spectrum.lambda_max if a is not None else final.lambda_max,
        "final_tolerance": a.tolerance if a is not None else None,
        "final_gtol": a.gtol if a is not None else None,
        "events": [_event_dict(e) for e in r.events],
        "history": [asdict(rec) for rec in r.history],
        "timing": {"train_seconds": r.train_seconds, "monitor_seconds": r.monitor_seconds,
                   "monitor_share": r.monitor_share},
        "notes": list(r.notes) + (list(a.notes) if a is not None else []),
    }
    if s.n <= 1000:
        doc["final_point"] = [float(v) for v in r.x]
        doc["parameter_names"] = list(s.names)
    if s.report is not None:
        doc["report"] = s.report
    return doc


def train_document(s: Any, meta: dict[str, Any]) -> dict[str, Any]:
    return {"schema": SCHEMA, **run_fields(s), "meta": meta}


def compare_document(summaries: list[Any], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": COMPARE_SCHEMA,
        "objective": summaries[0].objective,
        "n": summaries[0].n,
        "variants": [{"name": s.name, "schema": SCHEMA, **run_fields(s)} for s in summaries],
        "meta": meta,
    }
