"""Rosenbrock's banana valley in n dimensions: a curved, ill-conditioned minimum.

f(x) = Σᵢ b (xᵢ₊₁ − xᵢ²)² + (a − xᵢ)², minimum at (a, a², ...) = (1, ..., 1) for
a = 1. At (1, 1) the Hessian is [[802, −400], [−400, 200]]: positive definite
with condition number about 2500, so a step that suits one direction overshoots
in the other. The default point is the classic start (−1.2, 1, −1.2, 1, ...).
"""

import jax.numpy as jnp

import hesscli

P = hesscli.params({
    "n": (2, "number of variables (at least 2)", {"min": 2}),
    "a": (1.0, "the valley's minimizer coordinate"),
    "b": (100.0, "steepness of the valley walls"),
})


def objective(x):
    return jnp.sum(P.b * (x[1:] - x[:-1] ** 2) ** 2 + (P.a - x[:-1]) ** 2)


x0 = jnp.array([-1.2 if i % 2 == 0 else 1.0 for i in range(P.n)])
