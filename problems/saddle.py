"""A strict saddle at the origin with two minima to escape to.

f(x, y) = ½x² + ¼y⁴ − ½y² (with -p n=N, the first N−1 coordinates are the
quadratic ones). At the origin the gradient is zero and the Hessian is
diag(1, ..., 1, −1): a strict saddle. Gradient descent started there never
moves; the direction of the −1 eigenvalue (y) leads down to the minima at
y = ±1, where f = −¼. The default point is the saddle itself.
"""

import jax.numpy as jnp

import hesscli

P = hesscli.params({
    "n": (2, "number of variables; the last one carries the negative curvature",
          {"min": 1}),
})


def objective(x):
    x = jnp.atleast_1d(x)
    y = x[-1]
    return 0.5 * jnp.sum(x[:-1] ** 2) + 0.25 * y**4 - 0.5 * y**2


x0 = jnp.zeros(P.n)
