"""The example networks (examples/transformer_lm.py, examples/cnn.py) at tiny sizes.

Each test checks numbers against values derived here, independently of hesscli's own
code paths: parameter counts from the architecture's formula, block names from the
layer structure, the cross-entropy recomputed in NumPy from the logits, the GGN built
densely as Jᵀ H_ℓ J with ``jax.jacobian`` and ``jax.hessian``, the initial loss of a
near-zero-logit classifier (log of the number of classes), and causality by editing a
future token.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from hesscli.objective.files import load_file
from tests.conftest import ROOT

pytest.importorskip("flax")

LM = str(ROOT / "examples" / "transformer_lm.py")
CNN = str(ROOT / "examples" / "cnn.py")
D, LAYERS, HEADS, CONTEXT, SEQUENCES = 2, 2, 2, 4, 2
LM_P = {"d_model": D, "layers": LAYERS, "heads": HEADS, "context": CONTEXT,
        "sequences": SEQUENCES}
CHANNELS, SAMPLES = 2, 40
CNN_P = {"channels": CHANNELS, "samples": SAMPLES}


def flags(p: dict) -> list[str]:
    return [a for k, v in p.items() for a in ("-p", f"{k}={v}")]


def lm_leaves(d: int, layers: int, context: int) -> dict[str, int]:
    """Leaf name -> size, from the architecture (tied unembedding, bias-free dense layers)."""
    sizes = {"tok_embed.embedding": 256 * d, "pos_embed.embedding": context * d,
             "ln_f.scale": d, "ln_f.bias": d}
    for i in range(layers):
        sizes |= {f"block_{i}.ln1.scale": d, f"block_{i}.ln1.bias": d,
                  f"block_{i}.attn.qkv.kernel": d * 3 * d,
                  f"block_{i}.attn.out.kernel": d * d,
                  f"block_{i}.ln2.scale": d, f"block_{i}.ln2.bias": d,
                  f"block_{i}.mlp.fc.kernel": d * 4 * d,
                  f"block_{i}.mlp.proj.kernel": 4 * d * d}
    return sizes


def cnn_leaves(c: int) -> dict[str, int]:
    return {"conv1.kernel": 9 * c, "conv1.bias": c, "conv2.kernel": 9 * c * 2 * c,
            "conv2.bias": 2 * c, "dense.kernel": 2 * 2 * 2 * c * 10, "dense.bias": 10}


def float64(tree):
    """The point as hesscli computes with it by default (the files initialize in float32)."""
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), tree)


@pytest.fixture(scope="module")
def lm():
    f = load_file(LM, {k: str(v) for k, v in LM_P.items()})
    return f, float64(f.default_point(0))


@pytest.fixture(scope="module")
def cnn():
    f = load_file(CNN, {k: str(v) for k, v in CNN_P.items()})
    return f, float64(f.default_point(0))


def test_parameter_counts_follow_the_documented_formulas():
    """The counts the docstrings state (defaults ~10⁶ and ~10⁷) from the leaf formula."""
    assert sum(lm_leaves(128, 5, 64).values()) == 1_026_816
    assert sum(lm_leaves(320, 8, 64).values()) == 9_943_680
    for d, layers, context in ((128, 5, 64), (320, 8, 64), (D, LAYERS, CONTEXT)):
        assert sum(lm_leaves(d, layers, context).values()) == (
            12 * d * d * layers + 4 * d * layers + 256 * d + context * d + 2 * d)
    assert sum(cnn_leaves(16).values()) == 6090 == 18 * 16**2 + 92 * 16 + 10


@pytest.mark.parametrize("which", ["lm", "cnn"])
def test_point_is_named_by_layer(which, request):
    f, point = request.getfixturevalue(which)
    expected = lm_leaves(D, LAYERS, CONTEXT) if which == "lm" else cnn_leaves(CHANNELS)
    from hesscli.objective.layout import layout_of

    got = {leaf.path: leaf.size for leaf in layout_of(point).leaves}
    assert got == expected


def test_data_has_a_leading_sample_axis(lm, cnn):
    (f, _), (g, _) = lm, cnn
    x, y = f.data
    assert x.shape == y.shape == (SEQUENCES, CONTEXT) and x.dtype == jnp.int32
    text = (ROOT / "examples" / "data" / "python_docs.txt").read_bytes()
    # targets are the inputs shifted by one byte of the real text; the first window is
    # the text's first CONTEXT + 1 bytes
    np.testing.assert_array_equal(np.asarray(x[:, 1:]), np.asarray(y[:, :-1]))
    first = np.frombuffer(text[: CONTEXT + 1], dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(x[0]), first[:-1])
    np.testing.assert_array_equal(np.asarray(y[0]), first[1:])
    images, labels = g.data
    assert images.shape == (SAMPLES, 8, 8, 1) and labels.shape == (SAMPLES,)
    digits = np.load(ROOT / "examples" / "data" / "digits.npz")
    np.testing.assert_array_equal(np.asarray(images[..., 0]) * 16, digits["images"][:SAMPLES])
    assert digits["images"].shape == (1797, 8, 8) and np.bincount(digits["labels"]).sum() == 1797


def numpy_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    z = np.asarray(logits, dtype=np.float64).reshape(-1, logits.shape[-1])
    t = np.asarray(targets).reshape(-1)
    top = z.max(axis=1, keepdims=True)
    logsumexp = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return float(np.mean(logsumexp - z[np.arange(t.size), t]))


@pytest.mark.parametrize("which, classes", [("lm", 256), ("cnn", 10)])
def test_objective_is_output_loss_of_model(which, classes, request):
    """hesscli's derived objective = mean cross-entropy of the logits (NumPy), and at
    the initial point it is near log(classes): the logits start small."""
    f, point = request.getfixturevalue(which)
    x, y = f.data
    logits = np.asarray(f.module.model(point, x), dtype=np.float64)
    assert logits.shape == (*np.shape(y), classes)
    expected = numpy_cross_entropy(logits, np.asarray(y))
    assert float(f.fn(point)) == pytest.approx(expected, rel=1e-12)
    assert float(f.split.objective(point)) == pytest.approx(expected, rel=1e-12)
    assert abs(expected - math.log(classes)) < 0.05


def test_transformer_is_causal(lm):
    """Changing the token at position j changes no logits before j, and does change j's."""
    f, point = lm
    x = np.asarray(f.data[0])
    base = np.asarray(f.module.model(point, x))
    for j in range(CONTEXT):
        edited = x.copy()
        edited[:, j] = (edited[:, j] + 1) % 256
        out = np.asarray(f.module.model(point, edited))
        np.testing.assert_array_equal(out[:, :j], base[:, :j])
        assert np.min(np.max(np.abs(out[:, j:] - base[:, j:]), axis=-1)) > 0


