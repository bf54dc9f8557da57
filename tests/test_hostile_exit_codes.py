"""Hostile inputs that used to end in exit 4 (a traceback's worth of internal error), the
wrong exit code or a silent run (issue 21): each class ends with its documented code and
exactly one ``error:`` line, or with the report a user expects.

Also: every public API function checks its arguments by the commands' rules (one table,
``hesscli/api_args.py``, checked here against the Click options), and a hypothesis test
damages a real resume log's state: the run either resumes or says what is wrong (exit 2).
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import math
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.helpers import one_error

PYTREE = """
import jax, jax.numpy as jnp
def objective(p):
    return 0.5 * jnp.sum(p["a"]["b"] ** 2) + jnp.sum(p["c"] ** 2)
x0 = {"a": {"b": jnp.ones(2)}, "c": jnp.ones(3)}
"""
QUADRATIC = """
import jax.numpy as jnp
def objective(x):
    return 0.5 * jnp.sum(jnp.arange(1.0, x.size + 1) * x ** 2) - x[0]
x0 = jnp.array([0.5, -1.0, 2.0])
"""


@pytest.fixture
def pytree(tmp_path):
    path = tmp_path / "tree.py"
    path.write_text(PYTREE)
    return path


@pytest.fixture
def quadratic(tmp_path):
    path = tmp_path / "quad.py"
    path.write_text(QUADRATIC)
    return path


# --- point files: exit 2, never 4 -------------------------------------------------------


def _npz(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in members.items():
            if isinstance(value, np.ndarray):
                buf = io.BytesIO()
                np.save(buf, value)
                value = buf.getvalue()
            archive.writestr(name, value)
    return path


def _safetensors(path, tensors):
    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    save_file(tensors, str(path))
    return path


POINTS = {
    "npz key ''": (lambda d: _npz(d / "p.npz", {".npy": np.ones(2), "c.npy": np.ones(3)}),
                   "names no parameter"),
    "npz key '.'": (lambda d: _npz(d / "p.npz", {"..npy": np.ones(2), "c.npy": np.ones(3)}),
                    "names no parameter"),
    "safetensors key ''": (lambda d: _safetensors(d / "p.safetensors",
                                                  {"": np.ones(2), "c": np.ones(3)}),
                           "names no parameter"),
    "npz member not .npy": (lambda d: _npz(d / "p.npz", {"a.txt": b"hello",
                                                         "c.npy": np.ones(3)}),
                            "is not a .npy array"),
    "400-digit integer": (lambda d: _text(d / "p.json", '{"a": {"b": [' + "9" * 400 +
                                          ', 1]}, "c": [1, 2, 3]}'), "too large for float64"),
    "colliding keys": (lambda d: _text(d / "p.json", '{"a.b": [1, 2], "a": {"b": [3, 4]}, '
                                       '"c": [1, 2, 3]}'), "names 'a.b' twice"),
}


def _text(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(POINTS))
def test_malformed_point_files_are_input_errors(hess, pytree, tmp_path, case):
    build, text = POINTS[case]
    one_error(hess("analyze", pytree, "--at", build(tmp_path)), 2, text)


def test_orbax_manager_with_an_empty_newest_step(hess, pytree, tmp_path):
    pytest.importorskip("orbax.checkpoint")
    (tmp_path / "mgr" / "1" / "default").mkdir(parents=True)
    (tmp_path / "mgr" / "2").mkdir()
    line = one_error(hess("analyze", pytree, "--at", tmp_path / "mgr"), 2,
                     "newest step folder 2 holds no checkpoint")
    assert "mgr/1/default" in line  # the step before it, as a usable --at


def test_a_literal_too_long_to_be_a_file_name_is_read_as_the_literal(hess, tmp_path):
    n = 300  # "0.5," * 300 is 1200 characters: longer than any file name (errno 36)
    objective = tmp_path / "long.py"
    objective.write_text("import jax.numpy as jnp\ndef objective(x):\n"
                         "    return jnp.sum((x - 0.5) ** 2)\n")
    res = hess("analyze", objective, "--at", ",".join(["0.5"] * n), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["n"] == n and doc["gradient_norm"] == 0.0  # x = 0.5 is the minimum
    words = "x" * 300
    one_error(hess("analyze", objective, "--at", words), 2, "cannot be a file")


def test_blocks_skip_a_zero_size_leaf(hess, tmp_path):
    path = tmp_path / "empty_leaf.py"
    path.write_text("import jax.numpy as jnp\ndef objective(p):\n"
                    "    return jnp.sum(jnp.arange(1.0, 3.0) * p['a'] ** 2) + jnp.sum(p['e'])\n"
                    "x0 = {'a': jnp.ones(2), 'e': jnp.zeros((0,))}\n")
    res = hess("analyze", path, "--blocks", "--format", "json")
    assert res.exit_code == 0, res.output
    blocks = res.json()["blocks"]["blocks"]
    assert [b["name"] for b in blocks] == ["a"]
    # H = diag(2, 4) (f = x₀² + 2x₁²): the block is the whole Hessian
    assert math.isclose(blocks[0]["lambda_max"], 4.0, rel_tol=1e-12)


def test_an_escape_step_that_overflows_is_refused(hess):
    one_error(hess("analyze", "saddle", "--escape-step", "1e300"), 2, "overflows float64")
    res = hess("analyze", "saddle", "--escape-step", "1e100", "--format", "json")
    assert res.exit_code == 0, res.output  # large but representable: reported as it is
    # along e_y the model ½λt² with λ = −1 is −5e199; f's own change ¼t⁴ − ½t² overflows
    escape = res.json()["escape"]
    assert escape["distance"] == 1e100 and escape["eigenvalue"] == -1.0
    assert escape["predicted_change"] == pytest.approx(-0.5e200, rel=1e-15)
    np.testing.assert_allclose(np.abs(escape["direction"]), [0.0, 1.0], atol=1e-15)


# --- streams: closed, full, ASCII-only ---------------------------------------------------


def _run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=None, close=()):
    """``hesscli ARGS`` in a child process; ``close``: file descriptors closed in it."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    full_env.update(env or {})
    command = [sys.executable, "-m", "hesscli", *map(str, args)]
    if close:  # the shell closes them, then becomes hesscli
        closing = " ".join(f"{fd}>&-" for fd in close)
        command = ["sh", "-c", f'exec "$@" {closing}', "sh", *command]
    return subprocess.run(command, stdout=stdout, stderr=stderr, env=full_env, timeout=300)


