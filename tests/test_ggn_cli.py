"""``--curvature`` end to end: every value on analyze, spectrum side by side, landscape,
train; JSON validated against the shipped schemas; errors and exit codes."""

import json

import jsonschema
import numpy as np
import pytest

from hesscli.schemas import load_schema

SMALL = ("classifier", "-p", "width=3", "-p", "samples=12", "-p", "inputs=3")


@pytest.mark.parametrize("kind", ["hessian", "ggn", "fisher", "empirical-fisher"])
def test_analyze_each_curvature(hess, kind):
    res = hess("analyze", *SMALL, "--curvature", kind, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("analyze"))
    assert doc["curvature"] == kind
    assert doc["meta"]["options"]["curvature"] == kind
    if kind == "hessian":
        assert doc["classification"] == "not_critical"
        return
    # PSD by construction: no minimum/saddle verdict, no escape, and the output says why
    assert doc["classification"] is None
    assert "escape" not in doc
    assert doc["inertia"]["negative"] == 0
    assert doc["definiteness"] in ("positive_semidefinite", "positive_definite")
    assert any("positive semidefinite by construction" in note for note in doc["notes"])


def test_analyze_table_says_no_verdict_from_the_ggn(hess):
    res = hess("analyze", *SMALL, "--curvature", "ggn")
    assert res.exit_code == 0, res.output
    assert "GGN curvature" in res.stdout
    assert "--curvature hessian" in res.stdout


def test_spectrum_side_by_side_json(hess):
    res = hess("spectrum", *SMALL, "--curvature", "hessian,ggn", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("spectrum"))
    blocks = {b["curvature"]: b for b in doc["curvatures"]}
    assert list(blocks) == ["hessian", "ggn"]
    assert doc["curvature"] == "hessian" and doc["eigenvalues"] == blocks["hessian"]["eigenvalues"]
    diff = doc["difference"]
    assert diff["of"] == ["hessian", "ggn"] and diff["curvature"] == "residual"
    # traces are linear: tr(H − G) = tr H − tr G (each exact on the dense path)
    tr = {k: b["trace"]["estimate"] for k, b in blocks.items()}
    assert diff["trace"]["estimate"] == pytest.approx(tr["hessian"] - tr["ggn"], abs=1e-12)
    # Weyl: λmin(H) ≥ λmin(G) + λmin(H − G), λmax(H) ≤ λmax(G) + λmax(H − G)
    slack = 1e-10
    assert blocks["hessian"]["lambda_min"] >= (blocks["ggn"]["lambda_min"]
                                               + diff["lambda_min"] - slack)
    assert blocks["hessian"]["lambda_max"] <= (blocks["ggn"]["lambda_max"]
                                               + diff["lambda_max"] + slack)
    assert blocks["ggn"]["inertia"]["negative"] == 0


def test_spectrum_side_by_side_matrix_free_with_density_and_plot(hess, tmp_path):
    plot = tmp_path / "cmp.png"
    res = hess("spectrum", *SMALL, "--curvature", "hessian,ggn,fisher", "--matrix-free",
               "--k", "1", "--density", "--probes", "2", "--steps", "12",
               "--trace-probes", "4", "--plot", str(plot), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("spectrum"))
    assert [b["curvature"] for b in doc["curvatures"]] == ["hessian", "ggn", "fisher"]
    for block in [*doc["curvatures"], doc["difference"]]:
        assert block["density"]["method"] == "slq"
        assert np.isclose(np.trapezoid(block["density"]["values"], block["density"]["grid"]),
                          1.0, atol=1e-3)
    assert plot.stat().st_size > 0


def test_spectrum_side_by_side_table(hess):
    res = hess("spectrum", *SMALL, "--curvature", "hessian,ggn")
    assert res.exit_code == 0, res.output
    assert "Side by side" in res.stdout and "Hessian − GGN" in res.stdout


@pytest.mark.parametrize("kind", ["ggn", "empirical-fisher"])
def test_spectrum_single_curvature(hess, kind):
    res = hess("spectrum", *SMALL, "--curvature", kind, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("spectrum"))
    assert doc["curvature"] == kind and doc["inertia"]["negative"] == 0


def test_landscape_with_ggn(hess):
    res = hess("landscape", *SMALL, "--curvature", "ggn", "--points", "5", "--grid", "3",
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("landscape"))
    assert doc["curvature"] == "ggn" and doc["classification"] is None


