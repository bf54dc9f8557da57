"""No confident wrong verdicts: gtol, kinks, unconverged extremes, overflow.

Every reference value here is derived by hand (analytic gradients, one-sided
slopes of |x| and relu, spectra built as Q diag(λ) Qᵀ), never copied from
hesscli's output.
"""

from __future__ import annotations

import math
import warnings

import jsonschema
import numpy as np
import pytest

from hesscli.analysis.kinks import Direction, probe_kinks
from hesscli.analysis.step import predict_step, stability
from hesscli.analysis.verdicts import (
    classify,
    definiteness,
    gradient_tolerance,
    smallest_curvature,
)
from hesscli.objective.layout import layout_of
from hesscli.schemas import load_schema
from tests.helpers import analyzed, objective_file

EPS = np.finfo(np.float64).eps


def validate(doc: dict, name: str = "analyze") -> None:
    jsonschema.validate(doc, load_schema(name))


# --- 1. the gradient tolerance ignores additive constants ---------------------------------


SHIFTED = """import jax.numpy as jnp
def objective(x):
    return {c} + jnp.sum((x - 1) ** 2)
"""


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

    # the issue's point: f = 1e12 + 1682, ‖∇f‖ = 82.02, H = 2I, ‖x‖ = 42.43
    tracker = EventTracker(n=2, dtype="float64", lr=0.01)
    far = Record(step=0, value=1e12 + 1682.0, gradient_norm=58 * math.sqrt(2),
                 lambda_min=2.0, lambda_max=2.0, x_norm=30 * math.sqrt(2))
    assert tracker.feed(far) == []
    # at the minimum (1, 1) the same tracker does report it
    at_min = Record(step=10, value=1e12, gradient_norm=0.0, lambda_min=2.0, lambda_max=2.0,
                    x_norm=math.sqrt(2))
    assert [e.kind for e in tracker.feed(at_min)] == ["reached_minimum"]


# --- 2. kinks on the exact path --------------------------------------------------------------

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


# --- 3. unconverged matrix-free extremes -------------------------------------------------------


@pytest.mark.parametrize("lam, converged, definite, kind", [
    ([0.7, 0.7], [False, False], "undetermined", "undetermined"),  # one Lanczos step
    ([-1.0, 4.4], [False, False], "indefinite", "saddle_point"),  # Ritz values prove it
    ([0.5, 4.0], [True, False], "positive_definite", "local_minimum"),  # needs λmin only
    ([0.5, 4.0], [False, True], "undetermined", "undetermined"),
    ([-3.0, -1.0], [False, True], "negative_definite", "local_maximum"),
    ([-3.0, -1.0], [True, False], "undetermined", "undetermined"),
    # "zero" needs both ends; degenerate either way (λmin = 0 is known)
    ([0.0, 0.0], [True, False], "undetermined", "degenerate"),
    ([0.0, 0.0], [True, True], "zero", "degenerate"),
    ([0.0, 2.0], [True, False], "positive_semidefinite", "degenerate"),
])
def test_one_sided_verdicts(lam, converged, definite, kind):
    assert definiteness(np.array(lam), 1e-10, False, np.array(converged)) == definite
    assert classify(0.0, 1e-8, np.array(lam), 1e-10, np.array(converged)) == kind


def test_stability_needs_an_upper_bound_on_lambda_max():
    assert stability(1.0, 0.7, converged=False).stable is None  # λmax ≥ 0.7 only
    assert stability(1.0, 4.4, converged=False).stable is False  # lr·θ > 2 proves it
    assert stability(0.1, 4.0, converged=True).stable is True


KNOWN = """import jax.numpy as jnp
import numpy as np
_rng = np.random.default_rng(3)
_q, _ = np.linalg.qr(_rng.standard_normal((40, 40)))
LAMBDA = np.concatenate([[-3.35], np.linspace(-0.2, 0.2, 38), [6.58]])
A = jnp.asarray((_q * LAMBDA) @ _q.T)
b = jnp.asarray(_rng.standard_normal(40))
def objective(x):
    return 0.5 * x @ A @ x + b @ x
x0 = jnp.zeros(40)
"""


