"""Diagonal blocks of a symmetric operator: per-layer extreme eigenvalues, traces, coupling.

For a partition of the parameters into blocks (one per pytree leaf, or grouped
by a path prefix such as ``layer1``), block i's diagonal block is
H_ii = E_iᵀ H E_i, where E_i selects the block's coordinates: its products are
"put v on block i, multiply by H, keep block i's part". From those alone:

- the block's extreme eigenvalues: dense (the block formed from n_i products,
  or sliced from a dense H) when n_i ≤ ``dense_limit``, else matrix-free on
  the restricted operator: the caller's ``iterative`` solver (the analyses pass
  the certified thick-restart Lanczos with the whole model's target, HVP budget
  and progress, :mod:`hesscli.spectra.restarted`, and its
  :class:`~hesscli.spectra.bounds.EndBounds`), or, for an operator without a JAX
  HVP, ARPACK (:func:`scipy.sparse.linalg.eigsh`, k = 1 at each end) within an
  HVP budget, with its residuals;
- the block's trace: exact when formed, else a stochastic estimate
  (:func:`hesscli.spectra.trace.estimate_trace`). The blocks partition the
  coordinates, so Σ_i tr H_ii = tr H and the shares tr H_ii / tr H sum to 1;
- the coupling of each block to the rest: with u_i the block's top
  eigenvector (of its λ of largest magnitude) placed on block i, one product
  w = H E_i u_i gives ‖H_ji u_i‖ = ‖w_j‖ for every other block j, and the
  block's *leak* ‖w − E_iE_iᵀw‖ / ‖w‖: 0 when the block is decoupled from the
  rest along its sharpest direction (then its λ is an eigenvalue of H), near 1
  when the off-diagonal blocks dominate. When that λ is repeated (formed
  blocks: within :data:`TIE`), u_i is every vector of an orthonormal basis of
  its eigenspace and the norms are root-mean-square over it, so they do not
  depend on the basis.

Operators are ``matmat(V) -> H V`` on (n, k) arrays, so the Hessian, a
Gauss–Newton or a Fisher product all work the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.objective.layout import Layout
from hesscli.spectra.trace import Trace, estimate_trace
from hesscli.vocab import BlockMethod, Estimator, TraceMethod

MatMat = Callable[[np.ndarray], np.ndarray]
DENSE_BLOCK = 400  # a block this small is formed (n_i products + an O(n_i³) eigensolve)
TIE = 1e-9  # eigenvalues this close (relative) to the top one share its eigenspace


@dataclass(frozen=True)
class Block:
    """A named set of flat parameter indices (ascending)."""

    name: str
    indices: np.ndarray

    @property
    def size(self) -> int:
        return int(self.indices.size)


@dataclass(frozen=True)
class BlockResult:
    """One diagonal block's numbers (see the module docstring)."""

    name: str
    size: int
    lambda_min: float
    lambda_max: float
    trace: float
    trace_standard_error: float  # 0 when exact
    trace_exact: bool
    trace_estimator: TraceMethod
    share: float  # trace / Σ traces (the full trace)
    leak: float  # ‖off-block part of H u‖ / ‖H u‖ for the block's top eigenvector u
    coupling: dict[str, float]  # ‖H_ji u_i‖ per other block j
    method: BlockMethod
    residual: float  # largest ‖H_ii u − λu‖ of the extremes (0 when dense)
    hvps: int
    #: matrix-free blocks: what the extremes prove (certified intervals), else None
    bounds: Any = None
    converged: bool = True  # both ends met the solver's target (dense: always)


@dataclass(frozen=True)
class BlockExtremes:
    """What an iterative solver returns for one block (see :func:`block_spectra`)."""

    lambda_min: float
    lambda_max: float
    top: np.ndarray  # unit eigenvector (block coordinates) of the end of larger |λ|
    residual: float
    hvps: int
    bounds: Any = None  # EndBounds, when the solver certifies
    converged: bool = True


@dataclass(frozen=True)
class BlockReport:
    grouping: str
    blocks: tuple[BlockResult, ...]  # ranked by λmax, largest first
    total_trace: float
    hvps: int

    @property
    def sharpest(self) -> BlockResult:
        return self.blocks[0]


