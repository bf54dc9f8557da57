"""GGN and Fisher of softmax cross-entropy in closed form (hesscli.losses), against dense J·H·Jᵀ.

The model is a tiny decoder-style language model (token and position
embeddings, one causal self-attention head, a residual tanh layer, logits over
the vocabulary), with ``output_loss = hesscli.losses.softmax_cross_entropy``.
References are formed another way than hesscli does: the model's Jacobian J
with ``jax.jacobian`` (dense), the output Hessian as the block-diagonal matrix
``scale·(diag p − ppᵀ)`` written out in NumPy from ``p = softmax(logits)``,
and (to check that reference) ``jax.hessian`` of the cross-entropy written with
``log_softmax``. Both sides are exact up to rounding in float64, so they agree
to 1e-12 relative to the matrix's largest entry.

The memory of one GGN or Fisher matvec is XLA's memory analysis of the compiled
product (deterministic for a given program), at a vocabulary of 32k: below 4×
the logits' bytes (issue 19).
"""

import numpy as np
import pytest

from hesscli.curvature import fisher as fisher_module
from hesscli.curvature import ggn as ggn_module
from hesscli.curvature.closed_form import output_hessian_product
from hesscli.curvature.exact import ExactCurvature
from hesscli.curvature.operators import operator_curvature
from hesscli.errors import ObjectiveError
from hesscli.jaxconf import jax_module
from hesscli.losses import SoftmaxCrossEntropy, closed_form, softmax_cross_entropy
from hesscli.objective.bind import bind
from hesscli.objective.files import load_file

jax = jax_module()
jnp = jax.numpy
RTOL = 1e-12

LM = """
import jax
import jax.numpy as jnp
import numpy as np

from hesscli.losses import SoftmaxCrossEntropy, softmax_cross_entropy

V, D, B, T = {V}, {D}, {B}, {T}
_rng = np.random.default_rng(0)
_tokens = _rng.integers(0, V, (B, T + 1))
data = (jnp.asarray(_tokens[:, :-1]), jnp.asarray(_tokens[:, 1:]))
x0 = {{"embed": jnp.asarray(_rng.standard_normal((V, D))),
       "pos": jnp.asarray(0.5 * _rng.standard_normal((T, D))),
       "qkv": jnp.asarray(_rng.standard_normal((D, 3 * D)) / np.sqrt(D)),
       "proj": jnp.asarray(_rng.standard_normal((D, D)) / np.sqrt(D)),
       "mlp": jnp.asarray(_rng.standard_normal((D, D)) / np.sqrt(D)),
       "head": jnp.asarray(_rng.standard_normal((D, V)) / np.sqrt(D))}}
_causal = np.tril(np.ones((T, T), dtype=bool))


def model(params, tokens):
    h = params["embed"][tokens] + params["pos"]
    q, k, v = jnp.split(h @ params["qkv"], 3, axis=-1)
    scores = jnp.where(_causal, q @ jnp.swapaxes(k, -1, -2) / np.sqrt(D), -jnp.inf)
    h = h + jax.nn.softmax(scores, axis=-1) @ v @ params["proj"]
    h = h + jnp.tanh(h @ params["mlp"])
    return h @ params["head"]

{LOSS}
"""

LOSSES = {
    "mean": "output_loss = softmax_cross_entropy\n",
    "sum": 'output_loss = SoftmaxCrossEntropy(reduction="sum")\n',
    # the same loss written out: hesscli differentiates it (the generic path)
    "written": "def output_loss(logits, labels):\n"
               "    logp = jax.nn.log_softmax(logits, axis=-1)\n"
               "    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))\n",
    # a function that calls the helper is an ordinary loss to hesscli
    "wrapped": "def output_loss(logits, labels):\n"
               "    return softmax_cross_entropy(logits, labels)\n",
    # probability rows as targets (soft labels)
    "soft": "data = (data[0], jax.nn.softmax(jnp.asarray(_rng.standard_normal((B, T, V))), -1))\n"
            "output_loss = softmax_cross_entropy\n",
}
SMALL = {"V": 11, "D": 6, "B": 2, "T": 5}


def lm_file(tmp_path_factory, loss, **sizes):
    size = {**SMALL, **sizes}
    path = tmp_path_factory.mktemp("lm") / f"lm_{loss}.py"
    path.write_text(LM.format(LOSS=LOSSES[loss], **size))
    return path


def bound(path):
    obj = bind(load_file(str(path), {}), None)
    return obj, ExactCurvature(obj)


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    """Each loss's (objective, base backend), bound once for the module."""
    cache = {}

    def get(loss):
        if loss not in cache:
            cache[loss] = bound(lm_file(tmp_path_factory, loss))
        return cache[loss]

    return get


