"""analyze() against Hessians and step changes derived by hand."""

import numpy as np
import pytest

from tests.helpers import analyzed, objective_file


def rosenbrock_hessian(x, y, b=100.0):
    return np.array([[2 - 4 * b * (y - x**2) + 8 * b * x**2, -4 * b * x], [-4 * b * x, 2 * b]])


@pytest.mark.parametrize("point", [(1.0, 1.0), (0.0, 0.0), (-1.2, 1.0)])
def test_rosenbrock_hessian(point):
    a, obj, curv = analyzed("rosenbrock", ",".join(map(str, point)))
    H = curv.hessian(obj.x).matrix
    np.testing.assert_allclose(H, rosenbrock_hessian(*point), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(a.eigenvalues, np.linalg.eigvalsh(rosenbrock_hessian(*point)),
                               rtol=1e-12)


def test_rosenbrock_minimum_verdicts():
    a, _, _ = analyzed("rosenbrock", "1,1")
    # H = [[802, -400], [-400, 200]]: trace 1002, det 400
    disc = np.sqrt(1002**2 - 4 * 400)
    np.testing.assert_allclose(a.eigenvalues, [(1002 - disc) / 2, (1002 + disc) / 2], rtol=1e-12)
    assert a.classification == "local_minimum"
    assert a.definiteness == "positive_definite"
    assert a.gradient_norm == 0.0
    assert a.condition_number == pytest.approx((1002 + disc) / (1002 - disc), rel=1e-12)
    assert a.escape is None
    # lr = 0.01 > 2/λmax ≈ 0.002: GD is unstable here even though it is a minimum
    assert not a.stability.stable
    assert a.stability.max_stable_lr == pytest.approx(2 / ((1002 + disc) / 2), rel=1e-12)


def test_rosenbrock_origin_not_critical():
    a, _, _ = analyzed("rosenbrock", "0,0")
    assert a.classification == "not_critical"
    assert a.gradient_norm == pytest.approx(2.0)  # ∇f(0,0) = (−2, 0)
    np.testing.assert_allclose(a.eigenvalues, [2.0, 200.0], rtol=1e-13)


def test_svm_hessian_is_two_lambda_identity():
    a, _, _ = analyzed("svm", params={"lam": 0.25, "dim": 4})
    np.testing.assert_allclose(a.eigenvalues, np.full(4, 0.5), rtol=1e-13)
    assert a.definiteness == "positive_definite"


def test_saddle_eigenvalues_and_escape():
    a, _, _ = analyzed("saddle", "zeros")
    np.testing.assert_allclose(a.eigenvalues, [-1.0, 1.0], atol=1e-14)
    assert a.classification == "saddle_point"
    e = a.escape
    assert e is not None and e.eigenvalue == pytest.approx(-1.0)
    np.testing.assert_allclose(e.direction, [0.0, 1.0], atol=1e-14)
    assert e.top_parameters[0][0] == "x[1]"
    # f(0, t) = t⁴/4 − t²/2, model −t²/2 at t = 0.1
    assert e.predicted_change == pytest.approx(-0.005, rel=1e-12)
    assert e.actual_change == pytest.approx(0.1**4 / 4 - 0.1**2 / 2, rel=1e-12)


def test_quadratic_step_prediction_is_exact(tmp_path):
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    lam = np.array([0.5, 1.0, 2.0, 10.0, 40.0])
    A = (q * lam) @ q.T
    np.save(tmp_path / "A.npy", A)
    path = objective_file(tmp_path, f"""
import jax.numpy as jnp, numpy as np
A = jnp.asarray(np.load({str(tmp_path / 'A.npy')!r}))
def objective(x):
    return 0.5 * x @ A @ x
""")
    x = rng.standard_normal(5)
    lr = 0.07
    a, _, _ = analyzed(str(path), ",".join(repr(float(v)) for v in x), lr=lr)
    g = A @ x
    gg, gAg = g @ g, g @ A @ g
    s = a.step
    assert s.predicted_change == pytest.approx(-lr * gg + 0.5 * lr**2 * gAg, rel=1e-12)
    # for a quadratic the model is exact: predicted equals actual up to rounding
    assert s.actual_change == pytest.approx(s.predicted_change, rel=1e-10)
    assert s.optimal_lr == pytest.approx(gg / gAg, rel=1e-12)
    assert s.max_decreasing_lr == pytest.approx(2 * gg / gAg, rel=1e-12)
    assert s.curvature_along_gradient == pytest.approx(gAg / gg, rel=1e-12)
    assert s.increases_loss == (lr > 2 * gg / gAg)
    np.testing.assert_allclose(a.eigenvalues, lam, rtol=1e-12)
    assert a.condition_number == pytest.approx(80.0, rel=1e-10)
    assert a.stability.max_stable_lr == pytest.approx(2 / 40.0, rel=1e-12)
    assert not a.stability.stable  # 0.07 > 0.05


def test_ravine_step_increases_loss_with_large_lr():
    a, _, _ = analyzed("ravine", "random", lr=0.05)  # kappa = 100: 2/λmax = 0.02
    assert a.step.increases_loss and a.step.actually_increases
    assert a.condition_number == pytest.approx(100.0, rel=1e-10)
    small, _, _ = analyzed("ravine", "random", lr=0.001)
    assert not small.step.increases_loss and not small.step.actually_increases


@pytest.mark.parametrize(
    "expr, kind",
    [
        ("x**4 + y**4", "degenerate"),
        ("x**2 + y**4", "degenerate"),
        ("x**3 - 3*x*y**2", "degenerate"),
        ("x**2 + y**2", "local_minimum"),
        ("-x**2 - 3*y**2", "local_maximum"),
        ("x**2 - y**2", "saddle_point"),
        ("-x**2 + y**4", "degenerate"),
    ],
)
def test_classification_at_origin(tmp_path, expr, kind):
    path = objective_file(tmp_path, f"""
def objective(p):
    x, y = p[0], p[1]
    return {expr}
""")
    a, _, _ = analyzed(str(path), "0,0")
    assert a.classification == kind


def test_monkey_problem_is_degenerate():
    a, _, _ = analyzed("monkey")
    assert a.classification == "degenerate"
    assert a.definiteness == "zero"
    assert a.condition_number is None


def test_pytree_escape_direction_names(tmp_path):
    path = objective_file(tmp_path, """
import jax.numpy as jnp
def objective(p):
    return (0.5 * jnp.sum(p["body"]["w"] ** 2) + 0.5 * jnp.sum(p["head"]["bias"] ** 2)
            - 1.5 * p["head"]["bias"][1] ** 2 + p["head"]["bias"][1] ** 4)
x0 = {"body": {"w": jnp.zeros((2, 3))}, "head": {"bias": jnp.zeros(3)}}
""")
    a, obj, _ = analyzed(str(path))
    assert obj.n == 9
    assert a.classification == "saddle_point"
    # ∂²/∂b1² of ½b1² − 1.5 b1² = −2
    assert a.escape.eigenvalue == pytest.approx(-2.0)
    assert a.escape.top_parameters[0] == ("head.bias[1]", pytest.approx(1.0))
    assert obj.layout.name(5) == "body.w[1,2]"


def test_custom_vjp_falls_back_to_reverse_over_reverse(tmp_path):
    # The backward rule of `s` calls another custom_vjp function (`c`), so
    # forward-over-reverse would have to push a tangent through a custom_vjp
    # primal, which JAX refuses; reverse-over-reverse still gives exact curvature.
    path = objective_file(tmp_path, """
import jax, jax.numpy as jnp
@jax.custom_vjp
def c(x):
    return jnp.cos(x)
c.defvjp(lambda x: (jnp.cos(x), x), lambda x, g: (-g * jnp.sin(x),))
@jax.custom_vjp
def s(x):
    return jnp.sin(x)
s.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (g * c(x),))
def objective(x):
    return jnp.sum(s(x))
""")
    a, obj, curv = analyzed(str(path), "0.3,1.2")
    assert curv.hvp_mode == "reverse-over-reverse"
    np.testing.assert_allclose(curv.hessian(obj.x).matrix, np.diag(-np.sin([0.3, 1.2])),
                               atol=1e-15)


def test_plain_custom_vjp_uses_forward_over_reverse(tmp_path):
    path = objective_file(tmp_path, """
import jax, jax.numpy as jnp
@jax.custom_vjp
def s(x):
    return jnp.sin(x)
s.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (g * jnp.cos(x),))
def objective(x):
    return jnp.sum(s(x))
""")
    a, obj, curv = analyzed(str(path), "0.3,1.2")
    assert curv.hvp_mode == "forward-over-reverse"
    np.testing.assert_allclose(a.eigenvalues, np.sort(-np.sin([0.3, 1.2])), atol=1e-15)


def test_module_level_arrays_are_float64_in_a_fresh_process(tmp_path):
    """x64 must be on before an objective file runs (its jnp constants would be float32)."""
    import subprocess
    import sys

    path = objective_file(tmp_path, """
import jax.numpy as jnp
c = jnp.asarray(0.1)
def objective(x):
    return jnp.sum((x - c) ** 2)
x0 = jnp.zeros(1)
""")
    code = (
        "from hesscli.objective.files import load_file\n"
        f"f = load_file({str(path)!r})\n"
        "print(f.module.c.dtype)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "float64"


def test_scale_invariant_gradient_tolerance(tmp_path):
    """Scaling f by 1e-12 must not make a non-critical point critical (and 1e12 vice versa)."""
    tiny = objective_file(tmp_path, "import jax.numpy as jnp\n"
                          "def objective(x):\n    return 1e-12 * jnp.sum((x - 1) ** 2)\n")
    a, _, _ = analyzed(str(tiny), "0,0")
    assert a.classification == "not_critical"  # the minimizer is (1, 1)
    huge = objective_file(tmp_path, "import jax.numpy as jnp\n"
                          "def objective(x):\n    return 1e12 * jnp.sum((x - 1) ** 2)\n")
    # one ulp away from the minimizer the gradient is representation error: critical
    a, _, _ = analyzed(str(huge), "1.0000000000000002,1")
    assert a.critical and a.classification == "local_minimum"


def test_cancellation_in_hessian_is_not_a_negative_eigenvalue(tmp_path):
    """logsumexp far from the origin: H = diag(p) − ppᵀ is rounding noise; convex, never
    indefinite."""
    path = objective_file(tmp_path, "import jax\n"
                          "def objective(x):\n    return jax.nn.logsumexp(x)\n")
    a, _, _ = analyzed(str(path), "40,0,0")
    assert a.definiteness in ("positive_semidefinite", "zero")
    assert a.inertia.negative == 0


def test_float32_says_tolerances_widened():
    a, _, _ = analyzed("saddle", "zeros", dtype="float32")
    assert any(note.startswith("float32:") for note in a.notes)
    assert a.classification == "saddle_point"


def test_identity_hessian_end_vectors_are_orthogonal():
    from hesscli.spectra.spectrum import spectrum_of_matrix

    for m in (np.eye(3), np.zeros((2, 2))):
        sp = spectrum_of_matrix(m)
        assert abs(sp.vec_min @ sp.vec_max) < 1e-12
