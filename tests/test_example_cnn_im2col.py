"""examples/cnn.py computes its 3×3 convolutions as patch matrix products (im2col).

The previous formulation was ``flax.linen.Conv(features, (3, 3))``; XLA on the CPU
lowers a convolution inside a compiled loop (hesscli's eigensolvers) to a generic
kernel 74× slower than outside one (tests/benchmarks/profile_hvp.py, docs/benchmarks.md).
The im2col form must be the same network: here the previous formulation is rebuilt
with ``nn.Conv`` (the reference, independent of the example's code), and its
initial parameters, logits, loss gradient and Hessian-vector product are compared
with the example's in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from hesscli.objective.files import load_file
from tests.conftest import ROOT

nn = pytest.importorskip("flax.linen")

CNN = str(ROOT / "examples" / "cnn.py")
CHANNELS, SAMPLES = 3, 24


class ConvCNN(nn.Module):
    """The example's network as it was written with ``nn.Conv``."""

    channels: int

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(self.channels, (3, 3), name="conv1")(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(2 * self.channels, (3, 3), name="conv2")(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        return nn.Dense(10, name="dense")(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def both():
    f = load_file(CNN, {"channels": str(CHANNELS), "samples": str(SAMPLES)})
    images, labels = (np.asarray(a) for a in f.module.data)
    ref = ConvCNN(CHANNELS)
    return f, ref, images, labels


def test_initial_parameters_equal_nn_conv(both):
    f, ref, images, _ = both
    key = jax.random.PRNGKey(0)
    got = f.module.init(key)
    want = ref.init(key, jnp.asarray(images[:1]))["params"]
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want),
                    strict=True):
        assert a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_logits_gradient_and_hvp_equal_nn_conv_in_float64(both):
    f, ref, images, labels = both
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64),
                                    f.module.init(jax.random.PRNGKey(1)))
    x = jnp.asarray(images, jnp.float64)
    got = np.asarray(f.module.model(params, x))
    want = np.asarray(ref.apply({"params": params}, x))
    assert got.dtype == np.float64
    # the same sums in another order: agreement to a few float64 roundings
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())

    flat, unravel = ravel_pytree(params)

    def loss_new(v):
        return f.module.output_loss(f.module.model(unravel(v), x), labels)

    def loss_ref(v):
        return f.module.output_loss(ref.apply({"params": unravel(v)}, x), labels)

    g_new, g_ref = jax.grad(loss_new)(flat), jax.grad(loss_ref)(flat)
    np.testing.assert_allclose(g_new, g_ref, rtol=0, atol=1e-12 * float(jnp.abs(g_ref).max()))
    v = jnp.asarray(np.random.default_rng(0).standard_normal(flat.size))
    h_new = jax.jvp(jax.grad(loss_new), (flat,), (v,))[1]
    h_ref = jax.jvp(jax.grad(loss_ref), (flat,), (v,))[1]
    assert float(jnp.linalg.norm(h_ref)) > 0
    np.testing.assert_allclose(h_new, h_ref, rtol=0,
                               atol=1e-11 * float(jnp.abs(h_ref).max()))
