"""Adam's preconditioned sharpness λmax(P⁻¹H) (Cohen et al. 2022): numerics, threshold,
train monitoring and ``analyze --preconditioner``.

References are derived independently: P from optax's own update (P = −lr·m̂/u, the
update optax actually returned), P⁻¹H's eigenvalues from NumPy's non-symmetric eigen-solver
on ``jax.hessian``, the threshold from simulating the frozen-preconditioner recurrence.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import jsonschema
import numpy as np
import optax
import pytest

from hesscli.analysis.preconditioned import adam_bound, adam_threshold, preconditioned_sharpness
from hesscli.curvature.exact import ExactCurvature
from hesscli.curvature.preconditioned import (
    PreconditionedCurvature,
    preconditioner_of,
)
from hesscli.errors import InputError
from hesscli.schemas import load_schema
from hesscli.spectra.policy import SpectrumPolicy
from tests.conftest import run_cli
from tests.helpers import bound, objective_file

EDGE = """
import jax.numpy as jnp
def objective(p):
    x, y = p[0], p[1]
    return 0.5 * x**2 + 1.0 / (1.0 + y**2)
x0 = jnp.array([0.05, 0.5])
"""

QUADRATIC = """
import jax.numpy as jnp
A = jnp.array([[3.0, 1.0], [1.0, 2.0]])
def objective(x):
    return 0.5 * x @ A @ x
