"""Small report details: rounding noise shown as 0, GD-only diagnostics labelled as such."""

from __future__ import annotations

import pytest

THIRD = """
import jax.numpy as jnp
c = jnp.array([1.0, 3.0, 7.0, 0.1, 2.0, 5.0])
def objective(x):
    return jnp.sum(c * (x - 1.0 / 3.0) ** 2) + 0.7
x0 = jnp.full(6, 1.0 / 3.0) * (1 + 1e-15)
"""


def test_noise_at_a_minimum_is_printed_as_zero(hess, write):
    """x = 1/3 rounded: the gradient is ~1e-15 of rounding, f changes by nothing real."""
    path = write("third.py", THIRD)
    res = hess("analyze", path)
    assert res.exit_code == 0, res.output
    assert "changes f by 0 (below rounding) (quadratic model: 0 (below rounding))" in \
        " ".join(res.stdout.split())
    assert "gradient lives in  0 (below rounding" in res.stdout
    assert "x[2] (" not in res.stdout  # no entry of the noise named as information
    doc = hess("analyze", path, "--format", "json").json()
    step = doc["step"]
    # the level: 4ε|f| plus what a gradient known to ±gtol moves the model by
    assert abs(step["predicted_change"]) <= step["rounding_level"]
    assert abs(step["actual_change"]) <= step["rounding_level"]
    assert step["rounding_level"] >= 4 * 2.0**-52 * 0.7


def test_a_real_step_is_still_printed(hess):
    res = hess("analyze", "rosenbrock", "--at", "0,0", "--lr", "0.001")
    assert res.exit_code == 0, res.output
    assert "below rounding" not in res.stdout
    assert "decreases f by" in res.stdout


@pytest.mark.parametrize("optimizer,labelled", [("sgd", False), ("rmsprop", True),
                                                ("adam", False)])
def test_gd_only_diagnostics_are_labelled_for_other_optimizers(hess, optimizer, labelled):
    """Optimizers without a preconditioned sharpness get the plain-GD numbers labelled (GD);
    Adam gets λmax(P⁻¹H) against its own threshold instead (tests/test_preconditioned.py)."""
    res = hess("train", "saddle", "--at", "0.1,0.1", "--optimizer", optimizer, "--steps", "4",
               "--monitor-every", "2")
    assert res.exit_code == 0, res.output
    assert ("lr·λmax (GD)" in res.stdout) is labelled
    assert ("is stable while lr·λmax(P⁻¹H) < 38" in res.stdout) is (optimizer == "adam")
    doc = hess("train", "saddle", "--at", "0.1,0.1", "--optimizer", optimizer, "--steps", "4",
               "--monitor-every", "2", "--format", "json").json()
    assert any("what plain gradient descent with this lr would do" in n
               for n in doc["notes"]) is labelled


QUAD = """
import jax.numpy as jnp
def objective(x):
    return 0.5 * jnp.sum(jnp.array([1.0, 4.0]) * x ** 2)
x0 = jnp.array([1.0, 1.0])
"""


@pytest.mark.parametrize("lr,words", [
    # f = ½Σ c x², g = c x = (1, 4), gᵀg = 17, gᵀHg = 1 + 64 = 65 (exact on a quadratic):
    # Δ = −lr·17 + ½lr²·65
    ("0.1", "decreases f by 1.375 (quadratic model: a fall of 1.375)"),
    ("1", "increases f by 15.5 (quadratic model: a rise of 15.5)"),
])
def test_the_model_change_says_which_way(hess, write, lr, words):
    """The model's change is signed: 'decreases f by a (model: b)' must not hide a rise."""
    path = write("quad.py", QUAD)
    res = hess("analyze", path, "--lr", lr)
    assert res.exit_code == 0, res.output
    assert words in " ".join(res.stdout.split())


def test_a_model_rise_is_not_reported_as_a_loss_rise(hess, write):
    """f = x⁴/4 at x = 1, lr = 1: g = 1, f'' = 3, the model says −1 + ½·3 = +0.5, but the
    step lands on x = 0 and f falls by ¼: the warning must not claim the loss rises."""
    path = write("quartic.py", "import jax.numpy as jnp\n"
                 "def objective(x):\n    return jnp.sum(x ** 4) / 4\nx0 = jnp.array([1.0])\n")
    res = hess("analyze", path, "--lr", "1")
    assert res.exit_code == 0, res.output
    out = " ".join(res.stdout.split())
    assert "decreases f by 0.25 (quadratic model: a rise of 0.5)" in out
    assert "step increases the loss" not in out
    assert "step increases the quadratic model" in out


def test_landscape_says_which_way_the_model_moves(hess, write):
    """Same quadratic, lr = 1: Δ = −17 + ½·65 = +15.5, exact for f and for the model."""
    path = write("quad_ls.py", QUAD)
    res = hess("landscape", path, "--lr", "1")
    assert res.exit_code == 0, res.output
    assert "increases f by 15.5 (model: a rise of 15.5)" in " ".join(res.stdout.split())


def test_the_escape_headline_says_which_way_the_model_moves(hess):
    """saddle at 0: f = ½x₀² + ¼y⁴ − ½y²; 0.1 along y the model is −½·0.1² = −0.005 (a
    fall) and f changes by ¼·10⁻⁴ − 0.005 = −0.004975."""
    res = hess("analyze", "saddle", "--at", "zeros")
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.replace("│", " ").split())
    assert "decreases f by 0.004975 (quadratic model: a fall of 0.005)" in text