def jacobian_and_logits(obj):
    split = obj.file.split
    x = jnp.asarray(obj.x)
    model = lambda t: split.model(obj.unravel(t), split.inputs)  # noqa: E731
    jac = np.asarray(jax.jacobian(model)(x))
    logits = np.asarray(model(x))
    return jac.reshape(-1, obj.n), logits


def analytic_output_hessian(logits, scale, mass=None):
    """Block-diagonal ``scale·s·(diag p − ppᵀ)`` over the positions, as a dense matrix."""
    v = logits.shape[-1]
    z = logits.reshape(-1, v)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    mass = np.ones(len(p)) if mass is None else np.asarray(mass).reshape(-1)
    blocks = [s * (np.diag(pi) - np.outer(pi, pi)) for pi, s in zip(p, mass, strict=True)]
    h = np.zeros((z.size, z.size))
    for i, b in enumerate(blocks):
        h[i * v:(i + 1) * v, i * v:(i + 1) * v] = b
    return scale * h


def reference(obj, scale, mass=None):
    jac, logits = jacobian_and_logits(obj)
    return jac.T @ analytic_output_hessian(logits, scale, mass) @ jac


def assert_close(actual, expected):
    err = np.abs(actual - expected).max()
    assert err <= RTOL * np.abs(expected).max(), err / np.abs(expected).max()


# ---- the closed forms themselves -------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("targets", ["labels", "rows", "weights"])
def test_hessian_product_is_the_cross_entropy_hessian(reduction, targets):
    rng = np.random.default_rng(4)
    z = jnp.asarray(3.0 * rng.standard_normal((3, 4, 7)))
    if targets == "labels":
        t, mass = jnp.asarray(rng.integers(0, 7, (3, 4))), None
    else:
        t = jax.nn.softmax(jnp.asarray(rng.standard_normal(z.shape)), -1)
        if targets == "weights":  # non-normalized weights: the Hessian scales by their mass
            t = t * jnp.asarray(rng.uniform(0.5, 2.0, (3, 4, 1)))
        mass = np.asarray(t).sum(-1)
    loss = SoftmaxCrossEntropy(reduction)
    scale = 1 / 12 if reduction == "mean" else 1.0

    def written(o):  # the loss written out, differentiated by jax.hessian
        logp = jax.nn.log_softmax(o, axis=-1)
        if targets == "labels":
            per = -jnp.take_along_axis(logp, t[..., None], axis=-1)[..., 0]
        else:
            per = -jnp.sum(t * logp, axis=-1)
        return scale * jnp.sum(per)

    assert float(loss(z, t)) == pytest.approx(float(written(z)), rel=1e-14)
    dense = np.asarray(jax.hessian(written)(z)).reshape(z.size, z.size)
    expected = analytic_output_hessian(np.asarray(z), scale, mass)
    assert_close(dense, expected)  # the reference's formula is the Hessian
    u = rng.standard_normal(z.shape)
    hu = np.asarray(loss.hessian_product(z, t)(jnp.asarray(u))).reshape(-1)
    np.testing.assert_allclose(hu, expected @ u.reshape(-1), rtol=0,
                               atol=RTOL * np.abs(expected).max() * np.abs(u).sum())
    fu = np.asarray(loss.fisher_product(z)(jnp.asarray(u))).reshape(-1)
    fisher = analytic_output_hessian(np.asarray(z), scale)  # target-free
    np.testing.assert_allclose(fu, fisher @ u.reshape(-1), rtol=0,
                               atol=RTOL * np.abs(fisher).max() * np.abs(u).sum())


def test_only_the_helper_itself_is_recognized():
    assert closed_form(softmax_cross_entropy) is softmax_cross_entropy
    assert closed_form(SoftmaxCrossEntropy("sum")) == SoftmaxCrossEntropy("sum")

    class Subclass(SoftmaxCrossEntropy):
        def __call__(self, logits, targets):
            return 2 * super().__call__(logits, targets)

    assert closed_form(Subclass()) is None  # it could compute anything
    assert closed_form(lambda z, y: softmax_cross_entropy(z, y)) is None
    # an unknown loss goes through autodiff: the product is its Hessian's
    z, u = jnp.arange(6.0).reshape(2, 3), jnp.ones((2, 3))
    hu = output_hessian_product(lambda o, t: jnp.sum(o ** 3) / 6, z, None)(u)
    np.testing.assert_allclose(np.asarray(hu), np.asarray(z), rtol=1e-15)