def test_train_monitors_the_ggn_and_ends_with_the_hessian_verdict(hess):
    res = hess("train", *SMALL, "--steps", "20", "--monitor-every", "10", "--curvature", "ggn",
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("train"))
    assert all(h["lambda_min"] >= -1e-10 for h in doc["history"])  # PSD monitored
    assert doc["final_classification"] == "not_critical"  # the Hessian's verdict
    assert any("curvature monitored: the GGN" in note for note in doc["notes"])


def test_train_bare_curvature_flag_still_means_the_hessian(hess):
    res = hess("train", *SMALL, "--steps", "4", "--monitor-every", "2", "--curvature",
               "--format", "json")
    assert res.exit_code == 0, res.output
    assert min(h["lambda_min"] for h in res.json()["history"]) < 0  # the Hessian's


@pytest.mark.parametrize("args, code, text", [
    (("analyze", "rosenbrock", "--curvature", "ggn"), 2, "needs a model split"),
    (("analyze", *SMALL, "--curvature", "gnn"), 2, "did you mean 'ggn'"),
    (("landscape", *SMALL, "--curvature", "hessian,ggn"), 2, "takes one curvature"),
    (("spectrum", *SMALL, "--curvature", "ggn,ggn"), 2, "at most once"),
    (("analyze", *SMALL, "--curvature", "ggn", "--method", "fd"), 2, "needs exact JAX"),
    (("analyze", *SMALL, "--curvature", "ggn", "--save-escape", "e.npy"), 2,
     "escape directions come from the Hessian"),
])
def test_bad_curvature_requests(hess, args, code, text):
    res = hess(*args)
    assert res.exit_code == code, res.output
    assert res.stderr.startswith("error: ") and text in res.stderr
    assert "Traceback" not in res.stderr


def test_split_that_disagrees_with_objective_exits_3(hess, write):
    path = write("bad.py", (
        "import jax.numpy as jnp\n"
        "data = (jnp.ones((3, 2)), jnp.zeros(3))\nx0 = jnp.array([1.0, 2.0])\n"
        "def model(p, inputs):\n    return inputs @ p\n"
        "def output_loss(out, y):\n    return jnp.mean((out - y) ** 2)\n"
        "def objective(p):\n    return jnp.sum((data[0] @ p - data[1]) ** 2)\n"))
    res = hess("analyze", str(path))
    assert res.exit_code == 3, res.output
    assert "objective(params) = 27" in res.stderr and "= 9" in res.stderr


def strip_argv(doc):
    doc = dict(doc)
    doc["meta"] = {k: v for k, v in doc["meta"].items() if k != "argv"}
    return doc


@pytest.mark.parametrize("kinds", ["ggn", "hessian,ggn"])
def test_the_api_document_is_the_cli_document(hess, kinds):
    import hesscli

    cli = hess("spectrum", *SMALL, "--curvature", kinds, "--format", "json")
    assert cli.exit_code == 0, cli.output
    api = hesscli.spectrum("classifier", params=list(SMALL[2::2]), curvature_kind=kinds)
    assert strip_argv(api.to_json()) == strip_argv(cli.json())


LINEAR = """
import jax.numpy as jnp
import numpy as np

_rng = np.random.default_rng(3)
data = (jnp.asarray(_rng.standard_normal((20, 2))), jnp.asarray(_rng.standard_normal(20)))
x0 = jnp.zeros(2)


def model(params, inputs):
    return inputs @ params


def output_loss(outputs, targets):
    return 0.5 * jnp.mean((outputs - targets) ** 2)
"""


