"""``analyze --preconditioner STATE``: Adam's sharpness from an optax state a script saved.

Each state is built here by running optax updates on a small network and saved the ways
users save it (orbax, Flax msgpack, ``.npz`` of the flattened state dict). The reference
is constructed densely in the test: P = sqrt(ν/(1 − β₂ᵗ)) + eps from the state's own ν
(flattened by ``ravel_pytree`` of the optimizer's pytree), H = ``jax.hessian`` of the
objective, the eigenvalues of P^(-1/2)·H·P^(-1/2) by ``numpy.linalg.eigvalsh``.

Tolerances: on the dense path hesscli forms the same matrix (its Hessian by
forward-over-reverse, scaled in float64) and solves it with a backward-stable symmetric
eigensolver, so the two top eigenvalues agree to a few n·ε·‖M‖ (1e-10·‖M‖ leaves room); on
the matrix-free path the reference must lie in the reported interval (proven lower side;
upper side from the residual), widened by the same 1e-10·‖M‖.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import jsonschema
import numpy as np
import optax
import pytest
from flax import serialization, traverse_util
from jax.flatten_util import ravel_pytree

from hesscli.schemas import load_schema
from tests.conftest import run_cli
from tests.helpers import bound, objective_file

STEPS = 7
B1, B2, EPS = 0.8, 0.99, 1e-6


def run_optax(obj, opt, steps: int = STEPS):
    """``steps`` optax updates on ``obj``'s parameter pytree: (params, state)."""
    params = jax.tree_util.tree_map(jnp.asarray, obj.params_of(np.asarray(obj.x)))
    grad = jax.grad(lambda p: obj.file.fn(p))
    state = opt.init(params)
    for _ in range(steps):
        updates, state = opt.update(grad(params), state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def adam_node(state):
    """The ScaleByAdamState/ScaleByAmsgradState inside an optax state (chain, inject)."""
    for leaf in jax.tree_util.tree_leaves(state, is_leaf=lambda s: hasattr(s, "nu")):
        if hasattr(leaf, "nu"):
            return leaf
    raise AssertionError("no Adam state")


def reference_top(obj, params, nu_flat, count, b2, eps, *, bias=True) -> float:
    """λmax(P⁻¹H) with P = sqrt(ν̂) + eps, built densely (eigvalsh of P^(-1/2) H P^(-1/2))."""
    x, _ = ravel_pytree(params)
    hess = np.asarray(jax.hessian(obj.flat_fn)(x), np.float64)
    nu_hat = nu_flat / (1.0 - b2**count) if bias else nu_flat
    d = 1.0 / np.sqrt(np.sqrt(nu_hat) + eps)
    return float(np.linalg.eigvalsh(d[:, None] * hess * d[None, :])[-1])


def flat(tree) -> np.ndarray:
    return np.asarray(ravel_pytree(tree)[0], np.float64)


def save_point(path: Path, params) -> Path:
    arrays = traverse_util.flatten_dict(jax.tree_util.tree_map(np.asarray, params), sep=".")
    np.savez(path, **arrays)
    return path


def save_state(kind: str, state, tmp_path: Path) -> Path:
    """The optimizer state saved as a user would: orbax, Flax msgpack, or its flattened
    state dict (keys ``0/mu/hidden/w``) as .npz or .safetensors."""
    if kind == "orbax":
        import orbax.checkpoint as ocp

        path = tmp_path / "opt_state"
        ocp.PyTreeCheckpointer().save(str(path.resolve()), state)
        return path
    if kind == "msgpack":
        path = tmp_path / "opt_state.msgpack"
        path.write_bytes(serialization.to_bytes(state))
        return path
    arrays = traverse_util.flatten_dict(serialization.to_state_dict(state), sep="/")
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    if kind == "safetensors":
        from safetensors.numpy import save_file

        path = tmp_path / "opt_state.safetensors"
        save_file(arrays, str(path))
        return path
    path = tmp_path / "opt_state.npz"
    np.savez(path, **arrays)
    return path


def analyze_json(*args) -> dict:
    res = run_cli("analyze", *map(str, args), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, load_schema("analyze"))
    return doc


def one_error(res, text: str) -> str:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def mlp():
    return bound("mlp", params={"width": 3})


@pytest.fixture(scope="module")
def adam_run(mlp, tmp_path_factory):
    """optax.adam(lr, b1=0.8, b2=0.99, eps=1e-6) for 7 steps on the width-3 MLP, the point
    saved as .npz, and the dense reference λmax(P⁻¹H)."""
    tmp = tmp_path_factory.mktemp("adam")
    params, state = run_optax(mlp, optax.adam(0.01, b1=B1, b2=B2, eps=EPS))
    node = adam_node(state)
    top = reference_top(mlp, params, flat(node.nu), int(node.count), B2, EPS)
    return {"params": params, "state": state, "point": save_point(tmp / "x.npz", params),
            "top": top, "nu": flat(node.nu), "count": int(node.count)}


@pytest.mark.parametrize("kind", ["orbax", "msgpack", "npz", "safetensors"])
def test_saved_adam_state_matches_the_dense_construction(mlp, adam_run, tmp_path, kind):
    """λmax(P⁻¹H) from each format against the dense P^(-1/2)·H·P^(-1/2); the threshold
    (2 + 2β₁)/((1 − β₁)·lr) at β₁ = 0.8 is 18/lr and the verdict follows lr·λmax vs 18."""
    state = save_state(kind, adam_run["state"], tmp_path)
    top = adam_run["top"]
    lr = 0.5 * 18.0 / top  # half the threshold: stable
    doc = analyze_json("mlp", "-p", "width=3", "--at", adam_run["point"], "--preconditioner",
                       state, "--lr", lr, "--b1", B1, "--b2", B2, "--eps", EPS)
    pc = doc["preconditioned"]
    assert pc["path"] == "dense" and pc["optimizer"] == "adam"
    assert pc["count"] == STEPS and pc["assumed"] == []
    assert pc["lambda_max"] == pytest.approx(top, rel=1e-10)
    assert pc["threshold"] == pytest.approx(18.0 / lr, rel=1e-12)
    assert pc["bound"] == pytest.approx(18.0, rel=1e-12)
    assert pc["stable"] is True and pc["certainty"] == "proven"
    assert pc["max_stable_lr"] == pytest.approx(18.0 / top, rel=1e-10)


def test_no_lr_reports_lambda_max_without_a_threshold_and_names_the_defaults(
        mlp, adam_run, tmp_path):
    """Nothing but the state: optax.adam's b1 = 0.9, b2 = 0.999, eps = 1e-8 assumed (so P's
    bias correction uses 0.999, not the 0.99 the run used), no lr, so no threshold."""
    state = save_state("msgpack", adam_run["state"], tmp_path)
    doc = analyze_json("mlp", "-p", "width=3", "--at", adam_run["point"],
                       "--preconditioner", state)
    pc = doc["preconditioned"]
    top = reference_top(mlp, adam_run["params"], adam_run["nu"], STEPS, 0.999, 1e-8)
    assert pc["lambda_max"] == pytest.approx(top, rel=1e-10)
    assert pc["lr"] is None and pc["threshold"] is None and pc["stable"] is None
    assert pc["lr_times_lambda_max"] is None and pc["certainty"] is None
    assert pc["bound"] == pytest.approx(38.0, rel=1e-12)
    assert pc["max_stable_lr"] == pytest.approx(38.0 / top, rel=1e-10)
    assert pc["assumed"] == ["b1", "b2", "eps"]
    notes = " | ".join(pc["notes"])
    assert "b1 = 0.9, b2 = 0.999, eps = 1e-08 assumed" in notes
    assert "Adam assumed" in notes and "no --lr" in notes
    table = run_cli("analyze", "mlp", "-p", "width=3", "--at", str(adam_run["point"]),
                    "--preconditioner", str(state))
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    assert "not compared with the threshold (no --lr)" in text
    assert "b1 = 0.9, b2 = 0.999, eps = 1e-08 assumed" in text


@pytest.mark.parametrize("b1", [0.0, 0.5, 0.95])
def test_threshold_decides_at_the_bound(adam_run, tmp_path, b1):
    """lr just above the threshold (2 + 2β₁)/((1 − β₁)·λmax) is proven unstable, just below
    proven stable (dense: λmax is known to rounding)."""
    state = save_state("msgpack", adam_run["state"], tmp_path)
    top = adam_run["top"]
    bound = (2 + 2 * b1) / (1 - b1)
    for factor, stable in ((1.01, False), (0.99, True)):
        lr = factor * bound / top
        pc = analyze_json("mlp", "-p", "width=3", "--at", adam_run["point"],
                          "--preconditioner", state, "--lr", lr, "--b1", b1, "--b2", B2,
                          "--eps", EPS)["preconditioned"]
        assert pc["threshold"] == pytest.approx(bound / lr, rel=1e-12)
        assert pc["stable"] is stable and pc["certainty"] == "proven"
        assert pc["assumed"] == []


def test_matrix_free_brackets_the_dense_reference(adam_run, tmp_path):
    state = save_state("npz", adam_run["state"], tmp_path)
    top = adam_run["top"]
    pc = analyze_json("mlp", "-p", "width=3", "--at", adam_run["point"], "--preconditioner",
                      state, "--lr", 0.01, "--b1", B1, "--b2", B2, "--eps", EPS,
                      "--matrix-free")["preconditioned"]
    assert pc["path"] == "matrix-free"
    lo, hi = pc["lambda_max_interval"]
    slack = 1e-10 * top
    assert lo - slack <= top <= hi + slack
    assert pc["lambda_max_at_most"] >= top - slack


def test_chained_adamw_state_and_weight_decay(mlp, tmp_path):
    """optax.chain(clip, adamw): the Adam node is found inside the chain; --weight-decay makes
    the threshold AdamW's, (2 − lr·w)(1 + β₁)/(1 − β₁); without it Adam is assumed, noted."""
    wd, lr = 0.1, 0.02
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(lr, weight_decay=wd))
    params, state = run_optax(mlp, opt)
    node = adam_node(state)
    top = reference_top(mlp, params, flat(node.nu), int(node.count), 0.999, 1e-8)
    point = save_point(tmp_path / "x.npz", params)
    saved = save_state("orbax", state, tmp_path)
    pc = analyze_json("mlp", "-p", "width=3", "--at", point, "--preconditioner", saved,
                      "--lr", lr, "--weight-decay", wd)["preconditioned"]
    assert pc["optimizer"] == "adamw" and pc["weight_decay"] == wd
    assert pc["lambda_max"] == pytest.approx(top, rel=1e-10)
    assert pc["bound"] == pytest.approx((2 - lr * wd) * 1.9 / 0.1, rel=1e-12)
    assert not any("Adam assumed" in n for n in pc["notes"])
    plain = analyze_json("mlp", "-p", "width=3", "--at", point, "--preconditioner", saved,
                         "--lr", lr)["preconditioned"]
    assert plain["optimizer"] == "adam" and plain["bound"] == pytest.approx(38.0)
    assert any("Adam assumed" in n for n in plain["notes"])
    nadam = analyze_json("mlp", "-p", "width=3", "--at", point, "--preconditioner", saved,
                         "--lr", lr, "--nesterov")["preconditioned"]
    assert nadam["optimizer"] == "nadam"
    assert nadam["bound"] == pytest.approx(2 * 1.9 / (0.1 * 2.8), rel=1e-12)


