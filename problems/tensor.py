"""Orthogonal tensor decomposition: Ge et al.'s strict-saddle example (noisy SGD recovers it).

Recover orthonormal components a_1..a_k in R^d from T = Σ_l a_l⊗a_l⊗a_l⊗a_l.
The unknowns are k vectors w_i (a k×d matrix "w"); with u_i = w_i/‖w_i‖,

    f(w) = Σ_{i≠j} T(u_i,u_i,u_j,u_j) − Σ_i T(u_i,u_i,u_i,u_i) + ¼ Σ_i (‖w_i‖² − 1)²

The first sum is Ge et al.'s (2015) objective on the product of spheres: it
repels two u's from sharing a component. The second term (T's own value at
each u_i) makes unclaimed directions unattractive, so k < d leaves no flat
valley of wrong answers; for k = d the minimizers are the same. Normalizing
inside f removes the sphere constraint and the radial penalty makes minima
strict, so they classify as local minima. With c_li = a_l·u_i the objective
is Σ_l (Σ_i c_li²)² − 2 Σ_{l,i} c_li⁴; T (d⁴ numbers) is never formed.

Minima: u_i = ±a_σ(i) for a permutation σ, f = −k. Saddles: the symmetric
points, e.g. every u_i equal to (a_1 + … + a_k)/√k (f = k − 2 for
k = d = 4, λmin = −4): the default start. Its gradient vanishes (up to
rounding), so plain gradient descent stays there; noisy gradient descent
breaks the symmetry and recovers the components.

Module attributes: ``components`` (k×d array, the true a_l as rows, a seeded
random orthonormal set) and ``report(params)``: for each recovered u_i the
alignment max_l |a_l·u_i| and the component it matches, the smallest
alignment, and whether every component was recovered once (alignment > 0.99,
distinct matches). ``hesscli train`` shows it at the end.
"""

import jax.numpy as jnp
import numpy as np

import hesscli

P = hesscli.params({
    "dim": (4, "dimension d of the space", {"min": 1}),
    "components": (4, "number k of orthonormal components (k <= dim)", {"min": 1}),
    "seed": (0, "seed of the random orthonormal components", {"min": 0}),
})
if not 1 <= P.components <= P.dim:
    raise hesscli.InputError(
        f"tensor needs 1 <= components <= dim; got components={P.components}, dim={P.dim}"
    )

_Q, _ = np.linalg.qr(np.random.default_rng(P.seed).standard_normal((P.dim, P.dim)))
components = _Q[:, : P.components].T.copy()  # rows a_l, orthonormal
_A = jnp.asarray(components)
RECOVERED = 0.99


def objective(params):
    w = params["w"]
    r = jnp.linalg.norm(w, axis=1)
    u = w / r[:, None]
    c = _A @ u.T  # c[l, i] = a_l · u_i
    s = jnp.sum(c**2, axis=1)
    return jnp.sum(s**2) - 2.0 * jnp.sum(c**4) + 0.25 * jnp.sum((r**2 - 1.0) ** 2)


# The symmetric saddle: every w_i = (a_1 + ... + a_k)/√k.
x0 = {"w": jnp.tile(jnp.sum(_A, axis=0) / np.sqrt(P.components), (P.components, 1))}


def report(params):
    """How well the rows of w recover the true components (see the module docstring)."""
    w = np.asarray(params["w"], dtype=float)
    u = w / np.linalg.norm(w, axis=1, keepdims=True)
    overlap = np.abs(components @ u.T)  # [l, i]
    alignment = overlap.max(axis=0)
    matched = overlap.argmax(axis=0)
    distinct = len(set(matched.tolist())) == P.components
    return {
        "alignment": alignment.tolist(),
        "matched_component": matched.tolist(),
        "min_alignment": float(alignment.min()),
        "all_recovered": bool(distinct and alignment.min() > RECOVERED),
    }
