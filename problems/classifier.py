"""A small softmax classifier (one tanh hidden layer) under cross-entropy.

Written as a model split, the form Gauss–Newton and Fisher curvature need:
``model(params, inputs)`` returns logits, ``output_loss(logits, labels)`` is
the mean cross-entropy ``−log softmax(z)[y]`` over the batch, and
``data = (inputs, labels)`` with integer labels from a seeded random teacher.
The objective is not written out: hesscli derives it as
``output_loss(model(params, inputs), labels)``.

For cross-entropy on logits, the Hessian of the loss in the outputs is
``diag(p) − ppᵀ`` per sample (positive semidefinite, with the null direction
of the softmax shift ``z → z + c·1``), which is also the Fisher of the
categorical model: here the GGN and the true Fisher coincide, and both drop
the (indefinite) second-derivative term of the hidden layer that the full
Hessian keeps. Compare them with ``hesscli spectrum classifier --curvature
hessian,ggn``. There are (inputs + 1)·width + (width + 1)·classes parameters.

The loss is written out here to show the protocol (hesscli then checks that
``H_ℓ`` is PSD from its per-sample blocks). With many classes, such as a
language model's vocabulary, write ``output_loss =
hesscli.losses.softmax_cross_entropy`` instead: the same value, and the GGN
applies ``diag(p) − ppᵀ`` in closed form with no probes.
"""

import jax
import jax.numpy as jnp
import numpy as np

import hesscli

P = hesscli.params({
    "width": (6, "hidden units"),
    "inputs": (4, "input features"),
    "classes": (3, "number of classes"),
    "samples": (64, "number of training samples"),
    "seed": (0, "seed of the synthetic data"),
})

_rng = np.random.default_rng(P.seed)
X = _rng.standard_normal((P.samples, P.inputs))
_teacher = _rng.standard_normal((P.inputs, P.classes))
labels = np.argmax(X @ _teacher + 0.5 * _rng.standard_normal((P.samples, P.classes)), axis=1)
data = (jnp.asarray(X), jnp.asarray(labels))

likelihood = "softmax_cross_entropy"  # the true Fisher (--curvature fisher) is categorical


def model(params, inputs):
    h = jnp.tanh(inputs @ params["hidden"]["w"] + params["hidden"]["b"])
    return h @ params["head"]["w"] + params["head"]["b"]


def output_loss(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


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
