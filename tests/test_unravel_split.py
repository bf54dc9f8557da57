"""The flat vector is cut into leaves by one split, not a slice per leaf.

A slice's transpose is a pad to the full length n, so with a slice per leaf the
gradient of the flat objective summed one n-vector per leaf: at 10⁷ parameters that
made JAX's gradient 3.64 s against 0.87 s with a split (tests/benchmarks/profile_hvp.py,
docs/benchmarks.md). Here: the leaves, the gradient and an HVP equal those of the
per-leaf slicing (the previous formulation, rebuilt here), NumPy input still works,
and the compiled gradient holds no pad to length n.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hesscli.api import load
from tests.conftest import ROOT

pytest.importorskip("flax")

LM = str(ROOT / "examples" / "transformer_lm.py")
PARAMS = ["d_model=8", "layers=2", "heads=2", "context=4", "sequences=3"]


@pytest.fixture(scope="module")
def obj():
    return load(LM, None, PARAMS, seed=0, dtype="float64")


def sliced(obj, flat):
    """The previous formulation: one slice per leaf."""
    leaves = [flat[leaf.offset: leaf.offset + leaf.size].reshape(leaf.shape)
              for leaf in obj.layout.leaves]
    return jax.tree_util.tree_unflatten(obj.treedef, leaves)


def test_leaves_equal_per_leaf_slices(obj):
    flat = jnp.asarray(np.random.default_rng(0).standard_normal(obj.n))
    got = jax.tree_util.tree_leaves(obj.params_of(flat))
    want = jax.tree_util.tree_leaves(sliced(obj, flat))
    assert len(got) == len(want) > 10
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    host = jax.tree_util.tree_leaves(obj.params_of(np.asarray(flat)))  # NumPy input
    for a, b in zip(host, want, strict=True):
        assert isinstance(a, np.ndarray)
        np.testing.assert_array_equal(a, np.asarray(b))


def test_gradient_and_hvp_equal_the_sliced_formulation(obj):
    x = jnp.asarray(np.asarray(obj.x))
    v = jnp.asarray(np.random.default_rng(1).standard_normal(obj.n))

    def old(flat):
        return obj.file.fn(sliced(obj, flat) if obj.split is None
                           else obj.split.full(sliced(obj, flat)))

    g_new, g_old = jax.grad(obj.flat_fn)(x), jax.grad(old)(x)
    np.testing.assert_allclose(g_new, g_old, rtol=0, atol=1e-15 * float(jnp.abs(g_old).max()))
    h_new = jax.jvp(jax.grad(obj.flat_fn), (x,), (v,))[1]
    h_old = jax.jvp(jax.grad(old), (x,), (v,))[1]
    assert float(jnp.linalg.norm(h_old)) > 0
    np.testing.assert_allclose(h_new, h_old, rtol=0, atol=1e-13 * float(jnp.abs(h_old).max()))


def test_compiled_gradient_holds_no_pad_to_length_n(obj):
    x = jnp.asarray(np.asarray(obj.x))
    text = jax.jit(jax.grad(obj.flat_fn)).lower(x).compile().as_text()
    pads = [line for line in text.splitlines()
            if f"[{obj.n}]" in line and " pad(" in line]
    assert not pads, pads[:2]
