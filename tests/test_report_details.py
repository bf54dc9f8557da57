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


@pytest.mark.parametrize("optimizer,labelled", [("sgd", False), ("adam", True)])
def test_gd_only_diagnostics_are_labelled_for_other_optimizers(hess, optimizer, labelled):
    res = hess("train", "saddle", "--at", "0.1,0.1", "--optimizer", optimizer, "--steps", "4",
               "--monitor-every", "2")
    assert res.exit_code == 0, res.output
    assert ("lr·λmax (GD)" in res.stdout) is labelled
    doc = hess("train", "saddle", "--at", "0.1,0.1", "--optimizer", optimizer, "--steps", "4",
               "--monitor-every", "2", "--format", "json").json()
    assert any("plain gradient step" in n for n in doc["notes"]) is labelled