def test_injected_hyperparameters_are_read_from_the_state(mlp, tmp_path):
    """optax.inject_hyperparams saves learning_rate, b1, b2, eps (and weight_decay): they are
    used when no option gives them, so the threshold needs no --lr."""
    lr, b1, b2, eps, wd = 0.02, 0.7, 0.95, 1e-7, 0.05
    opt = optax.inject_hyperparams(optax.adamw)(learning_rate=lr, b1=b1, b2=b2, eps=eps,
                                                weight_decay=wd)
    params, state = run_optax(mlp, opt)
    node = adam_node(state)
    stored = {k: float(np.asarray(v)) for k, v in state.hyperparams.items()}
    top = reference_top(mlp, params, flat(node.nu), int(node.count), stored["b2"],
                        stored["eps"])
    point = save_point(tmp_path / "x.npz", params)
    saved = save_state("msgpack", state, tmp_path)
    pc = analyze_json("mlp", "-p", "width=3", "--at", point,
                      "--preconditioner", saved)["preconditioned"]
    assert pc["optimizer"] == "adamw" and pc["assumed"] == []
    assert pc["lr"] == pytest.approx(stored["learning_rate"]) == pytest.approx(lr)
    assert pc["logged_lr"] == pytest.approx(lr)
    assert pc["lambda_max"] == pytest.approx(top, rel=1e-10)
    b1s = stored["b1"]
    bound = (2 - lr * stored["weight_decay"]) * (1 + b1s) / (1 - b1s)
    assert pc["threshold"] == pytest.approx(bound / lr, rel=1e-9)
    assert any("inject_hyperparams" in n for n in pc["notes"])


