"""The null space: planted dead units, an unused input and the softmax shift, counted exactly.

The network is a one-hidden-layer ReLU classifier (d inputs, m hidden units, k
classes, softmax cross-entropy) with D units made dead (zero incoming weights,
bias −1: the pre-activation is −1 on every sample) and input U constant zero in
the data. The loss then does not depend on a dead unit's d incoming weights, its
bias and its k outgoing weights, nor on the m − D live weights reading input U;
and the softmax is invariant under adding a constant to every logit, which the
head bias (1 direction) and each live row of the head kernel (m − D directions)
can do. So the zero eigenspace has dimension D(d + 1 + k) + (m − D) + (m − D + 1),
every direction attributed. The Rayleigh quotient −(aᵀw)²/‖w‖² at w = a is
scale-invariant and critical there, so H a = 0: one zero eigenvalue, from scale.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

D_IN, M, K, N = 5, 6, 3, 40
DEAD = (1, 4)
UNUSED = 2
PLANTED = f'''
import jax
import jax.numpy as jnp
import numpy as np

_rng = np.random.default_rng(0)
X = _rng.standard_normal(({N}, {D_IN}))
X[:, {UNUSED}] = 0.0
Y = _rng.integers(0, {K}, {N})


def objective(p):
    h = jax.nn.relu(X @ p["hidden"]["w"] + p["hidden"]["b"])
    logits = h @ p["head"]["w"] + p["head"]["b"]
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange({N}), Y])


_r = np.random.default_rng(1)
_w = _r.standard_normal(({D_IN}, {M}))
_b = 0.1 * _r.standard_normal({M})
for _j in {DEAD}:
    _w[:, _j] = 0.0
    _b[_j] = -1.0
x0 = {{"hidden": {{"w": jnp.asarray(_w), "b": jnp.asarray(_b)}},
       "head": {{"w": jnp.asarray(_r.standard_normal(({M}, {K}))),
                "b": jnp.asarray(_r.standard_normal({K}))}}}}
'''
LIVE = M - len(DEAD)
PER_DEAD = D_IN + 1 + K
PREDICTED = len(DEAD) * PER_DEAD + LIVE + (LIVE + 1)  # = 27


def schema():
    return json.loads((Path(__file__).resolve().parent.parent /
                       "hesscli/schemas/analyze.schema.json").read_text())


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    path = tmp_path_factory.mktemp("null") / "planted.py"
    path.write_text(PLANTED)
    return path


def test_planted_dead_units_unused_input_and_softmax_shift(hess, planted):
    res = hess("analyze", planted, "--null-space", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    import jsonschema

    jsonschema.validate(doc, schema())
    ns = doc["null_space"]
    assert PREDICTED == 27
    assert ns["exact"] is True and ns["dimension"] == PREDICTED
    assert doc["inertia"]["zero"] == PREDICTED
    assert ns["explained"] == PREDICTED
    by_kind = {(s["kind"], s["where"]): s for s in ns["sources"]}
    dead = by_kind[("dead_unit", "hidden")]
    assert tuple(dead["indices"]) == DEAD and dead["dimension"] == len(DEAD) * PER_DEAD
    unused = by_kind[("unused_input", "hidden.w")]
    assert unused["indices"] == [UNUSED] and unused["dimension"] == LIVE
    assert by_kind[("shift", "head.b")]["dimension"] == 1
    assert by_kind[("shift", "head.w")]["dimension"] == LIVE
    assert ns["vanishing"] == len(DEAD) * PER_DEAD + LIVE
    assert ns["symmetry_rank"] == LIVE + 1
    assert ns["summary"].startswith(f"{PREDICTED} zero eigenvalues")
    assert "18 from 2 dead units in hidden (1, 4)" in ns["summary"]


def test_matrix_free_estimate_brackets_the_exact_dimension(hess, planted):
    res = hess("analyze", planted, "--null-space", "--matrix-free", "--format", "json")
    assert res.exit_code == 0, res.output
    ns = res.json()["null_space"]
    assert ns["exact"] is False and ns["standard_error"] > 0
    assert abs(ns["dimension"] - PREDICTED) <= 4 * ns["standard_error"]
    # the attribution by slices finds the same vanishing coordinates and symmetries
    assert ns["vanishing"] == len(DEAD) * PER_DEAD + LIVE
    assert ns["explained"] == PREDICTED


def test_scale_invariance_at_a_critical_point(hess, write):
    path = write("rq.py", "import jax.numpy as jnp\nA = jnp.array([1.0, 2.0, 2.0])\n"
                 "def objective(w):\n    return -(A @ w) ** 2 / (w @ w)\n"
                 "x0 = jnp.array([1.0, 2.0, 2.0])\n")
    res = hess("analyze", path, "--null-space", "--format", "json")
    assert res.exit_code == 0, res.output
    ns = res.json()["null_space"]
    assert ns["dimension"] == 1 and ns["explained"] == 1
    assert [(s["kind"], s["where"]) for s in ns["sources"]] == [("scale", "x")]


def test_no_null_space(hess):
    res = hess("analyze", "rosenbrock", "--at", "1,1", "--null-space")
    assert res.exit_code == 0, res.output
    assert "0 zero eigenvalues (|λ| ≤" in " ".join(res.stdout.split())


@pytest.mark.parametrize("dead,unused", [(2, 2), (3, -1)])
def test_relunet_problem_has_its_documented_null_space(hess, dead, unused):
    """problems/relunet.py: dead·(inputs + 1 + classes) + live·[unused ≥ 0] + live + 1."""
    inputs, width, classes = 5, 6, 3
    live = width - dead
    expect = dead * (inputs + 1 + classes) + live * (unused >= 0) + live + 1
    res = hess("analyze", "relunet", "-p", f"dead={dead}", "-p", f"unused={unused}",
               "--null-space", "--format", "json")
    assert res.exit_code == 0, res.output
    ns = res.json()["null_space"]
    assert ns["dimension"] == expect == ns["explained"]
    assert [s["kind"] for s in ns["sources"]].count("unused_input") == (unused >= 0)


def test_expect_on_the_null_space(hess):
    ok = hess("analyze", "relunet", "--null-space", "--expect", "null_space.dimension==27")
    assert ok.exit_code == 0, ok.output
    bad = hess("analyze", "relunet", "--null-space", "--expect", "null_space.dimension<27")
    assert bad.exit_code == 1 and "null_space.dimension = 27" in bad.stderr


NORMALIZED = '''
import jax.numpy as jnp
import numpy as np

_r = np.random.default_rng(0)
X = jnp.asarray(_r.standard_normal((20, 4)))
Y = jnp.asarray(_r.standard_normal(20))


def objective(p):
    w = p["w"] / jnp.linalg.norm(p["w"])
    return jnp.mean((X @ w + p["b"] - Y) ** 2)


x0 = {"w": jnp.array([1.0, -0.5, 0.3, 2.0]), "b": jnp.array(0.1)}
'''


def test_scale_invariance_off_a_critical_point_is_named_but_not_counted(hess, write):
    """f(c·w) = f(w) for the normalized weights: H w = −∇_w f, not 0, away from a minimum."""
    res = hess("analyze", write("normalized.py", NORMALIZED), "--null-space",
               "--format", "json")
    assert res.exit_code == 0, res.output
    ns = res.json()["null_space"]
    assert ns["dimension"] == 0 and ns["explained"] == 0
    assert [(s["kind"], s["where"], s["dimension"]) for s in ns["sources"]] == \
        [("scale", "w", 0)]
    assert "gradient along w is not zero here" in ns["summary"]


def test_a_network_without_symmetries_names_none(hess):
    res = hess("analyze", "mlp", "-p", "width=3", "-p", "inputs=4", "-p", "outputs=2",
               "--null-space", "--format", "json")
    assert res.exit_code == 0, res.output
    ns = res.json()["null_space"]
    assert ns["dimension"] == res.json()["inertia"]["zero"] == 0
    assert ns["sources"] == []


def test_check_spec_runs_the_reports_its_expectations_read(hess, write):
    spec = write("spec.yaml", "checks:\n  - objective: relunet\n    expect:\n"
                 "      null_space.dimension: {min: 27, max: 27}\n"
                 "      blocks.sharpest: head.b\n")
    res = hess("check", spec, "--format", "json")
    assert res.exit_code == 0, res.output
    bad = write("bad.yaml", "checks:\n  - objective: relunet\n    expect:\n"
                "      null_space.dimension: {max: 26}\n")
    res = hess("check", bad, "--format", "json")
    assert res.exit_code == 1, res.output
    (result,) = res.json()["checks"][0]["results"]  # the planted 27 directions, measured
    assert (result["key"], result["measured"], result["passed"]) == \
        ("null_space.dimension", 27, False)
