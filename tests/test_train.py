"""hesscli train: noise, saddles, divergence, minibatches, logs, resume, tensor recovery.

Reference values are derived by hand: the saddle f = ½x² + ¼y⁴ − ½y² has its
saddle at 0 (H = diag(1, −1)) and minima at y = ±1 with f = −¼; the ravine
½xᵀdiag(1, 100)x diverges under gradient descent exactly when lr > 2/100, its
top coordinate growing by |1 − 100·lr| per step; a quadratic's step model is
exact. Runs are short and share compiled functions (module-scoped fixtures).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hesscli.api import load
from hesscli.curvature.exact import ExactCurvature
from hesscli.training.loop import EXPLODE, TrainConfig, optimizer_for, train
from hesscli.training.noise import sphere_noise

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "hesscli/schemas/train.schema.json").read_text()
)


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """Share compiled programs between the CLI runs of this module (each reloads its file)."""
    folder = tmp_path_factory.mktemp("jax-cache")
    old = (jax.config.jax_compilation_cache_dir,
           jax.config.jax_persistent_cache_min_compile_time_secs)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    yield
    jax.config.update("jax_compilation_cache_dir", old[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", old[1])


def validate(doc: dict) -> None:
    import jsonschema

    jsonschema.validate(doc, SCHEMA)


def bound(name: str, at: str | None = None, params: tuple[str, ...] = ()):
    obj = load(name, at, params, seed=0, dtype="float64", method="auto")
    return obj, ExactCurvature(obj)


@pytest.fixture(scope="module")
def saddle():
    return bound("saddle", "zeros")


@pytest.fixture(scope="module")
def tensor():
    return bound("tensor")


# --- the noise --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noise_update():
    """One compiled sphere-noise update (radius 2.5, first 2000 steps), shared by the tests."""
    tx = sphere_noise(2.5, jax.random.PRNGKey(7), steps=2000)
    return tx, jax.jit(tx.update)


TREE = {"a": jnp.zeros(2), "b": jnp.zeros((1, 1))}  # the sphere of all leaves together: d = 3


def draws(update, state, count):
    out = []
    for _ in range(count):
        upd, state = update(TREE, state)
        out.append(np.concatenate([np.ravel(upd["a"]), np.ravel(upd["b"])]))
    return np.array(out), state


def test_sphere_noise_is_unit_norm_scaled_and_seeded(noise_update):
    from hesscli.training.noise import SphereNoiseState

    tx, update = noise_update
    first, _ = draws(update, tx.init(TREE), 3)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1) / 2.5, 1.0, rtol=1e-14)
    assert not np.allclose(first[0], first[1])  # the key advances
    np.testing.assert_array_equal(draws(update, tx.init(TREE), 3)[0], first)  # seeded
    other = SphereNoiseState(jnp.zeros([], jnp.int32), jax.random.PRNGKey(8))
    assert not np.allclose(draws(update, other, 1)[0][0], first[0])
    late = SphereNoiseState(jnp.asarray(1999, jnp.int32), jax.random.PRNGKey(7))
    last, _ = draws(update, late, 2)
    assert np.linalg.norm(last[0]) == pytest.approx(2.5, rel=1e-14)
    np.testing.assert_array_equal(last[1], 0.0)  # noise off after `steps` updates


def test_sphere_noise_is_uniform_on_the_sphere(noise_update):
    # uniform on S^{d-1}: unit norm, mean 0 and second moment I/d (each 1/√N-accurate)
    tx, update = noise_update
    count, d = 2000, 3
    v = draws(update, tx.init(TREE), count)[0] / 2.5
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-14)
    assert np.abs(v.mean(axis=0)).max() < 5 / math.sqrt(count)
    np.testing.assert_allclose(v.T @ v / count, np.eye(d) / d, atol=5 / math.sqrt(count))


# --- saddle: plain GD stays, noisy GD escapes ------------------------------------------


def test_plain_gd_stays_at_the_saddle(hess, tmp_path):
    point = tmp_path / "final.npy"
    res = hess("train", "saddle", "--at", "zeros", "--lr", "0.1", "--steps", "40",
               "--monitor-every", "10", "--save-point", point, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate(doc)
    assert doc["schema"] == "hesscli.train/1"
    assert [h["step"] for h in doc["history"]] == [0, 10, 20, 30, 40]
    assert all(h["gradient_norm"] == 0.0 for h in doc["history"])
    assert all(h["lambda_min"] == -1.0 and h["lambda_max"] == 1.0 for h in doc["history"])
    assert doc["final_classification"] == "saddle_point"
    assert doc["final_point"] == [0.0, 0.0]
    assert [(e["step"], e["kind"]) for e in doc["events"]] == [(0, "at_saddle")]
    np.testing.assert_array_equal(np.load(point), [0.0, 0.0])
    assert doc["meta"]["seed"] == 0 and "progress" not in res.stdout.lower()


@pytest.fixture(scope="module")
def noisy_runs(saddle):
    obj, cur = saddle
    runs = {}
    for seed in (0, 1, 2):
        config = TrainConfig(lr=0.1, noise=1.0, noise_steps=150, seed=seed, steps=400,
                             monitor_every=10)
        runs[seed] = train(obj, cur, optimizer_for(config), config)
    config = TrainConfig(lr=0.1, noise=1.0, noise_steps=150, seed=0, steps=400,
                         monitor_every=10)
    runs["again"] = train(obj, cur, optimizer_for(config), config)
    return runs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_gd_escapes_and_ends_at_a_minimum(noisy_runs, seed):
    run = noisy_runs[seed]
    kinds = [(e.kind, e.step) for e in run.events]
    assert kinds[0] == ("at_saddle", 0)
    escaped = [step for kind, step in kinds if kind == "escaped_saddle"]
    # y grows like 1.1^t from the noise: leaving takes tens of steps, not hundreds
    assert escaped and escaped[0] <= 100
    assert any(kind == "reached_minimum" for kind, _ in kinds)
    x = run.x
    assert abs(abs(x[1]) - 1.0) < 1e-8 and abs(x[0]) < 1e-7  # a minimum: (0, ±1)
    assert run.final.value == pytest.approx(-0.25, abs=1e-14)
    assert run.final.lambda_min == pytest.approx(1.0, abs=1e-7)  # H = diag(1, 2) there
    assert run.final.lambda_max == pytest.approx(2.0, abs=1e-7)


def test_same_seed_same_trajectory_other_seed_other(noisy_runs):
    a, b = noisy_runs[0], noisy_runs["again"]
    np.testing.assert_array_equal(a.x, b.x)
    assert [r.value for r in a.history] == [r.value for r in b.history]
    first = [r.value for r in noisy_runs[1].history][1]
    assert first != [r.value for r in a.history][1]


# --- divergence and instability ---------------------------------------------------------


def test_lr_above_two_over_lambda_max_is_unstable_and_diverges(hess):
    lr = 0.03  # λmax = 100: lr·λmax = 3 > 2
    res = hess("train", "ravine", "-p", "kappa=100", "-p", "rotate=false", "--lr", lr,
               "--steps", "200", "--monitor-every", "5", "--fail-on", "diverged",
               "--format", "json")
    assert res.exit_code == 1, res.output  # --fail-on diverged
    assert "error: --fail-on: diverged" in res.stderr
    doc = res.json()
    validate(doc)
    assert doc["history"][0]["lr_times_lambda_max"] == pytest.approx(3.0, rel=1e-12)
    # a quadratic: the step model is exact
    assert abs(doc["history"][0]["model_error"]) < 1e-9
    kinds = {e["kind"]: e for e in doc["events"]}
    assert kinds["unstable"]["step"] == 0
    div = kinds["diverged"]
    assert div["parameter"] == "x[1]" and div["reason"] == "exploding loss"
    # GD from (1, 1): f_t = ½(1 − lr)^{2t} + 50·(1 − 100 lr)^{2t}; the first t whose value
    # exceeds f₀ + EXPLODE·max(1, |f₀|) is where the run stops (that step is not taken)
    f0 = 50.5
    t = next(t for t in range(200) if 0.5 * (1 - lr) ** (2 * t) + 50 * 4.0**t
             > f0 + EXPLODE * f0)
    assert div["step"] == t and doc["steps"] == t and doc["diverged"] is True
    assert doc["history"][-1]["step"] == t


# --- minibatch SGD ----------------------------------------------------------------------


def test_minibatch_momentum_decreases_the_mlp_loss(hess):
    res = hess("train", "mlp", "-p", "width=4", "--optimizer", "momentum", "--lr", "0.05",
               "--batch-size", "32", "--epochs", "8", "--monitor-every", "32",
               "--no-curvature", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate(doc)
    assert doc["n"] == 49 * 4 + 16 and doc["batch_size"] == 32
    assert doc["steps"] == 8 * (256 // 32)
    assert doc["optimizer"] == {"name": "momentum", "lr": 0.05, "options": {}}
    values = [h["value"] for h in doc["history"]]
    assert values[-1] < 0.8 * values[0]
    assert all(h["mean_step_loss"] is not None for h in doc["history"][1:])


# --- logs, interruption, resume ---------------------------------------------------------


RUN = ("train", "saddle", "--at", "zeros", "--optimizer", "adam", "--lr", "0.05", "--noisy",
       "--seed", "3", "--steps", "60", "--monitor-every", "10", "--format", "json")


def test_interrupted_log_is_valid_and_resume_repeats_the_trajectory(hess, tmp_path,
                                                                   monkeypatch):
    full = hess(*RUN, "--out", tmp_path / "full.jsonl")
    assert full.exit_code == 0, full.output

    from hesscli.render import train_view

    original = train_view.TrainProgress.update

    def interrupt(self, p, label):
        original(self, p, label)
        if p.state.step >= 30:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_view.TrainProgress, "update", interrupt)
    log = tmp_path / "cut.jsonl"
    cut = hess(*RUN, "--out", log)
    assert cut.exit_code == 130, cut.output
    assert "interrupted at step 30" in cut.stderr and "--resume" in cut.stderr
    assert cut.stdout == ""
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # each line is JSON
    assert lines[0]["record"] == "header" and lines[-1] == {
        "record": "end", "reason": "interrupted", "step": 30}
    assert [x["step"] for x in lines if x["record"] == "step"] == [0, 10, 20, 30]
    monkeypatch.setattr(train_view.TrainProgress, "update", original)

    resumed = hess(*RUN, "--resume", log)
    assert resumed.exit_code == 0, resumed.output
    a, b = full.json(), resumed.json()
    assert b["final_point"] == a["final_point"]  # bit for bit
    strip = [{k: v for k, v in h.items() if k != "elapsed"} for h in a["history"]]
    assert [{k: v for k, v in h.items() if k != "elapsed"} for h in b["history"]] == strip
    assert b["events"] == a["events"]
    steps = [x["step"] for x in map(json.loads, log.read_text().splitlines())
             if x["record"] == "step"]
    assert steps == [0, 10, 20, 30, 40, 50, 60]

    other = hess(*[a if a != "3" else "4" for a in RUN], "--resume", log)
    assert other.exit_code == 2 and "seed" in other.stderr


# --- tensor decomposition ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_gd_recovers_the_tensor_components(tensor, seed):
    obj, cur = tensor
    config = TrainConfig(lr=0.05, noise=1.0, noise_steps=300, seed=seed, steps=600,
                         monitor_every=50)
    run = train(obj, cur, optimizer_for(config), config)
    assert run.events[0].kind == "at_saddle" and run.events[0].step == 0
    from hesscli.training.report import problem_report

    report = problem_report(obj, run.x)
    assert report["all_recovered"], report
    # alignment with a true component, derived independently of report()
    A = obj.file.module.components
    U = np.asarray(run.x).reshape(4, 4)
    U = U / np.linalg.norm(U, axis=1, keepdims=True)
    overlap = np.abs(A @ U.T)
    np.testing.assert_allclose(np.sort(overlap.max(axis=0)), 1.0, atol=1e-8)
    assert sorted(overlap.argmax(axis=0)) == [0, 1, 2, 3]
    assert run.final.value == pytest.approx(-4.0, abs=1e-10)  # f = −k at the minima


def test_plain_gd_stalls_on_the_tensor_saddle(tensor):
    from hesscli.documents.train import train_document
    from hesscli.training.report import RunSummary, final_analysis, problem_report

    obj, cur = tensor
    config = TrainConfig(lr=0.05, steps=50, monitor_every=25)
    run = train(obj, cur, optimizer_for(config), config)
    assert [(e.kind, e.step) for e in run.events] == [("at_saddle", 0)]
    assert run.final.value == pytest.approx(2.0, abs=1e-12)  # f = k − 2 at the saddle
    assert run.final.lambda_min == pytest.approx(-4.0, abs=1e-9)
    analysis = final_analysis(obj, cur, run.x, config.lr)
    assert analysis.classification == "saddle_point"
    report = problem_report(obj, run.x)
    assert report["all_recovered"] is False
    # every row is (a_1 + ... + a_4)/2: alignment 1/2 with every component
    np.testing.assert_allclose(report["alignment"], 0.5, atol=1e-12)
    doc = train_document(RunSummary("", "tensor", obj.n, obj.dtype, run, analysis, report, 50),
                         {"hesscli": "x", "jax": "x", "dtype": "float64", "seed": 0,
                          "options": {}})
    from hesscli.render.jsonout import jsonable

    validate(jsonable(doc))


# --- compare and plot -------------------------------------------------------------------


def test_compare_plain_and_noisy_side_by_side(hess, tmp_path):
    plot = tmp_path / "run.png"
    res = hess("train", "saddle", "--at", "zeros", "--compare", "plain,noisy", "--lr", "0.1",
               "--steps", "100", "--monitor-every", "10", "--plot", plot, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate(doc)
    plain, noisy = doc["variants"]
    assert (plain["name"], noisy["name"]) == ("plain", "noisy")
    assert plain["noise"] is None and noisy["noise"]["scale"] == 1.0
    assert plain["final_classification"] == "saddle_point"
    assert any(e["kind"] == "escaped_saddle" for e in noisy["events"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    table = hess("train", "saddle", "--at", "zeros", "--compare", "plain,noisy", "--lr", "0.1",
                 "--steps", "100", "--monitor-every", "10")
    assert table.exit_code == 0, table.output
    assert "Side by side" in table.stdout and "escaped_saddle" in table.stdout


# --- input errors -----------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (("--b1", "0.5"), "optimizer 'sgd' has no option 'b1'"),
    (("--optimizer", "adma"), "unknown optimizer 'adma' (did you mean"),
    (("--batch-size", "4"), "needs an objective file that defines data and loss"),
    (("--lr", "0"), "--lr must be a positive finite number"),
    (("--compare", "plain"), "at least two variants"),
    (("--save-point", "x.pkl"), "--save-point"),
])
def test_input_errors(hess, args, message):
    res = hess("train", "saddle", "--at", "zeros", *args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and res.stderr.startswith("error: ")


def test_out_logs_the_state_every_checkpoint_and_metrics_every_log(hess, tmp_path):
    args = ("train", "saddle", "--at", "0.1,0.1", "--steps", "60", "--monitor-every", "10",
            "--format", "json")
    log = tmp_path / "run.jsonl"
    res = hess(*args, "--out", log)
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["step"] for x in lines if x["record"] == "step"] == [0, 10, 20, 30, 40, 50, 60]
    assert [x["step"] for x in lines if x["record"] == "state"] == [60]  # the last only
    every = tmp_path / "every.jsonl"
    res = hess(*args, "--out", every, "--checkpoint-every", "20")
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in every.read_text().splitlines()]
    assert [x["step"] for x in lines if x["record"] == "state"] == [20, 40, 60]
    assert hess(*args, "--checkpoint-every", "20").exit_code == 2  # needs --out
