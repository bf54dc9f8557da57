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



class CNN(nn.Module):
    channels: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Conv(self.channels, (3, 3), name="conv1")(x))  # 8×8
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))  # 4×4
        x = nn.relu(nn.Conv(2 * self.channels, (3, 3), name="conv2")(x))
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