def group_blocks(layout: Layout, spec: str = "leaf") -> tuple[str, list[Block]]:
    """The partition of the flat vector named by ``spec``.

    - ``leaf``: one block per pytree leaf (``hidden.w``, ``hidden.b``, …);
    - an integer ``d``: leaves grouped by the first ``d`` components of their
      path (``1`` on ``{"layer1": {"w", "b"}, …}`` gives ``layer1``, …);
    - comma-separated prefixes (``layer1,layer2``): every leaf whose path starts
      with a prefix (as a whole component) joins that block, the rest ``(other)``.

    Raises ValueError naming the spec when it matches nothing usable.
    """
    spec = spec.strip()
    groups: dict[str, list[np.ndarray]] = {}
    if spec == "leaf":
        for leaf in layout.leaves:
            groups.setdefault(leaf.path, []).append(np.arange(leaf.offset,
                                                              leaf.offset + leaf.size))
        how = "one block per parameter leaf"
    elif spec.isdigit():
        depth = int(spec)
        if depth < 1:
            raise ValueError(f"--blocks {spec}: a grouping depth must be at least 1")
        for leaf in layout.leaves:
            key = ".".join(leaf.path.split(".")[:depth])
            groups.setdefault(key, []).append(np.arange(leaf.offset, leaf.offset + leaf.size))
        how = f"leaves grouped by the first {depth} path component{'s' * (depth > 1)}"
    else:
        prefixes = [p.strip() for p in spec.split(",") if p.strip()]
        unmatched = []
        for p in prefixes:
            if not any(leaf.path == p or leaf.path.startswith(p + ".") or
                       leaf.path.startswith(p + "[") for leaf in layout.leaves):
                unmatched.append(p)
        if not prefixes or unmatched:
            names = ", ".join(leaf.path for leaf in layout.leaves[:8])
            raise ValueError(f"--blocks {spec}: no parameter leaf starts with "
                             f"{', '.join(unmatched) or 'a prefix'} (leaves: {names}"
                             f"{', …' if len(layout.leaves) > 8 else ''}); use 'leaf', a "
                             "depth such as 1, or comma-separated leaf-path prefixes")
        for leaf in layout.leaves:
            key = next((p for p in prefixes if leaf.path == p or leaf.path.startswith(p + ".")
                        or leaf.path.startswith(p + "[")), "(other)")
            groups.setdefault(key, []).append(np.arange(leaf.offset, leaf.offset + leaf.size))
        how = f"leaves grouped by prefix ({', '.join(prefixes)})"
    # a zero-size leaf (an empty bias, a placeholder) has no coordinates: no block
    blocks = [Block(name, np.sort(np.concatenate(parts))) for name, parts in groups.items()
              if sum(part.size for part in parts) > 0]
    if not blocks:
        raise ValueError(f"--blocks {spec}: every matching parameter leaf is empty (size 0)")
    return how, blocks


