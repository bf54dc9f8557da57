"""The built-in ``mlp`` with its data stored in float32: the float32 rows' network.

Identical to ``problems/mlp.py`` (tanh, 32 inputs, 16 outputs, 256 samples, summed
squared error averaged over samples; 49·width + 16 parameters, the same seeded
weights) except that ``data`` holds float32 arrays, the float64 values rounded once.
The built-in's data is float64 (``jnp.asarray`` of a float64 array under x64), and JAX
promotes float32 parameters to float64 where they meet it, so ``--dtype float32``
on the built-in computes every HVP in float64 and only rounds the product; here the
HVP of a float32 run is float32 arithmetic throughout, while a float64 run promotes
the float32 data and computes in float64 on exactly the same values (the float64
reference is the truth of the same network).
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
data = (jnp.asarray(X, dtype=jnp.float32), jnp.asarray(Y, dtype=jnp.float32))


likelihood = "squared_error"


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
