"""Finite-difference backends against analytic Hessians.

Tolerances follow from the step-size analysis in ``hesscli.curvature.fd_steps``
(ε = 2.2e-16, scales max(1, |xᵢ|) ≈ 1 here):

* second differences of values, ``normal``: h = ε^(1/4) ≈ 1.2e-4, so the error
  is ≲ h²·|f⁗|/12 + 8ε|f|/h² (truncation + rounding bound of the stencil);
* gradient differences, ``normal``: h = ε^(1/3) ≈ 6e-6, error ≲ h²·|f'''|/6 + 8εmax|∇f|/h;
* ``high`` (Richardson over a ladder): fourth order and better, error near the
  rounding floor ≈ ε^(2/3) relative; we allow 1e-9 relative.

Each test also checks that the reported error estimate covers the true error.
"""

from __future__ import annotations

import numpy as np
import pytest

from hesscli.curvature import finite_diff
from hesscli.curvature.fd_steps import coordinate_steps, ladder, representable
from hesscli.objective.bind import bind
from hesscli.objective.files import load_file
from tests.fd_helpers import (
    JAX_HINGE,
    JAX_SMOOTH,
    NUMPY_ABS,
    NUMPY_HINGE,
    NUMPY_ROSENBROCK,
    rosenbrock_hessian,
    smooth_hessian,
    smooth_value,
)

EPS = np.finfo(float).eps


def bound(write, name, source, at=None, method="auto"):
    path = write(name, source)
    return bind(load_file(str(path), {}), at, method=method)


def test_steps_are_representable_and_scaled():
    x = np.array([0.0, 3.0, -1e4, 0.1])
    h = coordinate_steps(x, EPS ** (1 / 3))
    np.testing.assert_array_equal((x + h) - x, h)
    np.testing.assert_allclose(h, EPS ** (1 / 3) * np.maximum(1, np.abs(x)), rtol=1e-9)
    assert ladder(2, "normal", "float64").base == pytest.approx(EPS**0.25)
    assert ladder(1, "normal", "float64").base == pytest.approx(EPS ** (1 / 3))
    assert representable(np.array([1.0]), np.array([1e-17]))[0] == 0.0


def test_black_box_rosenbrock_normal_and_high(write):
    obj = bound(write, "rosen_np.py", NUMPY_ROSENBROCK)
    assert not obj.traceable
    exact = rosenbrock_hessian(obj.x)
    f = 24.2 * 2  # |f| at (−1.2, 1, −1.2, 1) is about 48
    h = EPS**0.25 * 1.2
    # truncation h²·2400/12 (f⁗ = 24b along x₀) + rounding 8ε|f|/h², ×10 safety
    tol_normal = 10 * (h**2 * 2400 / 12 + 8 * EPS * f / h**2)
    normal = finite_diff.curvature(obj, "normal").hessian(obj.x)
    err = np.abs(normal.matrix - exact)
    assert err.max() < tol_normal
    assert np.linalg.norm(err) <= normal.error  # the estimate covers the truth
    assert normal.evaluations == 2 * (4 * 4 + 4) + 1  # two rungs of n² + n, plus f(x)
    assert normal.kinks is None and normal.symmetry_error == 0.0
    high = finite_diff.curvature(obj, "high").hessian(obj.x)
    err_high = np.abs(high.matrix - exact)
    assert err_high.max() < 1e-9 * np.abs(exact).max()
    assert np.linalg.norm(err_high) <= high.error
    assert err_high.max() < err.max() / 100


def test_black_box_smooth_function_hand_derived(write):
    from tests.fd_helpers import NUMPY_SMOOTH

    obj = bound(write, "smooth_np.py", NUMPY_SMOOTH)
    assert not obj.traceable
    exact = smooth_hessian(obj.x)
    curv = finite_diff.curvature(obj)
    assert curv.value(obj.x) == pytest.approx(smooth_value(obj.x), rel=1e-14)
    hess = curv.hessian(obj.x)
    # |f| ≈ 5, fourth derivatives O(1): 10·(h²/12 + 8ε·5/h²) ≈ 6e-7
    assert np.abs(hess.matrix - exact).max() < 1e-6
    assert np.linalg.norm(hess.matrix - exact) <= hess.error
    high = finite_diff.curvature(obj, "high").hessian(obj.x)
    assert np.abs(high.matrix - exact).max() < 1e-9 * np.abs(exact).max()
    # gradient of values: central, h = ε^(1/3): error ≲ h²/6 + 2ε|f|/h ≈ 2e-10
    a_grad = curv.gradient(obj.x)
    import jax

    obj_jax = bound(write, "smooth_jax.py", JAX_SMOOTH)
    g_true = np.asarray(jax.grad(obj_jax.flat_fn)(obj_jax.x))
    assert np.abs(a_grad - g_true).max() < 1e-8
    # HVP from the cached dense estimate equals H v
    v = np.arange(6.0)
    np.testing.assert_allclose(curv.hvp(obj.x, v), hess.matrix @ v)