@pytest.mark.parametrize("kind, event", [("hessian", "reached_minimum"), ("ggn", "stalled")])
def test_train_events_give_no_minimum_verdict_from_the_ggn(hess, write, kind, event):
    # least squares: GD converges to the minimum; the Hessian says so, the GGN may not
    path = write("lsq.py", LINEAR)
    res = hess("train", str(path), "--lr", "0.5", "--steps", "400", "--monitor-every", "50",
               "--curvature", kind, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    kinds = [e["kind"] for e in doc["events"]]
    assert event in kinds and not ({"reached_minimum", "stalled"} - {event}) & set(kinds)
    assert doc["final_classification"] == "local_minimum"  # the final verdict: Hessian's


def test_fisher_equals_ggn_for_softmax_cross_entropy_side_by_side(hess):
    # the categorical likelihood is an exponential family in the logits: F = GGN exactly
    res = hess("spectrum", *SMALL, "--curvature", "ggn,fisher", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("spectrum"))
    diff = doc["difference"]
    assert diff["curvature"] == "difference" and diff["of"] == ["ggn", "fisher"]
    top = doc["curvatures"][0]["lambda_max"]
    assert max(abs(diff["lambda_min"]), abs(diff["lambda_max"])) <= 1e-12 * top


CUSTOM_VJP = """
import jax
import jax.numpy as jnp

data = (jnp.arange(6.0).reshape(3, 2), jnp.array([1.0, -1.0, 0.5]))
x0 = jnp.array([0.3, -0.2])


@jax.custom_vjp
def act(z):
    return jnp.tanh(z)


act.defvjp(lambda z: (jnp.tanh(z), z), lambda z, g: (g * (1 - jnp.tanh(z) ** 2),))


def model(params, inputs):
    return act(inputs @ params)


def output_loss(outputs, targets):
    return jnp.mean((outputs - targets) ** 2)
"""


def test_a_model_forward_mode_cannot_linearize_is_one_clear_error(hess, write):
    path = write("cvjp.py", CUSTOM_VJP)
    res = hess("analyze", str(path), "--curvature", "ggn")
    assert res.exit_code == 2, res.output
    assert "cannot linearize" in res.stderr and "Traceback" not in res.stderr
    assert hess("analyze", str(path)).exit_code == 0  # the Hessian: reverse-over-reverse


def test_expect_reads_the_side_by_side_blocks(hess):
    ok = hess("spectrum", *SMALL, "--curvature", "hessian,ggn",
              "--expect", "curvatures[1].inertia.negative=0", "--expect", "difference.lambda_min<0")
    assert ok.exit_code == 0, ok.output
    bad = hess("spectrum", *SMALL, "--curvature", "hessian,ggn",
               "--expect", "difference.lambda_min>0")
    assert bad.exit_code == 1 and "difference.lambda_min" in bad.stderr


def test_matrix_free_side_by_side_does_not_state_a_partial_count_as_the_count(hess):
    """Matrix-free with --k 1 computes one eigenvalue at each end: the headline may not
    call the one negative Ritz value 'the Hessian's 1 negative eigenvalue' when the dense
    spectrum has more (the dense run's count is the reference)."""
    dense = hess("spectrum", *SMALL, "--format", "json").json()
    assert dense["inertia"]["complete"] and dense["inertia"]["negative"] > 1
    res = hess("spectrum", *SMALL, "--curvature", "hessian,ggn", "--matrix-free", "--k", "1")
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.replace("│", " ").split())
    assert "The Hessian's 1 negative eigenvalue" not in text
    assert "among the computed extremes; the full count is not known" in text


def test_a_ggn_stability_line_says_whose_lambda_max_it_is(hess):
    """GD's 2/λmax bound is about the Hessian; with --curvature ggn the line must say
    its λmax is the GGN's (the two differ: the GGN drops the residual term)."""
    res = hess("analyze", *SMALL, "--curvature", "ggn")
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "lr·λmax" in text and "This λmax is the GGN's" in text
    assert "stable near here" not in text and "unstable along" not in text
    res = hess("analyze", *SMALL)
    assert res.exit_code == 0 and "This λmax is the" not in res.stdout


def test_a_ggn_lambda_max_does_not_decide_gd_stability_in_json(hess):
    """stability.stable is the Hessian's verdict: with another matrix it is null, so
    --expect stability.stable=true cannot pass on the GGN's λmax."""
    res = hess("analyze", *SMALL, "--curvature", "ggn", "--format", "json")
    assert res.exit_code == 0, res.output
    st = json.loads(res.stdout)["stability"]
    assert st["stable"] is None and st["lr_times_lambda_max"] > 0
    res = hess("analyze", *SMALL, "--curvature", "ggn", "--expect", "stability.stable=true")
    assert res.exit_code == 1, res.output
    res = hess("analyze", *SMALL, "--format", "json")
    assert json.loads(res.stdout)["stability"]["stable"] is not None
