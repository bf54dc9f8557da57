"""An ill-conditioned quadratic ravine: f(x) = ½ xᵀAx with cond(A) = kappa.

A = Q diag(λ) Qᵀ with eigenvalues spaced geometrically from 1 to kappa and a
seeded random rotation Q (-p rotate=false keeps the axes). The minimum is at
the origin. A learning rate above 2/kappa makes gradient descent diverge along
the steepest direction although it is tiny for the flat one: the article's
"poor conditioning".
"""

import jax.numpy as jnp
import numpy as np

import hesscli

P = hesscli.params({
    "n": (2, "number of variables", {"min": 1, "max": 20000}),
    "kappa": (100.0, "condition number of A (largest/smallest eigenvalue)", {"min": 1.0}),
    "rotate": (True, "rotate the eigenvectors off the coordinate axes"),
    "seed": (0, "seed of the rotation", {"min": 0}),
})

eigenvalues = np.geomspace(1.0, P.kappa, P.n) if P.n > 1 else np.ones(1)
if P.rotate:
    Q, _ = np.linalg.qr(np.random.default_rng(P.seed).standard_normal((P.n, P.n)))
else:
    Q = np.eye(P.n)
A = jnp.asarray((Q * eigenvalues) @ Q.T)


def objective(x):
    return 0.5 * x @ A @ x


x0 = jnp.ones(P.n)
