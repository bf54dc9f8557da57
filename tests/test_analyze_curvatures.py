"""``analyze --curvature hessian,ggn [--blocks]``: several matrices at one point.

The Hessian and the Gauss–Newton matrix JᵀH_ℓJ of a small split network are built
here with ``jax.hessian``/``jax.jacobian`` from the file's own formulas (not from
hesscli), and every number the command prints for each matrix and each block is
compared with them. Matrix-free, the reported intervals must contain the exact
values and the table must print the unresolved ends as bounds.
"""

import json

import jax
import jax.numpy as jnp
import jsonschema
import numpy as np
import pytest

from hesscli.render.numbers import certified_digits, end_cell
from hesscli.schemas import load_schema

SOURCE = """
import jax
import jax.numpy as jnp
import numpy as np

_rng = np.random.default_rng(4)
X = _rng.standard_normal((10, 3))
Y = _rng.standard_normal((10, 2))
data = (jnp.asarray(X), jnp.asarray(Y))


def model(params, inputs):
    h = jnp.tanh(inputs @ params["a"]["w"] + params["a"]["b"])
    return h @ params["z"]["w"]


def output_loss(out, targets):
    return 0.5 * jnp.mean(jnp.sum((out - targets) ** 2, axis=-1))
"""


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """The file, a point (.npz) and the exact Hessian and GGN with their block slices."""
    root = tmp_path_factory.mktemp("curvatures")
    path = root / "net.py"
    path.write_text(SOURCE)
    ns: dict = {}
    exec(SOURCE, ns)  # noqa: S102 - the test's own source
    rng = np.random.default_rng(7)
    params = {"a": {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)},
              "z": {"w": rng.standard_normal((4, 2))}}
    point = root / "point.npz"
    np.savez(point, **{"a.w": params["a"]["w"], "a.b": params["a"]["b"],
                       "z.w": params["z"]["w"]})
    # flat order: leaves sorted by path (a.b, a.w, z.w), each row-major
    order = [("a.b", params["a"]["b"]), ("a.w", params["a"]["w"]), ("z.w", params["z"]["w"])]
    slices, start = {}, 0
    for name, leaf in order:
        slices[name] = slice(start, start + leaf.size)
        start += leaf.size
    flat = np.concatenate([leaf.ravel() for _, leaf in order])

    def unflat(v):
        return {"a": {"b": v[slices["a.b"]], "w": v[slices["a.w"]].reshape(3, 4)},
                "z": {"w": v[slices["z.w"]].reshape(4, 2)}}

    inputs, targets = ns["data"]

    def outputs(v):
        return ns["model"](unflat(v), inputs)

    def f(v):
        return ns["output_loss"](outputs(v), targets)

    x = jnp.asarray(flat)
    hess = np.asarray(jax.hessian(f)(x))
    jac = np.asarray(jax.jacobian(outputs)(x)).reshape(-1, x.size)
    out = outputs(x)
    h_out = np.asarray(jax.hessian(lambda o: ns["output_loss"](o, targets))(out)).reshape(
        out.size, out.size)
    ggn = jac.T @ h_out @ jac
    return {"file": str(path), "point": str(point), "H": hess, "G": ggn, "slices": slices}


def run(hess, net, *args):
    res = hess("analyze", net["file"], "--at", net["point"], *args)
    assert res.exit_code == 0, res.output
    return res


def test_each_matrix_and_each_block_against_dense_constructions(hess, net):
    doc = run(hess, net, "--curvature", "hessian,ggn", "--blocks", "--format", "json").json()
    jsonschema.validate(doc, load_schema("analyze"))
    first, second = doc["curvatures"]
    assert (first["curvature"], second["curvature"]) == ("hessian", "ggn")
    # the top level is the first matrix's analysis, with its verdict
    assert doc["curvature"] == "hessian" and doc["eigenvalues"] == first["eigenvalues"]
    assert doc["classification"] is not None and second["classification"] is None
    scale = np.abs(net["H"]).max()
    for entry, matrix in ((first, net["H"]), (second, net["G"])):
        exact = np.linalg.eigvalsh(matrix)
        assert entry["eigenvalues_complete"] is True
        np.testing.assert_allclose(entry["eigenvalues"], exact, atol=1e-10 * scale)
        by_name = {b["name"]: b for b in entry["blocks"]["blocks"]}
        assert set(by_name) == set(net["slices"])
        for name, sl in net["slices"].items():
            block = matrix[sl, sl]
            lam = np.linalg.eigvalsh(block)
            assert by_name[name]["lambda_max"] == pytest.approx(lam[-1], abs=1e-10 * scale)
            assert by_name[name]["lambda_min"] == pytest.approx(lam[0], abs=1e-10 * scale)
            assert by_name[name]["trace"] == pytest.approx(np.trace(block), abs=1e-10 * scale)
    # PSD by construction: the GGN has no negative eigenvalue, the Hessian here has
    assert second["inertia"]["negative"] == 0
    assert first["definiteness"] == ("indefinite" if np.linalg.eigvalsh(net["H"])[0] < 0
                                     else first["definiteness"])
    # the output layer is linear and the loss quadratic: its Hessian block is the GGN's
    sl = net["slices"]["z.w"]
    np.testing.assert_allclose(net["H"][sl, sl], net["G"][sl, sl], atol=1e-12 * scale)


