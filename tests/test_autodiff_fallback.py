"""Which derivatives: the differentiation mode JAX can run, else finite differences.

A ``custom_vjp`` whose forward rule calls the primal works unbatched but not under
``vmap``: the mode is chosen on the batched form, so the Hessian stays exact. Loops
with traced bounds, ``while_loop`` and ``pure_callback`` cannot be differentiated by
JAX at all: ``analyze`` falls back to finite differences and says so; ``--method
exact``, ``gradcheck`` and ``train`` refuse (exit 3). References are analytic.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import one_error

CUSTOM_VJP = """
import jax, jax.numpy as jnp

@jax.custom_vjp
def f(x):
    return jnp.sum(jnp.sin(x) ** 2)

def f_fwd(x):
    return f(x), x          # the common idiom: the forward rule calls the primal

def f_bwd(x, g):
    return (g * jnp.sin(2 * x),)

f.defvjp(f_fwd, f_bwd)

def objective(x):
    return f(x)

x0 = jnp.array([0.3, 0.5, 0.7])
"""


def test_custom_vjp_calling_the_primal_gets_exact_hessian(hess, write):
    """Forward-over-reverse passes unbatched but fails under vmap (the dense path):
    the mode is chosen on the batched form, so reverse-over-reverse is used."""
    res = hess("analyze", write("cvjp.py", CUSTOM_VJP), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["method"] == "exact"
    x = np.array([0.3, 0.5, 0.7])
    expected = np.sort(2 * np.cos(2 * x))  # d²/dx² sin²x = 2 cos 2x, a diagonal Hessian
    np.testing.assert_allclose(doc["eigenvalues"], expected, rtol=1e-12, atol=1e-12)


WHILE_LOOP = """
import jax, jax.numpy as jnp
def objective(x):
    def body(carry):
        i, total = carry
        return i + 1, total + jnp.sum(x ** 2)
    return jax.lax.while_loop(lambda c: c[0] < 3, body, (0, 0.0))[1]   # 3·Σx²
x0 = jnp.array([1.0, -2.0])
"""


TRACED_FORI = """
import jax, jax.numpy as jnp
def objective(x):
    count = jnp.sum(x > -1e9)                     # a traced loop bound
    return jax.lax.fori_loop(0, count, lambda i, acc: acc + x[i] ** 2, 0.0)
x0 = jnp.array([1.0, -2.0])
"""


CALLBACK = """
import jax, jax.numpy as jnp, numpy as np
def objective(x):
    out = jax.ShapeDtypeStruct((), jnp.float64)
    return jax.pure_callback(lambda y: np.sum(np.asarray(y) ** 2), out, x)
x0 = jnp.array([1.0, -2.0])
"""


@pytest.mark.parametrize(("source", "curvature"), [(WHILE_LOOP, 6.0), (TRACED_FORI, 2.0),
                                                   (CALLBACK, 2.0)])
def test_objectives_jax_cannot_differentiate_fall_back_to_finite_differences(
    hess, write, source, curvature
):
    path = write("nodiff.py", source)
    res = hess("analyze", path, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["method"] == "fd"
    assert any("JAX cannot differentiate" in note for note in doc["notes"]), doc["notes"]
    # f = c/2·Σx² has H = c·I; finite differences of a quadratic are exact up to rounding
    np.testing.assert_allclose(doc["eigenvalues"], [curvature, curvature], rtol=1e-5)
    one_error(hess("analyze", path, "--method", "exact"), 3, "JAX cannot differentiate")
    # no fallback applies where JAX's own derivatives are the point: exit 3, one line
    one_error(hess("gradcheck", path), 3, "no exact derivatives to check")
    one_error(hess("train", path, "--steps", "3"), 3, "train needs JAX derivatives")

