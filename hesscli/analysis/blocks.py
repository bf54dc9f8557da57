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


def matmat_of(curvature: Any, x: np.ndarray, dtype: str = "float64") -> Any:
    """``matmat(V) -> H V`` for a curvature backend: its jitted HVP mapped over columns
    when it has one (exact JAX), else one ``curvature.hvp`` per column."""
    hvp_fn = curvature.hvp_fn
    if hvp_fn is not None:
        from hesscli.spectra.trace import hvp_matmat

        return hvp_matmat(hvp_fn, x, dtype)

    def matmat(v: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(curvature.hvp(x, col), dtype=np.float64)
                         for col in np.asarray(v).T], axis=1)

    return matmat


def analyze_blocks(obj: Objective, curvature: Any, spec: str = "leaf", *,
                   dense: np.ndarray | None = None, seed: int = 0,
                   trace_hvps: int = 30) -> BlockReport:
    """The block report of ``obj`` at its point, blocks grouped by ``spec``
    (see :func:`hesscli.spectra.blocks.group_blocks`); ``dense`` is the dense
    Hessian when the caller has it."""
    try:
        how, blocks = group_blocks(obj.layout, spec)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return block_spectra(matmat_of(curvature, obj.x, obj.dtype), obj.n, blocks,
                         grouping=how, dense=dense, trace_hvps=trace_hvps, seed=seed)
