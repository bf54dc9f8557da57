"""An Equinox MLP as a hesscli objective.

The point is the module itself. hesscli partitions it
(``eqx.partition(model, eqx.is_inexact_array)``): the floating-point arrays
are the parameters, the rest (the activation functions) is held fixed and put
back with ``eqx.combine`` before every call::

    hesscli analyze examples/equinox_mlp.py
    hesscli analyze examples/equinox_mlp.py --at model.eqx   # eqx.tree_serialise_leaves
    hesscli train examples/equinox_mlp.py --optimizer adam --lr 0.01 --save-point out.eqx

Needs ``pip install 'hesscli[equinox]'`` (Equinox, in the Python that runs hesscli).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

inputs = jax.random.normal(jax.random.PRNGKey(1), (32, 2))
targets = jnp.sin(inputs[:, 0]) + 0.5 * inputs[:, 1]
data = (inputs, targets)  # for train --batch-size


def init(key):
    return eqx.nn.MLP(2, "scalar", width_size=4, depth=1, activation=jnp.tanh, key=key)


def loss(model, batch):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def objective(model):
    return loss(model, data)