x0 = jnp.array([1.0, -2.0])
"""


@pytest.fixture(scope="module")
def net():
    """A small tanh MLP (the built-in, width 3) in float64 and its exact backend."""
    obj = bound("mlp", params={"width": 3})
    return obj, ExactCurvature(obj)


def adam_run(obj, steps: int, lr: float = 0.01, **options):
    """``steps`` optax steps; returns (x, state, last update, optimizer)."""
    opt = getattr(optax, options.pop("name", "adam"))(lr, **options)
    x = jnp.asarray(obj.x)
    state = opt.init(x)
    grad = jax.grad(obj.flat_fn)
    update = None
    for _ in range(steps):
        update, state = opt.update(grad(x), state, x)
        x = x + update
    return np.asarray(x), state, np.asarray(update), opt


def p_from_update(state, update: np.ndarray, lr: float, b1: float) -> np.ndarray:
    """P as optax applied it: u = −lr·m̂/P with m̂ = μ/(1 − β₁ᵗ) (optax's own update)."""
    adam_state = state[0]
    t = int(adam_state.count)
    m_hat = np.asarray(adam_state.mu, np.float64) / (1.0 - b1**t)
    return -lr * m_hat / update


@pytest.mark.parametrize("steps", [1, 10])
def test_p_inverse_h_matches_dense_construction(net, steps):
    """D H D has the eigenvalues of P⁻¹H, with P the preconditioner optax's update used
    (bias correction included: t = 1 and t = 10 differ by 1 − β₂ᵗ), eps_root inside the root."""
    obj, curv = net
    lr, b1 = 0.01, 0.9
    x, state, update, _ = adam_run(obj, steps, lr=lr, b1=b1, eps=1e-6, eps_root=1e-9)
    pre = preconditioner_of("adam", {"eps": 1e-6, "eps_root": 1e-9}, state, obj.n)
    # the update was formed with the state's ν at count t: the P optax divided by
    reference_p = p_from_update(state, update, lr, b1)
    assert pre.count == steps
    np.testing.assert_allclose(pre.diagonal, reference_p, rtol=1e-9)
    hess = np.asarray(jax.hessian(obj.flat_fn)(jnp.asarray(x)))
    lam = np.sort(np.linalg.eigvals(hess / reference_p[:, None]).real)  # P⁻¹H, non-symmetric
    op = PreconditionedCurvature(curv, pre)
    ours = np.linalg.eigvalsh(op.hessian(x).matrix)
    scale = float(np.max(np.abs(lam)))
    np.testing.assert_allclose(ours, lam, atol=1e-10 * scale)
    # the matvec (what Lanczos runs) is the same operator
    v = np.random.default_rng(0).standard_normal(obj.n)
    np.testing.assert_allclose(op.hvp(x, v), op.hessian(x).matrix @ v, atol=1e-10 * scale)
    # and the matrix-free top end agrees with the dense one within its certified interval
    ps = preconditioned_sharpness(curv, x, pre, lr,
                                  SpectrumPolicy(k=1, seed=0, path="matrix-free", ends="max"))
    lo, hi = ps.interval
    assert lo - 1e-9 * scale <= lam[-1] <= hi + 1e-9 * scale
    assert ps.stability.lambda_max_at_most >= lam[-1]


def test_bias_correction_changes_p(net):
    """Without the 1/(1 − β₂ᵗ) correction P would be √(1 − β₂) ≈ 0.03 times too small at t = 1."""
    obj, _ = net
    _, state, _, _ = adam_run(obj, 1)
    pre = preconditioner_of("adam", {}, state, obj.n)
    raw = np.sqrt(np.asarray(state[0].nu, np.float64)) + 1e-8
    ratio = np.median(pre.diagonal / raw)
    assert ratio == pytest.approx(1.0 / math.sqrt(1.0 - 0.999), rel=1e-3)


def test_amsgrad_and_adamw_and_nadam(net):
    obj, _ = net
    lr = 0.01
    x, state, update, _ = adam_run(obj, 5, lr=lr, name="amsgrad")
    pre = preconditioner_of("amsgrad", {}, state, obj.n)
    t = int(state[0].count)
    m_hat = np.asarray(state[0].mu) / (1.0 - 0.9**t)
    np.testing.assert_allclose(pre.diagonal, -lr * m_hat / update, rtol=1e-9)
    _, state, _, _ = adam_run(obj, 3, lr=lr, name="adamw", weight_decay=0.1)
    pre = preconditioner_of("adamw", {"weight_decay": 0.1}, state, obj.n)
    assert pre.weight_decay == 0.1
    _, state, _, _ = adam_run(obj, 3, lr=lr, name="nadam")
    assert preconditioner_of("nadam", {}, state, obj.n).nesterov


def test_refusals(net):
    obj, _ = net
    opt = optax.adam(0.01)
    with pytest.raises(InputError, match="no step yet"):
        preconditioner_of("adam", {}, opt.init(jnp.asarray(obj.x)), obj.n)
    with pytest.raises(InputError, match="sign"):
        preconditioner_of("lion", {}, None, obj.n)
    with pytest.raises(InputError, match="no scale_by_adam state"):
        preconditioner_of("adam", {}, optax.sgd(0.1).init(jnp.asarray(obj.x)), obj.n)


# ---- the threshold, derived by simulating the frozen-preconditioner recurrence ----------

def grows(c_eta_a: float, b1: float, *, nesterov: bool = False, eta_wd: float = 0.0,
          steps: int = 4000) -> bool:
    """Adam with P frozen (P = 1) on f = ½·a·x², written out from optax's update rule:
    m ← β₁m + (1 − β₁)g; step m (or β₁m + (1 − β₁)g with Nesterov); x ← x − η(step + w·x).
    True when |x| grew over ``steps`` (unstable)."""
    x, m = 1.0, 0.0
    eta_a = c_eta_a
    for _ in range(steps):
        g = x  # a·x with a = 1: η·a is the only scale
        m = b1 * m + (1.0 - b1) * g
        direction = b1 * m + (1.0 - b1) * g if nesterov else m
        x = x - eta_a * direction - eta_wd * x
        if abs(x) > 1e30:
            return True
    return abs(x) > 1.0


@pytest.mark.parametrize("b1", [0.0, 0.5, 0.9, 0.99])
def test_threshold_is_the_stability_boundary(b1):
    limit = adam_bound(b1)
    assert limit == pytest.approx((2 + 2 * b1) / (1 - b1), rel=1e-15)
    assert adam_threshold(0.1, b1) == pytest.approx(limit / 0.1)
    assert not grows(0.99 * limit, b1)
    assert grows(1.01 * limit, b1)


def test_threshold_at_beta_09_is_38():
    assert adam_threshold(1e-3, 0.9) == pytest.approx(38_000.0)


@pytest.mark.parametrize("b1", [0.5, 0.9])
def test_nesterov_and_weight_decay_thresholds(b1):
    limit = adam_bound(b1, nesterov=True)
    assert not grows(0.99 * limit, b1, nesterov=True)
    assert grows(1.01 * limit, b1, nesterov=True)
    lr, wd = 0.5, 0.2  # η·w = 0.1
    limit = adam_bound(b1, lr=lr, weight_decay=wd)
    assert not grows(0.99 * limit, b1, eta_wd=lr * wd)
    assert grows(1.01 * limit, b1, eta_wd=lr * wd)


# ---- train -------------------------------------------------------------------------------

def train_json(path: Path, *args: str) -> dict:
    res = run_cli("train", str(path), "--format", "json", *args)
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("train"))
    return doc


