"""Models as points: which arrays are the parameters, and what is held fixed.

A point may be a whole model, not only a pytree of parameters:

- an **Equinox module**: ``eqx.partition(model, eqx.is_inexact_array)``; the
  floating-point arrays are the parameters, everything else (activation
  functions, integer buffers, static fields) is held fixed and put back with
  ``eqx.combine`` before every call, so the objective receives the module;
- a **Flax NNX module**: ``nnx.split(model, nnx.Param, ...)``; the ``nnx.Param``
  variables are the parameters (named as in ``State.to_pure_dict()``), the rest
  (``BatchStat``, RNG state, …) is held fixed and ``nnx.merge`` rebuilds the module;
- a **Flax linen variables dict** ``{"params": ..., "batch_stats": ..., ...}``:
  the ``params`` collection is the parameters; the other collections
  (``batch_stats``, ``cache``, ``constants``, …) are held fixed at their values
  and passed along, so the objective receives the whole ``variables`` dict.

Anything else is a plain parameter pytree: all of it is the parameters.
:func:`split_point` never imports Equinox or Flax; it recognises a module by
its class's home package only when that package was already imported (by the
objective file).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Split:
    """The parameters of a point, and how to rebuild the point from them.

    ``combine(params)`` returns what the objective takes; ``held`` names what
    stays fixed (shown in the output); ``kind`` is ``"equinox"``, ``"flax"`` or
    None (a plain parameter pytree, ``combine`` the identity).
    """

    params: Any
    combine: Callable[[Any], Any] | None = None
    held: tuple[str, ...] = field(default_factory=tuple)
    kind: str | None = None

    def full(self, params: Any) -> Any:
        return params if self.combine is None else self.combine(params)


def is_equinox_module(point: Any) -> bool:
    eqx = sys.modules.get("equinox")
    return eqx is not None and isinstance(point, eqx.Module)


def is_nnx_module(point: Any) -> bool:
    nnx = sys.modules.get("flax.nnx")
    return nnx is not None and isinstance(point, nnx.Module)


def is_flax_variables(point: Any) -> bool:
    """A mapping with a ``params`` collection and at least one other collection.

    Every top-level value must itself be a mapping (collections map module
    names to their variables), so a plain ``{"params": w, "bias": b}`` of
    arrays stays a plain pytree.
    """
    return (
        isinstance(point, Mapping)
        and "params" in point
        and len(point) > 1
        and all(isinstance(v, Mapping) for v in point.values())
    )


def split_point(point: Any) -> Split:
    """Parameters and held parts of ``point`` (see the module docstring)."""
    if is_equinox_module(point):
        import equinox as eqx
        import jax

        params, static = eqx.partition(point, eqx.is_inexact_array)

        def combine(p: Any) -> Any:
            return eqx.combine(p, static)

        return Split(params, combine, _held_leaves(static), "equinox")
    if is_nnx_module(point):
        import jax
        from flax import nnx

        graph, state, others = nnx.split(point, nnx.Param, ...)
        treedef = jax.tree_util.tree_structure(state)

        def merge(p: Any) -> Any:
            leaves = jax.tree_util.tree_leaves(p)
            return nnx.merge(graph, jax.tree_util.tree_unflatten(treedef, leaves), others)

        pure = nnx.to_pure_dict(state) if hasattr(nnx, "to_pure_dict") else state.to_pure_dict()
        return Split(pure, merge, _held_leaves(others), "nnx")
    if is_flax_variables(point):
        rest = {k: v for k, v in point.items() if k != "params"}

        def combine_vars(p: Any) -> Any:
            return {**rest, "params": p}

        held = tuple(f"{k} ({_names(v)}: {_count(v)} values)" for k, v in rest.items())
        return Split(point["params"], combine_vars, held, "flax")
    return Split(point)


def _held_leaves(tree: Any) -> tuple[str, ...]:
    """``name (what)`` for every leaf of the held part."""
    import jax

    from hesscli.objective.layout import path_to_str

    held = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        kind = type(leaf).__name__
        if hasattr(leaf, "shape"):
            kind = f"{getattr(leaf, 'dtype', '')} array {tuple(leaf.shape)}".strip()
        held.append(f"{path_to_str(path)} ({kind})")
    return tuple(held)


def _names(tree: Any, most: int = 3) -> str:
    """The first leaf paths of ``tree`` (``BatchNorm_0.mean, BatchNorm_0.var``)."""
    import jax

    from hesscli.objective.layout import path_to_str

    paths = [path_to_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    return ", ".join(paths[:most]) + (", …" if len(paths) > most else "")


def _count(tree: Any) -> int:
    import jax
    import numpy as np

    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(tree)))


def held_note(split: Split) -> str | None:
    """The line the output shows about what is held fixed (None when nothing is)."""
    if split.kind is None or not split.held:
        return None
    what = {"equinox": "Equinox module", "nnx": "Flax NNX module"}.get(split.kind,
                                                                      "Flax variables")
    params = {"equinox": "its floating-point arrays", "nnx": "its nnx.Param variables"}.get(
        split.kind, "the 'params' collection")
    return (f"{what}: the parameters are {params}; held fixed: {', '.join(split.held[:6])}"
            + (" …" if len(split.held) > 6 else ""))
