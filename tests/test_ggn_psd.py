"""Structural claims about the GGN and the Fisher are checked, not assumed.

The GGN JᵀH_ℓJ is positive semidefinite only where the output loss's Hessian
H_ℓ (in the outputs) is: with −mean squared error or a cosine loss it is not,
and the output must not say "positive semidefinite by construction". The
references are formed another way than hesscli does: H_ℓ with ``jax.hessian``
of the output loss over all the outputs at once (dense, no block structure
assumed), the GGN from ``jax.jacobian`` of the model.

``--curvature fisher`` accepts only a Gaussian (squared error) or categorical
(softmax cross-entropy) likelihood, recognized by its derivatives: an L1 loss
at residuals of exactly ±1 has the value of a squared error there (|r| = r²),
which a one-point value check accepted.
"""

import re

import jsonschema
import numpy as np
import pytest

from hesscli.curvature import ggn as ggn_module
from hesscli.curvature.exact import ExactCurvature
from hesscli.curvature.operators import operator_curvature
from hesscli.errors import InputError
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import bind
from hesscli.objective.files import load_file
from hesscli.schemas import load_schema

jax = jax_module()
jnp = jax.numpy

HEADER = """
import jax.numpy as jnp
import numpy as np

_rng = np.random.default_rng(1)
data = (jnp.asarray(_rng.standard_normal((8, 3))), jnp.asarray(_rng.standard_normal((8, 2))))
x0 = {"w1": jnp.asarray(_rng.standard_normal((3, 4))),
      "w2": jnp.asarray(_rng.standard_normal((4, 2)))}


def model(params, inputs):
    return jnp.tanh(inputs @ params["w1"]) @ params["w2"]
"""

LOSSES = {
    "neg_mse": "def output_loss(outputs, targets):\n"
               "    return -jnp.mean((outputs - targets) ** 2)\n",
    "cosine": "def output_loss(outputs, targets):\n"
              "    cos = jnp.sum(outputs * targets, axis=-1) / (\n"
              "        jnp.linalg.norm(outputs, axis=-1) * jnp.linalg.norm(targets, axis=-1))\n"
              "    return jnp.mean(1.0 - cos)\n",
    "mse": "def output_loss(outputs, targets):\n"
           "    return 0.5 * jnp.mean(jnp.sum((outputs - targets) ** 2, axis=-1))\n",
    # couples the samples (not a mean of per-sample terms): H_ℓ is not block diagonal
    "coupled": "def output_loss(outputs, targets):\n"
               "    r = outputs - targets\n"
               "    return jnp.mean(r ** 2) - 4.0 * jnp.mean(r) ** 2\n",
}


def split_file(write, loss):
    return write(f"{loss}.py", HEADER + "\n\n" + LOSSES[loss])


def bound(path):
    obj = bind(load_file(str(path), {}), None)
    return obj, ExactCurvature(obj)


def reference_output_hessian(obj):
    """Eigenvalues of H_ℓ, formed densely over all outputs with jax.hessian."""
    split = obj.file.split
    out = split.model(obj.unravel(jnp.asarray(obj.x)), split.inputs)
    h = np.asarray(jax.hessian(lambda o: split.output_loss(o, split.targets))(out))
    size = out.size
    return np.linalg.eigvalsh(h.reshape(size, size))


def dense_ggn(obj):
    split = obj.file.split
    x = jnp.asarray(obj.x)
    jac = np.asarray(jax.jacobian(lambda t: split.model(obj.unravel(t), split.inputs))(x))
    out = split.model(obj.unravel(x), split.inputs)
    h = np.asarray(jax.hessian(lambda o: split.output_loss(o, split.targets))(out))
    jf = jac.reshape(-1, obj.n)
    return jf.T @ h.reshape(jf.shape[0], jf.shape[0]) @ jf


@pytest.mark.parametrize("loss", ["neg_mse", "cosine", "coupled"])
def test_a_loss_not_convex_in_the_outputs_gives_no_psd_claim(write, loss):
    obj, base = bound(split_file(write, loss))
    lam = reference_output_hessian(obj)
    assert lam.min() < -1e-3 * np.abs(lam).max()  # the premise: H_ℓ is indefinite here
    ggn = operator_curvature(obj, base, "ggn")
    facts = ggn.output_hessian
    assert facts.psd is False and facts.exact
    assert facts.lambda_min == pytest.approx(lam.min(), rel=1e-10)
    assert facts.lambda_max == pytest.approx(lam.max(), rel=1e-10)
    text = " ".join(ggn.notes)
    assert "by construction" not in text
    assert "NOT guaranteed positive semidefinite" in text and "may be indefinite" in text
    # the claim it no longer makes was false: the GGN itself has negative eigenvalues
    g = dense_ggn(obj)
    assert np.linalg.eigvalsh(g).min() < -1e-3 * np.abs(g).max()
    if loss == "coupled":
        assert "dense" in facts.how  # no per-sample blocks: formed densely
    else:
        assert "8 per-sample 2×2 blocks" in facts.how


