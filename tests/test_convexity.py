"""Sampled convexity: convex problems are never called non-convex, non-convex ones are
caught with a witness that re-evaluates (independently) to a real violation."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest

from hesscli.analysis.convexity import (
    NO_VIOLATION,
    NOT_CONVEX,
    ball,
    box,
    convexity,
    dyadic,
)
from hesscli.curvature.exact import ExactCurvature
from hesscli.objective.bind import bind
from hesscli.objective.files import load_file
from hesscli.schemas import load_schema

SCHEMA = load_schema("convexity")

LOGSUMEXP = """
import jax.numpy as jnp
import jax
import numpy as np

_rng = np.random.default_rng(3)
A = jnp.asarray(_rng.standard_normal((40, 6)))
b = jnp.asarray(_rng.standard_normal(40))

def objective(x):
    return jax.nn.logsumexp(A @ x + b)

x0 = jnp.zeros(6)
"""

HINGE = """
import jax.numpy as jnp
import numpy as np

_rng = np.random.default_rng(1)
X = jnp.asarray(_rng.standard_normal((30, 4)))
y = jnp.asarray(np.sign(_rng.standard_normal(30)))

def objective(w):
    return jnp.sum(jnp.maximum(0.0, 1.0 - y * (X @ w)))

x0 = jnp.zeros(4)
"""

NEG_ABS = """
import jax.numpy as jnp

def objective(x):
    return -jnp.sum(jnp.abs(x))

x0 = jnp.zeros(3)
"""

AFFINE = """
import jax.numpy as jnp
import numpy as np

c = jnp.asarray(np.random.default_rng(5).standard_normal(50))

def objective(x):
    return c @ x + 1000.0

