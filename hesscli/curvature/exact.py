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

import functools
from functools import lru_cache
from typing import Any

import numpy as np

from hesscli.curvature.base import Curvature, DenseHessian, OperatorAt, symmetrize
from hesscli.errors import HesscliError, ObjectiveError
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import Objective
from hesscli.vocab import HvpMode, Method

DEFAULT_CHUNK = 128
HVP_BATCH_BYTES = 12 * 2**20  # working memory of one batch of HVPs (about an L2/L3 slice)


def hvp_batch_size(hvp_jitted: Any, example: Any, n: int) -> int:
    """How many HVPs to batch when forming the dense Hessian.

    Measured (``tests/benchmarks/bench_dense_hessian.py``): the best batch
    depends on the HVP's working memory, not on n. A quadratic's HVP is a
    matrix-vector product with a few n-vectors of temporaries, and batching
    512 of them turns it into a fast matrix-matrix product; an MLP's HVP holds
    the activations and their tangents for every sample, and batches above 32
    fall out of cache and run 1.5–3× slower. So the batch is the power of two
    whose total working memory (XLA's memory analysis of one HVP) fits
    ``HVP_BATCH_BYTES``, between 8 and 512. Up to n = 8 that rule gives n
    whatever the measurement, so nothing is compiled to find it out (for a 2-D
    problem the measuring compile was most of the work).
    """
    if n <= 8:
        return n
    try:
        mem = hvp_jitted.lower(example, example).compile().memory_analysis()
        per_hvp = int(mem.temp_size_in_bytes) + int(mem.output_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend reports memory
        return min(DEFAULT_CHUNK, n)
    per_hvp = max(per_hvp, 8 * n)
    fits = max(HVP_BATCH_BYTES // per_hvp, 1)
    batch = 1 << (int(fits).bit_length() - 1)  # largest power of two that fits
    return int(min(max(batch, 8), 512, n))


def hvp_function(f: Any, x_example: Any) -> tuple[Any, str]:
    """An HVP ``(x, v) -> H(x) v`` for ``f`` and the mode used.

    Forward-over-reverse when ``f`` allows forward differentiation, otherwise
    reverse-over-reverse (objectives with ``jax.custom_vjp``). Each mode is
    checked on the form that is compiled later, the HVP under ``vmap`` (the
    dense Hessian and the trace estimators batch it): the common ``custom_vjp``
    idiom whose forward rule calls the primal lowers alone but not batched, so
    checking the HVP alone would crash every dense command.
    When neither mode can be lowered, :class:`ObjectiveError` (exit 3) says why
    and points at finite differences.
    """
    jax = jax_module()

    def fwd_over_rev(x: Any, v: Any) -> Any:
        return jax.jvp(jax.grad(f), (x,), (v,))[1]

    def rev_over_rev(x: Any, v: Any) -> Any:
        return jax.grad(lambda y: jax.numpy.vdot(jax.grad(f)(y), v))(x)

    batch = jax.ShapeDtypeStruct((2, *x_example.shape), x_example.dtype)
    failures = []
    for hvp, mode in ((fwd_over_rev, HvpMode.FORWARD_OVER_REVERSE),
                      (rev_over_rev, HvpMode.REVERSE_OVER_REVERSE)):
        try:
            # Lowering traces everything, including custom_vjp backward rules (which
            # eval_shape does not reach): that is where forward mode is refused.
            # the batched form (what the dense Hessian and the trace estimators compile);
            # a mode that batches also runs alone, so one lowering serves both
            jax.jit(jax.vmap(hvp, in_axes=(None, 0))).lower(x_example, batch)
            return hvp, mode
        except HesscliError:
            raise
        except Exception as exc:  # noqa: BLE001 - JAX refuses a transformation
            text = str(exc).strip().splitlines()[0] if str(exc) else ""
            failures.append(f"{mode}: {type(exc).__name__}: {text[:160]}")
    raise ObjectiveError(
        "JAX cannot form Hessian-vector products of the objective ("
        + "; ".join(failures) + "); use --method fd (finite differences)"
    )


def dense_from_hvp(hvp: Any, n: int, dtype: Any, chunk: int = DEFAULT_CHUNK) -> Any:
    """A function ``x -> H`` built from ``n`` HVPs on the basis, ``chunk`` at a time."""
    jax = jax_module()
    jnp = jax.numpy

    def hessian(x: Any) -> Any:
        def column(i: Any) -> Any:
            return hvp(x, jax.nn.one_hot(i, n, dtype=dtype))

        return jax.lax.map(column, jnp.arange(n), batch_size=min(chunk, n))

    return hessian


@lru_cache(maxsize=32)
def _linearizer(f: Any) -> Any:
    """Jitted ``x -> Partial(v -> H(x) v)`` for a static ``f`` (or, for None, taking ``f``
    as its first argument: a :class:`jax.tree_util.Partial` whose leaves are operands)."""
    jax = jax_module()
    if f is None:
        return jax.jit(lambda f, x: jax.linearize(jax.grad(f), x)[1])
    return jax.jit(lambda x: jax.linearize(jax.grad(f), x)[1])


@lru_cache(maxsize=1)
def _apply_linearized() -> Any:
    jax = jax_module()
    return jax.jit(lambda lin, x, v: lin(v))


def linearized_hvp(f: Any, x: Any) -> Any:
    """``(x, v) -> H(x) v`` at this one ``x``, from a single linearization of ∇f.

    ``jax.linearize(grad f, x)`` runs the forward and backward pass once and
    keeps what the tangent map needs (the activations and their derivatives);
    every HVP after that is the tangent map alone. Returned as a
    :class:`jax.tree_util.Partial` whose leaves are those residuals, so it can be
    passed as an argument into compiled solver loops (which then never
    recompute the primal, across calls and restarts) and called from the host
    (one compiled program). The ``x`` it is called with is ignored: the point is
    the one linearized here. Its structure is the same for every point of the
    same shape, so programs taking it compile once.

    ``f`` must allow forward-mode differentiation (``hvp_mode`` =
    "forward-over-reverse"); a :class:`~jax.tree_util.Partial` ``f`` (the
    sharded backend's) travels as an operand, keeping its data sharded.
    """
    jax = jax_module()
    if isinstance(f, jax.tree_util.Partial):
        lin = _linearizer(None)(f, x)
    else:
        lin = _linearizer(f)(x)
    return jax.tree_util.Partial(_apply_linearized(), lin)


def hessian_at(f: Any) -> OperatorAt:
    """``x -> (v -> H(x) v)`` by linearizing ∇f once per point (forward-over-reverse):
    :func:`linearized_hvp`, whose linearizer compiles once for every point of the same
    shape; ``hessian_of`` is ``f`` (the eigensolvers linearize it on the host)."""
    return OperatorAt(lambda x: functools.partial(linearized_hvp(f, x), x), hessian_of=f)


class ExactCurvature(Curvature):
    """Exact derivatives of a traceable objective (see module docstring).

    Declares ``hvp_fn`` (the jitted HVP) and, when forward mode works,
    ``linearizable`` (the Hessian's :class:`OperatorAt`, :func:`hessian_at`).
    """

    method = Method.EXACT

    def __init__(self, objective: Objective, chunk: int | None = None) -> None:
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
        self.linearizable = hessian_at(f) if self.hvp_mode == HvpMode.FORWARD_OVER_REVERSE else None
        self._hvp = hvp
        self.example = example  # the flat point abstractly (shape, dtype): what programs lower with
        self._chunk = chunk
        self._hessian_fn: Any = None

    def _x(self, x: np.ndarray) -> Any:
        return np.asarray(x, dtype=self.dtype)

    @staticmethod
    def _host(array: Any) -> np.ndarray:
        """A result as a float64 NumPy array (the sharded backend gathers first)."""
        return np.asarray(array, dtype=np.float64)

    def value(self, x: np.ndarray) -> float:
        return float(self._host(self.value_fn(self._x(x))))

    def value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = self.value_and_grad_fn(self._x(x))
        return float(self._host(value)), self._host(grad)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._host(self.grad_fn(self._x(x)))

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self._host(self.hvp_fn(self._x(x), self._x(v)))

    @property
    def hessian_fn(self) -> Any:
        """The jitted ``x -> H``, built on first use (choosing the HVP batch costs a compile)."""
        if self._hessian_fn is None:
            jax = jax_module()
            chunk = self._chunk or hvp_batch_size(self.hvp_fn, self.example, self.n)
            self._hessian_fn = jax.jit(
                dense_from_hvp(self._hvp, self.n, jax.numpy.dtype(self.dtype), chunk)
            )
        return self._hessian_fn

    @hessian_fn.setter
    def hessian_fn(self, fn: Any) -> None:
        self._hessian_fn = fn

    def hessian(self, x: np.ndarray) -> DenseHessian:
        if self.host is not None:  # products outside compiled loops (host_products.py)
            chunk = self._chunk or hvp_batch_size(self.direct_hvp_fn, self.example, self.n)
            matrix = self.host.dense(self._x(x), chunk)
        else:
            matrix = self._host(self.hessian_fn(self._x(x)))
        sym, _ = symmetrize(matrix)
        # Autodiff's H is symmetric up to rounding in the last bits (≈1e-16 relative,
        # machine-dependent); the JSON contract reports symmetry_error = 0 for exact
        # dense Hessians, and the rounding is covered by the eigenvalue tolerance.
        return DenseHessian(sym, symmetry_error=0.0)