def test_neg_mse_output_hessian_is_minus_two_over_the_output_count(write):
    # −mean((m − y)²) over 8×2 outputs: H_ℓ = −(2/16)·I exactly
    obj, base = bound(split_file(write, "neg_mse"))
    facts = operator_curvature(obj, base, "ggn").output_hessian
    assert facts.lambda_min == pytest.approx(-0.125, rel=1e-14)
    assert facts.lambda_max == pytest.approx(-0.125, rel=1e-14)


@pytest.mark.parametrize("spec", ["mse", "classifier"])
def test_a_convex_output_loss_keeps_the_psd_claim(write, spec):
    if spec == "classifier":
        obj, base = bound_builtin("classifier")
    else:
        obj, base = bound(split_file(write, spec))
    lam = reference_output_hessian(obj)
    facts = operator_curvature(obj, base, "ggn").output_hessian
    assert facts.psd is True
    assert facts.lambda_max == pytest.approx(lam.max(), rel=1e-10)
    # cross-entropy's blocks diag p − ppᵀ are singular: λmin is zero up to rounding
    assert abs(facts.lambda_min - lam.min()) <= 1e-12 * lam.max()
    note = " ".join(operator_curvature(obj, base, "ggn").notes)
    assert "positive semidefinite by construction (the output loss is convex" in note


def bound_builtin(name):
    obj = bind(load_file(name, {"width": "3", "inputs": "3", "samples": "12"}), None)
    return obj, ExactCurvature(obj)


def test_without_block_structure_or_dense_room_probes_refute_but_do_not_prove(
        write, monkeypatch):
    monkeypatch.setattr(ggn_module, "DENSE_OUTPUTS", 4)  # 16 outputs: too many, so Lanczos
    obj, base = bound(split_file(write, "coupled"))
    lam = reference_output_hessian(obj)
    facts = operator_curvature(obj, base, "ggn").output_hessian
    assert not facts.exact and facts.psd is False
    assert facts.lambda_min >= lam.min() - 1e-12  # a Ritz value bounds λmin from above
    assert facts.lambda_min < 0
    # a convex coupled loss: the probes find no negative curvature and cannot prove PSD
    path = write("coupled_convex.py", HEADER + "\n\n" + LOSSES["coupled"].replace(
        "- 4.0", "+ 4.0"))
    obj, base = bound(path)
    assert reference_output_hessian(obj).min() > 0
    ggn = operator_curvature(obj, base, "ggn")
    assert ggn.output_hessian.psd is None
    text = " ".join(ggn.notes)
    assert "not known to be positive semidefinite" in text and "by construction" not in text


# ---- end to end -----------------------------------------------------------------------


def lambda_in_note(notes):
    found = [re.search(r"λmin\(H_ℓ\) = (\S+?)[ ,)]", n) for n in notes]
    found = [float(m.group(1)) for m in found if m]
    assert len(found) == 1, notes
    return found[0]


@pytest.mark.parametrize("loss", ["neg_mse", "cosine"])
def test_analyze_json_notes_say_the_ggn_may_be_indefinite(hess, write, loss):
    path = split_file(write, loss)
    res = hess("analyze", str(path), "--curvature", "ggn", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("analyze"))
    assert doc["classification"] is None
    assert not any("by construction" in note for note in doc["notes"])
    assert any("may be indefinite" in note for note in doc["notes"])
    obj, _ = bound(path)
    lam = reference_output_hessian(obj).min()
    assert lambda_in_note(doc["notes"]) == pytest.approx(lam, rel=1e-3)  # printed to 4 digits
    # the dense GGN spectrum has the negative eigenvalues the old sentence denied
    g = np.linalg.eigvalsh(dense_ggn(obj))
    tol = doc["tolerance"]
    assert doc["inertia"]["negative"] == int(np.sum(g < -tol)) > 0


def test_analyze_table_does_not_call_an_indefinite_ggn_psd(hess, write):
    res = hess("analyze", str(split_file(write, "cosine")), "--curvature", "ggn")
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.replace("│", " ").split())
    assert "by construction" not in text
    assert "negative eigenvalue" in text and "not convex in the outputs" in text
    assert "may be indefinite" in text


