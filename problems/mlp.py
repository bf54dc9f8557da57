"""A small tanh network regressing a seeded synthetic teacher: a non-convex loss.

Parameters are a pytree {"hidden": {"w", "b"}, "head": {"w", "b"}}, so
directions are reported by name (``hidden.w[3,2]``, ``head.b[0]``). The file
is written as a model split: ``model(params, inputs)``, ``output_loss(outputs,
targets)`` (the squared error summed over outputs, averaged over samples) and
``data = (inputs, targets)``. hesscli derives the objective (the loss over all
of ``data``) and the minibatch loss for ``hesscli train`` from them, and
Gauss–Newton and Fisher curvature (``--curvature ggn``) need them. With the
defaults there are 49·width + 16 parameters (width=2048: about 10⁵).
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


likelihood = "squared_error"  # the true Fisher (--curvature fisher) of a Gaussian model


def model(params, inputs):
    h = jnp.tanh(inputs @ params["hidden"]["w"] + params["hidden"]["b"])
    return h @ params["head"]["w"] + params["head"]["b"]


def output_loss(outputs, targets):
    return jnp.mean(jnp.sum((outputs - targets) ** 2, axis=-1))


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