def test_value_hvp_without_dense(write):
    from tests.fd_helpers import NUMPY_SMOOTH

    obj = bound(write, "smooth_np.py", NUMPY_SMOOTH)
    curv = finite_diff.ValueDifferences(obj)
    v = np.linspace(1, -1, 6)
    hv = curv.hvp(obj.x, v)  # 4n mixed differences, ε^(1/4) steps: error ~1e-7
    np.testing.assert_allclose(hv, smooth_hessian(obj.x) @ v, atol=1e-6)
    assert curv.evaluations == 4 * 6


def test_gradient_differences_traceable(write):
    obj = bound(write, "smooth_jax.py", JAX_SMOOTH)
    assert obj.traceable
    exact = smooth_hessian(obj.x)
    curv = finite_diff.curvature(obj)
    assert curv.source == "gradient differences"
    hess = curv.hessian(obj.x)
    # h = ε^(1/3): h²·|f'''|/6 + 8ε·|∇f|/h ≈ 6e-12 + 3e-10; allow 1e-8
    assert np.abs(hess.matrix - exact).max() < 1e-8
    assert 0 < hess.symmetry_error < 1e-8  # asymmetry reported before symmetrizing
    # gradients at x ± h eᵢ and x ± 2h eᵢ, and at x (it measures the gradient's noise)
    assert hess.evaluations == 4 * 6 + 1
    high = finite_diff.curvature(obj, "high").hessian(obj.x)
    assert np.abs(high.matrix - exact).max() < 1e-10
    v = np.ones(6) / np.sqrt(6)
    np.testing.assert_allclose(curv.hvp(obj.x, v), exact @ v, atol=1e-8)


def test_kink_abs_at_zero(write):
    obj = bound(write, "abs_np.py", NUMPY_ABS)
    for accuracy in ("normal", "high"):
        hess = finite_diff.curvature(obj, accuracy).hessian(obj.x)
        assert hess.kinks is not None
        assert hess.kinks.parameters == (0,)
        # |x| has slope jump 2 at 0
        assert hess.kinks.slope_jump[0] == pytest.approx(2.0, rel=1e-6)
        # the error band covers the spurious 1/h curvature
        assert hess.error > np.abs(hess.matrix).max()


@pytest.mark.parametrize("source", [NUMPY_HINGE, JAX_HINGE])
def test_kink_hinge_at_margin_one(write, source):
    obj = bound(write, "hinge.py", source)
    hess = finite_diff.curvature(obj).hessian(obj.x)
    assert hess.kinks is not None
    assert hess.kinks.parameters == (0, 1)  # kink normal (1, 2, 0)
    np.testing.assert_allclose(hess.kinks.slope_jump[:2], [1.0, 2.0], rtol=1e-6)


def test_no_kink_just_off_the_margin(write):
    # margin 1 − 0.01: the stencil (≤ 2h ≈ 2.4e-4) does not reach the kink
    obj = bound(write, "hinge.py", NUMPY_HINGE, at="0.2,0.395,0")
    hess = finite_diff.curvature(obj).hessian(obj.x)
    assert hess.kinks is None
    np.testing.assert_allclose(hess.matrix, 0.2 * np.eye(3), atol=1e-6)


def test_high_survives_far_steps_outside_the_domain(write):
    # math.log raises for x ≤ 0: the far rungs (up to ~2.5) fail and are not selected
    source = "import math\n\ndef objective(x):\n    return math.log(x[0]) + x[1] ** 2\n"
    obj = bound(write, "log_np.py", source, at="0.5,0")
    hess = finite_diff.curvature(obj, "high").hessian(obj.x)
    np.testing.assert_allclose(hess.matrix, np.diag([-4.0, 2.0]), atol=1e-8)
    assert np.isfinite(hess.error) and hess.kinks is None
