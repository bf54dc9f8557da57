"""The Python API (:mod:`hesscli.api`), used the way a notebook would use it.

A plain function of a pytree, no files: the verdicts are checked against
Hessians derived by hand. The same built-in problem through the API and through
the CLI gives the same JSON document (``meta.argv`` aside), and ``import
hesscli`` loads neither JAX nor click nor Rich.
"""

from __future__ import annotations

import subprocess
import sys

import jax.numpy as jnp
import jsonschema
import numpy as np
import pytest

import hesscli
from hesscli.errors import InputError
from hesscli.schemas import load_schema

# f(p) = ½ xᵀAx + bᵀx over x = (p["a"], p["b"].ravel()) in the pytree's flat order
# (dict keys sorted: "a" then "b"); the Hessian is A, the minimum x* = −A⁻¹b.
A = np.array([[4.0, 1.0, 0.0, 0.0, 0.0],
              [1.0, 3.0, 0.0, 0.0, 0.0],
              [0.0, 0.0, 2.0, 0.5, 0.0],
              [0.0, 0.0, 0.5, 2.0, 0.0],
              [0.0, 0.0, 0.0, 0.0, 1.0]])
B = np.array([1.0, -2.0, 0.5, 0.0, 3.0])


def quadratic(p):
    x = jnp.concatenate([p["a"], p["b"].ravel()])
    return 0.5 * x @ jnp.asarray(A) @ x + jnp.asarray(B) @ x


def tree(x):
    return {"a": jnp.asarray(x[:2]), "b": jnp.asarray(x[2:]).reshape(3, 1)}


def saddle_fn(p):
    """x² − y² + z²/2 on a tuple pytree: Hessian diag(2, −2, 1), critical at 0."""
    xy, z = p
    return xy[0] ** 2 - xy[1] ** 2 + 0.5 * z**2


