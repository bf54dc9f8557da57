"""The analyze command end to end: JSON contract, tables, errors and exit codes."""

import json
import subprocess
import sys

import jsonschema
import numpy as np
import pytest

from hesscli.schemas import load_schema

SCHEMA = load_schema("analyze")


@pytest.mark.parametrize(
    "args, kind",
    [
        (["rosenbrock", "--at", "1,1"], "local_minimum"),
        (["saddle", "--at", "zeros"], "saddle_point"),
        (["ravine", "--at", "random", "--seed", "0", "--lr", "0.05"], "not_critical"),
        (["svm"], "not_critical"),
        (["monkey"], "degenerate"),
        (["mlp", "-p", "width=3"], "not_critical"),
    ],
)
def test_json_document_validates(hess, args, kind):
    res = hess("analyze", *args, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # exactly one document, nothing else on stdout
    jsonschema.validate(doc, SCHEMA)
    assert doc["classification"] == kind
    assert doc["objective"] == args[0]
    assert doc["meta"]["seed"] == 0
    assert sum(doc["inertia"][k] for k in ("positive", "negative", "zero")) == doc["n"]


def test_json_nulls_for_undefined(hess):
    doc = hess("analyze", "monkey", "--format", "json").json()
    assert doc["condition_number"] is None
    assert "step" not in doc and "escape" not in doc  # zero gradient, no negative curvature


def test_table_says_verdict_in_words(hess):
    res = hess("analyze", "saddle", "--at", "zeros")
    assert res.exit_code == 0, res.output
    assert "Strict saddle point" in res.stdout
    assert "x[1]" in res.stdout
    assert res.stderr == ""


def test_table_warns_when_step_increases_loss(hess):
    res = hess("analyze", "ravine", "--at", "random", "--lr", "0.05")
    assert res.exit_code == 0, res.output
    assert "increases f by" in res.stdout
    assert "lower the learning rate" in res.stdout


def test_save_escape_roundtrip_pytree(hess, write, tmp_path):
    path = write("tree.py", """
import jax.numpy as jnp
def objective(p):
    return jnp.sum(p["a"] ** 2) - p["b"][0] ** 2 + p["b"][0] ** 4
x0 = {"a": jnp.zeros(2), "b": jnp.zeros(1)}
""")
    out = tmp_path / "escape.npz"
    res = hess("analyze", path, "--save-escape", out, "--format", "json")
    assert res.exit_code == 0, res.output
    with np.load(out) as z:
        assert sorted(z.files) == ["a", "b"]
        np.testing.assert_allclose(z["b"], [1.0])
        np.testing.assert_allclose(z["a"], [0.0, 0.0])
    # the saved direction is a valid POINT for the same objective: at a = 0, b = 1,
    # f = −1 + 1 = 0, ∇f = (0, 0, −2b + 4b³) = (0, 0, 2), H = diag(2, 2, −2 + 12b²) = diag(2, 2, 10)
    again = hess("analyze", path, "--at", out, "--format", "json")
    assert again.exit_code == 0, again.output
    doc = again.json()
    assert doc["value"] == pytest.approx(0.0, abs=1e-15)
    assert doc["gradient_norm"] == pytest.approx(2.0, rel=1e-14)
    np.testing.assert_allclose(doc["eigenvalues"], [2.0, 2.0, 10.0], rtol=1e-13)


def test_save_escape_without_negative_curvature_is_input_error(hess, tmp_path):
    res = hess("analyze", "rosenbrock", "--at", "1,1", "--save-escape", tmp_path / "e.npy")
    assert res.exit_code == 2
    assert "no escape direction" in res.stderr
    assert not (tmp_path / "e.npy").exists()


@pytest.mark.parametrize("suffix", [".npy", ".json", ".txt", ".csv"])
def test_point_formats(hess, tmp_path, suffix):
    path = tmp_path / f"p{suffix}"
    if suffix == ".npy":
        np.save(path, np.array([1.0, 1.0]))
    elif suffix == ".json":
        path.write_text("[1, 1.0]")
    elif suffix == ".txt":
        path.write_text("1.0\n1.0\n")
    else:
        path.write_text("1.0,1.0\n")
    res = hess("analyze", "rosenbrock", "--at", path, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["classification"] == "local_minimum"
    # read as (1, 1) in every format: f = 0 and H = [[802, −400], [−400, 200]] there
    assert doc["value"] == 0 and doc["gradient_norm"] == 0
    np.testing.assert_allclose(doc["eigenvalues"],
                               np.linalg.eigvalsh([[802.0, -400.0], [-400.0, 200.0]]),
                               rtol=1e-12)


def test_json_object_point_for_pytree(hess, write, tmp_path):
    path = write("tree2.py", """
import jax.numpy as jnp
def objective(p):
    return jnp.sum((p["w"] - 1.0) ** 2) + jnp.sum(p["head"]["b"] ** 2)
x0 = {"w": jnp.zeros((2, 2)), "head": {"b": jnp.zeros(1)}}
""")
    pt = tmp_path / "pt.json"
    pt.write_text(json.dumps({"w": [[1, 1], [1, 1]], "head": {"b": [0]}}))
    res = hess("analyze", path, "--at", pt, "--format", "json")
    assert res.exit_code == 0, res.output
    assert res.json()["classification"] == "local_minimum"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"w": [[1, 1]], "head": {"b": [0]}}))
    res = hess("analyze", path, "--at", bad)
    assert res.exit_code == 2
    assert "w has shape (1, 2), expected (2, 2)" in res.stderr


