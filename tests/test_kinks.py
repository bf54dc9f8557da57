"""Kinks at the point on the exact path: probed, named by parameter, no verdict on them.

Autodiff returns one side's derivative at a ReLU or |x|; the probe along ±∇f, the
extreme eigenvectors and a random direction sees residuals from the quadratic model
that shrink like the step (slope jump) or its square (curvature jump). References
are one-sided slopes derived by hand (|x|: jump 2, relu: 1, x|x|: curvature jump 4,
the SVM's hinge at a margin: |yₙxₙ[i]|); the probe stays silent on smooth
functions, smooth traps (logsumexp at large arguments, huge scales and constants)
and evaluation noise beyond the rounding model. (Kinks on black boxes under finite
differences: tests/test_fd_cli.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from hesscli.analysis.kinks import Direction, probe_kinks
from hesscli.objective.layout import layout_of
from tests.helpers import SHIFTED, analyzed, objective_file, validate

RELU = """import jax
import jax.numpy as jnp
def objective(x):
    return 0.5 * jnp.sum(x ** 2) - jnp.sum(jax.nn.relu(-x))
"""


ABS = """import jax.numpy as jnp
def objective(x):
    return jnp.sum(jnp.abs(x))
"""


CURVATURE_KINK = """import jax.numpy as jnp
def objective(x):
    return x[0] * jnp.abs(x[0]) + x[1] ** 2
"""


STEEP_WITH_KINK = """import jax.numpy as jnp
def objective(x):
    return jnp.abs(x[0]) + 10.0 * x[1]
"""


def relu_objective(x):
    x = np.asarray(x, dtype=float)
    return 0.5 * float(x @ x) - float(np.maximum(-x, 0.0).sum())


def test_relu_kink_is_no_local_minimum(tmp_path, hess):
    assert relu_objective([-0.1, 0.0]) < relu_objective([0.0, 0.0])  # the ground truth
    path = objective_file(tmp_path, RELU)
    a, _, _ = analyzed(str(path), "0,0")
    assert a.classification == "undetermined" and a.smooth is False
    assert a.definiteness == "undetermined"
    # along e_i: right slope 0, left slope 1, so the jump D₊ − D₋ is −1
    ns = a.nonsmooth
    assert sorted(ns.parameters) == ["x[0]", "x[1]"]
    np.testing.assert_allclose(ns.slope_jump, [-1.0, -1.0], rtol=1e-6)
    res = hess("analyze", str(path), "--at", "0,0", "--format", "json",
               "--expect", "classification=local_minimum")
    assert res.exit_code == 1, res.output
    doc = res.json()
    validate(doc)
    assert doc["smooth"] is False and doc["nonsmooth"]["source"] == "probe"
    assert "undetermined" in res.stderr
    table = hess("analyze", str(path), "--at", "0,0")
    assert "Not smooth at this point" in table.stdout and "x[0]" in table.stdout


def test_abs_at_its_minimum_names_the_kink(tmp_path):
    a, _, _ = analyzed(str(objective_file(tmp_path, ABS)), "0,0")
    # ∂|x|/∂x jumps from −1 to 1: slope jump 2 along each coordinate
    assert a.smooth is False and a.classification == "undetermined"
    assert sorted(a.nonsmooth.parameters) == ["x[0]", "x[1]"]
    np.testing.assert_allclose(a.nonsmooth.slope_jump, [2.0, 2.0], rtol=1e-6)


def test_curvature_kink_is_found(tmp_path):
    # x|x| is C¹ with f'' = 2·sign(x): one-sided curvatures +2 and −2 at 0, a jump of 4
    # along x[0]; autodiff returns one of them. Smooth in x[1] (f = y² there).
    a, _, _ = analyzed(str(objective_file(tmp_path, CURVATURE_KINK)), "0,0")
    assert a.smooth is False and a.classification == "undetermined"
    assert {k.kind for k in a.nonsmooth.kinks} == {"curvature"}
    assert a.nonsmooth.parameters == ("x[0]",)
    assert a.nonsmooth.slope_jump[0] == pytest.approx(4.0, rel=1e-6)
    assert a.nonsmooth.gradient_band == 0.0  # the slopes agree: only curvature jumps


def test_kink_with_a_large_gradient_is_still_not_critical(tmp_path):
    # ∇f = (±1 or 0, 10): the kink in x[0] moves a slope by at most 2, far below 10
    a, _, _ = analyzed(str(objective_file(tmp_path, STEEP_WITH_KINK)), "0,0")
    assert a.smooth is False
    assert a.classification == "not_critical"
    assert a.nonsmooth.gradient_band < a.gradient_norm - a.gtol


def test_exact_path_finds_the_hinge_kink_of_svm_at_a_margin():
    """At a margin yₙxₙᵀw = 1 the hinge's slope along e_i jumps by |yₙ·xₙ[i]| (convex)."""
    from hesscli.objective.files import load_file

    svm = load_file("svm", {})
    X, y = np.asarray(svm.module.X), np.asarray(svm.module.y)
    w = y[0] * X[0] / (X[0] @ X[0])  # margin of sample 0 exactly 1 (up to rounding)
    a, _, _ = analyzed("svm", ",".join(repr(float(v)) for v in w))
    assert a.smooth is False and a.nonsmooth.source == "probe"
    for name, jump in zip(a.nonsmooth.parameters, a.nonsmooth.slope_jump, strict=True):
        i = int(name[2:-1])  # "x[i]"
        assert jump == pytest.approx(abs(X[0, i]), rel=1e-6)