def test_analyze_with_a_convex_loss_still_says_psd(hess, write):
    res = hess("analyze", str(split_file(write, "mse")), "--curvature", "ggn", "--format",
               "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert any("positive semidefinite by construction" in note for note in doc["notes"])
    assert doc["inertia"]["negative"] == 0


def test_side_by_side_headline_credits_the_ggn_its_own_negative_curvature(hess, write):
    res = hess("spectrum", str(split_file(write, "neg_mse")), "--curvature", "hessian,ggn")
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.replace("│", " ").split())
    assert "PSD by construction" not in text
    assert "from the GGN's own negative eigenvalues" in text


def test_train_notes_say_the_monitored_ggn_may_be_indefinite(hess, write):
    res = hess("train", str(split_file(write, "cosine")), "--steps", "4", "--monitor-every",
               "2", "--curvature", "ggn", "--format", "json")
    assert res.exit_code == 0, res.output
    notes = res.json()["notes"]
    assert any(n.startswith("at the start point: the GGN JᵀH_ℓJ is NOT guaranteed")
               for n in notes)
    assert not any("by construction" in n for n in notes)


# ---- the Fisher accepts known likelihoods only ----------------------------------------

L1_AT_UNIT_RESIDUALS = """
import jax.numpy as jnp
import numpy as np

_inputs = np.arange(12.0).reshape(6, 2) - 5.0
_signs = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
x0 = jnp.array([1.0, -2.0])
data = (jnp.asarray(_inputs), jnp.asarray(_inputs @ np.array([1.0, -2.0]) + _signs))


def model(params, inputs):
    return inputs @ params


def output_loss(outputs, targets):
    return jnp.mean(jnp.abs(outputs - targets))
"""


def test_l1_loss_at_unit_residuals_is_refused_by_fisher(hess, write):
    path = write("l1.py", L1_AT_UNIT_RESIDUALS)
    obj, base = bound(path)
    split = obj.file.split
    out = np.asarray(split.model(obj.unravel(obj.x), split.inputs))
    y = np.asarray(split.targets)
    # the premise: every residual is exactly ±1, so the value is a squared error's,
    # c·Σ(m − y)² with c = ℓ(y + 1)/size, which a one-point value check accepted
    assert set(np.abs(out - y).tolist()) == {1.0}
    c = float(split.output_loss(jnp.asarray(y + 1.0), split.targets)) / y.size
    assert float(split.output_loss(jnp.asarray(out), split.targets)) == pytest.approx(
        c * np.sum((out - y) ** 2), rel=1e-15)
    with pytest.raises(InputError, match="neither a squared error"):
        operator_curvature(obj, base, "fisher")
    res = hess("analyze", str(path), "--curvature", "fisher")
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --curvature fisher accepts")
    assert "squared error" in lines[0] and "softmax cross-entropy" in lines[0]
    assert "--curvature ggn" in lines[0] and "Traceback" not in res.stderr


@pytest.mark.parametrize("loss", ["neg_mse", "cosine"])
def test_fisher_refuses_non_likelihood_losses(hess, write, loss):
    res = hess("analyze", str(split_file(write, loss)), "--curvature", "fisher")
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: --curvature fisher accepts")
    assert "--curvature ggn" in res.stderr and "Traceback" not in res.stderr


def test_fisher_still_accepts_squared_error_with_its_scale(write):
    obj, base = bound(split_file(write, "mse"))
    fisher = operator_curvature(obj, base, "fisher")
    # ℓ = (1/2N) Σ‖m − y‖² with N = 8: c = 1/16, so F = 2c·JᵀJ = JᵀJ/8 = the GGN
    np.testing.assert_allclose(fisher.hessian(obj.x).matrix, dense_ggn(obj), rtol=1e-12,
                               atol=1e-14)
    assert "0.0625" in fisher.notes[0]


@pytest.mark.parametrize("loss, psd", [("neg_mse", False), ("mse", True)])
def test_float32_point_with_float64_data(hess, write, loss, psd):
    """--dtype float32 with float64 data: the model's outputs stay float64, and the
    output-Hessian probes must follow them (a float32 probe made jax.jvp fail)."""
    res = hess("analyze", str(split_file(write, loss)), "--dtype", "float32", "--curvature",
               "ggn", "--format", "json")
    assert res.exit_code == 0, res.output
    notes = " ".join(res.json()["notes"])
    assert ("positive semidefinite by construction" in notes) is psd
    assert ("may be indefinite" in notes) is not psd