def test_amsgrad_state_is_recognized_by_nu_max(mlp, tmp_path):
    params, state = run_optax(mlp, optax.amsgrad(0.01))
    node = adam_node(state)
    top = reference_top(mlp, params, flat(node.nu_max), 0, 0.999, 1e-8, bias=False)
    point = save_point(tmp_path / "x.npz", params)
    pc = analyze_json("mlp", "-p", "width=3", "--at", point, "--preconditioner",
                      save_state("msgpack", state, tmp_path), "--lr", 0.01)["preconditioned"]
    assert pc["optimizer"] == "amsgrad"
    assert pc["lambda_max"] == pytest.approx(top, rel=1e-10)


LIST_MODEL = """
import jax.numpy as jnp
def objective(ws):
    return sum(0.5 * jnp.sum(w ** 2) + jnp.sum(w ** 4) for w in ws)
# leaf 2 starts near its minimum: its tiny gradients give it the smallest ν, so the top of
# P⁻¹H sits in its block, and pairing leaves in sorted-key order would move that ν elsewhere
x0 = [jnp.full((2,), 0.01 if i == 2 else 1.0) for i in range(12)]
"""

NESTED_MODEL = """
import jax.numpy as jnp
def objective(v):
    p = v["params"]
    return jnp.sum(jnp.cos(p["a"]) * p["b"][0]) + jnp.sum(p["b"] ** 4)
x0 = {"params": {"a": jnp.array([0.3, -0.2, 0.5]), "b": jnp.array([1.0, -0.5])}}
"""


