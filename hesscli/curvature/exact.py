"""Exact curvature by JAX autodiff: value, gradient, HVP and dense Hessian.

HVPs are forward-over-reverse, ``jvp(grad f)``; an objective whose custom rules
block forward mode (``jax.custom_vjp``) falls back to reverse-over-reverse,
``grad(<grad f, v>)``, and still gets exact second derivatives. Everything is
jitted once per backend and takes the point as an argument (never a closure
constant: a captured point is constant-folded into the program and compiles
slowly at scale).

The dense Hessian is built as HVPs against the standard basis, mapped in
chunks (``lax.map(..., batch_size=chunk)``): measured faster than
``jax.hessian`` and far lighter on memory (see ``tests/benchmarks``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hesscli.bind import Objective
from hesscli.curvature.base import DenseHessian, symmetrize
from hesscli.jaxconf import jax_module

DEFAULT_CHUNK = 128


def hvp_function(f: Any, x_example: Any) -> tuple[Any, str]:
    """An HVP ``(x, v) -> H(x) v`` for ``f`` and the mode used.

    Forward-over-reverse when ``f`` allows forward differentiation, otherwise
    reverse-over-reverse (objectives with ``jax.custom_vjp``).
    """
    jax = jax_module()

    def fwd_over_rev(x: Any, v: Any) -> Any:
        return jax.jvp(jax.grad(f), (x,), (v,))[1]

    def rev_over_rev(x: Any, v: Any) -> Any:
        return jax.grad(lambda y: jax.numpy.vdot(jax.grad(f)(y), v))(x)

    try:
        # Lowering traces everything, including custom_vjp backward rules (which
        # eval_shape does not reach): that is where forward mode is refused.
        jax.jit(fwd_over_rev).lower(x_example, x_example)
        return fwd_over_rev, "forward-over-reverse"
    except TypeError:
        return rev_over_rev, "reverse-over-reverse"


def dense_from_hvp(hvp: Any, n: int, dtype: Any, chunk: int = DEFAULT_CHUNK) -> Any:
    """A function ``x -> H`` built from ``n`` HVPs on the basis, ``chunk`` at a time."""
    jax = jax_module()
    jnp = jax.numpy

    def hessian(x: Any) -> Any:
        def column(i: Any) -> Any:
            return hvp(x, jax.nn.one_hot(i, n, dtype=dtype))

        return jax.lax.map(column, jnp.arange(n), batch_size=min(chunk, n))

    return hessian


class ExactCurvature:
    """Exact derivatives of a traceable objective (see module docstring)."""

    method = "exact"

    def __init__(self, objective: Objective, chunk: int = DEFAULT_CHUNK) -> None:
        jax = jax_module()
        self.objective = objective
        self.n = objective.n
        self.dtype = objective.dtype
        f = objective.flat_fn
        example = jax.ShapeDtypeStruct((self.n,), jax.numpy.dtype(self.dtype))
        hvp, self.hvp_mode = hvp_function(f, example)
        self.f = f
        self.hvp_fn = jax.jit(hvp)
        self.value_fn = jax.jit(f)
        self.value_and_grad_fn = jax.jit(jax.value_and_grad(f))
        self.grad_fn = jax.jit(jax.grad(f))
        self.hessian_fn = jax.jit(dense_from_hvp(hvp, self.n, jax.numpy.dtype(self.dtype), chunk))

    def _x(self, x: np.ndarray) -> Any:
        return np.asarray(x, dtype=self.dtype)

    def value(self, x: np.ndarray) -> float:
        return float(self.value_fn(self._x(x)))

    def value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = self.value_and_grad_fn(self._x(x))
        return float(value), np.asarray(grad, dtype=np.float64)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.grad_fn(self._x(x)), dtype=np.float64)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.asarray(self.hvp_fn(self._x(x), self._x(v)), dtype=np.float64)

    def hessian(self, x: np.ndarray) -> DenseHessian:
        matrix = np.asarray(self.hessian_fn(self._x(x)), dtype=np.float64)
        sym, _ = symmetrize(matrix)
        # Autodiff's H is symmetric up to rounding in the last bits (≈1e-16 relative,
        # machine-dependent); DESIGN.md fixes symmetry_error = 0 for exact dense
        # Hessians, and the rounding is covered by the eigenvalue tolerance.
        return DenseHessian(sym, symmetry_error=0.0)
