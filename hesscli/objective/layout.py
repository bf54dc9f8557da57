"""Flat parameter vectors and the names of their entries.

hesscli works on one flat vector (``jax.flatten_util.ravel_pytree``) and reports
directions by readable names: ``layer1.w[3,2]``, ``head.bias[0]``, ``x[4]``.
A :class:`Layout` holds, per leaf, its path, shape and offset into the flat
vector; names are built on demand so a 10^6-parameter model costs nothing.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Leaf:
    path: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass(frozen=True)
class Layout:
    """Where each parameter leaf lives in the flat vector."""

    leaves: tuple[Leaf, ...]

    @property
    def size(self) -> int:
        return sum(leaf.size for leaf in self.leaves)

    def name(self, index: int) -> str:
        """The readable name of flat entry ``index``."""
        offsets = [leaf.offset for leaf in self.leaves]
        leaf = self.leaves[bisect.bisect_right(offsets, index) - 1]
        local = index - leaf.offset
        if not leaf.shape:
            return leaf.path
        idx = np.unravel_index(local, leaf.shape)
        return f"{leaf.path}[{','.join(str(int(i)) for i in idx)}]"


def key_to_str(key: Any) -> str:
    """One path element of a JAX key path as text."""
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def path_to_str(path: tuple[Any, ...]) -> str:
    return ".".join(key_to_str(k) for k in path) if path else "x"


def layout_of(tree: Any) -> Layout:
    """The layout of a pytree of arrays, in ``ravel_pytree`` order."""
    import jax

    leaves = []
    offset = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        shape = tuple(int(s) for s in np.shape(leaf))
        entry = Leaf(path_to_str(path), shape, offset)
        leaves.append(entry)
        offset += entry.size
    return Layout(tuple(leaves))


def top_entries(vector: np.ndarray, layout: Layout, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` entries of largest magnitude as ``(name, value)``, largest first."""
    k = min(k, vector.size)
    if k == 0:
        return []
    idx = np.argpartition(-np.abs(vector), k - 1)[:k]
    idx = idx[np.lexsort((idx, -np.abs(vector[idx])))]
    return [(layout.name(int(i)), float(vector[i])) for i in idx]


def leaf_shares(vector: np.ndarray, layout: Layout) -> list[tuple[str, float]]:
    """Fraction of ``‖vector‖²`` carried by each leaf, largest first."""
    total = float(np.dot(vector, vector)) or 1.0
    shares = []
    for leaf in layout.leaves:
        part = vector[leaf.offset : leaf.offset + leaf.size]
        shares.append((leaf.path, float(np.dot(part, part)) / total))
    shares.sort(key=lambda t: -t[1])
    return shares
