"""The ``hesscli.spectrum/1`` document: a spectrum report as JSON."""

from __future__ import annotations

from typing import Any

from hesscli.analysis.spectrum_report import SpectrumReport


def spectrum_document(r: SpectrumReport, meta: dict[str, Any]) -> dict[str, Any]:
    """The ``hesscli.spectrum/1`` JSON document."""
    sp = r.spectrum
    doc: dict[str, Any] = {
        "schema": "hesscli.spectrum/1",
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
        "converged": r.extremes.converged if r.extremes is not None else None,
        "trace": None,
        "histogram": {"edges": r.histogram.edges, "counts": r.histogram.counts,
                      "estimated": r.histogram.estimated},
        "notes": list(r.notes),
    }
    if r.trace_exact is not None:
        doc["trace"] = {"estimate": r.trace_exact, "standard_error": 0.0, "probes": 0,
                        "exact": True}
    elif r.trace is not None:
        doc["trace"] = {"estimate": r.trace.estimate,
                        "standard_error": r.trace.standard_error,
                        "probes": r.trace.probes, "exact": False}
    ex = r.extremes
    if ex is not None:
        doc["extremes"] = {
            "solver": ex.solver, "k": ex.k, "steps": ex.steps, "hvps": ex.hvps,
            "hvps_max": ex.hvps_max, "hvps_min": ex.hvps_min, "rtol": ex.rtol,
            "residual_target": ex.tolerance, "all_converged": ex.all_converged,
            "seed": ex.seed,
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
