"""Which direction escapes this saddle, and in which parameters does it live?

The eigenvector ``v`` of the most negative eigenvalue λ is the direction of
steepest negative curvature: moving ``t`` along it changes ``f`` by about
``½ λ t²`` (at a critical point). Its sign is fixed deterministically (largest
entry positive), and the change is also evaluated for real in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hesscli.objective.layout import Layout, leaf_shares, top_entries


@dataclass(frozen=True)
class Escape:
    eigenvalue: float
    direction: np.ndarray  # unit vector, flat
    top_parameters: tuple[tuple[str, float], ...]  # (name, entry of v), largest |entry| first
    leaf_shares: tuple[tuple[str, float], ...]  # (leaf path, share of ‖v‖²)
    distance: float  # t
    predicted_change: float  # ½ λ t² (+ t gᵀv when not critical)
    actual_change: float  # f(x + t v) − f(x)
    actual_change_opposite: float  # f(x − t v) − f(x)


def escape_direction(
    eigenvalue: float,
    vector: np.ndarray,
    gradient: np.ndarray,
    layout: Layout,
    distance: float,
    value: float,
    value_plus: float,
    value_minus: float,
    top: int = 5,
) -> Escape:
    """Package the escape direction ``vector`` (already sign-fixed, unit norm)."""
    predicted = float(distance * np.dot(gradient, vector) + 0.5 * eigenvalue * distance**2)
    return Escape(
        eigenvalue=float(eigenvalue),
        direction=vector,
        top_parameters=tuple(top_entries(vector, layout, top)),
        leaf_shares=tuple(leaf_shares(vector, layout)[:top]),
        distance=distance,
        predicted_change=predicted,
        actual_change=float(value_plus - value),
        actual_change_opposite=float(value_minus - value),
    )