x0 = jnp.zeros(50)
"""


def bound(spec, params=None, dtype="float64"):
    obj = bind(load_file(str(spec), params or {}), None, dtype=dtype)
    return obj, ExactCurvature(obj)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("convexity")
    out = {}
    for name, text in [("lse", LOGSUMEXP), ("hinge", HINGE), ("negabs", NEG_ABS),
                       ("affine", AFFINE)]:
        path = root / f"{name}.py"
        path.write_text(text)
        out[name] = path
    return out


# ---- convex: never not_convex -----------------------------------------------------------

@pytest.mark.parametrize("name, params, lo, hi, dtype", [
    ("svm", {}, -3.0, 3.0, "float64"),
    ("ravine", {"n": "6", "kappa": "1000"}, -10.0, 10.0, "float64"),
    ("ravine", {"n": "6", "kappa": "1000"}, -10.0, 10.0, "float32"),
])
def test_convex_builtins_never_flagged(name, params, lo, hi, dtype):
    obj, curv = bound(name, params, dtype)
    for seed in range(10):
        res = convexity(obj, curv, box([(lo, hi)], obj.n), pairs=300, hessian_points=3,
                        seed=seed)
        assert res.verdict == NO_VIOLATION, (seed, res.witness)
        assert res.midpoint.pairs == 300 and res.hessian.points == 3


@pytest.mark.parametrize("name", ["lse", "hinge", "affine"])
def test_convex_files_never_flagged(files, name):
    """Log-sum-exp (smooth), hinge (piecewise linear: Hessian 0, only the midpoint test
    sees anything) and an affine function with a large offset (gaps are pure rounding)."""
    obj, curv = bound(files[name])
    for seed in range(10):
        region = box([(-5.0, 5.0)], obj.n) if seed % 2 else ball(obj.x, 3.0)
        res = convexity(obj, curv, region, pairs=400, hessian_points=2, seed=seed)
        assert res.verdict == NO_VIOLATION, (seed, res.witness)
        assert res.midpoint.violations == 0 and res.hessian.violations == 0


def test_hinge_rounding_is_absorbed_by_the_tolerance(files):
    """The hinge Hessian is 0 wherever it exists, and on pairs inside one linear piece the
    exact midpoint gap is 0: the computed gap is rounding, sometimes of the "wrong" sign.
    The tolerance must absorb it (no violation) while staying tiny."""
    obj, curv = bound(files["hinge"])
    res = convexity(obj, curv, box([(-2.0, 2.0)], obj.n), pairs=400, hessian_points=3, seed=0)
    assert res.hessian.smallest_eigenvalue == 0.0
    assert res.verdict == NO_VIOLATION
    assert abs(res.midpoint.worst_margin) < 1e-12
    assert res.midpoint.rtol < 1e-12


# ---- non-convex: caught, witness re-evaluated independently -----------------------------

def rosenbrock_np(x):
    x = np.asarray(x, dtype=np.float64)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosenbrock_hessian(x):
    a, b = x
    return np.array([[1200 * a * a - 400 * b + 2, -400 * a], [-400 * a, 200.0]])


def saddle_np(x):
    return float(0.5 * np.sum(x[:-1] ** 2) + 0.25 * x[-1] ** 4 - 0.5 * x[-1] ** 2)


@pytest.mark.parametrize("name, f", [("rosenbrock", rosenbrock_np), ("saddle", saddle_np)])
def test_midpoint_witness_violates(name, f):
    obj, curv = bound(name)
    res = convexity(obj, curv, box([(-2.0, 2.0)], obj.n), pairs=500, hessian_points=0, seed=0)
    assert res.verdict == NOT_CONVEX
    w = res.witness
    assert w.kind == "midpoint"
    np.testing.assert_array_equal(w.midpoint, (w.x + w.y) / 2)  # exact by construction
    lhs, rhs = f(w.midpoint), 0.5 * (f(w.x) + f(w.y))
    assert lhs - rhs > 1e-6 * max(1.0, abs(lhs))
    assert w.margin == pytest.approx(lhs - rhs, rel=1e-9)


def test_eigenvalue_witness_rosenbrock():
    obj, curv = bound("rosenbrock")
    res = convexity(obj, curv, box([(-2.0, 2.0)], obj.n), pairs=0, hessian_points=20, seed=0)
    assert res.verdict == NOT_CONVEX
    w = res.witness
    assert w.kind == "eigenvalue"
    lam, vecs = np.linalg.eigh(rosenbrock_hessian(w.point))
    assert lam[0] < 0
    assert w.eigenvalue == pytest.approx(lam[0], rel=1e-10)
    assert abs(abs(w.direction @ vecs[:, 0]) - 1.0) < 1e-8
    assert {name for name, _ in w.top_parameters} <= {"x[0]", "x[1]"}


def test_eigenvalue_witness_saddle():
    obj, curv = bound("saddle", {"n": "3"})
    res = convexity(obj, curv, box([(-0.5, 0.5)], 3), pairs=0, hessian_points=5, seed=1)
    w = res.witness
    assert res.verdict == NOT_CONVEX and w.kind == "eigenvalue"
    assert w.eigenvalue == pytest.approx(3 * w.point[2] ** 2 - 1.0, rel=1e-12)
    assert w.top_parameters[0][0] == "x[2]"


def test_mlp_not_convex_with_named_direction():
    obj, curv = bound("mlp", {"width": "4"})
    res = convexity(obj, curv, ball(obj.x, 1.0), pairs=200, hessian_points=1, seed=0)
    assert res.verdict == NOT_CONVEX
    w = res.hessian.witness
    assert w is not None
    # independently: a central second difference of values along the direction
    f = lambda p: float(obj.flat_fn(p))  # noqa: E731 - unjitted, unbatched
    h = 1e-3
    second = (f(w.point + h * w.direction) - 2 * f(w.point) + f(w.point - h * w.direction)) / h**2
    assert second < 0
    assert second == pytest.approx(w.eigenvalue, rel=1e-3, abs=1e-6)  # O(h²) truncation
    assert all(n.startswith(("hidden.", "head.")) for n, _ in w.top_parameters)
    mw = res.midpoint.witness
    if mw is not None:
        assert f(mw.midpoint) - 0.5 * (f(mw.x) + f(mw.y)) > 0


def test_negative_abs_caught_by_midpoint_although_hessian_is_zero(files):
    obj, curv = bound(files["negabs"])
    res = convexity(obj, curv, box([(-1.0, 1.0)], 3), pairs=200, hessian_points=5, seed=0)
    assert res.hessian.violations == 0 and res.hessian.smallest_eigenvalue == 0.0
    assert res.verdict == NOT_CONVEX and res.witness.kind == "midpoint"
    w = res.witness
    f = lambda p: -np.sum(np.abs(p))  # noqa: E731
    assert f(w.midpoint) > 0.5 * (f(w.x) + f(w.y))


def test_dyadic_midpoints_are_exact():
    rng = np.random.default_rng(0)
    for dtype in ("float64", "float32"):
        x = dyadic(rng.uniform(-3, 3, (1000, 4)), 3.0, dtype)
        y = dyadic(rng.uniform(-3, 3, (1000, 4)), 3.0, dtype)
        m = (x + y) / 2
        assert m.dtype == np.dtype(dtype)
        # exact: the float64 computation of the same midpoint agrees bit for bit
        np.testing.assert_array_equal(m.astype(np.float64),
                                      (x.astype(np.float64) + y.astype(np.float64)) / 2)


# ---- CLI ----------------------------------------------------------------------------------

def test_cli_no_violation_json_and_text(hess):
    res = hess("convexity", "svm", "--box", "-3,3", "--samples", "500", "--seed", "0",
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["verdict"] == "no_violation_found" and doc["witness"] is None
    assert doc["samples"] == {"pairs": 500, "hessian_points": 20, "seed": 0}
    assert "evidence, not proof" in doc["statement"]
    text = hess("convexity", "svm", "--box", "-3,3", "--samples", "100")
    assert text.exit_code == 0, text.output
    assert "evidence, not proof" in " ".join(text.stdout.split())


def test_cli_not_convex_witness(hess):
    res = hess("convexity", "rosenbrock", "--box", "-2,2", "--seed", "0", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["verdict"] == "not_convex"
    w = doc["witness"]
    lhs = rosenbrock_np(w["midpoint"])
    rhs = 0.5 * (rosenbrock_np(w["x"]) + rosenbrock_np(w["y"]))
    assert lhs - rhs > w["tolerance"]
    text = hess("convexity", "rosenbrock", "--box", "-2,2", "--hessian-points", "0")
    assert text.exit_code == 0, text.output
    assert "not convex" in text.stdout and "Witness" in text.stdout


def test_cli_eigenvalue_witness_json(hess):
    res = hess("convexity", "saddle", "--box", "-0.5,0.5", "--samples", "0", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, SCHEMA)
    w = doc["witness"]
    assert w["kind"] == "eigenvalue"
    assert w["eigenvalue"] == pytest.approx(3 * w["point"][1] ** 2 - 1, rel=1e-12)
    assert w["top_parameters"][0]["name"] == "x[1]"


def test_cli_regions(hess, write):
    per = hess("convexity", "saddle", "--box", "-1,1", "--box", "1,2", "--hessian-points", "0",
               "--format", "json")
    assert per.exit_code == 0, per.output
    doc = per.json()
    assert doc["region"]["lo"] == [-1.0, 1.0] and doc["region"]["hi"] == [1.0, 2.0]
    # y in [1, 2]: ¼y⁴ − ½y² is convex there (3y² − 1 > 0), and ½x² is convex
    assert doc["verdict"] == "no_violation_found"
    ring = hess("convexity", "saddle", "--around", "0,3", "--radius", "0.5", "--format", "json")
    assert ring.exit_code == 0, ring.output
    assert ring.json()["region"] == {"kind": "ball", "radius": 0.5, "center": [0.0, 3.0]}
    assert ring.json()["verdict"] == "no_violation_found"
    bad = hess("convexity", "saddle", "--box", "-1,1", "--box", "0,1", "--box", "0,1")
    assert bad.exit_code == 2 and "--box given 3 times" in bad.stderr, bad.output
    both = hess("convexity", "saddle", "--box", "-1,1", "--around", "0,0")
    assert both.exit_code == 2 and "not both" in both.stderr
    nodefault = write("nd.py", "import jax.numpy as jnp\n"
                      "def objective(x):\n    return jnp.sum(x**2)\n")
    one = hess("convexity", str(nodefault), "--box", "-1,1")
    assert one.exit_code == 2 and "once per coordinate" in one.stderr, one.output
    per_coord = hess("convexity", str(nodefault), "--box", "-1,1", "--box", "-1,1",
                     "--format", "json")
    assert per_coord.exit_code == 0, per_coord.output
    assert per_coord.json()["n"] == 2


def test_cli_expect(hess):
    ok = hess("convexity", "rosenbrock", "--box", "-2,2", "--samples", "200",
              "--expect", "verdict=not_convex")
    assert ok.exit_code == 0, ok.output
    fail = hess("convexity", "rosenbrock", "--box", "-2,2", "--samples", "200",
                "--expect", "verdict=no_violation_found")
    assert fail.exit_code == 1, fail.output
    assert "not convex" in fail.stdout  # the report comes first
    assert fail.stderr.startswith("error: 1 of 1 expectation failed")
    unknown = hess("convexity", "rosenbrock", "--box", "-2,2", "--expect", "verdit=not_convex")
    assert unknown.exit_code == 2 and "did you mean 'verdict'" in unknown.stderr
    assert unknown.stdout == ""


def test_cli_numpy_objective_uses_values(hess, write):
    """An untraceable (NumPy) objective still gets the midpoint test, evaluated one by one."""
    path = write("np_obj.py", "import numpy as np\n"
                 "def objective(x):\n    return float(np.sum(x**2) - 2 * np.abs(x).sum())\n"
                 "x0 = np.zeros(3)\n")
    res = hess("convexity", path, "--box", "-1,1", "--samples", "60", "--hessian-points", "2",
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["verdict"] == "not_convex" and doc["witness"]["kind"] == "midpoint"
    w = doc["witness"]
    f = lambda p: float(np.sum(np.square(p)) - 2 * np.abs(p).sum())  # noqa: E731
    assert f(w["midpoint"]) - 0.5 * (f(w["x"]) + f(w["y"])) > w["tolerance"]


def test_spectrum_fn_plugs_in_and_over_budget_goes_matrix_free(monkeypatch):
    """Above the dense budget the eigenvalue test runs matrix-free (it used to be
    skipped above a fixed size); any spectrum function can replace the policy's."""
    from hesscli.spectra.spectrum import spectrum_of_matrix

    obj, curv = bound("saddle", {"n": "3"})
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "1")  # auto now picks matrix-free
    free = convexity(obj, curv, box([(-0.5, 0.5)], 3), pairs=0, hessian_points=2, seed=0)
    assert free.hessian.skipped is None and free.hessian.points == 2
    assert any("matrix-free" in note for note in free.notes)
    calls = []

    def analytic(c, x, layout):
        calls.append(x)
        return spectrum_of_matrix(np.diag([1.0, 1.0, 3 * x[2] ** 2 - 1]))

    res = convexity(obj, curv, box([(-0.5, 0.5)], 3), pairs=0, hessian_points=2, seed=0,
                    spectrum_fn=analytic)
    assert len(calls) == 2 and res.verdict == NOT_CONVEX
    assert res.witness.top_parameters[0][0] == "x[2]"