def restricted(matmat: MatMat, n: int, idx: np.ndarray) -> MatMat:
    """``U -> (H E U)[idx]``: the block's products, U of shape (n_i, k)."""

    def block_matmat(u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        full = np.zeros((n, u.shape[1]))
        full[idx] = u
        return np.asarray(matmat(full), dtype=np.float64)[idx]

    return block_matmat


ARPACK_HVPS = 4000  # per end: ARPACK's budget on an operator without a JAX HVP
ARPACK_TOL = 1e-6  # relative: the residual target of the matrix-free path's "residual" rule


def extremes_iterative(op: MatMat, size: int, seed: int,
                       max_hvps: int = ARPACK_HVPS) -> BlockExtremes:
    """λmin, λmax, the eigenvector of the larger |λ|, the largest residual, products, by
    ARPACK within ``max_hvps`` products per end (an end that did not converge keeps
    its best Ritz pair and says so)."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    count = [0]

    def mv(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        return op(np.asarray(v, dtype=np.float64).reshape(-1, 1))[:, 0]

    lin = LinearOperator((size, size), matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(size)
    ncv = min(size - 1, 20)
    ends = []
    converged = True
    for which in ("SA", "LA"):
        try:
            lam, vec = eigsh(lin, k=1, which=which, v0=v0, tol=ARPACK_TOL, ncv=ncv,
                             maxiter=max(1, max_hvps // ncv))
        except ArpackNoConvergence as exc:
            converged = False
            lam, vec = exc.eigenvalues, exc.eigenvectors
            if len(lam) == 0:  # nothing usable: the start vector's Rayleigh quotient
                u = v0 / np.linalg.norm(v0)
                lam, vec = np.array([float(u @ mv(u))]), u.reshape(-1, 1)
        ends.append((float(np.real(lam[0])), np.real(vec[:, 0])))
    residual = 0.0
    for lam, vec in ends:
        residual = max(residual, float(np.linalg.norm(mv(vec) - lam * vec)))
    (lo, vlo), (hi, vhi) = ends
    top = vhi if abs(hi) >= abs(lo) else vlo
    return BlockExtremes(lo, hi, top, residual, count[0], converged=converged)


def block_spectra(
    matmat: MatMat, n: int, blocks: list[Block], *, grouping: str = "",
    dense: np.ndarray | None = None, dense_limit: int = DENSE_BLOCK,
    trace_hvps: int = 30, seed: int = 0,
    iterative: Callable[[Block], BlockExtremes] | None = None,
) -> BlockReport:
    """Each block's extremes, trace, share and coupling (see the module docstring).

    ``dense`` (the full symmetric matrix, when the caller has it) is sliced
    instead of multiplying; otherwise a block of at most ``dense_limit``
    coordinates is formed from its products and larger ones go matrix-free,
    by ``iterative(block)`` when given, else :func:`extremes_iterative`.
    """
    partial = []
    hvps = 0
    for b in blocks:
        idx = b.indices
        op = restricted(matmat, n, idx)
        if dense is not None or b.size <= dense_limit:
            if dense is not None:
                hb = dense[np.ix_(idx, idx)]
                used = 0
            else:
                hb = op(np.eye(b.size))
                used = b.size
            hb = 0.5 * (hb + hb.T)
            lam, vec = np.linalg.eigh(hb)
            lo, hi = float(lam[0]), float(lam[-1])
            end = hi if abs(hi) >= abs(lo) else lo
            # the whole eigenspace of the top λ (a repeated one, e.g. one per output unit,
            # has no single eigenvector): the coupling is then basis-independent
            near = np.abs(lam - end) <= TIE * max(abs(lo), abs(hi), 1e-300)
            top = vec[:, near]
            tr = Trace(float(np.trace(hb)), 0.0, 0, seed, 0, TraceMethod.EXACT)
            method, residual = BlockMethod.DENSE, 0.0
            bounds, converged = None, True
        else:
            ex = iterative(b) if iterative is not None else extremes_iterative(op, b.size, seed)
            lo, hi, residual, used = ex.lambda_min, ex.lambda_max, ex.residual, ex.hvps
            bounds, converged = ex.bounds, ex.converged
            top = np.asarray(ex.top, dtype=np.float64).reshape(-1, 1)
            tr = estimate_trace(op, b.size, estimator=Estimator.AUTO, hvps=trace_hvps, seed=seed)
            used += tr.hvps
            method = BlockMethod.LANCZOS
        # the coupling: H applied to the top eigenvector(s) placed on the block
        full = np.zeros((n, top.shape[1]))
        full[idx] = top
        w = np.asarray(matmat(full), dtype=np.float64)
        used += top.shape[1]
        hvps += used
        partial.append((b, lo, hi, tr, w, method, residual, used, bounds, converged))
    total = float(sum(p[3].estimate for p in partial))
    results = []
    for b, lo, hi, tr, w, method, residual, used, bounds, converged in partial:
        m = w.shape[1]  # RMS over an orthonormal basis of the top eigenspace
        norm = float(np.linalg.norm(w)) / math.sqrt(m)
        own = float(np.linalg.norm(w[b.indices])) / math.sqrt(m)
        off = math.sqrt(max(norm**2 - own**2, 0.0))
        coupling = {o.name: float(np.linalg.norm(w[o.indices])) / math.sqrt(m)
                    for o in blocks if o is not b}
        results.append(BlockResult(
            name=b.name, size=b.size, lambda_min=lo, lambda_max=hi, trace=tr.estimate,
            trace_standard_error=tr.standard_error, trace_exact=tr.estimator == TraceMethod.EXACT,
            trace_estimator=tr.estimator,
            share=tr.estimate / total if total != 0 else math.nan,
            leak=off / norm if norm > 0 else 0.0, coupling=coupling, method=method,
            residual=residual, hvps=used, bounds=bounds, converged=converged))
    results.sort(key=lambda r: -r.lambda_max)
    return BlockReport(grouping, tuple(results), total, hvps)
