"""The monkey saddle f(x, y) = x³ − 3xy²: a degenerate critical point.

At the origin the gradient and the whole Hessian vanish, so the second-order
test says nothing: it is neither a minimum nor a maximum nor a strict saddle
(f takes both signs arbitrarily close, through third-order terms). hesscli must
call it ``degenerate`` rather than guess. The default point is the origin.
"""

import jax.numpy as jnp

import hesscli

P = hesscli.params({})


def objective(p):
    x, y = p[0], p[1]
    return x**3 - 3.0 * x * y**2


x0 = jnp.zeros(2)