def test_train_reproduces_the_adaptive_edge(tmp_path):
    """Cohen et al. 2022 in two dimensions: λmax(P⁻¹H) rises to 38/lr and hovers there while
    f keeps falling; λmax(H) stays at 1, far below 2/lr (lr·λmax(H)/2 = 0.05)."""
    path = objective_file(tmp_path, EDGE)
    doc = train_json(path, "--optimizer", "adam", "--lr", "0.1", "--b2", "0.99",
                     "--steps", "1500", "--monitor-every", "25")
    hist = doc["history"]
    assert hist[0]["preconditioned_lambda_max"] is None  # no P before the first step
    later = [h for h in hist if h["step"] >= 500]
    ratios = np.array([h["lr_times_preconditioned_lambda_max"] for h in later])
    assert all(h["preconditioned_bound"] == pytest.approx(38.0) for h in later)
    assert 0.85 * 38 <= float(np.median(ratios)) <= 1.05 * 38
    assert later[-1]["value"] < 0.2 * later[0]["value"]  # f keeps falling meanwhile
    assert max(0.1 * h["lambda_max"] for h in later) < 0.2  # lr·λmax(H) nowhere near 2
    kinds = {e["kind"] for e in doc["events"]}
    assert "adaptive_progressive_sharpening" in kinds
    assert "adaptive_edge_of_stability" in kinds
    assert not kinds & {"progressive_sharpening", "edge_of_stability", "above_edge", "unstable"}


def test_train_no_adaptive_event_where_stable(tmp_path):
    """lr·λmax(H) = 3.6 > 2 (a plain-GD bound would cry "above the edge"), but P ≈ 10 makes
    lr·λmax(P⁻¹H) ≈ 0.36 ≪ 38: Adam is stable, and no span event is raised."""
    path = objective_file(tmp_path, QUADRATIC)
    doc = train_json(path, "--optimizer", "adam", "--lr", "1", "--eps", "10", "--b2", "0.9",
                     "--steps", "200", "--monitor-every", "10")
    kinds = {e["kind"] for e in doc["events"]}
    assert not {k for k in kinds if "edge" in k or "unstable" in k or "sharpening" in k}
    last = doc["history"][-1]
    # P⁻¹ ≈ 1/(10 + √v̂) with v̂ → 0: λmax(P⁻¹H) → λmax(H)/10
    assert last["preconditioned_lambda_max"] == pytest.approx(last["lambda_max"] / 10, rel=1e-3)
    assert any("not the stability criterion" in n for n in doc["notes"])


