"""Checkpoints JAX users save, as ``--at`` points, and points written back in their format.

Formats (by suffix; a directory is an orbax checkpoint):

============== ================================================ =================
suffix         what                                             needs
============== ================================================ =================
directory      orbax PyTree checkpoint (``StandardCheckpointer`` ``hesscli[orbax]``
               / ``PyTreeCheckpointer``; a ``CheckpointManager``
               folder uses its newest step)
``.msgpack``   ``flax.serialization.to_bytes`` / ``msgpack_serialize`` ``hesscli[flax]``
``.safetensors`` ``safetensors.numpy.save_file`` (keys ``a.b`` or ``a/b``) ``hesscli[safetensors]``
``.eqx``       ``equinox.tree_serialise_leaves`` (read with the   ``hesscli[equinox]``
               objective's default point as the template: the
               file holds leaves, not structure)
``.npz``       ``np.savez`` with keys ``a.b`` or ``a/b``         NumPy
============== ================================================ =================

Nothing here unpickles: msgpack is restored with ``msgpack_restore`` (plain
data), safetensors and ``.npz`` (``allow_pickle=False``) hold raw arrays,
orbax stores arrays in tensorstore with JSON metadata, and Equinox leaves are
``np.load(allow_pickle=False)`` records.

``FILE::path`` picks a sub-tree after reading: ``ckpt.msgpack::params`` takes
the ``params`` collection out of a Flax ``variables`` dict, ``ckpt::state.params``
goes deeper (``.`` or ``/`` between keys).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hesscli.errors import InputError

SELECTOR = "::"
CHECKPOINT_SUFFIXES = (".msgpack", ".safetensors", ".eqx")
EXTRAS = {  # import name -> (pip extra, distribution)
    "flax": ("flax", "flax"),
    "equinox": ("equinox", "equinox"),
    "orbax.checkpoint": ("orbax", "orbax-checkpoint"),
    "safetensors": ("safetensors", "safetensors"),
}


DISTRIBUTIONS = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml",
                 "cv2": "opencv-python", "haiku": "dm-haiku"}  # import name != pip name


def install_hint(module: str) -> str:
    """How to install what provides ``module`` into the Python hesscli runs in."""
    top = module.split(".")[0]
    extra, dist = EXTRAS.get(module) or EXTRAS.get(top) or (None, DISTRIBUTIONS.get(top, top))
    what = f"'hesscli[{extra}]'" if extra else dist
    return f"{sys.executable} -m pip install {what}"


def require(module: str, purpose: str) -> Any:
    """Import an optional dependency, or an input error naming the pip command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(
            f"{purpose} needs the Python package {module.split('.')[0]!r}, which is not "
            f"installed in {sys.executable}; install it with: {install_hint(module)}"
        ) from None


def split_selector(spec: str) -> tuple[str, str | None]:
    """``"ckpt.msgpack::params"`` -> (``"ckpt.msgpack"``, ``"params"``)."""
    if SELECTOR in spec:
        path, _, sub = spec.partition(SELECTOR)
        sub = sub.strip().strip("./")
        if not sub:
            raise InputError(f"--at {spec!r}: nothing after '::' (e.g. FILE::params)")
        return path, sub
    return spec, None


def select(tree: Any, sub: str, where: str) -> Any:
    """The sub-tree at ``sub`` (keys joined by ``.`` or ``/``), or an error listing keys."""
    node = tree
    done: list[str] = []
    for key in sub.replace("/", ".").split("."):
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, (list, tuple)) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif hasattr(node, key) and not isinstance(node, (Mapping, np.ndarray)):
            node = getattr(node, key)
        else:
            here = ".".join(done) or "the top level"
            keys = list(node) if isinstance(node, Mapping) else []
            have = f"; it has {', '.join(map(str, keys[:8]))}" if keys else ""
            raise InputError(f"{where}: no {key!r} at {here}{have}")
        done.append(key)
    return node


def is_checkpoint(path: Path) -> bool:
    """True for what :func:`read_checkpoint` reads (a directory or a checkpoint suffix)."""
    return path.is_dir() or path.suffix.lower() in CHECKPOINT_SUFFIXES


