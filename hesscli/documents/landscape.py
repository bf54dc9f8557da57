"""The ``hesscli.landscape/1`` document: a landscape result as JSON."""

from __future__ import annotations

from typing import Any

from hesscli.analysis.landscape import Landscape


def landscape_document(ls: Landscape, meta: dict[str, Any], with_direction: bool
                       ) -> dict[str, Any]:
    """The ``hesscli.landscape/1`` JSON document."""
    slices = []
    for sl in ls.slices:
        item: dict[str, Any] = {
            "direction": sl.name, "label": sl.label, "eigenvalue": sl.eigenvalue,
            "slope": sl.slope, "curvature": sl.curvature, "t": sl.t, "values": sl.values,
            "model": sl.model, "lowest_t": sl.lowest_t, "lowest_value": sl.lowest_value,
        }
        if with_direction:
            item["vector"] = sl.direction
        slices.append(item)
    grid = None
    if ls.grid is not None:
        g = ls.grid
        grid = {
            "directions": list(g.names), "labels": list(g.labels),
            "orthogonalized": g.orthogonalized, "a": g.a, "b": g.b,
            "values": g.values, "model": g.model,
            "step": None if g.step is None else {"a": g.step[0], "b": g.step[1]},
        }
        if with_direction:
            grid["u"], grid["w"] = g.u, g.w
    return {
        "schema": "hesscli.landscape/1",
        "objective": ls.objective, "n": ls.n, "method": ls.method, "dtype": ls.dtype,
        "value": ls.value, "gradient_norm": ls.gradient_norm,
        "classification": ls.classification, "curvature": ls.curvature,
        "lambda_min": ls.lambda_min, "lambda_max": ls.lambda_max,
        "radius": ls.radius, "radius_reason": ls.radius_reason,
        "slices": slices, "step": ls.step, "grid": grid, "notes": list(ls.notes),
        "meta": meta,
    }