def test_event_tracker_adaptive_edge():
    """Synthetic records: lr·λmax(P⁻¹H) hovering at 38 while f falls is the adaptive edge; the
    same records' lr·λmax(H) hovering at 2 raises nothing for Adam."""
    from hesscli.training.events import EventTracker
    from hesscli.training.monitor import Record

    tracker = EventTracker(2, "float64", 0.1, optimizer="adam", bound=38.0, preconditioned=True)
    ratios = [30, 34, 37.5, 38.5, 37.8, 38.3, 37.9, 38.1]
    for i, r in enumerate(ratios):
        tracker.feed(Record(step=10 * i, value=1.0 - 0.01 * i, gradient_norm=1.0,
                            lambda_min=1.0, lambda_max=20.0, lr_times_lambda_max=2.0,
                            preconditioned_lambda_max=r / 0.1,
                            lr_times_preconditioned_lambda_max=r, preconditioned_bound=38.0))
    kinds = [e.kind for e in tracker.events + tracker.finish()]
    assert "adaptive_edge_of_stability" in kinds
    assert "edge_of_stability" not in kinds


# ---- analyze --preconditioner --------------------------------------------------------------

def test_analyze_preconditioner_end_to_end(tmp_path):
    log, point = tmp_path / "run.jsonl", tmp_path / "x.npz"
    res = run_cli("train", "mlp", "-p", "width=3", "--optimizer", "adam", "--lr", "0.01",
                  "--steps", "20", "--monitor-every", "10", "--out", str(log),
                  "--save-point", str(point), "--format", "json")
    assert res.exit_code == 0, res.output
    res = run_cli("analyze", "mlp", "-p", "width=3", "--at", str(point), "--lr", "0.01",
                  "--preconditioner", str(log), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("analyze"))
    pc = doc["preconditioned"]
    # independent: rebuild the run with optax and construct P⁻¹H densely
    obj = bound("mlp", params={"width": 3})
    x, state, update, _ = adam_run(obj, 20, lr=0.01)
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    logged_x = np.asarray([d for d in logged if d["record"] == "state"][-1]["x"])
    np.testing.assert_allclose(logged_x, x, rtol=1e-10, atol=1e-12)  # the same trajectory
    p = p_from_update(state, update, 0.01, 0.9)
    hess = np.asarray(jax.hessian(obj.flat_fn)(jnp.asarray(x)))
    top = float(np.max(np.linalg.eigvals(hess / p[:, None]).real))
    assert pc["lambda_max"] == pytest.approx(top, rel=1e-6)  # float64 rounding of two runs
    assert pc["count"] == 20 and pc["step"] == 20
    assert pc["threshold"] == pytest.approx(3800.0)
    assert pc["stable"] is (0.01 * top < 38) and pc["certainty"] == "proven"
    # an lr at which it is unstable: proven from the dense spectrum
    res = run_cli("analyze", "mlp", "-p", "width=3", "--at", str(point),
                  "--lr", str(60.0 / top), "--preconditioner", str(log), "--format", "json")
    pc = res.json()["preconditioned"]
    assert pc["stable"] is False and pc["certainty"] == "proven"
    assert any("trained with lr = 0.01" in n for n in pc["notes"])
    # the table
    res = run_cli("analyze", "mlp", "-p", "width=3", "--at", str(point),
                  "--preconditioner", str(log))
    assert res.exit_code == 0, res.output
    assert "λmax(P⁻¹H)" in res.stdout and "stable near here" in res.stdout


