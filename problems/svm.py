"""The article's L2-regularized SVM: L(w) = λ‖w‖² + Σₙ max(0, 1 − yₙ wᵀxₙ).

The hinge terms are piecewise linear, so away from the margins (yₙwᵀxₙ = 1)
their second derivatives vanish and the Hessian is exactly 2λI: positive
definite for λ > 0, which is the article's convexity argument. (The article
writes λ on the diagonal; the derivative of λw² is 2λw, so the Hessian is 2λI.)
At a margin the hinge has a kink and the Hessian does not exist.

Data are seeded synthetic, linearly separable-ish points; ``data`` and ``loss``
let ``hesscli train`` run minibatch SGD on the same objective.
"""

import jax.numpy as jnp
import numpy as np

import hesscli

P = hesscli.params({
    "samples": (50, "number of training points", {"min": 1}),
    "dim": (5, "number of features (= parameters)", {"min": 1}),
    "lam": (0.1, "regularization constant λ", {"min": 0.0}),
    "seed": (0, "seed of the synthetic data", {"min": 0}),
})

_rng = np.random.default_rng(P.seed)
_w_true = _rng.standard_normal(P.dim)
X = _rng.standard_normal((P.samples, P.dim))
y = np.sign(X @ _w_true + 0.3 * _rng.standard_normal(P.samples))
y[y == 0] = 1.0
data = (jnp.asarray(X), jnp.asarray(y))


def _hinge_sum(w, X, y):
    return jnp.sum(jnp.maximum(0.0, 1.0 - y * (X @ w)))


def objective(w):
    return P.lam * jnp.sum(w**2) + _hinge_sum(w, *data)


def loss(w, batch):
    """Unbiased minibatch estimate of the objective (hinge sum rescaled to all samples)."""
    Xb, yb = batch
    return P.lam * jnp.sum(w**2) + (P.samples / Xb.shape[0]) * _hinge_sum(w, Xb, yb)


x0 = jnp.zeros(P.dim)