def nest(flat: Mapping[str, Any], where: str) -> Any:
    """``{"a/b": x, "a/c": y}`` or ``{"a.b": x, ...}`` -> ``{"a": {"b": x, "c": y}}``.

    Keys with ``/`` (Flax's ``flatten_dict(sep="/")``, TensorFlow names) are
    split on ``/`` only; otherwise on ``.``. A lone key ``x`` is a flat array.
    """
    if set(flat) == {"x"}:
        return flat["x"]
    sep = "/" if any("/" in k for k in flat) else "."
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        parts = [p for p in key.split(sep) if p != ""]
        if not parts:
            raise InputError(f"{where}: the key {key!r} names no parameter (an empty path); "
                             "every key must be a leaf path such as 'w' or 'layer1.w'")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"{where}: key {key!r} clashes with another key")
        if parts[-1] in node:
            raise InputError(f"{where}: key {key!r} clashes with another key")
        node[parts[-1]] = value
    return tree


def _numeric(tree: Any, where: str) -> Any:
    """Every leaf as a NumPy array in its stored dtype (the tree's containers kept);
    half-precision leaves stay half precision until the binding upcasts them."""
    import jax

    from hesscli.objective.precision import is_number

    def leaf(x: Any) -> np.ndarray:
        arr = np.asarray(x)
        if not is_number(arr.dtype):
            raise InputError(f"{where}: a leaf of dtype {arr.dtype} is not a number")
        return arr

    return jax.tree_util.tree_map(leaf, tree)


def read_checkpoint(path: Path, like: Any | None) -> Any:
    """Read a checkpoint file or directory into a pytree of NumPy arrays.

    ``like`` is the objective's default point in full (an Equinox module, a
    Flax variables dict): ``.eqx`` files need it, as they hold leaves only.
    """
    name = str(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        return _numeric(read_orbax(path), name)
    if suffix == ".msgpack":
        serialization = require("flax.serialization", f"reading {name} (Flax msgpack)")
        from hesscli.files import read_regular, size_limit

        # bounded like the other formats: a 3 GiB file for 7 parameters was read whole
        data = read_regular(path, "point file", size_limit(_size_of(like)))
        try:
            state = serialization.msgpack_restore(data)
        except Exception as exc:  # noqa: BLE001 - msgpack's errors vary by version
            detail = str(exc).strip() or type(exc).__name__
            if type(exc).__name__ == "StackError":
                detail = ("nested deeper than msgpack reads (a Flax state is a few levels "
                          "deep); is it the right file?")
            raise InputError(f"cannot read {name!r} as Flax msgpack: {detail}") from None
        if not isinstance(state, Mapping):
            return _numeric(state, name)
        return _numeric(_plain_dict(state), name)
    if suffix == ".safetensors":
        require("safetensors", f"reading {name} (safetensors)")
        from safetensors.numpy import load_file

        try:
            flat = load_file(str(path))
        except AttributeError:  # a dtype NumPy lacks (float8): safetensors' numpy reader
            flat = _safetensors_raw(path)  # fails on getattr(np, ...); ml_dtypes has them
        except Exception as exc:  # noqa: BLE001 - a corrupt header raises library errors
            raise InputError(f"cannot read {name!r} as safetensors: {exc}") from None
        if not flat:
            raise InputError(f"{name}: the file holds no tensors")
        return nest({k: np.asarray(v) for k, v in flat.items()}, name)
    if suffix == ".eqx":
        eqx = require("equinox", f"reading {name} (Equinox leaves)")
        if like is None:
            raise InputError(
                f"{name}: an Equinox leaves file holds no structure; the objective file must "
                "define the model as x0 (or init(key)) to read it into"
            )
        first: Exception | None = None
        for template in _eqx_templates(like):
            try:
                return eqx.tree_deserialise_leaves(str(path), template)
            except Exception as exc:  # noqa: BLE001 - shape/dtype mismatches raise RuntimeError
                first = first or exc
                if "changed dtype" not in str(exc):
                    break
        raise InputError(
            f"cannot read {name!r} into the objective's default point: {_eqx_reason(first)}"
        ) from None
    raise InputError(f"{name}: not a checkpoint this version reads")


SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16",
                     "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
                     "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
                     "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8",
                     "BOOL": "bool"}


