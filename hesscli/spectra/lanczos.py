"""Extreme eigenvalues from Hessian-vector products: full-basis Lanczos.

Like ARPACK (:mod:`hesscli.spectra.arpack`) and the thick-restart solver
(:mod:`hesscli.spectra.restarted`), it takes a :class:`~hesscli.spectra.certify.Solve`
and returns an :class:`~hesscli.spectra.certify.Extremes`: the ``k`` smallest and
``k`` largest *algebraic* eigenvalues (never "largest magnitude"), Ritz vectors for
the two ends, each value the Rayleigh quotient of the vector actually formed with
its true residual (one extra HVP each, :func:`ritz_pairs`), and the HVPs each end
took; what those numbers prove and when a run may stop is
:mod:`hesscli.spectra.certify`'s.

Full-basis Lanczos runs with full reorthogonalization inside one compiled
loop (``lax.fori_loop``): the bookkeeping (projecting the new vector against
the basis) is what costs at 10⁵ parameters, as much as the HVP, so it must not
run step by step from Python, and it is done once per step after the
three-term recurrence (in float64 a second pass doubled the cost and changed
no result we measured; float32 always takes it). The projection reads only
the rows of the basis filled so far, in blocks of :data:`BLOCK` rows, so a step
costs O(j·n) at step j rather than O(m_max·n). Every :data:`CHECK_EVERY` steps
the host diagonalizes the small tridiagonal matrix and stops once the wanted
ends meet the target by the Ritz residual estimates ``|β_j s_ji|`` (:func:`judge`). A
breakdown (an invariant subspace, e.g. a Hessian with two distinct
eigenvalues) restarts from a fresh seeded vector orthogonal to the basis.

Caveat, as for every single-vector Krylov method: an eigenvalue of exact
multiplicity p > 1 is seen once (its copies need a block method); tight
clusters are resolved, more slowly.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from hesscli.curvature.base import OperatorAt
from hesscli.curvature.exact import linearized_hvp
from hesscli.jaxconf import jax_module
from hesscli.progress import OnProgress, Progress, report
from hesscli.spectra.certify import (
    DEFAULT_SOLVE,
    Extremes,
    Solve,
    certify,
    end_values,
    judge,
    rayleigh_pairs,
)
from hesscli.vocab import Eigensolver, Ends

BLOCK = 16  # rows of the basis projected per inner iteration
CHECK_EVERY = 4  # Lanczos steps between convergence checks on the host
BASIS_BUDGET = 1 << 30  # bytes of Lanczos basis allowed (caps the number of steps)
MAX_STEPS = 400


def start_vector(n: int, seed: int) -> np.ndarray:
    """A seeded unit vector with Gaussian entries (no preferred direction)."""
    v = np.random.default_rng(seed).standard_normal(n)
    return v / np.linalg.norm(v)


def initial_basis(rows: int, n: int, dtype: str, seed: int, basis_sharding: Any = None) -> Any:
    """A ``rows × n`` basis of zeros whose first row is :func:`start_vector`.

    Built in NumPy (eager JAX ops such as zeros and ``.at[].set`` would each
    compile), then split along n over the devices when ``basis_sharding`` is given.
    """
    basis = np.zeros((rows, n), dtype)
    basis[0] = start_vector(n, seed)
    if basis_sharding is None:
        return basis
    return jax_module().make_array_from_callback(basis.shape, basis_sharding,
                                                 lambda index: basis[index])


def max_steps_for(n: int, dtype: str, requested: int | None = None, shards: int = 1) -> int:
    """Steps allowed: ≤ n, ≤ MAX_STEPS and a basis within :data:`BASIS_BUDGET`.

    ``shards``: devices the basis is split over along n (parameter-sharded
    vectors, :mod:`hesscli.curvature.sharded`); the budget is per device, so
    each holds rows × n/shards entries.
    """
    per_device = math.ceil(n / max(shards, 1))
    by_memory = max(BASIS_BUDGET // (per_device * np.dtype(dtype).itemsize) - 1, 8)
    cap = requested if requested is not None else MAX_STEPS
    return int(max(1, min(n, cap, by_memory)))


def at_point(hvp_fn: Any, op: OperatorAt | None, x: Any) -> tuple[Any, OperatorAt | None]:
    """What the compiled loops take at the point ``x``: ``(hvp_fn, op)``.

    The Hessian of a flat objective (``op.hessian_of``) is linearized here, once:
    ``jax.linearize(grad f, x)`` (:func:`~hesscli.curvature.exact.linearized_hvp`)
    serves every step, restart and residual check, so the many HVPs at the same
    point reuse the primal computation (on a 10⁵-parameter MLP one quiet measurement
    gave 1.6× a gradient against 2.3× for ``jvp(grad f)``; ``bench_scale`` under heavy
    machine load gave 3.6× vs 3.0×: not conclusive), and comes back as the HVP with
    no operator. Any other operator (Gauss–Newton, Fisher) is returned as it is and
    linearizes itself inside the loop; without one, the HVP as given.
    """
    if op is None or op.hessian_of is None:
        return hvp_fn, op
    return linearized_hvp(op.hessian_of, x), None


def operator_at(hvp_fn: Any, op: OperatorAt | None) -> Any:
    """``x -> (v -> M(x) v)`` for use inside compiled code: the operator (after
    :func:`at_point`), or without one the HVP as given."""
    if op is None:
        return lambda x: (lambda v: hvp_fn(x, v))
    return op


def split_operator(hvp_fn: Any, f: Any) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """((static hvp_fn, static f), (dynamic hvp_fn, dynamic f)): what a kernel closes
    over and what it takes as an argument.

    A :class:`jax.tree_util.Partial` (the sharded backend's functions, whose
    leaves are the sharded data) travels as a jit argument, so its leaves stay
    sharded operands instead of being embedded in the program as constants,
    replicated on every device. Anything else (a plain jitted function) is
    closed over, as before.
    """
    partial = jax_module().tree_util.Partial
    fns = (hvp_fn, f)
    dynamic = tuple(fn if isinstance(fn, partial) else None for fn in fns)
    static = tuple(None if isinstance(fn, partial) else fn for fn in fns)
    return static, dynamic  # type: ignore[return-value]


def lanczos_kernel(hvp_fn: Any, n: int, dtype: str, rows: int, f: Any = None) -> Any:
    """Compiled ``extend(x, V, alpha, beta, j0, j1, seed)``: Lanczos steps j0..j1.

    One compiled program per (static functions, structure of the Partials, n,
    dtype, rows); the Partials' leaves are arguments (see :func:`split_operator`).
    """
    static, dynamic = split_operator(hvp_fn, f)
    structure = jax_module().tree_util.tree_structure(dynamic)
    compiled = _lanczos_program(static[0], static[1], structure, n, dtype, rows)

    def extend(x: Any, basis: Any, alpha: Any, beta: Any, j0: Any, j1: Any, key: Any) -> Any:
        return compiled(dynamic, x, basis, alpha, beta, j0, j1, key)

    return extend


@lru_cache(maxsize=16)
def _lanczos_program(
    static_hvp: Any, static_f: Any, structure: Any, n: int, dtype: str, rows: int
) -> Any:
    """The jitted ``extend(ops, x, V, alpha, beta, j0, j1, seed)`` behind :func:`lanczos_kernel`."""
    jax = jax_module()
    jnp, lax = jax.numpy, jax.lax
    dt = jnp.dtype(dtype)
    tiny = 1e3 * float(np.finfo(dtype).eps)
    twice = bool(np.dtype(dtype) != np.float64)
    del structure  # part of the cache key only: the Partials' functions and shapes

    def project(basis: Any, w: Any, nblocks: Any) -> tuple[Any, Any]:
        """w − Vᵀ(V w) over the first nblocks·BLOCK rows; returns (w, V w)."""

        def coeffs(b: Any, c: Any) -> Any:
            vb = lax.dynamic_slice_in_dim(basis, b * BLOCK, BLOCK, 0)
            return lax.dynamic_update_slice_in_dim(c, vb @ w, b * BLOCK, 0)

        c = lax.fori_loop(0, nblocks, coeffs, jnp.zeros(rows, dt))

        def subtract(b: Any, w: Any) -> Any:
            vb = lax.dynamic_slice_in_dim(basis, b * BLOCK, BLOCK, 0)
            cb = lax.dynamic_slice_in_dim(c, b * BLOCK, BLOCK, 0)
            return w - cb @ vb

        return lax.fori_loop(0, nblocks, subtract, w), c

    def extend(ops: Any, x: Any, basis: Any, alpha: Any, beta: Any, j0: Any, j1: Any,
               key: Any) -> Any:
        hvp_fn = static_hvp if ops[0] is None else ops[0]
        f = static_f if ops[1] is None else ops[1]
        op = operator_at(hvp_fn, f)(x)

        def step(j: Any, state: Any) -> Any:
            basis, alpha, beta = state
            v = basis[j]
            hv = op(v)
            a = jnp.vdot(v, hv)
            # three-term recurrence, then one classical Gram-Schmidt pass against
            # the whole basis (the local terms are already gone, so one pass
            # restores orthogonality to rounding; a second would double the cost)
            w = hv - a * v - jnp.where(j > 0, beta[jnp.maximum(j - 1, 0)], 0.0) * basis[
                jnp.maximum(j - 1, 0)]
            w, c = project(basis, w, j // BLOCK + 1)
            if twice:  # single precision: "twice is enough" (Giraud–Langou–Rozložník)
                w, c2 = project(basis, w, j // BLOCK + 1)
                c = c + c2
            a = a + c[j]
            b = jnp.linalg.norm(w)
            broke = b <= tiny * jnp.maximum(jnp.linalg.norm(hv), jnp.finfo(dt).tiny)

            def restart(_: Any) -> Any:
                # a cheap hashed pseudo-random vector (jax.random's normal costs
                # seconds of compilation), orthogonalized against the basis
                i = jnp.arange(n, dtype=dt)
                r = jnp.sin((i + 1) * 12.9898 + (j + 1) * 78.233 + key) * 43758.5453
                r = r - jnp.floor(r) - 0.5
                nb2 = (j + 1) // BLOCK + 1
                r, _ = project(basis, r, nb2)
                r, _ = project(basis, r, nb2)
                return r / jnp.maximum(jnp.linalg.norm(r), jnp.finfo(dt).tiny)

            nxt = lax.cond(broke, restart, lambda _: w / b, None)
            basis = basis.at[j + 1].set(nxt.astype(dt))
            return basis, alpha.at[j].set(a), beta.at[j].set(jnp.where(broke, 0.0, b))

        return lax.fori_loop(j0, j1, step, (basis, alpha, beta))

    return jax.jit(extend, donate_argnums=(2, 3, 4))


def ritz_pairs(
    hvp_fn: Any, x: Any, basis: Any, coef: np.ndarray, dtype: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ritz vectors ``coefᵀ V`` (unit rows), their Rayleigh quotients and true residuals.

    The vector certified is the one the HVP actually receives: ``y`` rounded to
    ``dtype`` (float32 rounds it), read back exactly in float64. Its Rayleigh
    quotient ``θ = yᵀfl(Hy)/yᵀy`` and residual ``‖fl(Hy) − θy‖/‖y‖`` are formed in
    float64 from the computed HVP, so ``λmin − δ ≤ θ ≤ λmax + δ`` holds for the
    numbers returned (δ the HVP's rounding, :mod:`hesscli.spectra.bounds`) — the
    projected matrix's Ritz values need not: in float32 a projected matrix
    that drifted from ``VᵀHV`` reported 55× λmax. Returned in ascending order of
    the Rayleigh quotients, one HVP each.

    On the host with NumPy's BLAS and the already-compiled HVP: a compiled
    kernel for this would cost a second of compilation for a one-off product.
    """
    j = coef.shape[0]
    rows = np.asarray(basis)[:j]  # a view: no float64 copy of the basis (512 MB at 10⁶×64)
    vecs = (np.asarray(coef.T, dtype=rows.dtype) @ rows).astype(np.float64)
    return rayleigh_pairs(lambda v: hvp_fn(x, v), vecs, dtype)


