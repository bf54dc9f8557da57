"""The ``hesscli.analyze/1`` document: an :class:`~hesscli.analysis.analyze.Analysis` as JSON."""

from __future__ import annotations

from typing import Any

from hesscli.analysis.analyze import Analysis


def analysis_document(
    a: Analysis, meta: dict[str, Any], with_direction: bool,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``hesscli.analyze/1`` JSON document (field names are a contract).

    ``extra`` fields (e.g. ``devices``, ``processes``) go in before ``meta``.
    """
    doc: dict[str, Any] = {
        "schema": "hesscli.analyze/1",
        "objective": a.objective,
        "n": a.n,
        "method": a.method,
        "dtype": a.dtype,
        "value": a.value,
        "gradient_norm": a.gradient_norm,
        "gradient_tolerance": a.gtol,
        "eigenvalues": a.spectrum.eigenvalues,
        "eigenvalues_complete": a.spectrum.complete,
        "lambda_min": a.spectrum.lambda_min,
        "lambda_max": a.spectrum.lambda_max,
        "inertia": a.inertia,
        "tolerance": a.tolerance,
        "symmetry_error": a.spectrum.symmetry_error,
        "definiteness": a.definiteness,
        "critical": a.critical,
        "classification": a.classification,
        "curvature": a.curvature,
        "condition_number": a.condition_number,
        "stability": a.stability,
        "path": a.spectrum.path,
        "notes": list(a.notes),
    }
    doc["method_reason"] = a.fd.why if a.fd is not None else None
    doc["smooth"] = a.smooth
    if a.nonsmooth is not None:
        ns = a.nonsmooth
        doc["nonsmooth"] = {
            "parameters": list(ns.parameters),
            "slope_jump": list(ns.slope_jump),
            "gradient_band": ns.gradient_band,
            "disagreement": ns.disagreement,
            "source": ns.source,
        }
        if ns.kinks:
            doc["nonsmooth"]["kinks"] = [
                {"direction": k.direction, "side": k.side, "kind": k.kind,
                 "mismatch": k.mismatch, "jump": k.jump, "significance": k.significance,
                 "top_parameters": [{"name": n, "weight": w} for n, w in k.top_parameters]}
                for k in ns.kinks
            ]
            doc["nonsmooth"]["evaluations"] = ns.evaluations
    if a.fd is not None:
        doc["fd"] = a.fd
    if a.verification is not None:
        doc["verify"] = verification_document(a.verification)
    sp = a.spectrum
    if sp.residuals is not None:
        doc["residuals"] = sp.residuals
    # certified half-width per eigenvalue: the residual bound on the matrix-free
    # path, the spectrum's known error band (0 when exact) on the dense one
    doc["eigenvalue_errors"] = (sp.eigenvalue_errors if sp.eigenvalue_errors is not None
                                else [sp.error] * len(sp.eigenvalues))
    if sp.error_estimates is not None:  # Kato–Temple with the Ritz gap: an estimate
        doc["eigenvalue_error_estimates"] = sp.error_estimates
    if sp.converged is not None:
        doc["converged"] = sp.converged
    doc.update(bounds_fields(sp))
    doc["certainty"] = a.certainty
    if a.step is not None:
        doc["step"] = a.step
    if a.escape is not None:
        e = a.escape
        doc["escape"] = {
            "eigenvalue": e.eigenvalue,
            "top_parameters": [{"name": n, "weight": w} for n, w in e.top_parameters],
            "leaf_shares": [{"leaf": n, "share": s} for n, s in e.leaf_shares],
            "distance": e.distance,
            "predicted_change": e.predicted_change,
            "actual_change": e.actual_change,
            "actual_change_opposite": e.actual_change_opposite,
        }
        if with_direction:
            doc["escape"]["direction"] = e.direction
    doc.update(extra or {})
    doc["meta"] = meta
    return doc


def bounds_fields(sp: Any) -> dict[str, Any]:
    """Matrix-free: ``lambda_min_interval``, ``lambda_max_interval`` and ``bounds`` (what
    is proven, what the random start makes likely); nothing on the dense path."""
    b = sp.bounds
    if b is None:
        return {}
    return {"lambda_min_interval": list(b.min_interval),
            "lambda_max_interval": list(b.max_interval), "bounds": b.as_json()}


def verification_document(v: Any) -> dict[str, Any]:
    """The ``verify`` block: per comparison relative error, tolerance, passed."""
    doc: dict[str, Any] = {"performed": v.performed, "passed": v.passed, "seed": v.seed,
                           "evaluations": v.evaluations}
    if v.why:
        doc["why"] = v.why
    for key, c in (("hvp", v.hvp), ("directional_derivative", v.directional)):
        if c is not None:
            doc[key] = {"relative_error": c.relative_error, "tolerance": c.tolerance,
                        "passed": c.passed, "exact_norm": c.exact_norm, "fd_norm": c.fd_norm,
                        "fd_error": c.fd_error}
    if v.hvp is not None:
        doc["relative_error"] = v.hvp.relative_error
    return doc


#: an ``analyze`` document's fields that describe one matrix (``curvatures`` entries)
PER_MATRIX = ("curvature", "eigenvalues", "eigenvalues_complete", "lambda_min", "lambda_max",
              "lambda_min_interval", "lambda_max_interval", "eigenvalue_errors", "converged",
              "inertia", "tolerance", "definiteness", "classification", "condition_number",
              "certainty", "path", "notes")


def curvatures_document(c: Any, with_direction: bool) -> list[dict[str, Any]]:
    """``analyze --curvature A,B``: one entry per matrix, in the order asked (the first is
    the document's own top level), each with its ``blocks`` under ``--blocks``."""
    from hesscli.documents.structure import blocks_document

    out = []
    for e in c.entries:
        doc = analysis_document(e.analysis, {}, with_direction=with_direction)
        entry = {k: doc[k] for k in PER_MATRIX if k in doc}
        if e.blocks is not None:
            entry["blocks"] = blocks_document(e.blocks)
        out.append(entry)
    return out