def _safetensors_raw(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file read by its layout (an 8-byte header length, a
    JSON header of dtype/shape/offsets, the data), for dtypes NumPy itself lacks."""
    import json
    import struct

    name = str(path)
    data = path.read_bytes()
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + length])
        out = {}
        for key, info in header.items():
            if key == "__metadata__":
                continue
            dtype = SAFETENSORS_DTYPES.get(info["dtype"])
            if dtype is None:
                raise InputError(f"{name}: tensor {key!r} has dtype {info['dtype']}, which is "
                                 "not a number type hesscli reads")
            if dtype.startswith(("float8", "bfloat16")):
                import ml_dtypes

                kind = np.dtype(getattr(ml_dtypes, dtype))
            else:
                kind = np.dtype(dtype)
            start, end = (8 + length + int(o) for o in info["data_offsets"])
            out[key] = np.frombuffer(data[start:end], dtype=kind).reshape(info["shape"])
        return out
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed header in any of many ways
        raise InputError(f"cannot read {name!r} as safetensors: {exc}") from None


def _eqx_reason(exc: Exception | None) -> str:
    """Equinox's error in words: it reports "Error at leaf with path (DictKey(key='a'),)"
    with the cause (a truncated file, a shape that differs) in a chained exception."""
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    import re

    keys = re.findall(r"(?:key|name)=['\"]?([^'\")]+)", text)
    cause: BaseException | None = exc
    for _ in range(8):  # the innermost cause: Equinox wraps it once per tree level
        inner = cause.__cause__ or cause.__context__ if cause is not None else None
        if inner is None or inner is cause:
            break
        cause = inner
    why = str(cause).strip().splitlines()[0] if cause is not None else ""
    if text.startswith("Error at leaf"):
        leaf = ".".join(keys) or "the first leaf"
        if not why or why.startswith("Error at leaf") or "read all data" in why or \
                "EOF" in why:
            why = "the file ends early or is not an Equinox leaves file (truncated?)"
        return f"at leaf {leaf}: {why[:200]}"
    return text[:300]


def _size_of(like: Any) -> int | None:
    """Entries in the objective's default point (None: no default point)."""
    if like is None:
        return None
    import jax

    return sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(like)
               if hasattr(leaf, "shape"))


def _eqx_templates(like: Any) -> list[Any]:
    """``like``, then ``like`` with its floating-point arrays in float64 and in float32.

    Equinox refuses a leaf whose dtype on disk differs from the template's; a
    point hesscli wrote keeps the run's dtype (float64 by default, float32 with
    ``--dtype float32``), while the objective's default point may be bfloat16
    or float32. The file's values are read as stored, never cast.
    """
    import equinox as eqx
    import jax

    def cast(dtype: str) -> Any:
        return jax.tree_util.tree_map(
            lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, like)

    return [like, cast("float64"), cast("float32")]


def _plain_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _plain_dict(v) if isinstance(v, Mapping) else v for k, v in state.items()}


def read_orbax(path: Path) -> Any:
    """An orbax PyTree checkpoint directory (or a CheckpointManager's newest step)."""
    name = str(path)
    ocp = require("orbax.checkpoint", f"reading {name} (an orbax checkpoint directory)")
    import warnings

    folder = _orbax_item(path)
    try:
        with warnings.catch_warnings():  # restoring to this host's single device is intended
            warnings.filterwarnings("ignore", message="Sharding info not provided")
            return ocp.PyTreeCheckpointer().restore(str(folder.resolve()))
    except Exception as exc:  # noqa: BLE001 - orbax raises many kinds
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read {name!r} as an orbax checkpoint: {detail}") from None


#: the item of a CheckpointManager step that ``--at ckpt/`` reads when a step holds several
#: (``ocp.args.Composite(params=..., opt_state=...)``, the name Flax and orbax examples use)
PARAMS_ITEM = "params"


#: files only a PyTree checkpoint folder holds (a CheckpointManager's step folder holds
#: ``_CHECKPOINT_METADATA`` too, beside its item folders, each a PyTree checkpoint)
TREE_MARKERS = ("_METADATA", "manifest.ocdbt", "checkpoint")


def _is_tree(folder: Path) -> bool:
    return any((folder / m).exists() for m in TREE_MARKERS)


def _items(step: Path) -> list[Path]:
    """A manager step's item folders (each a PyTree checkpoint), by name."""
    return sorted((p for p in step.iterdir() if p.is_dir() and _is_tree(p)),
                  key=lambda p: p.name)


