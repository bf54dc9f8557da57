"""The ``hesscli.convexity/1`` document: a convexity test result as JSON."""

from __future__ import annotations

from typing import Any

from hesscli.analysis.convexity import Box, Convexity, Witness
from hesscli.vocab import WitnessKind


def witness_document(w: Witness | None, with_points: bool) -> Any:
    if w is None:
        return None
    doc: dict[str, Any] = {"kind": w.kind, "tolerance": w.tolerance}
    if w.kind == WitnessKind.MIDPOINT:
        doc.update({
            "inequality": "f((x+y)/2) <= (f(x)+f(y))/2",
            "f_x": w.f_x, "f_y": w.f_y, "f_mid": w.f_mid,
            "lhs": w.lhs, "rhs": w.rhs, "margin": w.margin,
        })
        if with_points:
            doc.update({"x": w.x, "y": w.y, "midpoint": w.midpoint})
    else:
        doc.update({
            "eigenvalue": w.eigenvalue,
            "top_parameters": [{"name": n, "weight": v} for n, v in w.top_parameters],
        })
        if with_points:
            doc.update({"point": w.point, "direction": w.direction})
    return doc


def convexity_document(c: Convexity, meta: dict[str, Any], with_points: bool) -> dict[str, Any]:
    """The ``hesscli.convexity/1`` JSON document (field names are a contract)."""
    r = c.region
    region: dict[str, Any] = {"kind": r.kind}
    if isinstance(r, Box):
        region.update({"lo": r.lo, "hi": r.hi} if with_points else {})
    else:
        region["radius"] = r.radius
        if with_points:
            region["center"] = r.center
    m, h = c.midpoint, c.hessian
    return {
        "schema": "hesscli.convexity/1",
        "objective": c.objective,
        "n": c.n,
        "method": c.method,
        "dtype": c.dtype,
        "verdict": c.verdict,
        "statement": c.statement,
        "region": region,
        "samples": {"pairs": m.pairs, "hessian_points": h.points, "seed": c.seed},
        "midpoint": {
            "pairs": m.pairs, "violations": m.violations, "rtol": m.rtol, "atol": m.atol,
            "worst_margin": m.worst_margin,
        },
        "hessian": {
            "points": h.points, "violations": h.violations,
            "smallest_eigenvalue": h.smallest_eigenvalue, "tolerance": h.tolerance,
            "skipped": h.skipped, "unconverged_points": h.unconverged,
        },
        "witness": witness_document(c.witness, with_points),
        "notes": list(c.notes),
        "meta": meta,
    }