def test_bad_arguments_are_one_clear_error():
    with pytest.raises(ValueError, match="reduction='none'"):
        SoftmaxCrossEntropy("none")
    with pytest.raises(ValueError, match=r"expected integer labels of shape \(2,\)"):
        softmax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="no class axis"):
        softmax_cross_entropy(jnp.zeros((2, 1)), jnp.zeros(2, dtype=int))


def test_a_label_outside_the_classes_is_nan_not_another_class():
    z = jnp.zeros((3, 4))
    for bad in (-1, 4):  # -1 would otherwise index the last class
        assert np.isnan(float(softmax_cross_entropy(z, jnp.array([0, bad, 2]))))
    assert float(softmax_cross_entropy(z, jnp.array([0, 3, 2]))) == pytest.approx(np.log(4))


def test_import_hesscli_losses_does_not_import_jax():
    import subprocess
    import sys

    code = ("import sys, hesscli; hesscli.losses.softmax_cross_entropy; "
            "print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# ---- GGN and Fisher on the tiny transformer --------------------------------------------


@pytest.mark.parametrize("loss, scale", [("mean", 1 / 10), ("sum", 1.0)])
@pytest.mark.parametrize("kind", ["ggn", "fisher"])
def test_dense_operator_equals_jacobian_sandwich(lms, loss, scale, kind):
    obj, base = lms(loss)
    expected = reference(obj, scale)  # B·T = 10 positions
    op = operator_curvature(obj, base, kind)
    assert_close(op.hessian(obj.x).matrix, expected)
    v = np.random.default_rng(1).standard_normal(obj.n)
    hv = op.hvp(obj.x, v)
    np.testing.assert_allclose(hv, expected @ v, rtol=0,
                               atol=RTOL * np.abs(expected).max() * np.abs(v).sum())


def test_sum_is_the_count_times_the_mean(lms):
    mean, sum_ = (operator_curvature(*lms(k), "ggn") for k in ("mean", "sum"))
    x = lms("mean")[0].x
    assert_close(sum_.hessian(x).matrix, 10 * mean.hessian(x).matrix)


def test_soft_targets(lms):
    obj, base = lms("soft")
    targets = np.asarray(obj.file.split.targets)
    expected = reference(obj, 1 / 10, targets.sum(-1))
    for kind in ("ggn", "fisher"):
        assert_close(operator_curvature(obj, base, kind).hessian(obj.x).matrix, expected)


def test_empirical_fisher_with_the_helper(lms):
    # (1/B) Σ_b g_b g_bᵀ with g_b the gradient of sequence b's mean loss, here formed with
    # jax.jacobian of the per-sequence losses written with log_softmax
    obj, base = lms("mean")
    split = obj.file.split

    def per_sequence(t):
        logp = jax.nn.log_softmax(split.model(obj.unravel(t), split.inputs), axis=-1)
        picked = jnp.take_along_axis(logp, split.targets[..., None], axis=-1)[..., 0]
        return -jnp.mean(picked, axis=-1)

    g = np.asarray(jax.jacobian(per_sequence)(jnp.asarray(obj.x)))
    expected = g.T @ g / g.shape[0]
    assert_close(operator_curvature(obj, base, "empirical-fisher").hessian(obj.x).matrix,
                 expected)


def test_float32_matches_the_float64_reference(tmp_path_factory):
    # float32 products: each entry is a sum of a few hundred products of O(1) numbers,
    # so the error is a few hundred ε₃₂ ≈ 1e-5 of the largest entry, not 1e-12
    path = lm_file(tmp_path_factory, "mean")
    obj64, _ = bound(path)
    expected = reference(obj64, 1 / 10)
    obj = bind(load_file(str(path), {}), None, dtype="float32")
    op = operator_curvature(obj, ExactCurvature(obj), "ggn")
    matrix = op.hessian(obj.x).matrix
    err = np.abs(matrix - expected).max() / np.abs(expected).max()
    assert err < 3e-5, err


@pytest.mark.parametrize("loss", ["written", "wrapped"])
def test_autodiff_path_agrees_and_says_so(lms, loss):
    obj, base = lms(loss)
    op = operator_curvature(obj, base, "ggn")
    assert_close(op.hessian(obj.x).matrix, reference(obj, 1 / 10))
    assert "one output-loss HVP" in op.notes[0] and "closed-form" not in op.notes[0]


def test_written_loss_still_gets_the_probed_likelihood(lms):
    # the generic check (derivatives at perturbed logits) on (B, T, V) logits
    obj, base = lms("written")
    op = operator_curvature(obj, base, "fisher")
    assert "categorical; mean over 10 predictions" in op.notes[0]
    assert_close(op.hessian(obj.x).matrix, reference(obj, 1 / 10))


def test_output_hessian_too_large_to_probe_is_not_checked(lms, monkeypatch):
    obj, base = lms("written")
    monkeypatch.setattr(ggn_module, "BLOCK_LIMIT", 4)  # 2 samples of 55 outputs: no blocks,
    monkeypatch.setattr(ggn_module, "DENSE_OUTPUTS", 4)  # 110 outputs: Krylov probes ...
    monkeypatch.setattr(ggn_module, "KRYLOV_BYTES", 2 * 40 * 110 * 8 - 1)  # ... too large
    op = operator_curvature(obj, base, "ggn")
    assert op.output_hessian is None
    assert "which was not checked here; it may be indefinite" in op.notes[1]
    monkeypatch.setattr(ggn_module, "KRYLOV_BYTES", 2 * 40 * 110 * 8)  # just fits
    facts = operator_curvature(obj, base, "ggn").output_hessian
    assert facts is not None and "Lanczos" in facts.how


def test_ggn_is_psd_by_construction_without_probes(lms):
    obj, base = lms("mean")
    op = operator_curvature(obj, base, "ggn")
    facts = op.output_hessian
    # not "as one dense 110×110 matrix", which the probes would have formed
    assert facts.psd is True and facts.lambda_min == 0.0 and "closed form" in facts.how
    # λmax(H_ℓ) ≤ scale/2 is an upper bound: check it against the formed H_ℓ
    _, logits = jacobian_and_logits(obj)
    lam = np.linalg.eigvalsh(analytic_output_hessian(logits, 1 / 10))
    assert lam.max() <= facts.lambda_max and abs(lam.min()) <= 1e-15
    assert "closed-form output-Hessian product" in op.notes[0]
    assert "positive semidefinite by construction" in op.notes[1]


def test_fisher_takes_the_likelihood_without_probes(lms, monkeypatch):
    obj, base = lms("sum")

    def no_probe(*args, **kwargs):
        raise AssertionError("output_loss probed for a closed-form loss")

    monkeypatch.setattr(fisher_module, "_output_derivatives", no_probe)
    op = operator_curvature(obj, base, "fisher")
    assert "softmax cross-entropy (categorical; sum over its predictions)" in op.notes[0]


def test_declaring_another_likelihood_is_an_objective_error(tmp_path_factory):
    path = lm_file(tmp_path_factory, "mean")
    path.write_text(path.read_text() + '\nlikelihood = "squared_error"\n')
    obj, base = bound(path)
    with pytest.raises(ObjectiveError, match="likelihood = 'squared_error', but output_loss "
                                             "is SoftmaxCrossEntropy"):
        operator_curvature(obj, base, "fisher")


def test_cli_analyze_with_the_helper(hess, tmp_path_factory):
    import jsonschema

    from hesscli.schemas import load_schema

    path = lm_file(tmp_path_factory, "mean")
    res = hess("analyze", str(path), "--curvature", "ggn", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("analyze"))
    assert doc["inertia"]["negative"] == 0
    assert any("closed-form output-Hessian product" in note for note in doc["notes"])
    assert any("positive semidefinite by construction" in note for note in doc["notes"])


# ---- memory at a vocabulary of 32k -----------------------------------------------------

BIG = {"V": 32768, "D": 16, "B": 4, "T": 64}  # logits: 256 × 32768 float64 = 64 MiB


def compiled_bytes(fn, *args):
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
    if analysis is None:
        pytest.skip("this backend reports no memory analysis")
    return analysis.temp_size_in_bytes + analysis.output_size_in_bytes


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    obj, base = bound(lm_file(tmp_path_factory, "mean", **BIG))
    logits = BIG["B"] * BIG["T"] * BIG["V"] * np.dtype(obj.dtype).itemsize
    return obj, base, logits


@pytest.mark.parametrize("kind", ["ggn", "fisher"])
def test_memory_of_a_matvec_at_vocab_32k_is_below_four_logits(big, kind):
    obj, base, logits = big
    op = operator_curvature(obj, base, kind)
    x = jax.ShapeDtypeStruct((obj.n,), jnp.dtype(obj.dtype))
    # one product, as op.hvp runs it (forward pass, linearization, matvec)
    one = compiled_bytes(lambda x, v: op.operator_at(x)(v), x, x)
    # the point linearized once and kept across matvecs, as the eigensolvers run it
    at = op.operator_at

    def three(x, v):
        mv = at(x)
        return jax.lax.fori_loop(0, 3, lambda i, w: mv(w / jnp.linalg.norm(w)), v)

    resident = compiled_bytes(three, x, x)
    for total in (one, resident):
        assert logits <= total < 4 * logits, total / logits  # ≥ 1: the logits are held