def test_analyze_preconditioner_bad_inputs(tmp_path):
    missing = run_cli("analyze", "mlp", "-p", "width=3", "--preconditioner",
                      str(tmp_path / "none.jsonl"))
    assert missing.exit_code == 2 and missing.stderr.startswith("error:"), missing.output
    assert "none.jsonl" in missing.stderr, missing.output  # the line names the missing log
    junk = tmp_path / "junk.jsonl"
    junk.write_text(json.dumps({"record": "header", "schema": "nope"}) + "\n")
    res = run_cli("analyze", "mlp", "-p", "width=3", "--preconditioner", str(junk))
    assert res.exit_code == 2 and "not a hesscli train log" in res.stderr, res.output
    log = tmp_path / "sgd.jsonl"
    res = run_cli("train", "mlp", "-p", "width=3", "--lr", "0.01", "--steps", "3",
                  "--out", str(log), "--no-curvature", "--format", "json")
    assert res.exit_code == 0, res.output
    res = run_cli("analyze", "mlp", "-p", "width=3", "--preconditioner", str(log))
    assert res.exit_code == 2 and "no preconditioner" in res.stderr, res.output


def test_train_matrix_free_matches_dense():
    """The monitored λmax(P⁻¹H) on the matrix-free path (Lanczos on the Partial matvec) brackets
    the dense one: proven below, the random start's bound above."""
    common = ("train", "mlp", "-p", "width=3", "--optimizer", "adam", "--lr", "0.05",
              "--steps", "20", "--monitor-every", "10", "--format", "json")
    dense = run_cli(*common)
    free = run_cli(*common, "--dense-budget", "1KiB")
    assert dense.exit_code == 0 and free.exit_code == 0, dense.output + free.output
    for d, f in zip(dense.json()["history"][1:], free.json()["history"][1:], strict=True):
        lam = d["preconditioned_lambda_max"]
        assert d["preconditioned_lambda_max_at_least"] is None  # dense: the value itself
        assert f["preconditioned_lambda_max_at_least"] <= lam * (1 + 1e-9)
        assert lam <= f["preconditioned_lambda_max_at_most"]
        assert f["preconditioned_lambda_max"] == pytest.approx(lam, rel=1e-6)


def test_api_analyze_preconditioner(tmp_path):
    """The same option from Python: ``hesscli.analyze(..., preconditioner=LOG)``."""
    import hesscli

    log = tmp_path / "run.jsonl"
    res = run_cli("train", "mlp", "-p", "width=3", "--optimizer", "adamw", "--lr", "0.01",
                  "--weight-decay", "0.5", "--steps", "5", "--monitor-every", "5",
                  "--out", str(log), "--no-curvature", "--format", "json")
    assert res.exit_code == 0, res.output
    x = np.asarray(res.json()["final_point"])
    out = hesscli.analyze("mlp", x, params={"width": 3}, lr=0.01, preconditioner=str(log))
    ps = out.parts["preconditioned"]
    assert ps.preconditioner.optimizer == "adamw" and ps.preconditioner.count == 5
    assert ps.bound == pytest.approx((2 - 0.01 * 0.5) * 1.9 / 0.1)  # decoupled weight decay
    doc = out.to_json()
    assert doc["preconditioned"]["weight_decay"] == 0.5
    assert not any("not the one logged" in n for n in doc["preconditioned"]["notes"])


def test_without_lr_the_threshold_is_the_logged_runs(tmp_path):
    """No --lr: the threshold is for the learning rate the run trained with (0.05 here),
    (2 + 2β₁)/((1 − β₁)·η) = 38/0.05 = 760, not for analyze's default 0.01 (3800)."""
    log = tmp_path / "run.jsonl"
    res = run_cli("train", "mlp", "-p", "width=3", "--optimizer", "adam", "--lr", "0.05",
                  "--steps", "4", "--out", str(log), "--no-curvature", "--format", "json")
    assert res.exit_code == 0, res.output
    x = ",".join(repr(v) for v in res.json()["final_point"])
    res = run_cli("analyze", "mlp", "-p", "width=3", "--at", x, "--preconditioner", str(log),
                  "--format", "json")
    assert res.exit_code == 0, res.output
    pc = res.json()["preconditioned"]
    assert pc["lr"] == 0.05
    assert pc["threshold"] == pytest.approx(38 / 0.05, rel=1e-12)
    assert not any("the threshold here is for" in n for n in pc["notes"])
