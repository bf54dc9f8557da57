"""Criticality: the gradient tolerance ignores additive constants and needs a known σmin.

Every reference value is derived by hand from f = c + Σ(x − 1)² (∇f = 2(x − 1),
H = 2I) and the ravine 1e6·x² + y²; the tolerance's closed form is
10·√n·ε·‖H‖·‖x‖ + √ε·σmin·‖x‖ (DESIGN: rounding plus half the digits of x).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hesscli.analysis.verdicts import gradient_tolerance, smallest_curvature
from tests.helpers import SHIFTED, analyzed, objective_file, validate

EPS = np.finfo(np.float64).eps


def test_huge_constant_does_not_hide_a_non_critical_point(tmp_path):
    # f = 1e12 + Σ(x−1)² at (30, 30): ∇f = 2(x − 1) = (58, 58), H = 2I, so ‖∇f‖ = 82.02
    path = objective_file(tmp_path, SHIFTED.format(c="1e12"))
    a, _, _ = analyzed(str(path), "30,30", lr=0.01)
    assert a.gradient_norm == pytest.approx(58 * math.sqrt(2), rel=1e-14)
    assert a.classification == "not_critical" and not a.critical
    # the gradient step lowers f by 2·(29² − 28.42²)·... = 66.6072 (exact arithmetic),
    # visible at f = 1e12 (rounding 1.2e-4)
    assert a.step is not None
    assert a.step.actual_change == pytest.approx(2 * (28.42**2 - 29.0**2), abs=1e-3)


def test_gtol_does_not_change_with_an_additive_constant(tmp_path):
    a0, _, _ = analyzed(str(objective_file(tmp_path, SHIFTED.format(c="0.0"))), "30,30")
    a1, _, _ = analyzed(str(objective_file(tmp_path, SHIFTED.format(c="1e12"))), "30,30")
    assert a1.gtol == a0.gtol  # a constant changes no derivative
    # and in closed form: rounding only (H = 2I is known, so √ε·σ·L enters too)
    length = math.sqrt(2) * 30
    expected = 10 * math.sqrt(2) * EPS * 2 * length + math.sqrt(EPS) * 2 * length
    assert a1.gtol == pytest.approx(expected, rel=1e-12)


def test_gradient_tolerance_scales_like_the_gradient():
    base = gradient_tolerance(5.0, "float64", x_norm=3.0, hessian_norm=4.0,
                              smallest_curvature=0.5, n=9)
    for shift in (0.0, 1e12, -1e300):
        assert gradient_tolerance(5.0 + shift, "float64", x_norm=3.0, hessian_norm=4.0,
                                  smallest_curvature=0.5, n=9) == base
    # f → s·f scales H, σ and ∇f by s
    scaled = gradient_tolerance(5e7, "float64", x_norm=3.0, hessian_norm=4e7,
                                smallest_curvature=0.5e7, n=9)
    assert scaled == pytest.approx(1e7 * base, rel=1e-14)


RAVINE = """import jax.numpy as jnp
def objective(x):
    return 1e6 * x[0] ** 2 + x[1] ** 2
"""


def test_ill_conditioned_point_off_the_minimum_is_not_critical(tmp_path):
    # at (1e-9, 1e-3): ∇f = (2e-3, 2e-3), yet the minimum is 1e-3 away along y. The
    # gradient's own curvature (≈1e6) would make it look converged; σmin = 2 does not.
    a, _, _ = analyzed(str(objective_file(tmp_path, RAVINE)), "1e-9,1e-3")
    assert a.gradient_norm == pytest.approx(2e-3 * math.sqrt(2), rel=1e-12)
    assert a.classification == "not_critical"


def test_smallest_curvature_only_when_known():
    assert smallest_curvature(np.array([-2.0, 0.5, 3.0]), 1e-12, True) == 0.5
    assert smallest_curvature(np.array([0.0, 3.0]), 1e-12, True) == 0.0  # singular
    # matrix-free extremes: known only for a definite spectrum with that end converged
    assert smallest_curvature(np.array([0.5, 3.0]), 1e-12, False) == 0.5
    assert smallest_curvature(np.array([-2.0, 3.0]), 1e-12, False) == 0.0
    assert smallest_curvature(np.array([0.5, 3.0]), 1e-12, False, [False, True]) == 0.0


def test_train_does_not_report_a_minimum_hidden_by_a_constant():
    from hesscli.training.events import EventTracker
    from hesscli.training.monitor import Record

    # the point: f = 1e12 + 1682, ‖∇f‖ = 82.02, H = 2I, ‖x‖ = 42.43
    tracker = EventTracker(n=2, dtype="float64", lr=0.01)
    far = Record(step=0, value=1e12 + 1682.0, gradient_norm=58 * math.sqrt(2),
                 lambda_min=2.0, lambda_max=2.0, x_norm=30 * math.sqrt(2))
    assert tracker.feed(far) == []
    # at the minimum (1, 1) the same tracker does report it
    at_min = Record(step=10, value=1e12, gradient_norm=0.0, lambda_min=2.0, lambda_max=2.0,
                    x_norm=math.sqrt(2))
    assert [e.kind for e in tracker.feed(at_min)] == ["reached_minimum"]


def test_train_on_a_huge_constant_reports_no_minimum_at_the_start(hess, tmp_path):
    path = objective_file(tmp_path, SHIFTED.format(c="1e12") + "x0 = jnp.array([30.0, 30.0])\n")
    res = hess("train", str(path), "--steps", "3", "--lr", "0.01", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate(doc, "train")
    assert doc["events"] == [] and doc["final_classification"] == "not_critical"