def test_leaves_are_matched_by_path_not_by_sorted_order(tmp_path):
    """A list of 12 leaves of one shape comes back from msgpack as keys "0".."11", sorted
    "0", "1", "10", "11", "2", ...: paired by flat order the leaves would be permuted
    without any shape error. Matched by path, P lines up with the point's leaves."""
    path = objective_file(tmp_path, LIST_MODEL)
    obj = bound(str(path))
    params, state = run_optax(obj, optax.adam(0.001), steps=5)
    node = adam_node(state)
    top = reference_top(obj, params, flat(node.nu), 5, 0.999, 1e-8)
    order = [0, 1, 10, 11, *range(2, 10)]  # "0", "1", "10", "11", "2", ...: sorted keys
    permuted = np.concatenate([flat(node.nu).reshape(12, 2)[i] for i in order])
    assert abs(reference_top(obj, params, permuted, 5, 0.999, 1e-8) - top) > 0.5 * top
    x = tmp_path / "x.npy"
    np.save(x, flat(params))
    saved = save_state("msgpack", state, tmp_path)
    pc = analyze_json(path, "--at", x, "--preconditioner", saved, "--lr", 0.05)
    assert pc["preconditioned"]["lambda_max"] == pytest.approx(top, rel=1e-10)


def test_a_state_of_the_params_collection_matches_a_variables_point(tmp_path):
    """The point is {"params": {...}} and the optimizer ran on its "params": the shared
    leading component is dropped before matching."""
    path = objective_file(tmp_path, NESTED_MODEL)
    obj = bound(str(path))
    inner = jax.tree_util.tree_map(jnp.asarray, obj.params_of(np.asarray(obj.x))["params"])
    opt = optax.adam(0.05)
    state = opt.init(inner)
    grad = jax.grad(lambda p: obj.file.fn({"params": p}))
    for _ in range(4):
        updates, state = opt.update(grad(inner), state, inner)
        inner = optax.apply_updates(inner, updates)
    top = reference_top(obj, {"params": inner}, flat(adam_node(state).nu), 4, 0.999, 1e-8)
    x = tmp_path / "x.npy"
    np.save(x, flat({"params": inner}))
    saved = save_state("npz", state, tmp_path)
    pc = analyze_json(path, "--at", x, "--preconditioner", saved, "--lr", 0.05)
    assert pc["preconditioned"]["lambda_max"] == pytest.approx(top, rel=1e-10)