def test_an_undecided_expectation_names_its_own_reason(hess, write):
    """The failure says why this verdict is open: a kink at 0 of ½Σx² − Σrelu(−x)
    (f(−0.1, 0) = 0.005 − 0.1 < f(0)), not 'unconverged extremes', which dense cannot be."""
    path = write("kink_reason.py", "import jax, jax.numpy as jnp\ndef objective(x):\n"
                 "    return 0.5 * jnp.sum(x ** 2) - jnp.sum(jax.nn.relu(-x))\n"
                 "x0 = jnp.zeros(2)\n")
    res = hess("analyze", path, "--expect", "classification=local_minimum")
    assert res.exit_code == 1, res.output
    assert "a kink" in res.stderr and "unconverged" not in res.stderr


SMOOTH_CASES = [
    ("rosenbrock", "1,1", "float64"),
    ("rosenbrock", "-1.2,1", "float64"),
    ("mlp", None, "float64"),
    ("mlp", "random", "float64"),
    ("svm", None, "float64"),
    ("saddle", "zeros", "float64"),
    ("tensor", None, "float64"),
    ("rosenbrock", "-1.2,1", "float32"),
    ("mlp", None, "float32"),
]


@pytest.mark.parametrize("spec, at, dtype", SMOOTH_CASES)
def test_probe_is_silent_on_smooth_builtins(spec, at, dtype):
    a, _, _ = analyzed(spec, at, dtype=dtype)
    assert a.smooth is True and a.nonsmooth is None


@pytest.mark.parametrize("source, at", [
    ("import jax\ndef objective(x):\n    return jax.nn.logsumexp(x)\n", "40,0,0"),
    ("import jax\ndef objective(x):\n    return jax.nn.logsumexp(x)\n", "1000,-2,5"),
    ("import jax.numpy as jnp\ndef objective(x):\n    return 1e12 * jnp.sum((x - 1) ** 2)\n",
     "1.0000000000000002,1"),
    ("import jax.numpy as jnp\ndef objective(x):\n    return 1e12 * jnp.sum((x - 1) ** 2)\n",
     "0,0"),
    (SHIFTED.format(c="1e12"), "30,30"),
])
def test_probe_is_silent_on_smooth_traps(tmp_path, source, at):
    a, _, _ = analyzed(str(objective_file(tmp_path, source)), at)
    assert a.smooth is True and a.nonsmooth is None


def _numpy_probe(f, g, h, x, directions):
    x = np.asarray(x, dtype=float)
    return probe_kinks(f, lambda x_, v: h @ v, x, f(x), np.asarray(g, float), directions,
                       gtol=1e-14, tol=1e-14, dtype="float64", layout=layout_of(np.zeros(x.size)))


@pytest.mark.parametrize("offset, kink", [(0.0, True), (1e-2, False), (2e-4, False)])
def test_probe_sees_kinks_at_the_point_not_near_it(offset, kink):
    """f = ½x² + relu(x₀ − offset) with exact derivatives at 0 (NumPy, no autodiff).

    Steps are 1e-3, 2.5e-4, 6.25e-5: a kink at 0 shows at every step; one at
    1e-2 at none; one at 2e-4 at the largest two only, so neither counts.
    """
    def f(x):
        return 0.5 * float(x @ x) + max(x[0] - offset, 0.0)

    g = np.zeros(2)  # right derivative of relu at 0 taken as 0 (like jax), exact beyond
    probe = _numpy_probe(f, g, np.eye(2), [0.0, 0.0],
                         [Direction("e0", np.array([1.0, 0.0]), 1.0)])
    assert probe.smooth is (not kink)
    if kink:
        assert probe.parameters[0] == "x[0]" and probe.parameter_jumps[0] == pytest.approx(1.0)


def test_probe_silent_on_a_smooth_numpy_function():
    a = np.array([[3.0, 1.0], [1.0, 2.0]])

    def f(x):
        return float(np.exp(x @ a @ x / 10) + np.sin(x[0]))

    x = np.array([0.3, -0.7])
    q = float(x @ a @ x / 10)
    grad = np.exp(q) * (a @ x) / 5 + np.array([np.cos(x[0]), 0.0])
    hess = np.exp(q) * (np.outer(a @ x, a @ x) / 25 + a / 5) - np.diag([np.sin(x[0]), 0.0])
    w, v = np.linalg.eigh(hess)
    probe = _numpy_probe(f, grad, hess, x, [
        Direction("g", grad / np.linalg.norm(grad),
                  float(grad @ hess @ grad / (grad @ grad))),
        Direction("vmin", v[:, 0], w[0]), Direction("vmax", v[:, 1], w[1])])
    assert probe.smooth and probe.evaluations == 4 * 8  # 3 steps + the noise step, 2 sides


def test_probe_ignores_evaluation_noise_beyond_the_rounding_model():
    """f = ‖x‖² + deterministic noise of 10⁻⁸ (a sum that cancels): no kink, though
    the noise is 10⁸× the ε·|f| rounding model; a real kink of slope 1 still shows."""
    import hashlib

    def noise(z):
        h = hashlib.sha256(np.asarray(z, np.float64).tobytes()).digest()
        return (int.from_bytes(h[:8], "little") / 2**64 - 0.5) * 1e-8

    h = 2 * np.eye(3)
    for seed in range(40):
        x = np.random.default_rng(seed).standard_normal(3)
        probe = _numpy_probe(lambda z: float(z @ z) + noise(z), 2 * x, h, x,
                             [Direction("e0", np.eye(3)[0], 2.0)])
        assert probe.smooth, seed
    x = np.r_[0.0, 0.5, -0.3]
    probe = _numpy_probe(lambda z: float(z @ z) + noise(z) + abs(z[0]), 2 * x + [1, 0, 0], h,
                         x, [Direction("e0", np.eye(3)[0], 2.0)])
    assert not probe.smooth and probe.parameter_jumps[0] == pytest.approx(2.0, rel=1e-3)