def _error_lines(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode().splitlines() if line.strip()]


def test_closed_stdout_is_refused_up_front():
    res = _run(["analyze", "saddle"], stdout=None, close=(1,))
    assert res.returncode == 2
    lines = _error_lines(res.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: standard output is closed")


def test_full_stdout_is_exit_2():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        res = _run(["analyze", "saddle", "--format", "json"], stdout=full)
    assert res.returncode == 2
    lines = _error_lines(res.stderr)
    assert len(lines) == 1 and "No space left on device" in lines[0], lines


@pytest.mark.parametrize("target", ["closed", "full"])
def test_an_input_error_keeps_its_code_when_stderr_cannot_take_the_line(target):
    if target == "full":
        if not os.path.exists("/dev/full"):
            pytest.skip("no /dev/full")
        with open("/dev/full", "w") as full:
            res = _run(["analyze", "no_such_file.py"], stderr=full)
    else:
        res = _run(["analyze", "no_such_file.py"], stderr=None, close=(2,))
    assert res.returncode == 2
    assert res.stdout == b""  # the error went nowhere else: stdout carries no report


def test_tables_on_an_ascii_stream_are_spelled_in_ascii():
    res = _run(["analyze", "saddle"], env={"PYTHONIOENCODING": "ascii"})
    assert res.returncode == 0, res.stderr.decode()
    text = res.stdout.decode("ascii")  # every byte ASCII
    assert "lambda_min = -1" in text and "|lambda| <=" in text
    assert "Traceback" not in res.stderr.decode()


# --- train --resume from damaged logs ----------------------------------------------------

RESUME_ARGS = ("--optimizer", "momentum", "--momentum", "0.9", "--noisy", "--steps", "12",
               "--monitor-every", "2", "--format", "json")


@pytest.fixture(scope="module")
def resume_log(tmp_path_factory):
    """A real log of 12 steps with states every 4 (momentum and noise: three opt_state
    leaves, a PRNG key among them), and the objective it came from."""
    from tests.conftest import run_cli

    folder = tmp_path_factory.mktemp("resume")
    objective = folder / "quad.py"
    objective.write_text(QUADRATIC)
    log = folder / "run.jsonl"
    res = run_cli("train", objective, *RESUME_ARGS, "--out", log, "--checkpoint-every", "4")
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    states = [i for i, line in enumerate(lines) if line["record"] == "state"]
    # resume from the state at step 8: the first 8 steps and their records
    return objective, lines[: states[1] + 1], res.json()


def _write_log(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


DAMAGE = {
    "null config": (0, lambda h: h.update(config=None), "config must be an object"),
    "short x": (-1, lambda s: s.update(x=s["x"][:2]), "x has 2 entries"),
    "object x dtype": (-1, lambda s: s.update(x_dtype="object"), "x_dtype must be"),
    "complex x dtype": (-1, lambda s: s.update(x_dtype="complex128"), "x_dtype must be"),
    "opt_state missing": (-1, lambda s: s.pop("opt_state"), "'opt_state' is missing"),
    "opt_state of numbers": (-1, lambda s: s.update(opt_state=[1, 2, 3]),
                             "expected an object"),
    "opt_state short data": (-1, lambda s: s["opt_state"][-1].update(data=[1.0]),
                             "1 values for shape"),
    "opt_state object dtype": (-1, lambda s: s["opt_state"][-1].update(dtype="object"),
                               "not a numeric dtype"),
    "string step": (-1, lambda s: s.update(step="eight"), "step must be a whole number"),
    "string in x": (-1, lambda s: s["x"].__setitem__(0, "one"), "is not a finite number"),
    "NaN in x": (-1, lambda s: s["x"].__setitem__(0, float("nan")), "is not a finite number"),
    "NaN in opt_state": (-1, lambda s: s["opt_state"][-1]["data"].__setitem__(0, float("nan")),
                         "must be finite numbers"),
    "step -5": (-1, lambda s: s.update(step=-5), "step must be a whole number"),
    "step 1.5": (-1, lambda s: s.update(step=1.5), "step must be a whole number"),
    "step 10**9": (-1, lambda s: s.update(step=10**9), "cannot follow the logged history"),
    "start value null": (-1, lambda s: s.update(start_value=None), "start_value must be"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_resume_from_a_damaged_log_is_an_input_error(hess, resume_log, tmp_path, case):
    objective, lines, _ = resume_log
    index, damage, text = DAMAGE[case]
    lines = json.loads(json.dumps(lines))
    damage(lines[index])
    log = _write_log(tmp_path / "damaged.jsonl", lines)
    one_error(hess("train", objective, *RESUME_ARGS, "--resume", log), 2, text)


def test_resume_of_the_undamaged_log_repeats_the_run(hess, resume_log, tmp_path):
    """The control for the damage tests (and for the hypothesis test): the same cut log,
    resumed, ends exactly where the uninterrupted run ended."""
    objective, lines, whole = resume_log
    log = _write_log(tmp_path / "cut.jsonl", lines)
    res = hess("train", objective, *RESUME_ARGS, "--resume", log, "--checkpoint-every", "2")
    assert res.exit_code == 0, res.output
    assert res.json()["final_point"] == whole["final_point"]
    states = [json.loads(line)["step"] for line in log.read_text().splitlines()
              if json.loads(line)["record"] == "state"]
    assert states == [4, 8, 10, 12]  # --checkpoint-every works with --resume, without --out


def test_resume_damage_property(hess, resume_log, tmp_path):
    """Any damage to the state: the run resumes (and stays finite) or exits 2 in one line;
    never exit 4, a traceback, or a run continuing from NaN."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    objective, lines, _ = resume_log
    values = st.one_of(
        st.none(), st.booleans(), st.integers(-10**12, 10**12),
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
    fields = st.sampled_from(["step", "start_value", "x", "x_dtype", "opt_state", "record",
                              "x[0]", "opt_state[0]", "opt_state[-1].data",
                              "opt_state[-1].shape", "opt_state[-1].dtype", "opt_state[1].data"])
    folder = tmp_path

    @settings(max_examples=20, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(field=fields, value=values, delete=st.booleans())
    def damaged(field, value, delete):
        log_lines = json.loads(json.dumps(lines))
        state = log_lines[-1]
        if field == "x[0]":
            state["x"][0] = value
        elif field.startswith("opt_state["):
            index = int(field[len("opt_state["):field.index("]")])
            key = field.split(".", 1)[1] if "." in field else None
            if key is None:
                state["opt_state"][index] = value
            elif delete:
                state["opt_state"][index].pop(key)
            else:
                state["opt_state"][index][key] = value
        elif delete:
            state.pop(field)
        else:
            state[field] = value
        path = folder / "hyp.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in log_lines))
        res = hess("train", objective, *RESUME_ARGS, "--resume", path)
        if res.exit_code == 0:
            doc = res.json()
            assert doc["final_value"] is not None and math.isfinite(doc["final_value"])
        else:
            one_error(res, 2)

    assert hypothesis is not None
    damaged()


# --- other wrong codes -------------------------------------------------------------------


def test_unreachable_jax_platform_is_named_not_blamed_on_the_objective():
    res = _run(["analyze", "rosenbrock"], env={"JAX_PLATFORMS": "cuda"})
    assert res.returncode == 2, res.stderr.decode()
    lines = _error_lines(res.stderr)
    assert len(lines) == 1 and "JAX_PLATFORMS" in lines[0], lines
    assert "rosenbrock.py" not in lines[0]


def test_unknown_xla_flag_is_one_line_exit_2():
    res = _run(["analyze", "rosenbrock"], env={"XLA_FLAGS": "--xla_no_such_flag=1"})
    assert res.returncode == 2, res.stderr.decode()
    lines = _error_lines(res.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: XLA_FLAGS"), lines
    assert "--xla_no_such_flag" in lines[0]


# --- the Python API checks its arguments -------------------------------------------------

API_FUNCTIONS = ["load", "analyze", "spectrum", "gradcheck", "convexity", "landscape",
                 "train", "check"]


def _objective(x):
    import jax.numpy as jnp

    return jnp.sum(x ** 2)


BAD_VALUES = {
    "k": [2.5, "3", 0, None, True], "lr": [None, -1.0, float("nan"), "0.1"],
    "seed": [1.5, -1, "0"], "blocks": [0, -2, 1.5], "dtype": ["int32", "float16", np.int64],
    "monitor_every": [-1, 0, 2.5], "method": ["magic", 1], "max_steps": [0, 1.5],
    "noise": [-1.0, float("inf")], "steps": [0, 2.5, "10"], "top": [0, 0.5],
    "samples": [-1, "10"], "points": [2, 2.5], "radius": [-1.0, 0.0],
    "probes": [0], "trace_probes": [1], "bins": [1, 41], "devices": [0, "some"],
    "ends": ["left"], "eigensolver": ["lapack"], "estimator": ["exact"],
    "verify": ["yes"], "escape_step": [0.0, float("inf")], "rtol": [-1.0],
    "gtol": [-1.0], "tol": [float("nan")], "options": [[("momentum", 0.9)]],
    "optimizer": [None, 3], "boxes": [[(0.0,)], [("a", "b")]], "spec": [3],
}


# where None is a value: analyze's lr (not given: 0.01 for the step, no Adam threshold for a
# saved --preconditioner state, tests/test_preconditioner_state.py)
NONE_ALLOWED = {("analyze", "lr")}


def _bad_calls():
    import hesscli.api as api

    calls = []
    for name in API_FUNCTIONS:
        params = inspect.signature(getattr(api, name)).parameters
        for arg, values in BAD_VALUES.items():
            if arg in params:
                calls.extend((name, arg, value) for value in values
                             if not (value is None and (name, arg) in NONE_ALLOWED))
    return calls


@pytest.mark.parametrize("function,arg,value", _bad_calls(),
                         ids=lambda v: repr(v)[:20])
def test_every_api_function_refuses_bad_arguments_as_input_errors(function, arg, value):
    import hesscli
    from hesscli.errors import InputError

    fn = getattr(hesscli, function)
    args = ({"spec": {"checks": []}} if function == "check" else
            {"objective": _objective} | ({} if function == "convexity" else
                                          {"at": np.ones(2)}))
    args[arg] = value
    with pytest.raises(InputError) as info:
        fn(**args)
    flag = "--" + arg.replace("_", "-") if arg not in ("boxes", "spec") else ""
    assert flag in str(info.value)


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_unknown_api_keywords_are_input_errors_with_a_suggestion(function):
    import hesscli
    from hesscli.errors import InputError

    with pytest.raises(InputError, match="takes no option 'sed'.*did you mean 'seed'|"
                       "takes no option 'sed'"):
        getattr(hesscli, function)(_objective, sed=1)


def test_api_values_are_normalized(quadratic):
    import pathlib

    import hesscli

    res = hesscli.analyze(pathlib.Path(quadratic), dtype=np.float32)
    doc = res.to_json()
    json.dumps(doc)  # no class objects in the document
    assert doc["meta"]["dtype"] == "float32" and doc["objective"] == str(quadratic)
    spec = hesscli.spectrum(pathlib.Path(quadratic))
    # f = ½ Σ i·xᵢ²: H = diag(1, 2, 3)
    np.testing.assert_allclose(spec.eigenvalues, [1.0, 2.0, 3.0], rtol=1e-12)
    assert spec.lambda_min == pytest.approx(1.0) and spec.lambda_max == pytest.approx(3.0)


def test_train_takes_the_commands_optimizer_options(quadratic):
    import hesscli

    a = hesscli.train(str(quadratic), optimizer="momentum", momentum=0.5, steps=5, lr=0.1,
                      curvature_on=False)
    b = hesscli.train(str(quadratic), optimizer="momentum", options={"momentum": 0.5},
                      steps=5, lr=0.1, curvature_on=False)
    np.testing.assert_array_equal(a.to_json()["final_point"], b.to_json()["final_point"])
    # heavy-ball on f = ½ Σ i·xᵢ² − x₀ from x0, by hand: v ← μv + g, x ← x − lr·v
    x = np.array([0.5, -1.0, 2.0])
    v = np.zeros(3)
    for _ in range(5):
        v = 0.5 * v + (np.arange(1.0, 4.0) * x - np.array([1.0, 0.0, 0.0]))
        x = x - 0.1 * v
    np.testing.assert_allclose(a.to_json()["final_point"], x, rtol=1e-12)


def test_the_rule_table_agrees_with_the_commands_click_options():
    """One set of rules: where a command's Click option declares bounds or choices, the
    API's rule for the same argument has the same ones."""
    import click

    from hesscli.api_args import rule_for
    from hesscli.cli import COMMANDS

    compared = 0
    for command in ("analyze", "spectrum", "gradcheck", "convexity", "landscape", "train"):
        cmd = importlib.import_module(COMMANDS[command][0]).command
        for param in cmd.params:
            rule = rule_for(command, param.name)
            if rule is None or not isinstance(param, click.Option):
                continue
            kind = getattr(rule, "kind", None)
            if isinstance(param.type, click.IntRange):
                assert kind == "int", (command, param.name)
                assert rule.bounds == (param.type.min, param.type.max), (command, param.name)
                compared += 1
            elif isinstance(param.type, click.Choice):
                assert tuple(rule.choices) == tuple(param.type.choices), (command, param.name)
                compared += 1
            elif param.type is click.INT:
                assert kind == "int", (command, param.name)
                compared += 1
            elif param.type is click.FLOAT:
                assert kind == "float", (command, param.name)
                compared += 1
    assert compared >= 30


# --- clearer messages ---------------------------------------------------------------------


def test_divergence_advice_uses_the_curvature_before_the_blow_up(hess, tmp_path):
    """f = x⁴/4 + x²/2 from x = 1.1: f'' = 3x² + 1 = 4.63 there, so lr = 1 is unstable
    (x ← −x³ grows) and lr < 2/4.63 would have been stable; the blown-up points' curvature
    is far larger."""
    path = tmp_path / "quartic.py"
    path.write_text("import jax.numpy as jnp\ndef objective(x):\n"
                    "    return jnp.sum(0.25 * x ** 4 + 0.5 * x ** 2)\nx0 = jnp.array([1.1])\n")
    res = hess("train", path, "--lr", "1", "--steps", "30", "--monitor-every", "1",
               "--format", "json")
    assert res.exit_code == 0, res.output
    unstable = [e for e in res.json()["events"] if e["kind"] == "unstable"]
    assert unstable, res.json()["events"]
    curvature = 3 * 1.1 ** 2 + 1
    assert f"stable below lr = {2 / curvature:.4g}," in unstable[0]["message"]
    assert unstable[0]["lambda_max_at_start"] == pytest.approx(curvature, rel=1e-12)


def test_fisher_with_an_infinite_target_is_a_non_finite_loss(hess, tmp_path):
    path = tmp_path / "inf_target.py"
    path.write_text("import jax.numpy as jnp\nX = jnp.array([[1.0, 2.0], [0.5, -1.0]])\n"
                    "data = (X, jnp.array([1.0, jnp.inf]))\n"
                    "def model(w, x):\n    return x @ w\n"
                    "def output_loss(out, y):\n    return 0.5 * jnp.mean((out - y) ** 2)\n"
                    "x0 = jnp.array([0.1, 0.2])\n")
    one_error(hess("analyze", path, "--curvature", "fisher"), 3, "value is not finite")


def test_a_failed_partial_count_says_it_is_partial(hess, tmp_path, monkeypatch):
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "1MiB")  # n = 1000 goes matrix-free
    spec = tmp_path / "checks.yaml"
    spec.write_text("checks:\n  - name: partial\n    objective: saddle\n    params: {n: 1000}\n"
                    "    expect:\n      inertia.negative: 1\n")
    line = one_error(hess("check", spec, "--format", "json"), 1,
                     "inertia.negative expected 1, measured 1")
    assert "partial: inertia.complete is false" in line


def test_analyze_save_point_round_trips(hess, quadratic, tmp_path):
    out = tmp_path / "p.npz"
    res = hess("analyze", quadratic, "--at", "random", "--seed", "3", "--save-point", out,
               "--format", "json")
    assert res.exit_code == 0, res.output
    x = np.load(out)["x"]
    # f = ½ Σ i·xᵢ² − x₀, by hand
    assert res.json()["value"] == pytest.approx(0.5 * np.sum(np.arange(1, 4) * x ** 2) - x[0],
                                                rel=1e-14)
    again = hess("analyze", quadratic, "--at", out, "--format", "json")
    assert again.json()["value"] == res.json()["value"]


def test_float8_safetensors_are_read_and_upcast(hess, pytree, tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    path = _safetensors(tmp_path / "p.safetensors", {
        "a.b": np.array([1.5, -2.0], dtype=ml_dtypes.float8_e4m3fn),
        "c": np.array([0.5, 0.25, 1.0], dtype=ml_dtypes.float8_e4m3fn)})
    res = hess("analyze", pytree, "--at", path, "--format", "json")
    assert res.exit_code == 0, res.output
    # f = ½‖a.b‖² + ‖c‖² at values exact in float8
    assert res.json()["value"] == 0.5 * (1.5 ** 2 + 2.0 ** 2) + (0.25 + 0.0625 + 1.0)
    assert any("float8_e4m3fn" in note for note in res.json()["notes"])


def test_unreadable_checkpoints_say_why(hess, pytree, tmp_path):
    pytest.importorskip("flax")
    import struct

    deep = tmp_path / "deep.msgpack"  # 3000 nested one-key maps around a float
    deep.write_bytes(b"\x81\xa1k" * 3000 + b"\xcb" + struct.pack(">d", 1.0))
    one_error(hess("analyze", pytree, "--at", deep), 2, "nested deeper than msgpack reads")
    eqx = pytest.importorskip("equinox")
    import jax.numpy as jnp

    good = tmp_path / "good.eqx"
    eqx.tree_serialise_leaves(str(good), {"a": {"b": jnp.ones(2)}, "c": jnp.ones(3)})
    cut = tmp_path / "cut.eqx"
    cut.write_bytes(good.read_bytes()[:-10])
    one_error(hess("analyze", pytree, "--at", cut), 2, "at leaf c: the file ends early")


@pytest.mark.parametrize("outputs_first", [False, True])
def test_a_dead_unit_is_named_in_either_weight_layout(hess, tmp_path, outputs_first):
    """A ReLU unit with bias −100 is dead on the data: its incoming weights (3) and bias
    (1) and the next layer's weights reading it (2) vanish, 6 null directions, all one
    dead unit of l1, whether weights are (in, out) (Flax: x @ w) or (out, in) (Equinox,
    PyTorch: w @ x)."""
    t = ".T" if outputs_first else ""
    path = tmp_path / "dead.py"
    path.write_text(f"""
import jax, jax.numpy as jnp
import numpy as np
rng = np.random.default_rng(0)
X = jnp.asarray(rng.standard_normal((20, 3)))
Y = jnp.asarray(rng.standard_normal((20, 2)))
def objective(p):
    h = jax.nn.relu(X @ p["l1"]["weight"]{t} + p["l1"]["bias"])
    return 0.5 * jnp.mean((h @ p["l2"]["weight"]{t} + p["l2"]["bias"] - Y) ** 2)
w1, w2 = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
b1 = np.zeros(4)
b1[2] = -100.0
x0 = {{"l1": {{"weight": jnp.asarray(w1{t}), "bias": jnp.asarray(b1)}},
      "l2": {{"weight": jnp.asarray(w2{t}), "bias": jnp.zeros(2)}}}}
""")
    res = hess("analyze", path, "--null-space", "--format", "json")
    assert res.exit_code == 0, res.output
    sources = res.json()["null_space"]["sources"]
    dead = [s for s in sources if s["kind"] == "dead_unit"]
    assert len(dead) == 1 and dead[0]["where"] == "l1", sources
    assert dead[0]["dimension"] == 6 and dead[0]["indices"] == [2], sources
    assert not [s for s in sources if s["kind"] == "unused_input"], sources
