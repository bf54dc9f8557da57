"""The ``hesscli.spectrum/1`` document: a spectrum report as JSON."""

from __future__ import annotations

from typing import Any

from hesscli.analysis.spectrum_compare import Comparison
from hesscli.analysis.spectrum_report import SpectrumReport
from hesscli.documents.analyze import bounds_fields


def spectrum_document(r: SpectrumReport, meta: dict[str, Any]) -> dict[str, Any]:
    """The ``hesscli.spectrum/1`` JSON document."""
    sp = r.spectrum
    doc: dict[str, Any] = {
        "schema": "hesscli.spectrum/1",
        "curvature": r.curvature,
        "objective": r.objective,
        "n": r.n,
        "method": r.method,
        "dtype": r.dtype,
        "path": r.path,
        "path_reason": r.path_reason,
        "dense_bytes": r.dense_bytes,
        "eigenvalues": sp.eigenvalues,
        "eigenvalues_complete": sp.complete,
        "lambda_min": sp.lambda_min,
        "lambda_max": sp.lambda_max,
        "tolerance": r.tolerance,
        "error": sp.error,
        "inertia": r.inertia,
        "residuals": sp.residuals,
        "eigenvalue_errors": (sp.eigenvalue_errors if sp.eigenvalue_errors is not None
                              else [sp.error] * len(sp.eigenvalues)),
        "eigenvalue_error_estimates": sp.error_estimates,
        "converged": r.extremes.converged if r.extremes is not None else None,
        "trace": None,
        "histogram": {"edges": r.histogram.edges, "counts": r.histogram.counts,
                      "estimated": r.histogram.estimated},
        "notes": list(r.notes),
    }
    estimated = None
    if r.trace is not None:
        estimated = {"estimate": r.trace.estimate, "standard_error": r.trace.standard_error,
                     "probes": r.trace.probes, "exact": False, "estimator": r.trace.estimator,
                     "hvps": r.trace.hvps, "choice": r.trace.choice,
                     "alternative_standard_error": r.trace.alternative_standard_error,
                     "degrees_of_freedom": r.trace.degrees_of_freedom,
                     "confidence": r.trace.confidence,
                     "interval": list(r.trace.interval) if r.trace.interval else None}
    if r.trace_exact is not None:
        doc["trace"] = {"estimate": r.trace_exact, "standard_error": 0.0, "probes": 0,
                        "exact": True}
        if estimated is not None:
            doc["trace"]["stochastic"] = estimated
    elif estimated is not None:
        doc["trace"] = estimated
    doc.update(bounds_fields(sp))
    ex = r.extremes
    if ex is not None:
        doc["extremes"] = {
            "solver": ex.solver, "k": ex.k, "steps": ex.steps, "hvps": ex.hvps,
            "hvps_max": ex.hvps_max, "hvps_min": ex.hvps_min, "rtol": ex.rtol,
            "residual_target": ex.tolerance, "all_converged": ex.all_converged,
            "seed": ex.seed, "target_measure": ex.measure, "ends": ex.ends,
            "sign_decided": ex.sign_decided, "complete": ex.complete,
            "basis_rows": ex.basis_rows, "restarts": ex.restarts, "choice": ex.choice,
        }
    d = r.density
    if d is not None:
        doc["density"] = {
            "method": "slq", "probes": d.probes, "lanczos_steps": d.steps, "sigma": d.sigma,
            "seed": d.seed, "hvps": d.hvps, "grid": d.grid, "values": d.density,
            "nodes": d.nodes, "weights": d.weights,
            "negative_fraction": d.fraction_below(-r.tolerance),
        }
    doc["meta"] = meta
    return doc


def comparison_block(r: SpectrumReport) -> dict[str, Any]:
    """One matrix's part of a side-by-side document: its spectrum fields, no meta."""
    block = spectrum_document(r, {})
    del block["schema"], block["meta"]
    return block


def comparison_document(c: Comparison, meta: dict[str, Any]) -> dict[str, Any]:
    """``hesscli.spectrum/1`` for several curvatures: the top-level fields are the
    first matrix's (so a reader of the one-matrix document keeps working), then
    ``curvatures`` (one block per matrix) and ``difference`` (the first two's)."""
    doc = spectrum_document(c.reports[0], meta)
    del doc["meta"]
    doc["curvatures"] = [comparison_block(r) for r in c.reports]
    if c.difference is not None and c.difference_of is not None:
        diff = comparison_block(c.difference)
        diff["of"] = list(c.difference_of)
        diff["description"] = c.description
        doc["difference"] = diff
    doc["meta"] = meta
    return doc