def test_import_is_light_and_the_api_never_loads_click_or_rich():
    code = (
        "import sys\n"
        "import hesscli\n"
        "heavy = [m for m in ('jax', 'click', 'rich') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "fn = hesscli.analyze\n"  # resolving the name imports hesscli.api, still no JAX
        "assert 'jax' not in sys.modules\n"
        "import numpy as np\n"
        "res = hesscli.analyze(lambda x: (x ** 2).sum(), np.ones(3))\n"
        "assert 'jax' in sys.modules\n"
        "ui = [m for m in ('click', 'rich') if m in sys.modules]\n"
        "assert not ui, ui\n"
        "print(res.classification)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={"JAX_PLATFORMS": "cpu", "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "not_critical"


def test_a_plain_function_of_a_pytree_at_its_minimum():
    x_star = -np.linalg.solve(A, B)
    res = hesscli.analyze(quadratic, tree(x_star))
    assert res.command == "analyze" and res.n == 5
    assert res.method == "exact" and res.spectrum.path == "dense"
    np.testing.assert_allclose(res.spectrum.eigenvalues, np.linalg.eigvalsh(A), rtol=1e-12)
    assert res.classification == "local_minimum"
    assert res.definiteness == "positive_definite"
    w = np.linalg.eigvalsh(A)
    assert res.condition_number == pytest.approx(w[-1] / w[0], rel=1e-12)
    doc = res.to_json()
    jsonschema.validate(doc, load_schema("analyze"))
    assert doc["objective"] == "quadratic"
    assert doc["lambda_min"] == pytest.approx(w[0], rel=1e-12)
    assert doc["lambda_max"] == pytest.approx(w[-1], rel=1e-12)
    assert doc["meta"]["options"]["at"] == "<python object>"


def test_a_plain_function_away_from_the_minimum_and_its_gradient_step():
    x = np.array([1.0, 0.0, -1.0, 2.0, 0.5])
    res = hesscli.analyze(quadratic, tree(x), lr=0.1)
    g = A @ x + B
    assert res.gradient_norm == pytest.approx(float(np.linalg.norm(g)), rel=1e-12)
    assert res.classification == "not_critical"
    # a quadratic's model is exact: predicted change −lr‖g‖² + ½lr² gᵀAg
    predicted = -0.1 * g @ g + 0.5 * 0.01 * g @ A @ g
    assert res.step.predicted_change == pytest.approx(predicted, rel=1e-10)
    assert res.step.actual_change == pytest.approx(predicted, rel=1e-8)


def test_a_saddle_on_a_tuple_pytree_has_its_escape_direction():
    res = hesscli.analyze(saddle_fn, (jnp.zeros(2), jnp.asarray(0.0)))
    np.testing.assert_allclose(res.spectrum.eigenvalues, [-2.0, 1.0, 2.0], atol=1e-12)
    assert res.classification == "saddle_point"
    assert res.inertia.negative == 1
    np.testing.assert_allclose(np.abs(res.escape.direction), [0.0, 1.0, 0.0], atol=1e-12)


def test_spectrum_convexity_landscape_and_gradcheck_of_a_plain_function():
    x = np.array([0.3, -0.2, 0.1, 0.0, 1.0])
    sp = hesscli.spectrum(quadratic, tree(x))
    np.testing.assert_allclose(sp.spectrum.eigenvalues, np.linalg.eigvalsh(A), rtol=1e-12)
    assert sp.to_json()["trace"]["estimate"] == pytest.approx(np.trace(A), rel=1e-12)
    box = hesscli.convexity(saddle_fn, around=(jnp.zeros(2), jnp.asarray(0.0)), radius=0.5,
                            samples=50, hessian_points=3)
    assert box.verdict == "not_convex"  # x² − y² curves down along y
    ls = hesscli.landscape(quadratic, tree(x), points=5, grid=3)
    assert ls.lambda_max == pytest.approx(np.linalg.eigvalsh(A)[-1], rel=1e-12)
    gc = hesscli.gradcheck(quadratic, tree(x))
    assert gc.passed is True
    for res, name in ((sp, "spectrum"), (box, "convexity"), (ls, "landscape"),
                      (gc, "gradcheck")):
        jsonschema.validate(res.to_json(), load_schema(name))


def test_reusing_the_backend_and_loading_once():
    obj = hesscli.load(quadratic, tree(np.zeros(5)))
    first = hesscli.analyze(obj)
    again = hesscli.spectrum(obj, curvature=first.curvature)
    assert again.curvature is first.curvature
    np.testing.assert_allclose(again.spectrum.eigenvalues, first.spectrum.eigenvalues)


def test_train_a_plain_function():
    res = hesscli.train(quadratic, tree(np.zeros(5)), lr=0.2, steps=200, monitor_every=50)
    x_star = -np.linalg.solve(A, B)
    np.testing.assert_allclose(res.result.x, x_star, atol=1e-8)
    assert res.analysis.classification == "local_minimum"
    jsonschema.validate(res.to_json(), load_schema("train"))


def test_bad_calls_raise_input_errors():
    with pytest.raises(InputError, match="needs its point"):
        hesscli.analyze(quadratic)
    with pytest.raises(InputError, match="-p parameters"):
        hesscli.analyze(quadratic, tree(np.zeros(5)), params={"n": 3})
    with pytest.raises(InputError, match="--lr must be a positive"):
        hesscli.analyze(quadratic, tree(np.zeros(5)), lr=-1.0)


def strip_argv(doc):
    """The document without ``meta.argv`` and the wall-clock fields (train's ``timing`` and
    each record's ``elapsed``), the only parts two identical runs may differ in."""
    doc = dict(doc)
    doc["meta"] = {k: v for k, v in doc["meta"].items() if k != "argv"}
    runs = doc["variants"] if "variants" in doc else [doc]
    for run in runs:
        run.pop("timing", None)
        for record in run.get("history", ()):
            record.pop("elapsed", None)
    return doc


@pytest.mark.parametrize("args, call", [
    (("analyze", "rosenbrock", "--at", "1,1"),
     lambda: hesscli.analyze("rosenbrock", "1,1")),
    (("analyze", "saddle", "-p", "n=3", "--at", "zeros", "--matrix-free", "--k", "1"),
     lambda: hesscli.analyze("saddle", "zeros", params=["n=3"], path="matrix-free")),
    (("spectrum", "ravine", "--at", "1,1"),
     lambda: hesscli.spectrum("ravine", "1,1")),
    (("gradcheck", "rosenbrock", "--at", "0.5,0.5"),
     lambda: hesscli.gradcheck("rosenbrock", "0.5,0.5")),
    (("convexity", "rosenbrock", "--box", "-2,2", "--samples", "40", "--hessian-points", "3"),
     lambda: hesscli.convexity("rosenbrock", boxes=["-2,2"], samples=40, hessian_points=3)),
    (("landscape", "ravine", "--at", "1,1", "--points", "5", "--grid", "3"),
     lambda: hesscli.landscape("ravine", "1,1", points=5, grid=3)),
    (("train", "saddle", "--at", "0.1,0.1", "--steps", "20", "--monitor-every", "10",
      "--optimizer", "momentum", "--momentum", "0.5"),
     lambda: hesscli.train("saddle", "0.1,0.1", steps=20, monitor_every=10,
                           optimizer="momentum", momentum=0.5)),
    (("train", "saddle", "--at", "0.1,0.1", "--steps", "20", "--monitor-every", "10",
      "--compare", "plain,noisy", "--dense-budget", "1MiB"),
     lambda: hesscli.train("saddle", "0.1,0.1", steps=20, monitor_every=10,
                           compare="plain,noisy", dense_budget="1MiB")),
])
def test_the_api_document_is_the_cli_document(hess, args, call):
    cli = hess(*args, "--format", "json")
    assert cli.exit_code in (0, 1), cli.output
    assert strip_argv(call().to_json()) == strip_argv(cli.json())


def test_a_numpy_function_is_differentiated_by_finite_differences():
    """A black box (NumPy, JAX cannot trace it): method fd, eigenvalues within the
    finite-difference error band of the analytic ones."""

    def black_box(x):
        x = np.asarray(x, dtype=np.float64)
        return float(0.5 * x @ A @ x + B @ x)

    res = hesscli.analyze(black_box, np.zeros(5))
    assert res.method == "fd" and res.fd.source == "function values"
    band = res.fd.hessian_error + 1e-9
    np.testing.assert_allclose(res.spectrum.eigenvalues, np.linalg.eigvalsh(A), atol=band)
    assert res.to_json()["method_reason"].startswith("JAX cannot trace it")


def test_check_from_a_mapping():
    res = hesscli.check({"checks": [{"objective": "saddle", "at": "zeros",
                                     "expect": {"classification": "saddle_point",
                                                "inertia.negative": 1}}]})
    assert res.passed and res.to_json()["expectations_total"] == 2
    failing = hesscli.check({"checks": [{"objective": "saddle", "at": "zeros",
                                         "expect": {"inertia.negative": 0}}]})
    assert not failing.passed
    with pytest.raises(InputError, match="unknown key"):
        hesscli.check({"checks": [{"objective": "saddle", "expect": {"lamda_min": 0}}]})


def test_cli_spellings_of_blocks_and_curvature_in_python():
    """`--blocks` is a bare flag on the command line: blocks=True means one block per leaf
    (rosenbrock at (1, 1): H = [[802, −400], [−400, 200]], one leaf, trace 1002);
    `--curvature ggn` is curvature_kind= here, and curvature='ggn' says so (exit code 2)
    instead of failing inside on a string that is not a backend."""
    res = hesscli.analyze("rosenbrock", "1,1", blocks=True)
    (block,) = res.to_json()["blocks"]["blocks"]
    lam = np.linalg.eigvalsh(np.array([[802.0, -400.0], [-400.0, 200.0]]))
    assert block["size"] == 2 and block["trace"] == pytest.approx(1002.0, rel=1e-12)
    assert block["lambda_max"] == pytest.approx(lam[-1], rel=1e-10)
    for wrong in ("ggn", "hessian,ggn", ["hessian", "ggn"]):
        with pytest.raises(InputError, match="curvature_kind=") as info:
            hesscli.spectrum("rosenbrock", "1,1", curvature=wrong)
        assert info.value.exit_code == 2
    # a list of names is the comma list
    res = hesscli.spectrum("rosenbrock", "1,1", curvature_kind=["hessian"])
    assert res.spectrum.eigenvalues == pytest.approx(lam, rel=1e-10)


@pytest.mark.parametrize("call,options", [
    ("analyze", {"ends": "middle"}),
    ("analyze", {"eigensolver": "nope"}),
    ("spectrum", {"estimator": "hutch"}),
])
def test_misspelt_choices_are_refused_on_the_dense_path_too(call, options):
    """n = 5 takes the dense path, which uses none of these: a misspelling was accepted
    silently there (the CLI's Choice catches it; Python had no such check)."""
    with pytest.raises(InputError) as info:
        getattr(hesscli, call)(quadratic, tree(np.ones(5)), **options)
    assert info.value.exit_code == 2
    ((name, value),) = options.items()  # the message names the argument and its value
    assert name in str(info.value) and repr(value) in str(info.value), str(info.value)
