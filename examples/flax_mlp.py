"""A Flax (linen) MLP with BatchNorm as a hesscli objective.

The point is the whole ``variables`` dict. hesscli differentiates the
``params`` collection and holds the other collections (here ``batch_stats``,
the running mean and variance BatchNorm uses at evaluation) fixed, and says
so in its notes::

    hesscli analyze examples/flax_mlp.py
    hesscli analyze examples/flax_mlp.py --at ckpt.msgpack          # flax.serialization
    hesscli analyze examples/flax_mlp.py --at ckpt.msgpack::params  # its params only
    hesscli train examples/flax_mlp.py --optimizer adam --lr 0.01 --save-point out.msgpack

Needs ``pip install 'hesscli[flax]'`` (Flax, in the Python that runs hesscli).
"""

import jax
import jax.numpy as jnp
from flax import linen as nn


class MLP(nn.Module):
    """Dense, BatchNorm (running averages), tanh, Dense; float64 parameters, as hesscli
    computes in float64 (float32 parameters work too, and are promoted)."""

    width: int = 4

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(self.width, param_dtype=jnp.float64)(x)
        x = nn.BatchNorm(use_running_average=True, param_dtype=jnp.float64)(x)
        x = jnp.tanh(x)
        return nn.Dense(1, param_dtype=jnp.float64)(x)[..., 0]


model = MLP()
inputs = jax.random.normal(jax.random.PRNGKey(1), (32, 2))
targets = jnp.sin(inputs[:, 0]) + 0.5 * inputs[:, 1]
data = (inputs, targets)  # for train --batch-size


def init(key):
    """``model.init``, with running statistics as a trained model would have them."""
    variables = model.init(key, inputs)
    stats = variables["batch_stats"]["BatchNorm_0"]
    return {
        "params": variables["params"],
        "batch_stats": {"BatchNorm_0": {"mean": stats["mean"] + 0.3,
                                        "var": stats["var"] * 2.0}},
    }


def loss(variables, batch):
    x, y = batch
    return jnp.mean((model.apply(variables, x) - y) ** 2)


def objective(variables):
    return loss(variables, data)
