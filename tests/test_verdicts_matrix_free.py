"""Verdicts from matrix-free extremes claim only what their convergence proves.

A Ritz value bounds λmin from above and λmax from below: it proves negative curvature
and instability, but "positive definite", "local minimum", "zero" and
``stability.stable = true`` need the other side, which only a converged end gives.
The spectrum KNOWN is Q diag(λ) Qᵀ with λ chosen here (λmin = −3.35, λmax = 6.58);
when the two ends meet (2k ≥ n) the answer is every eigenvalue, and says so.
"""

from __future__ import annotations

import numpy as np
import pytest

from hesscli.analysis.step import stability
from hesscli.analysis.verdicts import classify, definiteness
from tests.helpers import validate


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


def test_matrix_free_spectrum_with_both_ends_meeting_is_complete(hess):
    """2k ≥ n: the k smallest and k largest are every eigenvalue, so say so."""
    res = hess("spectrum", "saddle", "-p", "n=4", "--k", "2", "--matrix-free",
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    np.testing.assert_allclose(sorted(doc["eigenvalues"]), [-1.0, 1.0, 1.0, 1.0], atol=1e-10)
    assert doc["eigenvalues_complete"] is True