def test_function_name_selection(hess, write):
    path = write("two.py", """
import jax.numpy as jnp
def objective(x):
    return jnp.sum(x ** 2)
def other_fn(x):
    return -jnp.sum(x ** 2)
x0 = jnp.zeros(2)
""")
    assert hess("analyze", f"{path}:other_fn", "--format", "json").json()[
        "classification"] == "local_maximum"
    assert hess("analyze", path, "--format", "json").json()["classification"] == "local_minimum"


ERRORS = {
    "syntax": ("def objective(x) return 1\n", 3, "syntax error in"),
    "import_raises": ("raise RuntimeError('boom at import')\n", 3, "RuntimeError: boom at import"),
    "no_objective": ("def loss_fn(x):\n    return (x**2).sum()\n", 3,
                     "functions defined there: loss_fn"),
    "call_raises": ("def objective(x):\n    raise ValueError('bad params')\nx0 = [1.0]\n", 3,
                    "ValueError: bad params"),
    "not_scalar": ("def objective(x):\n    return x ** 2\nx0 = [1.0, 2.0]\n", 3,
                   "must return a scalar; got shape (2,)"),
    "int_output": ("import jax.numpy as jnp\ndef objective(x):\n    return jnp.int32(1)\n"
                   "x0 = [1.0]\n", 3, "floating-point scalar"),
    "nan_value": ("import jax.numpy as jnp\ndef objective(x):\n    return jnp.sum(jnp.log(x))\n"
                  "x0 = [-1.0]\n", 3, "value is not finite"),
    "nan_gradient": ("import jax.numpy as jnp\ndef objective(x):\n    return jnp.sum(jnp.sqrt(x))\n"
                     "x0 = [0.0, 1.0]\n", 3, "gradient has 1 non-finite entry at this point, "
                     "first at x[0]"),
    "nan_hessian": ("import jax.numpy as jnp\ndef objective(x):\n"
                    "    return jnp.sum(jnp.abs(x) ** 1.5)\nx0 = [0.0, 1.0]\n", 3,
                    "Hessian has 3 non-finite entries at this point, first at (x[0], x[0])"),
    "no_default_point": ("def objective(x):\n    return (x ** 2).sum()\n", 2, "no --at POINT"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_objective_errors(hess, write, case):
    source, code, message = ERRORS[case]
    path = write(f"{case}.py", source)
    res = hess("analyze", path)
    assert res.exit_code == code, res.output
    assert res.stderr.startswith("error: ")
    assert message in res.stderr
    assert res.stderr.count("\n") == 1  # one line, no traceback
    assert res.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["nofile.py"], "does not exist"),
        (["rosenbrok"], "did you mean 'rosenbrock'"),
        (["rosenbrock", "-p", "m=3"], "unknown parameter -p m"),
        (["rosenbrock", "-p", "n=abc"], "expected int"),
        (["rosenbrock", "-p", "n=1"], "n >= 2"),
        (["rosenbrock", "-p", "nokey"], "expected KEY=VALUE"),
        (["rosenbrock", "--at", "1,2,3"], "point has 3 entries; the objective expects 2"),
        (["rosenbrock", "--at", "1,nan"], "non-finite"),
        (["rosenbrock", "--at", "foo"], "not a point file"),
        (["rosenbrock", "--at", "missing.npy"], "does not exist"),
        (["rosenbrock", "--lr", "0"], "--lr must be a positive finite number"),
        (["rosenbrock", "--lr", "inf"], "--lr must be a positive finite number"),
        (["saddle", "--gtol", "-1"], "--gtol must be a finite number ≥ 0"),
        (["saddle", "--tol", "nan"], "--tol must be a finite number ≥ 0"),
        (["saddle", "--at", "random", "--seed", "-1"], "Invalid value for '--seed'"),
        (["rosenbrock", "--format", "xml"], "Invalid value"),
    ],
)
def test_input_errors(hess, args, message):
    res = hess("analyze", *args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_point_files_refused(hess, tmp_path):
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_text("garbage")
    nonfinite = tmp_path / "nan.npy"
    np.save(nonfinite, np.array([1.0, np.inf]))
    truncated = tmp_path / "trunc.npz"
    truncated.write_bytes(b"PK\x03\x04 not really")
    for path, message in [(pickled, "pickled"), (corrupt, "not a .npy file"),
                          (nonfinite, "non-finite"), (truncated, "cannot read point file")]:
        res = hess("analyze", "rosenbrock", "--at", path)
        assert res.exit_code == 2, res.output
        assert message in res.stderr


def test_method_exact_on_numpy_objective_is_input_error(hess, write):
    path = write("np_obj.py", """
import numpy as np
def objective(x):
    return float(np.sum(np.asarray(x) ** 2))
x0 = np.zeros(2)
""")
    res = hess("analyze", path, "--method", "exact")
    assert res.exit_code == 2, res.output
    assert "cannot be differentiated by JAX" in res.stderr


def test_debug_shows_traceback(hess, write):
    """--debug shows the traceback (with the ObjectiveError in it) and keeps exit code 3."""
    path = write("boom.py", "def objective(x):\n    raise ValueError('boom')\nx0 = [1.0]\n")
    res = hess("--debug", "analyze", path)
    assert res.exit_code == 3, res.output
    assert "Traceback" in res.stderr and "ObjectiveError" in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: boom.py:objective raised")


def test_problems_listing(hess):
    res = hess("problems", "--format", "json")
    assert res.exit_code == 0, res.output
    names = {p["name"] for p in res.json()["problems"]}
    assert {"svm", "saddle", "ravine", "rosenbrock", "monkey", "mlp"} <= names
    ros = next(p for p in res.json()["problems"] if p["name"] == "rosenbrock")
    assert {"name": "n", "default": 2, "description": "number of variables (at least 2)"} in ros[
        "parameters"]
    table = hess("problems")
    assert "rosenbrock" in table.stdout


def test_help_does_not_import_jax():
    code = ("import sys; from hesscli.cli import cli\n"
            "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit: pass\n"
            "try:\n    cli.main(['analyze', '--help'], standalone_mode=False)\n"
            "except SystemExit: pass\n"
            "print('JAX_IMPORTED' if 'jax' in sys.modules else 'NO_JAX')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("NO_JAX")


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "hesscli", "--version"], capture_output=True,
                         text=True, check=True)
    assert "hesscli" in out.stdout


