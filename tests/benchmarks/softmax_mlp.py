"""A tanh MLP classifier with a softmax cross-entropy loss: the benchmark's second network.

Seeded synthetic data: 256 Gaussian inputs of 32 features, labels the argmax of a
random linear teacher over 10 classes. Parameters {"hidden": {"w", "b"}, "head":
{"w", "b"}} (the built-in ``mlp``'s layout, so the benchmark hands the same weights
to PyTorch); 43·width + 10 of them (width=23255: about 10⁶). The loss is the mean
cross-entropy, ``torch.nn.CrossEntropyLoss()``'s default.
"""

import jax
import jax.numpy as jnp
import numpy as np

import hesscli

P = hesscli.params({
    "width": (64, "hidden units"),
    "inputs": (32, "input features"),
    "classes": (10, "number of classes"),
    "samples": (256, "number of training samples"),
    "seed": (0, "seed of the synthetic data"),
})

_rng = np.random.default_rng(P.seed)
X = _rng.standard_normal((P.samples, P.inputs))
_teacher = _rng.standard_normal((P.inputs, P.classes))
labels = np.argmax(X @ _teacher, axis=1)
data = (jnp.asarray(X), jnp.asarray(labels))


def predict(params, X):
    h = jnp.tanh(X @ params["hidden"]["w"] + params["hidden"]["b"])
    return h @ params["head"]["w"] + params["head"]["b"]


def loss(params, batch):
    Xb, yb = batch
    logits = predict(params, Xb)
    picked = jnp.take_along_axis(logits, yb[:, None], axis=1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked)


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
            "w": jax.random.normal(k2, (P.width, P.classes)) / np.sqrt(P.width),
            "b": jnp.zeros(P.classes),
        },
    }
