"""A hand-written derivative rule to check with ``hesscli gradcheck``.

``softplus`` has a ``jax.custom_jvp`` rule; ``-p factor=2`` makes the rule wrong
by a factor of 2, which ``hesscli gradcheck examples/custom_rule.py -p factor=2``
catches (exit 1) because it compares JAX's gradient with central differences of
the function's values.
"""

import jax
import jax.numpy as jnp

import hesscli

P = hesscli.params({"factor": (1.0, "factor on the derivative rule (1 is right)")})


@jax.custom_jvp
def softplus(x):
    return jnp.log1p(jnp.exp(x))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return softplus(x), P.factor * jax.nn.sigmoid(x) * t


def objective(x):
    return jnp.sum(softplus(x)) + 0.5 * jnp.sum(x**2)


x0 = jnp.array([0.3, -0.7, 1.1])