def dense_ggn(f, point) -> np.ndarray:
    """Jᵀ H_ℓ J formed from ``jax.jacobian`` of the model and ``jax.hessian`` of the loss
    in the (flattened) outputs, in float64."""
    flat, unravel = ravel_pytree(point)
    x, y = f.data
    out = f.module.model(unravel(flat), x)
    jac = jax.jacobian(lambda v: f.module.model(unravel(v), x).reshape(-1))(flat)
    h_out = jax.hessian(lambda o: f.module.output_loss(o.reshape(out.shape), y))(
        out.reshape(-1))
    return np.asarray(jac.T @ h_out @ jac)


@pytest.mark.parametrize("which, spec, p", [("lm", LM, LM_P), ("cnn", CNN, CNN_P)])
def test_analyze_ggn_blocks(which, spec, p, request, hess):
    """``analyze --curvature ggn --blocks``: every block is a layer leaf, the spectrum is
    the dense Jᵀ H_ℓ J's (so PSD), and each block's extremes are its diagonal block's."""
    f, point = request.getfixturevalue(which)
    res = hess("analyze", spec, *flags(p), "--curvature", "ggn", "--blocks", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    expected = lm_leaves(D, LAYERS, CONTEXT) if which == "lm" else cnn_leaves(CHANNELS)
    assert doc["n"] == sum(expected.values())
    assert {b["name"]: b["size"] for b in doc["blocks"]["blocks"]} == expected
    g = dense_ggn(f, point)
    lam = np.linalg.eigvalsh(0.5 * (g + g.T))
    scale = float(np.max(np.abs(lam)))
    got = np.asarray(doc["eigenvalues"])
    assert doc["eigenvalues_complete"] and got.size == lam.size
    np.testing.assert_allclose(got, lam, atol=1e-9 * scale)
    # PSD: no eigenvalue below the zero tolerance, none counted negative
    assert doc["inertia"]["negative"] == 0 and got.min() >= -doc["tolerance"]
    assert doc["definiteness"] in ("positive_semidefinite", "positive_definite")
    # each block = the diagonal block of the dense GGN (leaves in ravel_pytree order)
    from hesscli.objective.layout import layout_of

    by_name = {b["name"]: b for b in doc["blocks"]["blocks"]}
    for leaf in layout_of(point).leaves:
        sl = slice(leaf.offset, leaf.offset + leaf.size)
        block = np.linalg.eigvalsh(g[sl, sl])
        assert by_name[leaf.path]["lambda_max"] == pytest.approx(block[-1], abs=1e-9 * scale)
        assert by_name[leaf.path]["lambda_min"] >= -1e-9 * scale


def test_transformer_hessian_blocks_per_layer(hess):
    """``analyze --blocks 1`` groups the transformer per layer; the block traces add up to
    the trace of the whole (dense) Hessian, and the Hessian is indefinite there."""
    res = hess("analyze", LM, *flags(LM_P), "--blocks", "1", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    names = {b["name"]: b["size"] for b in doc["blocks"]["blocks"]}
    per_layer: dict[str, int] = {}
    for leaf, size in lm_leaves(D, LAYERS, CONTEXT).items():
        per_layer[leaf.split(".")[0]] = per_layer.get(leaf.split(".")[0], 0) + size
    assert names == per_layer
    assert set(names) == {"tok_embed", "pos_embed", "ln_f", "block_0", "block_1"}
    total = sum(b["trace"] for b in doc["blocks"]["blocks"])
    scale = max(abs(v) for v in doc["eigenvalues"])
    assert total == pytest.approx(sum(doc["eigenvalues"]), abs=1e-8 * scale * doc["n"])
    assert doc["lambda_min"] < -doc["tolerance"] < doc["tolerance"] < doc["lambda_max"]


@pytest.mark.parametrize("which, spec, p, extra", [
    ("lm", LM, LM_P, ("--lr", "1e-2", "--steps", "20", "--monitor-every", "10")),
    ("cnn", CNN, CNN_P, ("--lr", "3e-2", "--steps", "25", "--batch-size", "16")),
])
def test_adam_decreases_the_loss(which, spec, p, extra, request, hess):
    """``train --optimizer adam`` (full batch, and minibatches of the leading sample axis):
    the full-data loss falls from about log(classes), and agrees with the objective."""
    f, point = request.getfixturevalue(which)
    res = hess("train", spec, *flags(p), "--optimizer", "adam", *extra, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    first = doc["history"][0]
    assert first["step"] == 0 and first["value"] == pytest.approx(float(f.fn(point)), rel=1e-12)
    assert doc["final_value"] < 0.95 * first["value"]  # 20-25 Adam steps: a clear fall
    assert doc["steps"] == int(extra[extra.index("--steps") + 1])
    if "--monitor-every" in extra:
        monitored = [r for r in doc["history"] if r.get("lambda_max") is not None]
        assert len(monitored) >= 2
        assert all(r["lambda_min"] <= r["lambda_max"] for r in monitored)


def test_block_table_keeps_numbers_whole_in_a_narrow_terminal():
    """At 80 columns, layer names fold and no number is cut short (an ellipsis)."""
    from rich.console import Console

    from hesscli.render.numbers import num
    from hesscli.render.structure_view import blocks_table
    from hesscli.spectra.blocks import BlockReport, BlockResult

    names = ["block_1.attn.qkv.kernel", "block_0.mlp.proj.kernel", "tok_embed.embedding"]
    values = [(-3.585e-05, 9.694e-05, -1.377e-06), (-0.0017, 0.02370, 0.05065),
              (-8.388, 4.889, -33.32)]
    blocks = tuple(BlockResult(
        name=n, size=4096, lambda_min=lo, lambda_max=hi, trace=tr, trace_standard_error=0.0,
        trace_exact=True, trace_estimator="exact", share=-0.01234, leak=0.99,
        coupling={m: 1.0 for m in names if m != n}, method="dense", residual=0.0, hvps=0)
        for n, (lo, hi, tr) in zip(names, values, strict=True))
    console = Console(width=80, record=True, force_terminal=False)
    console.print(blocks_table(BlockReport("leaf", blocks, -33.0, 0)))
    text = console.export_text()
    assert "…" not in text
    for lo, hi, tr in values:
        for v in (lo, hi, tr):
            assert num(v) in text
    # the folded names read whole when a row's lines are joined
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.split("│")[1:-1]]
            if cells[1]:  # the size column starts a row
                rows.append(["", ""])
            rows[-1][0] += cells[0]
            rows[-1][1] += cells[-1]
    assert [r[0] for r in rows] == names
    assert all(r[1] in names for r in rows)