def test_selector_and_manager_item(mlp, adam_run, tmp_path):
    """``FILE::opt_state`` picks the state out of a checkpoint of {params, opt_state}; and
    ``ckpt/opt_state`` names the newest step's item of an orbax CheckpointManager folder."""
    import orbax.checkpoint as ocp

    both = tmp_path / "both.msgpack"
    both.write_bytes(serialization.to_bytes({"params": adam_run["params"],
                                             "opt_state": adam_run["state"]}))
    args = ("--lr", 0.01, "--b1", B1, "--b2", B2, "--eps", EPS)
    pc = analyze_json("mlp", "-p", "width=3", "--at", f"{both}::params",
                      "--preconditioner", f"{both}::opt_state", *args)["preconditioned"]
    assert pc["lambda_max"] == pytest.approx(adam_run["top"], rel=1e-10)
    ckpt = tmp_path / "ckpt"
    ocp.PyTreeCheckpointer().save(str((ckpt / "7" / "opt_state").resolve()), adam_run["state"])
    pc = analyze_json("mlp", "-p", "width=3", "--at", adam_run["point"],
                      "--preconditioner", ckpt / "opt_state", *args)["preconditioned"]
    assert pc["lambda_max"] == pytest.approx(adam_run["top"], rel=1e-10)


def test_mismatched_states_are_input_errors(adam_run, tmp_path):
    """A state of another network, a point file instead of a state, several Adam states,
    a state before its first step: exit 2 with one line saying what is wrong."""
    other = bound("mlp", params={"width": 4})
    _, state = run_optax(other, optax.adam(0.01), steps=2)
    wrong = save_state("msgpack", state, tmp_path)
    line = one_error(run_cli("analyze", "mlp", "-p", "width=3", "--at", str(adam_run["point"]),
                             "--preconditioner", str(wrong)), "the state's mu leaf")
    assert "'head.w'" in line and "(4, 16)" in line and "(3, 16)" in line  # width 4 vs 3
    one_error(run_cli("analyze", "mlp", "-p", "width=3", "--preconditioner",
                      str(adam_run["point"])), "no Adam-type state")
    two = tmp_path / "two.msgpack"
    two.write_bytes(serialization.to_bytes([adam_run["state"], adam_run["state"]]))
    one_error(run_cli("analyze", "mlp", "-p", "width=3", "--preconditioner", str(two)),
              "2 Adam-type states")
    fresh = optax.adam(0.01).init(bound("mlp", params={"width": 3}).params_of(
        np.asarray(bound("mlp", params={"width": 3}).x)))
    one_error(run_cli("analyze", "mlp", "-p", "width=3", "--preconditioner",
                      str(save_state("npz", fresh, tmp_path))), "no step yet")
    flat_wrong = tmp_path / "flat.npz"
    np.savez(flat_wrong, count=np.array(3), mu=np.ones(10), nu=np.ones(10))
    one_error(run_cli("analyze", "mlp", "-p", "width=3", "--preconditioner",
                      str(flat_wrong)), "does not have the point's parameters")


