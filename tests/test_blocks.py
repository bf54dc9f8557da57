"""Per-layer blocks against the diagonal blocks of the dense Hessian of a small tanh MLP.

The reference Hessian is ``jax.hessian`` of the objective's flat function, formed
independently of hesscli's curvature backends; its diagonal blocks H[idx, idx]
give each block's eigenvalues and trace by LAPACK, and H[idx_j, idx_i] u the
coupling. The blocks partition the coordinates, so their traces sum to tr H.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hesscli.analysis.blocks import analyze_blocks
from hesscli.api import load
from hesscli.curvature.exact import ExactCurvature
from hesscli.errors import InputError
from hesscli.jaxconf import jax_module
from hesscli.spectra.blocks import group_blocks

jax = jax_module()
MLP = ("width=4", "inputs=5", "outputs=3", "samples=20")  # n = 6·4 + 5·3 = 39


@pytest.fixture(scope="module")
def mlp():
    obj = load("mlp", None, MLP, seed=0, dtype="float64", method="auto")
    h = np.asarray(jax.hessian(obj.flat_fn)(jax.numpy.asarray(obj.x)))
    return obj, ExactCurvature(obj), 0.5 * (h + h.T)


def reference(h, idx):
    hb = h[np.ix_(idx, idx)]
    return np.linalg.eigvalsh(hb), float(np.trace(hb))


@pytest.mark.parametrize("formed", ["from HVPs", "sliced"])
def test_leaf_blocks_match_the_dense_diagonal_blocks(mlp, formed):
    obj, cur, h = mlp
    report = analyze_blocks(obj, cur, "leaf", dense=h if formed == "sliced" else None)
    _, blocks = group_blocks(obj.layout, "leaf")
    assert sorted(b.name for b in report.blocks) == \
        sorted(["hidden.w", "hidden.b", "head.w", "head.b"])
    by_name = {b.name: b for b in blocks}
    scale = np.abs(np.linalg.eigvalsh(h)).max()
    for r in report.blocks:
        lam, tr = reference(h, by_name[r.name].indices)
        assert r.lambda_min == pytest.approx(lam[0], abs=1e-12 * scale)
        assert r.lambda_max == pytest.approx(lam[-1], abs=1e-12 * scale)
        assert r.trace == pytest.approx(tr, abs=1e-12 * scale * r.size)
        assert r.trace_exact and r.method == "dense"
    # ranked by λmax; the traces partition tr H; the shares sum to one
    assert [r.lambda_max for r in report.blocks] == sorted(
        (r.lambda_max for r in report.blocks), reverse=True)
    assert report.sharpest.name == report.blocks[0].name
    assert report.total_trace == pytest.approx(np.trace(h), rel=1e-12)
    assert sum(r.share for r in report.blocks) == pytest.approx(1.0, rel=1e-12)
    # squared error on the 3 outputs: the head bias block is 2·I₃ (mean of Σ_k (ŷ_k − y_k)²)
    head_b = next(r for r in report.blocks if r.name == "head.b")
    assert head_b.lambda_min == pytest.approx(2.0, rel=1e-12)
    assert head_b.lambda_max == pytest.approx(2.0, rel=1e-12)


def test_coupling_is_the_off_diagonal_blocks_on_the_top_eigenvector(mlp):
    obj, cur, h = mlp
    report = analyze_blocks(obj, cur, "leaf", dense=h)
    _, blocks = group_blocks(obj.layout, "leaf")
    idx = {b.name: b.indices for b in blocks}
    r = next(r for r in report.blocks if r.name == "hidden.w")
    lam, vec = np.linalg.eigh(h[np.ix_(idx["hidden.w"], idx["hidden.w"])])
    assert lam[-1] - lam[-2] > 1e-6 * abs(lam[-1])  # a simple top eigenvalue here
    u = vec[:, -1] if abs(lam[-1]) >= abs(lam[0]) else vec[:, 0]
    for other, value in r.coupling.items():
        expect = np.linalg.norm(h[np.ix_(idx[other], idx["hidden.w"])] @ u)
        assert value == pytest.approx(expect, rel=1e-10, abs=1e-13)
    hu = h[:, idx["hidden.w"]] @ u
    own = np.linalg.norm(hu[idx["hidden.w"]])
    assert r.leak == pytest.approx(math.sqrt(1 - (own / np.linalg.norm(hu)) ** 2), rel=1e-10)
    # head.b's top eigenvalue (2) is triple: the coupling is the RMS over its eigenspace,
    # i.e. ‖H_j,head.b‖_F / √3 (any orthonormal basis of R³ is an eigenbasis)
    hb = next(r for r in report.blocks if r.name == "head.b")
    for other, value in hb.coupling.items():
        expect = np.linalg.norm(h[np.ix_(idx[other], idx["head.b"])]) / math.sqrt(3)
        assert value == pytest.approx(expect, rel=1e-10)


def test_matrix_free_blocks_agree_with_the_dense_ones(mlp):
    obj, cur, h = mlp
    from hesscli.analysis.blocks import matmat_of
    from hesscli.spectra.blocks import block_spectra

    _, blocks = group_blocks(obj.layout, "1")
    report = block_spectra(matmat_of(cur, obj.x), obj.n, blocks, dense_limit=0,
                           trace_hvps=30, seed=0)
    for r in report.blocks:
        lam, tr = reference(h, next(b for b in blocks if b.name == r.name).indices)
        assert r.method == "lanczos" and not r.trace_exact
        assert r.residual < 1e-7
        assert r.lambda_min == pytest.approx(lam[0], abs=1e-8)
        assert r.lambda_max == pytest.approx(lam[-1], abs=1e-8)
        assert abs(r.trace - tr) <= 4 * r.trace_standard_error + 1e-9


def test_groupings(mlp):
    obj, _, _ = mlp
    how, blocks = group_blocks(obj.layout, "1")
    assert {b.name: b.size for b in blocks} == {"hidden": 5 * 4 + 4, "head": 4 * 3 + 3}
    how, blocks = group_blocks(obj.layout, "hidden")
    assert {b.name: b.size for b in blocks} == {"hidden": 24, "(other)": 15}
    assert "prefix" in how
    all_idx = np.sort(np.concatenate([b.indices for b in blocks]))
    assert np.array_equal(all_idx, np.arange(obj.n))
    with pytest.raises(ValueError, match="no parameter leaf starts with layer9"):
        group_blocks(obj.layout, "layer9")
    with pytest.raises(InputError):
        analyze_blocks(obj, None, "layer9")


def test_analyze_blocks_cli(hess):
    schema = json.loads((Path(__file__).resolve().parent.parent /
                         "hesscli/schemas/analyze.schema.json").read_text())
    args = ["analyze", "mlp", *[a for p in MLP for a in ("-p", p)], "--blocks"]
    res = hess(*args, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    import jsonschema

    jsonschema.validate(doc, schema)
    blocks = doc["blocks"]["blocks"]
    assert doc["blocks"]["sharpest"] == blocks[0]["name"]
    assert sum(b["trace"] for b in blocks) == pytest.approx(sum(doc["eigenvalues"]), rel=1e-10)
    table = hess(*args)
    assert table.exit_code == 0, table.output
    assert f"The sharpest block is {blocks[0]['name']}" in table.stdout
    bad = hess("analyze", "mlp", *[a for p in MLP for a in ("-p", p)], "--blocks", "layer9")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --blocks layer9")


def test_train_monitors_each_block(hess, mlp):
    obj, _, _ = mlp
    schema = json.loads((Path(__file__).resolve().parent.parent /
                         "hesscli/schemas/train.schema.json").read_text())
    res = hess("train", "mlp", *[a for p in MLP for a in ("-p", p)], "--lr", "0.1",
               "--steps", "40", "--monitor-every", "20", "--monitor-blocks", "1",
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    import jsonschema

    jsonschema.validate(doc, schema)
    last = doc["history"][-1]["block_lambda_max"]
    assert set(last) == {"hidden", "head"}
    # against the dense Hessian at the logged final point, formed independently
    x = jax.numpy.asarray(doc["final_point"])
    h = np.asarray(jax.hessian(obj.flat_fn)(x))
    _, blocks = group_blocks(obj.layout, "1")
    for b in blocks:
        lam = np.linalg.eigvalsh(h[np.ix_(b.indices, b.indices)])
        assert last[b.name] == pytest.approx(lam[-1], rel=1e-10)
    bad = hess("train", "mlp", *[a for p in MLP for a in ("-p", p)], "--steps", "2",
               "--monitor-blocks", "layer9")
    assert bad.exit_code == 2 and "--monitor-blocks layer9" in bad.stderr