def test_every_command_has_help(hess):
    from hesscli.cli import COMMANDS

    for name in COMMANDS:
        res = hess(name, "--help")
        assert res.exit_code == 0, res.output
        assert "Usage:" in res.stdout


def test_user_prints_never_reach_json_stdout(hess, write):
    path = write("chatty.py", """
import jax.numpy as jnp
print("hello from import")
def objective(x):
    print("hello from call")
    return jnp.sum(x ** 2)
x0 = jnp.ones(2)
""")
    res = hess("analyze", path, "--format", "json")
    assert res.exit_code == 0, res.output
    assert res.json()["classification"] == "not_critical"  # stdout is exactly the document
    assert "hello from import" in res.stderr


def test_sys_exit_in_objective_is_an_objective_error(hess, write):
    path = write("exits.py", "import sys\ndef objective(x):\n    sys.exit(5)\nx0 = [1.0]\n")
    res = hess("analyze", path)
    assert res.exit_code == 3, res.output
    assert "SystemExit" in res.stderr


def test_empty_point_is_input_error(hess, write):
    path = write("empty.py", "import jax.numpy as jnp\ndef objective(x):\n"
                 "    return jnp.sum(x)\nx0 = jnp.zeros(0)\n")
    res = hess("analyze", path)
    assert res.exit_code == 2, res.output
    assert "no parameters" in res.stderr


def test_saved_json_pytree_with_tuples_reads_back(hess, write, tmp_path):
    path = write("tup.py", """
import jax.numpy as jnp
def objective(p):
    s, v = p["t"]
    return s ** 2 - v[0] ** 2 + v[0] ** 4 + jnp.sum(v[1:] ** 2)
x0 = {"t": (jnp.asarray(0.0), jnp.zeros(3))}
""")
    out = tmp_path / "esc.json"
    res = hess("analyze", path, "--save-escape", out)
    assert res.exit_code == 0, res.output
    # H at 0 = diag(2, −2, 2, 2) in the order (s, v[0], v[1], v[2]): the escape direction is
    # ±e of v[0], saved in the tuple's structure {"t": [s, [v0, v1, v2]]}
    saved = json.loads(out.read_text())
    s, v = saved["t"]
    np.testing.assert_allclose(np.abs([s, *v]), [0.0, 1.0, 0.0, 0.0], atol=1e-12)
    again = hess("analyze", path, "--at", out, "--format", "json")
    assert again.exit_code == 0, again.output
    # at v0 = ±1: f = −1 + 1 = 0, ∂f/∂v0 = −2v0 + 4v0³ = ±2, ∂²f/∂v0² = −2 + 12 = 10
    doc = again.json()
    assert doc["value"] == pytest.approx(0.0, abs=1e-14)
    assert doc["gradient_norm"] == pytest.approx(2.0, rel=1e-12)
    np.testing.assert_allclose(doc["eigenvalues"], [2.0, 2.0, 2.0, 10.0], rtol=1e-12)
