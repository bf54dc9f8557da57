"""A small convolutional network classifying 8×8 handwritten digits.

A Flax linen CNN: ``conv1`` (3×3, ``channels`` filters) → ReLU → 2×2 average
pool → ``conv2`` (3×3, 2·``channels`` filters) → ReLU → 2×2 average pool →
``dense`` (10 logits). The data is the UCI "Optical Recognition of Handwritten
Digits" test set (1797 grey images of 8×8 pixel counts 0..16, CC BY 4.0, via
scikit-learn's copy; see ``data/README.md``), shipped as ``data/digits.npz``;
pixels are scaled to [0, 1] (float32, exact: they are multiples of 1/16).

The file is a model split, what Gauss–Newton and Fisher curvature need:
``model(params, images)`` returns logits (samples, 10), ``output_loss(logits,
labels)`` is the mean softmax cross-entropy, ``data = (images, labels)`` with a
leading sample axis. hesscli derives the objective (the loss over all of
``data``) and the minibatch ``loss(params, batch)`` for ``train --batch-size``
from them. ``init(key)`` is the default point (Flax's initializers).

Parameters are the Flax ``params`` collection, so entries and ``--blocks`` read
as layers: ``conv1.kernel``, ``conv2.bias``, ``dense.kernel``; ``--blocks 1``
gives one block per layer (``conv1``, ``conv2``, ``dense``). With c =
``channels`` there are 18·c² + 92·c + 10 parameters: 6,090 by default::

    hesscli analyze examples/cnn.py --blocks 1
    hesscli spectrum examples/cnn.py --curvature hessian,ggn
    hesscli spectrum examples/cnn.py --density --trace
    hesscli train examples/cnn.py --optimizer adam --lr 1e-2 --steps 300 --monitor-every 50
    hesscli train examples/cnn.py --optimizer sgd --lr 0.1 --batch-size 64 --epochs 3

``-p`` parameters: ``channels`` (16; conv2 has twice as many), ``samples``
(0 = all 1797 images; else the first ``samples``, for quick runs).
Copy this file to start from your own network: keep ``model``,
``output_loss``, ``data`` and ``init``, and change what they compute.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

import hesscli
from hesscli.losses import softmax_cross_entropy

P = hesscli.params({
    "channels": (16, "filters of conv1 (conv2 has twice as many)", {"min": 1}),
    "samples": (0, "images in data (0: all 1797)", {"min": 0}),
})

CLASSES = 10
_digits = np.load(Path(__file__).resolve().parent / "data" / "digits.npz")
_count = P.samples or len(_digits["labels"])
images = jnp.asarray(_digits["images"][:_count, :, :, None] / np.float32(16.0))  # (N, 8, 8, 1)
labels = jnp.asarray(_digits["labels"][:_count].astype(np.int32))  # (N,) digits 0..9
data = (images, labels)



class Conv3x3(nn.Module):
    """``nn.Conv(features, (3, 3))`` (padding SAME, stride 1, with bias), computed as one
    matrix product over the 3×3 patches ("im2col"): the same parameters (``kernel``
    (3, 3, in, out), ``bias``) with the same initializers, the same function. XLA on
    the CPU lowers a convolution inside a compiled loop (where hesscli's eigensolvers
    run their Hessian-vector products) to a slow generic kernel: one HVP of this
    network at 64 channels took 54 s there against 0.73 s outside a loop; as matrix
    products it takes the same time in both (tests/benchmarks/profile_hvp.py)."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (3, 3, cin, self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        h, w = x.shape[1], x.shape[2]
        padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        patches = jnp.stack([padded[:, i:i + h, j:j + w, :] for i in range(3)
                             for j in range(3)], axis=3)  # (N, H, W, 9, in): (i, j) order
        return jnp.einsum("nhwpc,pco->nhwo", patches,
                          kernel.reshape(9, cin, self.features)) + bias


class CNN(nn.Module):
    channels: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(Conv3x3(self.channels, name="conv1")(x))  # 8×8
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))  # 4×4
        x = nn.relu(Conv3x3(2 * self.channels, name="conv2")(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))  # 2×2
        return nn.Dense(CLASSES, name="dense")(x.reshape(x.shape[0], -1))


network = CNN(P.channels)


def model(params, images):
    """Logits (samples, 10) for a batch of images (samples, 8, 8, 1)."""
    return network.apply({"params": params}, images)


# mean softmax cross-entropy (nats); hesscli applies its Hessian diag(p) − ppᵀ in
# closed form for the GGN and the Fisher (memory: a few times the logits)
output_loss = softmax_cross_entropy


def init(key):
    """The parameters (the ``params`` collection: {conv1, conv2, dense} × {kernel, bias})."""
    return jax.jit(network.init)(key, images[:1])["params"]
