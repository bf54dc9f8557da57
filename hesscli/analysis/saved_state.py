"""``analyze --preconditioner STATE``: Adam's preconditioner from an optax state a user saved.

A training script saves its optimizer state beside its parameters (an orbax
checkpoint directory, Flax ``to_bytes`` msgpack, an ``.npz`` or ``.safetensors``
of its flattened leaves: the formats ``--at`` reads). Read back without the
optimizer, such a state is plain containers: ``optax.adam``'s
``(ScaleByAdamState(count, mu, nu), EmptyState())`` comes back from orbax as
``[{"count", "mu", "nu"}, None]`` and from msgpack as ``{"0": {...}, "1": {}}``.
What it holds is the Adam-type node (the leaves ``count``, ``mu``, ``nu``,
wherever ``optax.chain`` or ``adamw`` put it; ``nu_max`` too for AMSGrad) and,
only when the optimizer was wrapped in ``optax.inject_hyperparams``, the
hyperparameters (``hyperparams``: learning_rate, b1, b2, eps, eps_root,
weight_decay). Neither the optimizer's name nor, otherwise, β₁, β₂, eps or the
learning rate is saved, so they come from options (``--lr``, ``--b1``,
``--b2``, ``--eps``, ``--weight-decay``, ``--nesterov``, the names of
``hesscli train``'s), then from injected hyperparameters, then from
``optax.adam``'s defaults, and every assumed value is named in a note. Without
a learning rate there is no threshold to compare with: λmax(P⁻¹H) and the bound
on lr·λmax are reported, and the largest stable learning rate, bound/λmax.

``mu`` and ``nu`` are matched to the point's parameters by leaf path (a
restored dict sorts ``"10"`` before ``"2"``, so flat order alone would pair a
list's leaves wrongly), with one leading component dropped where only one side
has it (a Flax ``params`` collection), or taken whole when a single array holds
exactly n entries (a state of a flat vector).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from hesscli.analysis.preconditioned import (
    LoadedState,
    PreconditionedSharpness,
    preconditioned_sharpness,
    sharpness_document,
)
from hesscli.curvature.base import Curvature
from hesscli.errors import InputError
from hesscli.spectra.policy import SpectrumPolicy
from hesscli.vocab import CurvatureKind, Ends, Optimizer

#: the formats a saved optimizer state is read from (a directory: orbax)
STATE_SUFFIXES = (".msgpack", ".npz", ".safetensors")
OPTION = "--preconditioner"


def is_state(spec: Any) -> bool:
    """Whether ``preconditioner=spec`` is an optimizer state: an optax state object passed
    from Python (anything not a path), or a saved one (:func:`is_state_file`)."""
    return not isinstance(spec, (str, os.PathLike)) or is_state_file(str(spec))


def _label(spec: Any) -> str:
    """How messages and the JSON ``source`` name the state."""
    if isinstance(spec, (str, os.PathLike)):
        return f"{OPTION} {spec}"
    return f"preconditioner= (a {type(spec).__name__} object)"


def is_state_file(spec: str) -> bool:
    """Whether ``--preconditioner spec`` names a saved optimizer state rather than a
    ``train --out`` run log: a directory, a ``FILE::sub.tree`` selector, one of
    :data:`STATE_SUFFIXES`, or an orbax manager's item (``ckpt/opt_state``)."""
    if "::" in spec:
        return True
    path = Path(spec)
    return (path.is_dir() or path.suffix.lower() in STATE_SUFFIXES
            or _manager_item(path) is not None)


def _manager_item(path: Path) -> Path | None:
    """``ckpt/opt_state`` for an orbax ``CheckpointManager`` folder ``ckpt/<step>/opt_state``:
    the newest step's item of that name (None when ``path`` is not that)."""
    parent = path.parent
    if path.exists() or not parent.is_dir():
        return None
    steps = sorted((p for p in parent.iterdir() if p.is_dir() and p.name.isdigit()),
                   key=lambda p: int(p.name))
    if steps and (steps[-1] / path.name).is_dir():
        return steps[-1] / path.name
    return None


