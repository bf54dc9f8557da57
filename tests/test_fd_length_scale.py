"""Finite-difference steps at large coordinates respect the function's own length scale.

f(x) = 0.1(x₀ − C)² + cos x₀ + x₁² with C = 2π·159155 ≈ 10⁶: at x = (C, 0) the
gradient is (−sin C, 0) ≈ 0 and the Hessian is diag(0.2 − cos C, 2) = diag(−0.8, 2),
a saddle. Steps scaled by max(1, |x₀|) would be ≈ 6 (gradient differences) or ≈ 120
(value differences), where two rungs "agree" on the cosine of period 2π and
report 0.2 with a tiny error. A pilot at the absolute step finds the curvature
scale √(|f|/|f''|) = √(1/0.8) ≈ 1.1 (values) and the steps shrink to it.

Tolerances: once the steps are O(ε^(1/4)) (values) or O(ε^(1/3)) (gradients)
the errors are those of tests/test_finite_diff.py (≈ 1e-7 and 1e-9); we check
the verdict, that the reported error covers the truth, and 1e-6 accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

from hesscli.curvature import finite_diff
from hesscli.objective.bind import bind
from hesscli.objective.files import load_file

C = 2 * np.pi * 159155
TRUE_H = np.diag([0.2 - np.cos(C), 2.0])  # cos C = 1 to 1e-10: diag(−0.8, 2)

NUMPY_BIG = '''
import numpy as np
C = 2 * np.pi * 159155

def objective(x):
    return float({offset} + 0.1 * (x[0] - C) ** 2 + np.cos(x[0]) + x[1] ** 2)

x0 = [C, 0.0]
'''

JAX_BIG = '''
import numpy as np
import jax.numpy as jnp
C = 2 * np.pi * 159155

def objective(x):
    return 0.1 * (x[0] - C) ** 2 + jnp.cos(x[0]) + x[1] ** 2

x0 = jnp.array([C, 0.0])
'''


def bound(write, name, source, method="auto"):
    return bind(load_file(str(write(name, source)), {}), None, method=method)


@pytest.mark.parametrize("accuracy", ["normal", "high"])
@pytest.mark.parametrize("jax_file", [False, True])
def test_saddle_at_large_coordinates_is_a_saddle(hess, write, accuracy, jax_file):
    if jax_file:
        path, extra = write("bigjax.py", JAX_BIG), ("--method", "fd")
    else:
        path, extra = write("bignp.py", NUMPY_BIG.format(offset=0.0)), ()
    res = hess("analyze", path, *extra, "--fd-accuracy", accuracy, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["method"] == "fd"
    assert doc["classification"] == "saddle_point"
    lam = np.array(doc["eigenvalues"])
    truth = np.linalg.eigvalsh(TRUE_H)
    assert np.abs(lam - truth).max() < 1e-6
    assert np.abs(lam - truth).max() <= doc["tolerance"]


def test_pilot_scale_is_the_curvature_scale(write):
    obj = bound(write, "bignp.py", NUMPY_BIG.format(offset=0.0))
    curv = finite_diff.curvature(obj)
    pilot = curv.pilot(obj.x)
    # √(|f|/|f''|) with f = 1, f'' = −0.8 (x₁ = 0 needs no pilot: its scale is 1)
    np.testing.assert_allclose(pilot.scales, [np.sqrt(1 / 0.8), 1.0], rtol=1e-4)
    assert list(pilot.index) == [0]
    # the gradient of values at the same point: (−sin C, 0) to ≈ h²/6 + 2ε|f|/h ≈ 1e-10
    np.testing.assert_allclose(curv.gradient(obj.x), [-np.sin(C), 0.0], atol=1e-8)


def test_relative_steps_stay_where_the_function_varies_with_x(write):
    # f = x₀² + 3x₁² + x₀x₁ at (1e6, −2e5): |f| ≈ 1e12, rounding ε|f| ≈ 2e-4 swamps a
    # pilot at 1e-4 (no significant curvature), so the steps stay relative and the
    # Hessian [[2, 1], [1, 6]] is exact to ≈ 8ε|f|/h² ≈ 1e-7 (h ≈ 120).
    src = ("def objective(x):\n    return float(x[0]**2 + 3*x[1]**2 + x[0]*x[1])\n\n"
           "x0 = [1e6, -2e5]\n")
    obj = bound(write, "sq.py", src)
    curv = finite_diff.curvature(obj)
    np.testing.assert_allclose(curv.pilot(obj.x).scales, [1e6, 2e5])
    hess = curv.hessian(obj.x)
    exact = np.array([[2.0, 1.0], [1.0, 6.0]])
    assert np.abs(hess.matrix - exact).max() < 1e-5
    assert np.linalg.norm(hess.matrix - exact) <= hess.error


def test_cross_check_widens_the_error_when_large_steps_agree_by_accident(write):
    # A constant 1e6 raises the rounding level: the pilot's curvature is barely
    # significant and ``high``'s ladder (from ε^(1/6)/2 times the scale ≈ 1100)
    # only sees steps ≥ 1.4, beyond the cosine's scale. Whatever it picks, the
    # cross-check against the pilot must leave an error band that covers the truth.
    obj = bound(write, "offset.py", NUMPY_BIG.format(offset=1e6))
    for accuracy in ("normal", "high"):
        hess = finite_diff.curvature(obj, accuracy).hessian(obj.x)
        assert np.linalg.norm(hess.matrix - TRUE_H) <= hess.error, accuracy


def test_hvp_at_large_coordinates(write):
    obj = bound(write, "bigjax.py", JAX_BIG, method="fd")
    curv = finite_diff.curvature(obj)
    assert curv.source == "gradient differences"
    v = np.array([0.6, 0.8])
    np.testing.assert_allclose(curv.hvp(obj.x, v), TRUE_H @ v, atol=1e-6)
    values = finite_diff.ValueDifferences(bound(write, "bignp.py", NUMPY_BIG.format(offset=0)))
    np.testing.assert_allclose(values.hvp(obj.x, v), TRUE_H @ v, atol=1e-5)


def test_value_pilot_costs_two_evaluations_per_large_coordinate(write):
    from hesscli.curvature.stencils import value_pilot

    obj = bound(write, "bignp.py", NUMPY_BIG.format(offset=0.0))
    values = finite_diff.ValueDifferences(obj).values
    pilot = value_pilot(values, obj.x, 1.0)
    assert pilot.evaluations == 2 and values.count == 2