def _orbax_item(path: Path) -> Path:
    """The checkpoint folder itself; else the item of a manager's step folder (given, or
    the newest ``<step>``): its only item, or the one named ``params`` when it holds
    several."""
    if _is_tree(path):
        return path
    if _items(path):  # a step folder given: ckpt/30
        return _choose_item(path, path, [])
    steps = sorted((p for p in path.iterdir() if p.is_dir() and p.name.isdigit()),
                   key=lambda p: int(p.name))
    if steps:
        newest = steps[-1]
        if _is_tree(newest):
            return newest
        return _choose_item(path, newest, steps)
    if (path / "_CHECKPOINT_METADATA").exists():  # an older orbax's PyTree folder
        return path
    raise InputError(f"{path}: a directory, but not an orbax checkpoint (no _METADATA or "
                     "_CHECKPOINT_METADATA, no numbered step folders)")


def _choose_item(path: Path, step: Path, steps: list[Path]) -> Path:
    items = _items(step)
    if len(items) == 1:
        return items[0]
    named = [p for p in items if p.name == PARAMS_ITEM]
    if named:  # a manager saving params beside opt_state, metrics, ...: the params
        return named[0]
    if not items:
        older = f" (older steps: {', '.join(p.name for p in steps[-4:-1])})" \
            if len(steps) > 1 else ""
        hint = ""
        if len(steps) > 1:
            previous = steps[-2]
            inside = [p for p in previous.iterdir() if p.is_dir()]
            if not _is_tree(previous) and len(inside) == 1:
                previous = inside[0]
            hint = f"; give a complete step, e.g. --at {previous}"
        raise InputError(
            f"{path}: the newest step folder {step.name} holds no checkpoint (empty, or "
            f"an interrupted save){older}{hint}")
    raise InputError(
        f"{path}: step {step.name} holds several items ({', '.join(p.name for p in items)})"
        f" and none named {PARAMS_ITEM!r}; give the one with the parameters, e.g. "
        f"--at {step / items[0].name}"
    )


# ---- writing ---------------------------------------------------------------------------

WRITERS = {".msgpack": "flax.serialization", ".safetensors": "safetensors", ".eqx": "equinox",
           "": "orbax.checkpoint"}


def check_writer(path: Path, option: str) -> None:
    """Before any work: the package that writes ``path``'s format is installed."""
    import importlib.util

    module = WRITERS.get(Path(path).suffix.lower())
    if module is None:
        return
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise InputError(
            f"{option} {str(path)!r}: writing this format needs the Python package "
            f"{module.split('.')[0]!r}, which is not installed in {sys.executable}; install "
            f"it with: {install_hint(module)}"
        )


def write_checkpoint(path: Path, tree: Any, flat: dict[str, np.ndarray]) -> bool:
    """Write ``tree`` in the checkpoint format ``path`` names; False if it names none.

    ``flat`` is the tree's leaves by dotted path (safetensors keys). Files are
    written atomically; an orbax directory is written by orbax (which commits
    through a temporary folder and a rename).
    """
    from hesscli.files import atomic_write

    suffix = path.suffix.lower()
    name = str(path)
    if suffix == ".msgpack":
        serialization = require("flax.serialization", f"writing {name} (Flax msgpack)")
        data = serialization.msgpack_serialize(serialization.to_state_dict(tree))
        atomic_write(path, lambda fh: fh.write(data))
        return True
    if suffix == ".safetensors":
        require("safetensors", f"writing {name} (safetensors)")
        from safetensors.numpy import save

        # ascontiguousarray makes a 0-d leaf (1,): keep the shape, so it reads back as ()
        data = save({k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in flat.items()})
        atomic_write(path, lambda fh: fh.write(data))
        return True
    if suffix == ".eqx":
        eqx = require("equinox", f"writing {name} (Equinox leaves)")
        atomic_write(path, lambda fh: eqx.tree_serialise_leaves(fh, tree))
        return True
    if suffix == "" or path.is_dir():  # a folder: orbax
        ocp = require("orbax.checkpoint", f"writing {name} (an orbax checkpoint directory)")
        if path.exists() and any(path.iterdir()):
            raise InputError(f"cannot write {name!r}: the directory exists and is not empty")
        ckpt = ocp.PyTreeCheckpointer()
        ckpt.save(str(path.resolve()), tree, force=True)
        return True
    return False