def read_state(spec: str, n: int) -> Any:
    """The saved state at ``spec`` (``FILE::sub.tree`` selects inside it) as a tree of
    NumPy arrays in plain containers."""
    from hesscli.objective.checkpoints import read_checkpoint, select, split_selector
    from hesscli.objective.points import read_point_file

    file, sub = split_selector(spec) if "::" in spec else (spec, None)
    where = f"{OPTION} {spec}"
    path = Path(file)
    item = _manager_item(path)
    if item is not None:
        path = item
    if not path.exists():
        raise InputError(f"{where}: no such file or directory (give a saved optax state: an "
                         "orbax checkpoint directory, .msgpack, .npz or .safetensors; or the "
                         "JSONL log of 'hesscli train --out')")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in (".msgpack", ".safetensors"):
        tree = read_checkpoint(path, None)
    elif suffix == ".npz":
        tree = read_point_file(path, 3 * n + 64)  # count, mu, nu (and AMSGrad's nu_max)
    else:
        raise InputError(f"{where}: a {suffix or 'suffix-less'} file cannot hold an "
                         "optimizer state; use an orbax directory, .msgpack, .npz or "
                         ".safetensors")
    return tree if sub is None else select(tree, sub, where)


def _has(node: Any, field: str) -> bool:
    if isinstance(node, Mapping):
        return field in node
    return field in getattr(type(node), "_fields", ())  # a NamedTuple (tuple.count is no field)


def _get(node: Any, field: str) -> Any:
    return node[field] if isinstance(node, Mapping) else getattr(node, field)


def _children(node: Any) -> list[tuple[str, Any]]:
    if isinstance(node, Mapping):
        return [(str(k), v) for k, v in node.items()]
    if hasattr(node, "_fields"):  # a NamedTuple (an optax state passed in as it is)
        return [(f, getattr(node, f)) for f in node._fields]
    if isinstance(node, (tuple, list)):
        return [(str(i), v) for i, v in enumerate(node)]
    return []


def find_nodes(tree: Any, fields: tuple[str, ...], at: str = "") -> list[tuple[str, Any]]:
    """Every node of ``tree`` with all of ``fields`` (outermost first; a found node's
    insides are not searched), with its path (``"1.0"``: item 0 of item 1)."""
    if all(_has(tree, f) for f in fields):
        return [(at or "the top level", tree)]
    found = []
    for key, child in _children(tree):
        found += find_nodes(child, fields, f"{at}.{key}" if at else key)
    return found


