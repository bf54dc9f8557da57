"""``analyze --null-space``: how many eigenvalues are (numerically) zero, and why.

A network's Hessian has large null spaces that say something about the model:

- **vanishing rows**: a parameter the loss does not depend on near the point
  (a dead ReLU unit's incoming weights, bias and outgoing weights; the weights
  reading an input that is constant zero) has an all-zero Hessian row and
  column, so its coordinate vector is an exact null vector. Rows and columns of
  a 2-D leaf (``w[in, out]``) that vanish whole are named as units and inputs:
  a vanishing column ``c`` of a kernel is *unit c* of its layer (with the
  layer's bias entry ``c`` and row ``c`` of the next kernel that reads it, when
  those vanish too: a dead unit), a vanishing row ``r`` not claimed by a dead
  unit is *input r* (an unused input);
- **symmetries**: directions along which the loss is invariant for every value
  of the parameters are null vectors everywhere. Candidates are tested with one
  product each, after removing the vanishing coordinates: the shift of a leaf
  (all ones: a softmax's bias, where adding a constant to every logit changes
  nothing), the shift of each row of a 2-D leaf across its outputs (the
  softmax shift through the kernel), and the scale of each leaf and of each
  layer (weights before a normalization: f(c·w) = f(w), a null direction only
  where the point is also critical). The independent ones that pass count; a
  scale invariance off a critical point (H w = −∇_w f ≠ 0) is named with
  dimension 0.

The dimension itself is exact on the dense path (eigenvalues with
|λ| ≤ the verdict tolerance). Matrix-free it is estimated by stochastic
Lanczos quadrature: n times the quadrature mass of the nodes with |θ| ≤ tol,
averaged over probes, with its standard error over the probes; vanishing rows
are then found by one product per row/column slice (a random vector on the
slice: if H v = 0 the whole slice vanishes, almost surely).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hesscli.objective.layout import Layout
from hesscli.vocab import NullSource

MAX_SLICE_HVPS = 4096  # matrix-free: slices tested one product each, up to this many


@dataclass(frozen=True)
class Source:
    """One explained part of the null space."""

    kind: NullSource
    where: str  # layer or leaf
    dimension: int
    indices: tuple[int, ...] = ()  # units, inputs or leaf rows involved
    parameters: tuple[str, ...] = ()  # leaves involved


@dataclass(frozen=True)
class NullSpace:
    dimension: float  # exact (dense: an int) or estimated (matrix-free)
    standard_error: float  # 0 when exact
    exact: bool
    tolerance: float
    n: int
    sources: tuple[Source, ...]
    vanishing: int  # coordinates whose Hessian row/column vanishes
    symmetry_rank: int
    hvps: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def explained(self) -> int:
        return self.vanishing + self.symmetry_rank

    @property
    def unexplained(self) -> float:
        return self.dimension - self.explained


def _leaf_matrix(leaf: Any) -> tuple[int, int]:
    """A leaf as a matrix (rows = all axes but the last, cols = the last)."""
    if len(leaf.shape) < 2:
        return leaf.size, 1
    return leaf.size // leaf.shape[-1], leaf.shape[-1]


def _outputs_first(leaf: Any, leaves: list[Any]) -> bool:
    """Whether a 2-D weight is stored (outputs, inputs): its layer's bias has shape[0]
    entries (not shape[1]), or, square or without a bias, it is named ``weight`` (the
    Equinox/PyTorch name and layout; Flax's ``kernel`` is (inputs, outputs))."""
    if len(leaf.shape) != 2:
        return False
    rows, cols = leaf.shape
    sizes = {b.shape[0] for b in leaves if len(b.shape) == 1 and b.path != leaf.path
             and _parent(b.path) == _parent(leaf.path)}
    if rows != cols and rows in sizes and cols not in sizes:
        return True
    if rows != cols and cols in sizes:
        return False
    return leaf.path.rsplit(".", 1)[-1] == "weight"


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else path


def attribute_vanishing(vanish: np.ndarray, layout: Layout) -> list[Source]:
    """Name the vanishing coordinates: dead units, unused inputs, the rest per leaf."""
    claimed = np.zeros_like(vanish)
    sources: list[Source] = []
    leaves = list(layout.leaves)
    mats = {leaf.path: leaf for leaf in leaves if len(leaf.shape) >= 2}

    def coords(leaf: Any) -> np.ndarray:
        """The leaf's flat indices as an (inputs, outputs) matrix: a kernel as Flax and
        NumPy write it (``x @ w``), or transposed for an (outputs, inputs) weight as
        Equinox and PyTorch store it (``w @ x``), so that units are columns."""
        c = np.arange(leaf.offset, leaf.offset + leaf.size).reshape(_leaf_matrix(leaf))
        return c.T if _outputs_first(leaf, leaves) else c

    for leaf in leaves:
        if leaf.path not in mats:
            continue
        c = coords(leaf)
        dead_cols = [j for j in range(c.shape[1]) if vanish[c[:, j]].all()]
        if not dead_cols:
            continue
        parent = _parent(leaf.path)
        biases = [b for b in leaves if len(b.shape) == 1 and _parent(b.path) == parent
                  and b.shape[0] == c.shape[1]]
        readers = [m for m in leaves if m.path in mats and m.path != leaf.path
                   and coords(m).shape[0] == c.shape[1]]
        units = []
        for j in dead_cols:
            group = [c[:, j]]
            for b in biases:
                if vanish[b.offset + j]:
                    group.append(np.array([b.offset + j]))
            for m in readers:
                row = coords(m)[j]
                if vanish[row].all():
                    group.append(row)
            idx = np.concatenate(group)
            idx = idx[~claimed[idx]]
            if idx.size:
                claimed[idx] = True
                units.append((j, idx.size))
        if units:
            sources.append(Source(NullSource.DEAD_UNIT, parent, sum(s for _, s in units),
                                  tuple(j for j, _ in units),
                                  (leaf.path, *(b.path for b in biases),
                                   *(m.path for m in readers))))
    for leaf in leaves:
        if leaf.path not in mats:
            continue
        c = coords(leaf)
        rows = []
        for i in range(c.shape[0]):
            if vanish[c[i]].all():
                idx = c[i][~claimed[c[i]]]
                if idx.size:
                    claimed[idx] = True
                    rows.append((i, idx.size))
        if rows:
            sources.append(Source(NullSource.UNUSED_INPUT, leaf.path, sum(s for _, s in rows),
                                  tuple(i for i, _ in rows), (leaf.path,)))
    for leaf in leaves:
        idx = np.arange(leaf.offset, leaf.offset + leaf.size)
        rest = idx[vanish[idx] & ~claimed[idx]]
        if rest.size:
            claimed[rest] = True
            sources.append(Source(NullSource.VANISHING, leaf.path, int(rest.size),
                                  tuple(int(i - leaf.offset) for i in rest[:20]), (leaf.path,)))
    return sources


def symmetry_candidates(layout: Layout, x: np.ndarray) -> list[tuple[str, str, int, np.ndarray]]:
    """(kind, where, row, direction) for the shifts and scales described above."""
    n = x.size
    out = []
    for leaf in layout.leaves:
        sl = slice(leaf.offset, leaf.offset + leaf.size)
        if len(leaf.shape) >= 2:  # rows first: the whole-leaf shift is their sum
            rows, cols = _leaf_matrix(leaf)
            for i in range(rows):
                v = np.zeros(n)
                v[leaf.offset + i * cols: leaf.offset + (i + 1) * cols] = 1.0
                out.append((NullSource.SHIFT, leaf.path, i, v))
        v = np.zeros(n)
        v[sl] = 1.0
        out.append((NullSource.SHIFT, leaf.path, -1, v))
        v = np.zeros(n)
        v[sl] = x[sl]
        out.append((NullSource.SCALE, leaf.path, -1, v))
    parents: dict[str, list[Any]] = {}
    for leaf in layout.leaves:
        parents.setdefault(_parent(leaf.path), []).append(leaf)
    for parent, group in parents.items():
        if len(group) > 1:
            v = np.zeros(n)
            for leaf in group:
                v[leaf.offset: leaf.offset + leaf.size] = x[leaf.offset: leaf.offset + leaf.size]
            out.append((NullSource.SCALE, parent, -1, v))
    return out


def find_symmetries(matmat: Any, layout: Layout, x: np.ndarray, vanish: np.ndarray,
                    tol: float, gradient: np.ndarray | None = None,
                    ) -> tuple[list[Source], int, int]:
    """The candidates that are null vectors (‖Hv‖ ≤ tol·‖v‖ after removing the vanishing
    coordinates), grouped per leaf and kind; returns (sources, rank of their span, HVPs).

    With the ``gradient`` g, a scale candidate w that is not a null vector is still
    reported (dimension 0) when H w = −g on w's support: differentiating
    f(c·w) = f(w) at c = 1 gives exactly that, so the loss is scale-invariant
    there, and the direction becomes a zero eigenvalue only where g vanishes on it.
    """
    cands = []
    for kind, where, row, v in symmetry_candidates(layout, np.asarray(x, dtype=np.float64)):
        v = np.where(vanish, 0.0, v)
        norm = float(np.linalg.norm(v))
        if norm > 0:
            cands.append((kind, where, row, v / norm))
    if not cands:
        return [], 0, 0
    v = np.stack([c[3] for c in cands], axis=1)
    hv = np.asarray(matmat(v), dtype=np.float64)
    ok = np.linalg.norm(hv, axis=0) <= tol
    passed = [c for c, good in zip(cands, ok, strict=True) if good]
    off_critical = _scale_off_critical(cands, hv, ok, x, gradient, tol)
    if not passed:
        return off_critical, 0, len(cands)
    basis = np.stack([c[3] for c in passed], axis=1)
    sv = np.linalg.svd(basis, compute_uv=False)
    rank = int(np.sum(sv > 1e-8 * sv[0]))
    # name them, greedily keeping only directions that add to the span
    kept: list[np.ndarray] = []
    groups: dict[tuple[str, str], list[int]] = {}
    for kind, where, row, vec in passed:
        trial = np.stack([*kept, vec], axis=1)
        s = np.linalg.svd(trial, compute_uv=False)
        if np.sum(s > 1e-8 * s[0]) > len(kept):
            kept.append(vec)
            groups.setdefault((kind, where), []).append(row)
    sources = [Source(kind, where, len(rows), tuple(r for r in rows if r >= 0), (where,))
               for (kind, where), rows in groups.items()]
    return sources + off_critical, rank, len(cands)


def _scale_off_critical(cands: list, hv: np.ndarray, ok: np.ndarray, x: np.ndarray,
                        gradient: np.ndarray | None, tol: float) -> list[Source]:
    """Scale candidates with H w = −g on their support but g ≠ 0 there (see above)."""
    if gradient is None:
        return []
    g = np.asarray(gradient, dtype=np.float64)
    eps = float(np.finfo(np.float64).eps)
    out = []
    for k, (kind, where, _, vec) in enumerate(cands):
        if kind != NullSource.SCALE or ok[k]:
            continue
        support = vec != 0
        w_norm = float(np.linalg.norm(np.where(support, x, 0.0)))
        if w_norm == 0:
            continue
        g_part = np.where(support, g, 0.0) / w_norm  # −H v̂ if the loss is scale-invariant
        slack = tol + 10 * x.size * eps * float(np.linalg.norm(g_part))
        if (float(np.linalg.norm(g_part)) > tol
                and float(np.linalg.norm(hv[:, k] + g_part)) <= slack):
            out.append(Source(NullSource.SCALE, where, 0, (), (where,)))
    return out


def vanishing_dense(hessian: np.ndarray, tol: float) -> np.ndarray:
    """Coordinates whose Hessian column has norm ≤ tol."""
    return np.linalg.norm(hessian, axis=0) <= tol


def vanishing_matrix_free(matmat: Any, layout: Layout, tol: float, seed: int = 0
                          ) -> tuple[np.ndarray, int, bool]:
    """Vanishing coordinates from one product per slice (rows and columns of each leaf as
    a matrix; entries of 1-D leaves); (mask, HVPs, complete) — incomplete when the slices
    would need more than :data:`MAX_SLICE_HVPS` products."""
    n = layout.size
    rng = np.random.default_rng(seed)
    slices: list[np.ndarray] = []
    for leaf in layout.leaves:
        c = np.arange(leaf.offset, leaf.offset + leaf.size).reshape(_leaf_matrix(leaf))
        if c.shape[1] == 1:
            slices += [np.array([i]) for i in c[:, 0]]
        else:
            slices += [c[i] for i in range(c.shape[0])] + [c[:, j] for j in range(c.shape[1])]
    complete = len(slices) <= MAX_SLICE_HVPS
    slices = slices[:MAX_SLICE_HVPS]
    vanish = np.zeros(n, dtype=bool)
    for start in range(0, len(slices), 256):
        part = slices[start:start + 256]
        v = np.zeros((n, len(part)))
        for k, idx in enumerate(part):
            v[idx, k] = rng.standard_normal(idx.size)
            v[:, k] /= np.linalg.norm(v[:, k])
        hv = np.asarray(matmat(v), dtype=np.float64)
        for k, idx in enumerate(part):
            if np.linalg.norm(hv[:, k]) <= tol:
                vanish[idx] = True
    return vanish, len(slices), complete


def null_space_dense(hessian: np.ndarray, eigenvalues: np.ndarray, tol: float,
                     layout: Layout, x: np.ndarray, gradient: np.ndarray | None = None
                     ) -> NullSpace:
    """Exact dimension from the dense eigenvalues; attribution from H itself."""
    dim = int(np.sum(np.abs(eigenvalues) <= tol))
    vanish = vanishing_dense(hessian, tol)
    sources = attribute_vanishing(vanish, layout)
    sym, rank, hvps = find_symmetries(lambda v: hessian @ v, layout, x, vanish, tol, gradient)
    return NullSpace(dim, 0.0, True, tol, x.size, tuple(sources + sym),
                     int(vanish.sum()), rank, 0)


def null_space_matrix_free(matmat: Any, hvp_fn: Any, x: np.ndarray, tol: float,
                           layout: Layout, *, probes: int = 8, steps: int = 80, seed: int = 0,
                           dtype: str = "float64", gradient: np.ndarray | None = None
                           ) -> NullSpace:
    """SLQ estimate of the dimension with its standard error; attribution by slices."""
    from hesscli.spectra.density import slq_density

    n = x.size
    dens = slq_density(hvp_fn, x, probes=probes, steps=steps, seed=seed, dtype=dtype)
    per_probe = n * np.sum(dens.weights * (np.abs(dens.nodes) <= tol), axis=1)
    dim = float(np.mean(per_probe))
    se = float(np.std(per_probe, ddof=1) / math.sqrt(probes)) if probes > 1 else math.inf
    vanish, slice_hvps, complete = vanishing_matrix_free(matmat, layout, tol, seed)
    sources = attribute_vanishing(vanish, layout)
    sym, rank, sym_hvps = find_symmetries(matmat, layout, x, vanish, tol, gradient)
    notes = []
    if not complete:
        notes.append(f"vanishing rows tested on the first {MAX_SLICE_HVPS} slices only")
    return NullSpace(dim, se, False, tol, n, tuple(sources + sym), int(vanish.sum()), rank,
                     dens.hvps + slice_hvps + sym_hvps, tuple(notes))


def analyze_null_space(obj: Any, curvature: Any, tol: float, eigenvalues: np.ndarray, *,
                       dense: np.ndarray | None = None, seed: int = 0) -> NullSpace:
    """The null space at ``obj``'s point: dense when ``dense`` (the Hessian whose
    ``eigenvalues`` these are) is given, else matrix-free (needs the exact HVP)."""
    from hesscli.analysis.blocks import matmat_of
    from hesscli.errors import InputError

    x = np.asarray(obj.x, dtype=np.float64)
    gradient = np.asarray(curvature.gradient(obj.x), dtype=np.float64)
    if dense is not None:
        return null_space_dense(dense, np.asarray(eigenvalues), tol, obj.layout, x, gradient)
    hvp_fn = curvature.hvp_fn
    if hvp_fn is None:
        raise InputError("--null-space on the matrix-free path needs exact (JAX) "
                         "Hessian-vector products; use --dense for this objective")
    return null_space_matrix_free(matmat_of(curvature, x, obj.dtype), hvp_fn, x, tol,
                                  obj.layout, seed=seed, dtype=obj.dtype, gradient=gradient)