def test_options_outside_a_saved_state_are_refused(adam_run, tmp_path):
    one_error(run_cli("analyze", "mlp", "-p", "width=3", "--b2", "0.99"),
              "--b2 describes the optimizer of --preconditioner")
    one_error(run_cli("analyze", "mlp", "-p", "width=3", "--preconditioner",
                      str(save_state("npz", adam_run["state"], tmp_path)), "--b1", "1.5"),
              "--b1 must be a number in [0, 1)")


def test_a_run_log_still_works_and_refuses_state_options(tmp_path):
    log, point = tmp_path / "run.jsonl", tmp_path / "x.npz"
    res = run_cli("train", "mlp", "-p", "width=3", "--optimizer", "adam", "--lr", "0.01",
                  "--steps", "6", "--monitor-every", "6", "--no-curvature", "--out", str(log),
                  "--save-point", str(point), "--format", "json")
    assert res.exit_code == 0, res.output
    # the same run by optax: the log's state is adam(0.01) after 6 steps
    obj = bound("mlp", params={"width": 3})
    params, state = run_optax(obj, optax.adam(0.01), steps=6)
    node = adam_node(state)
    top = reference_top(obj, params, flat(node.nu), 6, 0.999, 1e-8)
    pc = analyze_json("mlp", "-p", "width=3", "--at", point,
                      "--preconditioner", log)["preconditioned"]
    assert pc["lambda_max"] == pytest.approx(top, rel=1e-6)  # two float64 trajectories
    assert pc["lr"] == 0.01 and pc["threshold"] == pytest.approx(3800.0)  # as before
    assert pc["step"] == 6 and pc["assumed"] == []
    one_error(run_cli("analyze", "mlp", "-p", "width=3", "--at", str(point),
                      "--preconditioner", str(log), "--b2", "0.9"),
              "--b2: the run log")


def test_optax_state_object_from_python(mlp, adam_run):
    """``hesscli.analyze(..., preconditioner=state)`` takes the optax state a training loop
    holds (NamedTuples of jax arrays), not only a saved file: the same dense reference, the
    document names its source, and a state with two Adam nodes is refused in one line."""
    import hesscli
    from hesscli.errors import InputError

    top = adam_run["top"]
    lr = 0.5 * 18.0 / top
    res = hesscli.analyze("mlp", adam_run["params"], params={"width": 3},
                          preconditioner=adam_run["state"], lr=lr, b1=B1, b2=B2, eps=EPS)
    doc = res.to_json()
    jsonschema.validate(doc, load_schema("analyze"))
    pc = doc["preconditioned"]
    assert pc["source"] == "optax state object" and pc["count"] == STEPS
    assert pc["lambda_max"] == pytest.approx(top, rel=1e-10)
    assert pc["stable"] is True and pc["assumed"] == []
    with pytest.raises(InputError, match="2 Adam-type states") as err:
        hesscli.analyze("mlp", adam_run["params"], params={"width": 3},
                        preconditioner=(adam_run["state"], adam_run["state"]), lr=lr)
    assert "pass that part of the state" in str(err.value)
