"""Test functions with hand-derived Hessians, shared by the finite-difference tests.

``SMOOTH_SOURCE`` is a random smooth function (seeded), written once with NumPy
(a black box JAX cannot trace) and once with ``jax.numpy``:

    f(x) = ½ xᵀAx + Σₖ wₖ exp(bₖᵀx) + Σᵢ sin xᵢ + log(1 + xᵀx)
    H(x) = A + Bᵀ diag(w ∘ exp(Bx)) B − diag(sin x) + 2I/q − 4xxᵀ/q²,  q = 1 + xᵀx
"""

from __future__ import annotations

import numpy as np

SMOOTH_SOURCE = '''
import numpy as np
import {np_module} as xp

_rng = np.random.default_rng(0)
N = 6
A = _rng.standard_normal((N, N)); A = A @ A.T / N
B = _rng.standard_normal((3, N)) * 0.5
w = _rng.uniform(0.5, 1.5, 3)


def objective(x):
    {coerce}
    return 0.5 * x @ A @ x + xp.sum(w * xp.exp(B @ x)) + xp.sum(xp.sin(x)) + xp.log1p(x @ x)


x0 = np.linspace(-0.5, 0.7, N)
'''

NUMPY_SMOOTH = SMOOTH_SOURCE.format(np_module="numpy", coerce="x = np.asarray(x, dtype=float)")
JAX_SMOOTH = SMOOTH_SOURCE.format(np_module="jax.numpy", coerce="pass")


def smooth_parts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 6
    a = rng.standard_normal((n, n))
    a = a @ a.T / n
    b = rng.standard_normal((3, n)) * 0.5
    w = rng.uniform(0.5, 1.5, 3)
    return a, b, w


def smooth_value(x: np.ndarray) -> float:
    a, b, w = smooth_parts()
    return float(0.5 * x @ a @ x + np.sum(w * np.exp(b @ x)) + np.sum(np.sin(x))
                 + np.log1p(x @ x))


def smooth_hessian(x: np.ndarray) -> np.ndarray:
    a, b, w = smooth_parts()
    e = w * np.exp(b @ x)
    q = 1.0 + x @ x
    return (a + (b.T * e) @ b - np.diag(np.sin(x)) + 2.0 * np.eye(x.size) / q
            - 4.0 * np.outer(x, x) / q**2)


def rosenbrock_hessian(x: np.ndarray, b: float = 100.0) -> np.ndarray:
    n = x.size
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 12 * b * x[i] ** 2 - 4 * b * x[i + 1] + 2
        h[i + 1, i + 1] += 2 * b
        h[i, i + 1] -= 4 * b * x[i]
        h[i + 1, i] -= 4 * b * x[i]
    return h


NUMPY_ROSENBROCK = '''
import numpy as np

def objective(x):
    x = np.asarray(x, dtype=float)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))

x0 = np.array([-1.2, 1.0, -1.2, 1.0])
'''

NUMPY_ABS = '''
import numpy as np

def objective(x):
    return float(np.abs(x[0]) + x[1] ** 2 + 0.5 * x[2] ** 2)

x0 = np.zeros(3)
'''

# hinge: sample 0 has margin y₀·x₀ᵀw = 0.2 + 0.8 = 1 exactly at x0; its kink
# normal is (1, 2, 0), so parameters w[0] and w[1] are affected, w[2] is not.
JAX_HINGE = '''
import jax.numpy as jnp

X = jnp.array([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0]])
y = jnp.array([1.0, -1.0])

def objective(w):
    return 0.1 * jnp.sum(w ** 2) + jnp.sum(jnp.maximum(0.0, 1.0 - y * (X @ w)))

x0 = jnp.array([0.2, 0.4, 0.0])
'''

NUMPY_HINGE = JAX_HINGE.replace("jax.numpy as jnp", "numpy as jnp")

# a custom_jvp and a custom_vjp rule; -p factor=2 makes the rule wrong by 2×
CUSTOM_RULES = '''
import jax
import jax.numpy as jnp

import hesscli

P = hesscli.params({"factor": (1.0, "factor on the derivative rule"),
                    "kind": ("jvp", "jvp or vjp")})


@jax.custom_jvp
def softplus(x):
    return jnp.log1p(jnp.exp(x))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return softplus(x), P.factor * jax.nn.sigmoid(x) * t


@jax.custom_vjp
def cube(x):
    return x ** 3


def _cube_fwd(x):
    return x ** 3, x


def _cube_bwd(x, g):
    return (P.factor * 3 * x ** 2 * g,)


cube.defvjp(_cube_fwd, _cube_bwd)


def objective(x):
    if P.kind == "jvp":
        return jnp.sum(softplus(x)) + 0.5 * jnp.sum(x ** 2)
    return jnp.sum(cube(x)) + jnp.sum(jnp.sin(x))


x0 = jnp.array([0.3, -0.7, 1.1])
'''
