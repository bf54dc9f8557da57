"""A small tanh network regressing a seeded synthetic teacher: a non-convex loss.

Parameters are a pytree {"hidden": {"w", "b"}, "head": {"w", "b"}}, so
directions are reported by name (``hidden.w[3,2]``, ``head.b[0]``). The loss is
the mean squared error over all samples; ``data`` and ``loss`` let
``hesscli train`` run minibatch SGD. With the defaults there are
49·width + 16 parameters (width=2048: about 10⁵).
"""

import jax
import jax.numpy as jnp
import numpy as np

import hesscli

P = hesscli.params({
    "width": (8, "hidden units", {"min": 1}),
    "inputs": (32, "input features", {"min": 1}),
    "outputs": (16, "output units", {"min": 1}),
    "samples": (256, "number of training samples", {"min": 1}),
    "noise": (0.1, "label noise (standard deviation)", {"min": 0.0}),
    "seed": (0, "seed of the synthetic data", {"min": 0}),
})

_rng = np.random.default_rng(P.seed)
X = _rng.standard_normal((P.samples, P.inputs))
_teacher = _rng.standard_normal((P.inputs, P.outputs)) / np.sqrt(P.inputs)
Y = np.tanh(X @ _teacher) + P.noise * _rng.standard_normal((P.samples, P.outputs))
data = (jnp.asarray(X), jnp.asarray(Y))


def predict(params, X):
    h = jnp.tanh(X @ params["hidden"]["w"] + params["hidden"]["b"])
    return h @ params["head"]["w"] + params["head"]["b"]


def loss(params, batch):
    Xb, Yb = batch
    return jnp.mean(jnp.sum((predict(params, Xb) - Yb) ** 2, axis=-1))


def objective(params):
    return loss(params, data)


def init(key):
    k1, k2 = jax.random.split(key)
    return {
        "hidden": {
            "w": jax.random.normal(k1, (P.inputs, P.width)) / np.sqrt(P.inputs),
            "b": jnp.zeros(P.width),
        },
        "head": {
            "w": jax.random.normal(k2, (P.width, P.outputs)) / np.sqrt(P.width),
            "b": jnp.zeros(P.outputs),
        },
    }
