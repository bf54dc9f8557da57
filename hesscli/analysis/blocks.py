"""``analyze --blocks``: which parameter group is sharp, from its diagonal Hessian block.

Wires :mod:`hesscli.spectra.blocks` to an objective: the partition comes from
the objective's pytree layout, the operator from the curvature backend
(:func:`matmat_of`), and on the dense path the blocks are sliced from the
dense Hessian analyze already affords.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hesscli.errors import InputError
from hesscli.objective.bind import Objective
from hesscli.spectra.blocks import BlockReport, block_spectra, group_blocks
from hesscli.vocab import Ends


def matmat_of(curvature: Any, x: np.ndarray, dtype: str = "float64") -> Any:
    """``matmat(V) -> H V`` for a curvature backend: its jitted HVP applied per column
    when it has one (exact JAX), else one ``curvature.hvp`` per column."""
    hvp_fn = curvature.hvp_fn
    if hvp_fn is not None:
        from hesscli.spectra.trace import hvp_matmat

        return hvp_matmat(hvp_fn, x, dtype)

    def matmat(v: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(curvature.hvp(x, col), dtype=np.float64)
                         for col in np.asarray(v).T], axis=1)

    return matmat


def _block_product(hvp: Any, idx: Any, x: Any, u: Any) -> Any:
    """``(H E u)[idx]``: u on the block's coordinates, one product, the block's part."""
    from hesscli.jaxconf import jax_module

    jnp = jax_module().numpy
    full = jnp.zeros(jnp.shape(x), u.dtype).at[idx].set(u)
    return hvp(x, full)[idx]


def block_solver(curvature: Any, x: np.ndarray, *, target: Any = None,
                 max_steps: int | None = None, seed: int = 0) -> Any:
    """``block -> BlockExtremes`` by the certified thick-restart Lanczos of the whole
    model (:func:`hesscli.spectra.restarted.restarted_extremes`: the same ``target``,
    HVP budget ``max_steps`` and progress reports), on the block's restricted HVP,
    with its :class:`~hesscli.spectra.bounds.EndBounds` (rounding: the full product's);
    None when the backend has no JAX HVP (ARPACK within a budget then serves).

    ∇f is linearized once at ``x`` for every block; the restricted product is a
    :class:`jax.tree_util.Partial` whose index array is an operand, so blocks of one
    size share one compiled program.
    """
    import dataclasses

    from hesscli.jaxconf import jax_module
    from hesscli.progress import sink
    from hesscli.spectra.blocks import BlockExtremes
    from hesscli.spectra.bounds import hvp_rounding
    from hesscli.spectra.certify import Solve
    from hesscli.spectra.lanczos import at_point
    from hesscli.spectra.matrix_free import end_bounds
    from hesscli.spectra.restarted import restarted_extremes

    hvp_fn = curvature.hvp_fn
    if hvp_fn is None:
        return None
    jax = jax_module()
    partial = jax.tree_util.Partial
    dtype = curvature.dtype
    xj = np.asarray(x, dtype=dtype)
    n = int(xj.size)
    op_at = curvature.linearizable
    if op_at is not None and op_at.hessian_of is not None:
        # the Hessian: ∇f linearized once here serves every block
        hvp, _ = at_point(hvp_fn, op_at, xj)
    else:
        hvp = hvp_fn if isinstance(hvp_fn, partial) else partial(hvp_fn)

    def solve(block: Any) -> BlockExtremes:
        op = partial(_block_product, hvp, jax.numpy.asarray(block.indices))
        ex = restarted_extremes(op, xj, Solve(1, seed=seed, target=target,
                                              max_steps=max_steps, ends=Ends.BOTH),
                                dtype=dtype, progress=sink(None), dim=block.size)
        bounds = end_bounds(ex, dtype)
        # the block's product is the whole model's, sliced: its rounding is that of n terms
        bounds = dataclasses.replace(bounds, rounding=max(bounds.rounding, hvp_rounding(
            n, dtype, max(abs(bounds.theta_min), abs(bounds.theta_max)))))
        lam = np.asarray(ex.eigenvalues, dtype=np.float64)
        res = np.asarray(ex.residuals, dtype=np.float64)
        lo, hi = float(lam[0]), float(lam[-1])
        top = ex.vec_max if abs(hi) >= abs(lo) else ex.vec_min
        return BlockExtremes(lo, hi, np.asarray(top, dtype=np.float64),
                             float(max(res[0], res[-1])), int(ex.hvps), bounds,
                             bool(np.all(ex.converged)))

    return solve


def analyze_blocks(obj: Objective, curvature: Any, spec: str = "leaf", *,
                   dense: np.ndarray | None = None, seed: int = 0,
                   trace_hvps: int = 30, target: Any = None,
                   max_steps: int | None = None) -> BlockReport:
    """The block report of ``obj`` at its point, blocks grouped by ``spec``
    (see :func:`hesscli.spectra.blocks.group_blocks`); ``dense`` is the dense
    Hessian when the caller has it. Matrix-free blocks use :func:`block_solver`
    with the whole model's ``target`` and ``max_steps``."""
    try:
        how, blocks = group_blocks(obj.layout, spec)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    solver = None
    if dense is None:
        solver = block_solver(curvature, obj.x, target=target, max_steps=max_steps, seed=seed)
    return block_spectra(matmat_of(curvature, obj.x, obj.dtype), obj.n, blocks,
                         grouping=how, dense=dense, trace_hvps=trace_hvps, seed=seed,
                         iterative=solver)