def _leaves(tree: Any) -> dict[str, np.ndarray]:
    import jax

    from hesscli.objective.layout import path_to_str

    return {path_to_str(p): np.asarray(v)
            for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _drop_first(paths: list[str]) -> list[str] | None:
    """The paths without their shared first component (None if they do not share one)."""
    heads = {p.split(".", 1)[0] for p in paths}
    if len(heads) != 1 or any("." not in p for p in paths):
        return None
    return [p.split(".", 1)[1] for p in paths]


def _align(point: list[str], state: list[str]) -> dict[str, str] | None:
    """point path -> state path: equal, or equal once one side's shared first component
    (a ``params`` collection) is dropped; None when no such pairing exists."""
    if set(point) == set(state):
        return {p: p for p in point}
    stripped = _drop_first(point)
    if stripped is not None and set(stripped) == set(state):
        return dict(zip(point, stripped, strict=True))
    stripped = _drop_first(state)
    if stripped is not None and set(stripped) == set(point):
        back = dict(zip(stripped, state, strict=True))
        return {p: back[p] for p in point}
    return None


def matched(tree: Any, layout: Any, name: str, where: str) -> np.ndarray:
    """``tree`` (the state's ``mu``, ``nu`` or ``nu_max``) as one flat float64 vector in the
    point's ``ravel_pytree`` order, or an input error naming what does not match."""
    leaves = _leaves(tree)
    n = layout.size
    total = sum(int(v.size) for v in leaves.values())
    point = {leaf.path: leaf.shape for leaf in layout.leaves}
    if len(leaves) == 1 and total == n and len(point) > 1:
        return np.asarray(next(iter(leaves.values())), np.float64).reshape(-1)  # flat
    if len(leaves) == 1 and len(point) == 1:
        (arr,) = leaves.values()
        (shape,) = point.values()
        if arr.shape != shape and arr.size != n:
            raise InputError(f"{where}: the state's {name} has shape {arr.shape} "
                             f"({arr.size} entries); the point's parameters have shape "
                             f"{shape} ({n})")
        return np.asarray(arr, np.float64).reshape(-1)
    pairs = _align(list(point), list(leaves))
    if pairs is None:
        missing = sorted(set(point) - set(leaves))
        extra = sorted(set(leaves) - set(point))
        parts = []
        if missing:
            parts.append(f"no {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}"
                         + (" ..." if len(extra) > 3 else ""))
        raise InputError(f"{where}: the state's {name} does not have the point's parameters "
                         f"({'; '.join(parts)}; {total} entries, the point {n}); is it the "
                         "optimizer state of this model?")
    flat = []
    for ppath, shape in point.items():
        arr = leaves[pairs[ppath]]
        if arr.shape != shape:
            raise InputError(f"{where}: the state's {name} leaf {pairs[ppath]!r} has shape "
                             f"{arr.shape}; the point's {ppath!r} has {shape}")
        flat.append(np.asarray(arr, np.float64).reshape(-1))
    return np.concatenate(flat) if flat else np.zeros(0)


def _scalar(value: Any, what: str, where: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{where}: the state's {what} is not a number (shape {arr.shape})")
    return float(arr.reshape(()))


@dataclasses.dataclass(frozen=True)
class Settings:
    """The optimizer behind a saved state, with where each hyperparameter came from."""

    optimizer: str
    options: dict[str, Any]
    lr: float | None  # for the threshold: --lr, else the state's injected one, else None
    state_lr: float | None  # the learning rate injected into the state (None: not saved)
    assumed: tuple[str, ...]
    notes: tuple[str, ...]


def settings(state: Any, ams: bool, where: str, *, lr: float | None,
             b1: float | None, b2: float | None, eps: float | None,
             weight_decay: float | None, nesterov: bool | None) -> Settings:
    """The optimizer and its hyperparameters: options first, then what
    ``optax.inject_hyperparams`` saved in the state, then ``optax.adam``'s defaults
    (named in a note)."""
    from hesscli.curvature.preconditioned import hyperparameters

    injected: dict[str, float] = {}
    for _, holder in find_nodes(state, ("hyperparams", "inner_state"))[:1]:
        hp = _get(holder, "hyperparams")
        if isinstance(hp, Mapping):
            for key, value in hp.items():
                arr = np.asarray(value)
                if arr.size == 1 and np.issubdtype(arr.dtype, np.number):
                    injected[str(key)] = float(arr.reshape(()))
    given = {"b1": b1, "b2": b2, "eps": eps}  # ranges checked by the API (api_args)
    wd = weight_decay if weight_decay is not None else injected.get("weight_decay")
    if ams:
        if nesterov or wd:
            raise InputError(f"{where}: the state is AMSGrad's (it holds nu_max): --nesterov "
                             "and --weight-decay do not apply to it")
        optimizer = "amsgrad"
    elif nesterov and wd:
        raise InputError("--nesterov with --weight-decay: no threshold is derived for NAdamW "
                         "here; give one of them")
    else:
        optimizer = Optimizer.NADAM if nesterov else Optimizer.ADAMW if wd else Optimizer.ADAM
    defaults = hyperparameters(optimizer, None)
    options: dict[str, Any] = {}
    assumed = []
    notes = []
    for key in ("b1", "b2", "eps", "eps_root"):
        if given.get(key) is not None:
            options[key] = float(given[key])  # type: ignore[arg-type]
            if key in injected and not np.isclose(injected[key], options[key], rtol=1e-6):
                notes.append(f"--{key} {options[key]:g} replaces the state's {key} = "
                             f"{injected[key]:g}")
        elif key in injected:
            options[key] = injected[key]
        else:
            options[key] = float(defaults[key])
            if key != "eps_root":
                assumed.append(key)
    if optimizer == Optimizer.ADAMW:
        options["weight_decay"] = float(wd or 0.0)
    if optimizer == "nadam":
        options["nesterov"] = True
    if assumed:
        shown = ", ".join(f"{k} = {options[k]:g}" for k in assumed)
        notes.append(f"{shown} assumed (optax.{optimizer}'s defaults): the saved state does not "
                     f"hold them; pass {' '.join('--' + k for k in assumed)} if the run used "
                     "others")
    if injected:
        notes.append("hyperparameters read from the state (optax.inject_hyperparams): "
                     + ", ".join(f"{k} = {v:g}" for k, v in sorted(injected.items())))
    if not ams and nesterov is None and weight_decay is None and "weight_decay" not in injected:
        notes.append("the saved state does not say which Adam variant ran: Adam assumed "
                     "(pass --nesterov for NAdam, --weight-decay W for AdamW)")
    state_lr = injected.get("learning_rate")
    use_lr = lr if lr is not None else state_lr
    if lr is None and state_lr is not None:
        notes.append(f"lr = {state_lr:g} from the state's injected learning_rate (its last "
                     "step's); pass --lr for another")
    if use_lr is None:
        notes.append("no --lr: an optax state does not hold the learning rate, so "
                     "λmax(P⁻¹H) is not compared with the threshold (2 + 2β₁)/((1 − β₁)·lr); "
                     "pass --lr for the verdict")
    return Settings(optimizer, options, use_lr, state_lr, tuple(assumed), tuple(notes))


def load_saved_state(spec: Any, layout: Any, *, lr: float | None = None,
                     b1: float | None = None, b2: float | None = None,
                     eps: float | None = None, weight_decay: float | None = None,
                     nesterov: bool | None = None) -> tuple[LoadedState, Settings]:
    """The preconditioner of the Adam-type state saved at ``spec`` (or the optax state
    object ``spec`` itself, from Python) for a point with ``layout`` (see the module
    docstring); input errors name what is wrong."""
    from hesscli.curvature.preconditioned import preconditioner_of

    where = _label(spec)
    n = layout.size
    saved = isinstance(spec, (str, os.PathLike))
    state = read_state(str(spec), n) if saved else spec
    nodes = find_nodes(state, ("count", "mu", "nu"))
    if not nodes:
        raise InputError(f"{where}: no Adam-type state in it (no node with count, mu and nu; "
                         "optax.adam/adamw/nadam/amsgrad save one); is it an optimizer state?")
    if len(nodes) > 1:
        at = ", ".join(p for p, _ in nodes[:4])
        pick = (f"with {str(spec).split('::')[0]}::PATH" if saved
                else "and pass that part of the state")
        raise InputError(f"{where}: {len(nodes)} Adam-type states in it (at {at}); pick one "
                         f"{pick}")
    _, node = nodes[0]
    ams = _has(node, "nu_max")
    count_value = _scalar(_get(node, "count"), "count", where)
    if count_value != int(count_value) or count_value < 0:
        raise InputError(f"{where}: the state's count is {count_value:g}, not a step count")
    mu = matched(_get(node, "mu"), layout, "mu", where)
    nu = matched(_get(node, "nu"), layout, "nu", where)
    del mu  # checked for shape; P needs only the second moment
    moments = {"count": int(count_value), "nu": nu}
    if ams:
        moments["nu_max"] = matched(_get(node, "nu_max"), layout, "nu_max", where)
    cfg = settings(state, ams, where, lr=lr, b1=b1, b2=b2, eps=eps,
                   weight_decay=weight_decay, nesterov=nesterov)
    try:
        pre = preconditioner_of(cfg.optimizer, cfg.options, SimpleNamespace(**moments), n)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    return LoadedState(pre, str(spec) if saved else "optax state object",
                       step=int(count_value), lr=cfg.state_lr,
                       assumed=cfg.assumed), cfg


def preconditioned_part(obj: Any, backend: Curvature, spec: Any, policy: SpectrumPolicy, *,
                        lr: float | None, b1: float | None = None, b2: float | None = None,
                        eps: float | None = None, weight_decay: float | None = None,
                        nesterov: bool | None = None,
                        ) -> tuple[PreconditionedSharpness, dict[str, Any]]:
    """``analyze --preconditioner STATE``: λmax(P⁻¹H) at ``obj``'s point with P from the
    saved state at ``spec``, the threshold when a learning rate is known, and its JSON."""
    if backend.parallel.sharded:
        raise InputError("--preconditioner runs on one device; use --devices 1")
    loaded, cfg = load_saved_state(spec, obj.layout, lr=lr, b1=b1, b2=b2, eps=eps,
                                   weight_decay=weight_decay, nesterov=nesterov)
    ends_policy = dataclasses.replace(policy, k=1, ends=Ends.MAX)
    ps = preconditioned_sharpness(backend, np.asarray(obj.x), loaded.preconditioner, cfg.lr,
                                  ends_policy)
    notes = list(cfg.notes) + list(ps.notes)
    if backend.kind != CurvatureKind.HESSIAN:
        notes.append(f"the operator is P^(-1/2)·M·P^(-1/2) with M the {backend.kind}, not the "
                     "Hessian (--curvature)")
    ps = dataclasses.replace(ps, notes=tuple(notes))
    return ps, sharpness_document(ps, loaded)