def test_the_same_document_as_one_curvature_at_a_time(hess, net):
    both = run(hess, net, "--curvature", "hessian,ggn", "--format", "json").json()
    alone = run(hess, net, "--curvature", "ggn", "--format", "json").json()
    entry = both["curvatures"][1]
    for key in ("eigenvalues", "lambda_min", "lambda_max", "definiteness", "tolerance",
                "inertia"):
        assert entry[key] == alone[key], key


def test_matrix_free_intervals_contain_the_exact_ends_and_the_table_prints_bounds(hess, net):
    args = ("--curvature", "hessian,ggn", "--blocks", "--matrix-free", "--k", "1",
            "--max-steps", "3")
    doc = run(hess, net, *args, "--format", "json").json()
    jsonschema.validate(doc, load_schema("analyze"))
    unresolved = 0
    for entry, matrix in zip(doc["curvatures"], (net["H"], net["G"]), strict=True):
        exact = np.linalg.eigvalsh(matrix)
        slack = 1e-9 * np.abs(exact).max()
        lo, hi = entry["lambda_min_interval"]
        # the proven side holds always: λmin ≤ θmin + δ, λmax ≥ θmax − δ
        assert exact[0] <= hi + slack
        assert exact[-1] >= entry["lambda_max_interval"][0] - slack
        unresolved += entry["lambda_min_interval"][1] - entry["lambda_min_interval"][0] > \
            0.1 * abs(entry["lambda_min"])
    table = run(hess, net, *args).stdout
    side = table[table.index("Diagonal blocks side by side"):]
    matrices = table[table.index("Curvature matrices at this point"):]
    assert "H: Hessian, G: GGN" in side
    if unresolved:  # three Lanczos steps on 22 parameters leave an end open: a bound
        assert "≤" in matrices or "≥" in matrices


def test_the_api_gives_the_commands_document(hess, net):
    import hesscli

    cli = run(hess, net, "--curvature", "hessian,ggn", "--blocks", "--format", "json").json()
    api = hesscli.analyze(net["file"], net["point"], curvature_kind="hessian,ggn",
                          blocks="leaf").to_json()
    for doc in (cli, api):
        doc["meta"] = {k: v for k, v in doc["meta"].items() if k != "argv"}
    assert json.loads(json.dumps(api)) == cli


@pytest.mark.parametrize("extra, text", [
    (("--batch-size", "4"), "not available over streamed batches"),
])
def test_refused_combinations(hess, net, extra, text):
    res = hess("analyze", net["file"], "--at", net["point"], "--curvature", "hessian,ggn",
               *extra)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and text in res.stderr


@pytest.mark.parametrize("value, half, digits", [
    (3.918, 9e-11, 4),     # far below the 4th digit
    (-2.484, 0.0032, 3),   # |θ|/(2·half) = 388: three digits are right
    (1.0, 0.2, 1),         # one digit at most
    (123.4, 0.04, 4),
])
def test_certified_digits(value, half, digits):
    assert certified_digits(value, half) == digits
    printed = float(f"{value:.{digits}g}")
    # what is printed is within half a unit of its last digit of the value
    assert abs(printed - value) <= 0.5 * 10 ** (np.floor(np.log10(abs(value))) - digits + 1)


def test_end_cell_prints_only_what_is_certified():
    class B:  # an EndBounds stand-in: the fields end_cell reads
        theta_min, theta_max = -2.484, 7.2
        min_halfwidth, max_halfwidth = 0.0032, 3.0
        min_resolved, max_resolved = True, False
        min_interval, max_interval = (-2.4872, -2.4839), (7.1999, 10.2)

    assert end_cell(None, B, "min") == "-2.48"
    assert end_cell(None, B, "max") == "≥ 7.2"
    assert end_cell(1.23456, None, "min") == "1.235"  # dense: the value