def tridiag_eigh(alpha: np.ndarray, beta: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(alpha[:j], dtype=np.float64)
    b = np.asarray(beta[: j - 1], dtype=np.float64)
    if j == 1:
        return a.copy(), np.ones((1, 1))
    import scipy.linalg  # here, not at import: the dense path of a small problem never needs it

    return scipy.linalg.eigh_tridiagonal(a, b)


def _ends(j: int, k: int) -> np.ndarray:
    """Indices of the k smallest and k largest of j Ritz values (all when j ≤ 2k)."""
    if j <= 2 * k:
        return np.arange(j)
    return np.concatenate([np.arange(k), np.arange(j - k, j)])


def lanczos_extremes(
    hvp_fn: Any, x: np.ndarray, solve: Solve = DEFAULT_SOLVE, *, dtype: str = "float64",
    f: OperatorAt | None = None, basis_sharding: Any = None, shards: int = 1,
    progress: OnProgress | None = None,
) -> Extremes:
    """The k smallest and k largest eigenpairs of H(x) by Lanczos (see module docstring).

    ``solve`` (:class:`Solve`) gives k, the seed, the target that says when to stop
    (default :meth:`Target.residual` with its ``rtol``), the step budget and the
    ends: ``ends`` = "max" or "min" stops as soon as that end has met it (the other
    end is still reported, flagged by its own measure).

    ``hvp_fn(x, v)`` is a jitted JAX HVP; ``f``, when given, the matrix as an
    :class:`~hesscli.curvature.base.OperatorAt` (a curvature's ``linearizable``),
    linearized once per point instead (see :func:`at_point`). Stops when
    the wanted ends meet the target, or after ``max_steps``
    (default: :func:`max_steps_for`). ``basis_sharding`` (with ``shards``, the
    devices it splits n over): where the basis lives, for parameter-sharded
    vectors; the memory budget is then per device. ``progress`` (or, when None,
    the sink of :func:`hesscli.progress.reporting`) gets a
    :class:`~hesscli.progress.Progress` after every convergence check:
    HVPs so far, each end's Ritz value and residual estimate, the target.
    """
    k, seed, max_steps, ends = solve.k, solve.seed, solve.max_steps, solve.ends
    n = int(np.size(x))
    target = solve.target_for(dtype)
    xj = np.asarray(x, dtype=dtype)
    hvp_fn, f = at_point(hvp_fn, f, xj)  # a Hessian: ∇f linearized here, once
    m = max_steps_for(n, dtype, max_steps, shards if basis_sharding is not None else 1)
    rows = BLOCK * math.ceil((m + 1) / BLOCK)
    extend = lanczos_kernel(hvp_fn, n, dtype, rows, f)
    basis = initial_basis(rows, n, dtype, seed, basis_sharding)
    alpha = np.zeros(rows, dtype)
    beta = np.zeros(rows, dtype)
    key = float(seed % 1000) * 0.618
    j, hvps_max, hvps_min = 0, None, None
    before = None
    first = min(m, max(2 * k + 2, 8))
    while j < m:
        j1 = first if j == 0 else min(m, j + CHECK_EVERY)
        basis, alpha, beta = extend(xj, basis, alpha, beta, j, j1, key)
        j = j1
        a_host, b_host = np.asarray(alpha), np.asarray(beta)
        theta, s = tridiag_eigh(a_host, b_host, j)
        est = np.abs(b_host[j - 1] * s[j - 1, :])
        if j >= n:  # the basis spans the space: T is similar to H
            est = np.zeros_like(est)
        if j >= n:  # nothing left to settle
            before = end_values(theta, min(k, j))
        min_ok, max_ok = judge(theta, est, k, target, n, dtype, before)
        before = end_values(theta, min(k, j))
        kk = min(k, j)
        report(progress, Progress(
            solver=Eigensolver.LANCZOS, hvps=j, lambda_min=float(theta[0]),
            lambda_max=float(theta[-1]),
            bound_min=float(np.max(est[:kk])), bound_max=float(np.max(est[j - kk:])),
            target=target.rtol * (float(np.max(np.abs(theta))) or 1.0),
        ))
        if hvps_min is None and min_ok:
            hvps_min = j
        if hvps_max is None and max_ok:
            hvps_max = j
        if ((min_ok or ends == Ends.MAX) and (max_ok or ends == Ends.MIN)
                and j >= target.krylov_floor(n)):
            break
    # a basis that spans the space has every eigenvalue: report all n (complete)
    idx = np.arange(j) if j >= n else _ends(j, k)
    vecs, res, values = ritz_pairs(hvp_fn, xj, basis, s[:, idx], dtype)
    fields = certify(values=values, residuals=res, ritz=theta, index=idx, vectors=vecs,
                     target=target, n=n, k=k, dtype=dtype, ends=ends, complete=j >= n,
                     ritz_residuals=est)
    return Extremes(
        **fields, k=k, solver=Eigensolver.LANCZOS, steps=j, hvps=j + idx.size, hvps_max=hvps_max,
        hvps_min=hvps_min, seed=seed, basis_rows=j, n=n, krylov_steps=j,
    )