@pytest.fixture(scope="module")
def known_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("known") / "known.py"
    path.write_text(KNOWN)
    return str(path)


@pytest.mark.parametrize("steps", ["1", "3"])
def test_unconverged_extremes_never_claim_what_they_cannot(hess, known_path, steps):
    # true spectrum: λmin = −3.35, λmax = 6.58 (indefinite; lr = 1 is unstable)
    res = hess("analyze", known_path, "--matrix-free", "--max-steps", steps, "--lr", "1",
               "--format", "json", "--expect", "stability.stable=true")
    assert res.exit_code == 1, res.output
    doc = res.json()
    validate(doc)
    assert doc["definiteness"] in ("indefinite", "undetermined")
    assert doc["stability"]["stable"] in (None, False)
    assert doc["condition_number"] is None
    assert "stability.stable" in res.stderr


def test_converged_extremes_give_the_true_verdicts(hess, known_path):
    res = hess("analyze", known_path, "--matrix-free", "--lr", "1", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["eigenvalues"][0] == pytest.approx(-3.35, rel=1e-6)
    assert doc["eigenvalues"][-1] == pytest.approx(6.58, rel=1e-6)
    assert doc["definiteness"] == "indefinite" and doc["stability"]["stable"] is False


def test_issue_mlp_stable_expectation_fails_on_one_lanczos_step(hess):
    res = hess("analyze", "mlp", "--matrix-free", "--max-steps", "1", "--lr", "1",
               "--expect", "stability.stable=true")
    assert res.exit_code == 1, res.output
    assert "could not decide" in res.stderr
    assert "Hessian here is zero" not in res.stdout
    assert "undetermined" in res.stdout


def test_expect_on_undetermined_fails_even_with_not_equal():
    from hesscli.expect import expectations

    doc = {"schema": "x", "classification": "undetermined", "stability": {"stable": None}}
    schema = {"properties": {"classification": {}, "stability": {"properties": {"stable": {}}}}}
    pending = expectations(["classification!=saddle_point", "stability.stable=false",
                            "classification=undetermined"], doc, schema)
    assert [o.passed for o in pending.outcomes] == [False, False, True]


# --- 4. overflow in the step prediction --------------------------------------------------------


def test_step_prediction_survives_overflow():
    g = np.array([3.0, -4.0])
    hmat = np.array([[2.0, 0.0], [0.0, 1.0]])
    hg = hmat @ g  # gᵀHg = 2·9 + 16 = 34, gᵀg = 25
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = predict_step(1e308, g, hg, 0.0, math.inf)
        nan_after = predict_step(1e308, g, hg, 0.0, math.nan)
    assert big.increases_loss is True and big.predicted_change == math.inf
    assert big.actually_increases is True and nan_after.actually_increases is True
    # moderate lr: the scaled form equals −lr·gᵀg + ½lr²·gᵀHg
    s = predict_step(0.1, g, hg, 1.0, 0.0)
    assert s.predicted_change == pytest.approx(-0.1 * 25 + 0.5 * 0.01 * 34, rel=1e-15)
    assert s.optimal_lr == pytest.approx(25 / 34, rel=1e-15)
    assert s.increases_loss is False


def test_cli_huge_lr_reports_an_increase_without_warnings(hess):
    res = hess("analyze", "rosenbrock", "--at", "0,0", "--lr", "1e308", "--format", "json")
    assert res.exit_code == 0, res.output
    step = res.json()["step"]
    assert step["increases_loss"] is True and step["actually_increases"] is True
    assert res.stderr == ""


def test_check_expectations_fail_on_undetermined():
    from types import SimpleNamespace

    from hesscli.checks.registry import document_expectation, measure

    doc = {"classification": "undetermined", "definiteness": "undetermined",
           "stability": {"stable": None}}
    ctx = SimpleNamespace(analysis=lambda: doc)
    for key, value in (("stable", True), ("stable", False),
                       ("classification", ["local_minimum", "saddle_point"]),
                       ("definiteness", "positive_definite")):
        outcome = measure(ctx, document_expectation(key, value, "checks[0].expect"))
        assert not outcome.passed and "could not decide" in outcome.detail, key
    ok = measure(ctx, document_expectation("classification", "undetermined", "c"))
    assert ok.passed


def test_convexity_counts_points_where_lambda_min_did_not_converge(known_path):
    """One Lanczos step gives a Ritz value, only an upper bound on λmin: the eigenvalue
    test says how many of its points rest on such a bound."""
    from hesscli.analysis.convexity import ball, hessian_test
    from hesscli.curvature.exact import ExactCurvature
    from hesscli.spectra.certify import Solve
    from hesscli.spectra.matrix_free import extremes_of, matrix_free_spectrum
    from tests.helpers import bound

    obj = bound(known_path)
    cur = ExactCurvature(obj)

    def one_step(curvature, x, layout=None):
        return matrix_free_spectrum(extremes_of(curvature, x, Solve(k=1, max_steps=1)), obj.dtype)

    test = hessian_test(obj, cur, ball(np.zeros(obj.n), 1.0), 2, np.random.default_rng(0),
                        spectrum_fn=one_step)
    assert test.unconverged == 2
    # a violation found anyway is still a proof: θ ≥ λmin = −3.35 (Rayleigh quotient)
    assert test.smallest_eigenvalue >= -3.35 - 1e-9


def test_landscape_huge_lr_is_quiet_and_valid(hess):
    res = hess("landscape", "rosenbrock", "--at", "0,0", "--lr", "1e308", "--format", "json")
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    doc = res.json()
    validate(doc, "landscape")
    assert doc["step"]["increases_loss"] is True


def test_train_events_on_unconverged_extremes_are_not_a_minimum():
    from hesscli.training.events import EventTracker
    from hesscli.training.monitor import Record

    # a vanishing gradient where the monitored λmin did not converge: 0.7 only bounds
    # λmin from above, so "reached_minimum" would be a guess
    tracker = EventTracker(n=5000, dtype="float64", lr=0.01)
    record = Record(step=0, value=1.0, gradient_norm=0.0, lambda_min=0.7, lambda_max=3.0,
                    x_norm=1.0, lambda_min_converged=False, lambda_max_converged=True)
    (event,) = tracker.feed(record)
    assert event.kind == "stalled" and event.data["classification"] == "undetermined"


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


def test_train_on_a_huge_constant_reports_no_minimum_at_the_start(hess, tmp_path):
    path = objective_file(tmp_path, SHIFTED.format(c="1e12") + "x0 = jnp.array([30.0, 30.0])\n")
    res = hess("train", str(path), "--steps", "3", "--lr", "0.01", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate(doc, "train")
    assert doc["events"] == [] and doc["final_classification"] == "not_critical"


def test_an_undecided_expectation_names_its_own_reason(hess, write):
    """The failure says why this verdict is open: a kink at 0 of ½Σx² − Σrelu(−x)
    (f(−0.1, 0) = 0.005 − 0.1 < f(0)), not 'unconverged extremes', which dense cannot be."""
    path = write("kink_reason.py", "import jax, jax.numpy as jnp\ndef objective(x):\n"
                 "    return 0.5 * jnp.sum(x ** 2) - jnp.sum(jax.nn.relu(-x))\n"
                 "x0 = jnp.zeros(2)\n")
    res = hess("analyze", path, "--expect", "classification=local_minimum")
    assert res.exit_code == 1, res.output
    assert "a kink" in res.stderr and "unconverged" not in res.stderr
