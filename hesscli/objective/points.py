"""POINT parsing (``--at``) and writing points/directions to files atomically.

A point is returned as a pytree of NumPy arrays: a plain array for flat formats
(``.npy``, ``.txt``/``.csv``, a JSON list, a literal), a nested dict for ``.npz``
(keys are leaf paths such as ``layer1.w`` or ``params/Dense_0/kernel``) and
JSON objects. ``zeros`` and ``random`` take their structure from the
objective's default point. Checkpoints (orbax directories, Flax ``.msgpack``,
``.safetensors``, Equinox ``.eqx``) are read by :mod:`hesscli.objective.checkpoints`,
and ``FILE::params`` picks a sub-tree of any of them.

A flat point (``.npy``, ``.txt``, a literal) for a pytree objective is laid
out in ``jax.flatten_util.ravel_pytree`` order: the leaves in
``jax.tree_util.tree_leaves`` order (dict keys sorted, module fields in
declaration order), each flattened in C (row-major) order. That is also the
order of every flat vector hesscli reports (``escape.direction``,
``final_point``) and the order of the names ``layer1.w[3,2]``.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hesscli.errors import InputError
from hesscli.files import atomic_write, read_regular, size_limit
from hesscli.objective.precision import is_low_float, is_number, numeric

__all__ = ["atomic_write", "read_point", "read_point_file", "write_point"]

FILE_SUFFIXES = (".npy", ".npz", ".json", ".txt", ".csv")
WRITE_SUFFIXES = FILE_SUFFIXES + (".msgpack", ".safetensors", ".eqx")


def _finite(array: np.ndarray, where: str) -> np.ndarray:
    """``array`` as float64, or in its own half-precision dtype (bfloat16, float16: the
    objective's binding upcasts those to the run's dtype and says so), checked finite."""
    array = numeric(array)
    if not is_number(array.dtype):
        raw = ""
        if array.dtype.kind == "V" and array.dtype.itemsize == 1 and array.dtype.fields is None:
            raw = (" (raw 1-byte records: NumPy files store float8 arrays without their "
                   "type; save them as float32, or as .safetensors, which keeps float8)")
        raise InputError(f"{where}: expected numbers, got dtype {array.dtype}{raw}")
    wide = np.asarray(array, dtype=np.float64)
    bad = ~np.isfinite(wide)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{where}: {int(bad.sum())} non-finite entries (first at index {first}: "
            f"{wide[first]}); points must be finite"
        )
    return array if is_low_float(array.dtype) else wide


def nest(flat: dict[str, np.ndarray], where: str = "point") -> Any:
    """``{"a.b": x}`` or ``{"a/b": x}`` -> ``{"a": {"b": x}}``; a lone ``x`` stays an array."""
    from hesscli.objective.checkpoints import nest as nest_keys

    return nest_keys(flat, where)


def _from_json(obj: Any, where: str) -> Any:
    """Numbers and rectangular lists become arrays; objects and ragged lists stay
    containers (as :func:`write_point` writes tuples and lists of leaves)."""
    if isinstance(obj, dict):
        return {str(k): _from_json(v, f"{where}.{k}") for k, v in obj.items()}
    if obj is None:
        return None  # an empty node of the pytree (a None leaf, as write_point writes it)
    try:
        array = np.asarray(obj, dtype=np.float64)
    except OverflowError:
        raise InputError(f"{where}: a number is too large for float64 (at most about "
                         "1.8e308); points must be finite") from None
    except (ValueError, TypeError):
        if isinstance(obj, list) and obj:
            return [_from_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        raise InputError(f"{where}: expected a number or a (nested) list of numbers") from None
    return _finite(array, where)


def _npz_members(data: bytes, name: str, limit: int) -> None:
    """Refuse an archive whose members would unpack to more than ``limit`` bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        total = sum(info.file_size for info in archive.infolist())
        for info in archive.infolist():
            if not info.filename.endswith(".npy") and not info.is_dir():
                raise InputError(f"{name}: the member {info.filename!r} is not a .npy array; "
                                 "an .npz point holds .npy members only (as np.savez writes)")
            if info.filename.endswith(".npy"):
                with archive.open(info) as member:
                    _npy_header(member, f"{name}[{info.filename[:-4]}]", limit)
    if total > limit:
        raise InputError(f"point file {name!r} unpacks to {total} bytes, more than the "
                         f"{limit} a point of this size can take; is it the right file?")


def _npy_header(fh: Any, name: str, limit: int) -> None:
    """Refuse a ``.npy`` stream whose header declares more data than ``limit`` bytes.

    A few header bytes can declare terabytes (``shape: (10**12,)``); NumPy would
    allocate all of it before noticing that the data is missing.
    """
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(fh)
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = read(fh)
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise InputError(f"{name}: not a .npy array ({str(exc).splitlines()[0][:80]})") from None
    declared = int(np.prod(shape, dtype=np.float64)) * max(int(dtype.itemsize), 1)
    if declared > limit:
        raise InputError(f"{name}: declares an array of shape {tuple(shape)} ({declared} "
                         f"bytes), more than a point of this size can take; is it the right "
                         "file?")


def read_point_file(path: Path, n: int | None = None) -> Any:
    """Read a point file; ``n`` (when known) bounds the size read (:func:`size_limit`)."""
    suffix = path.suffix.lower()
    name = str(path)
    if suffix not in FILE_SUFFIXES:
        if not path.exists():
            raise InputError(f"point file {name!r} does not exist")
        raise InputError(
            f"point file {name!r}: unknown format {suffix!r}; use one of "
            f"{', '.join(WRITE_SUFFIXES)} or an orbax checkpoint directory"
        )
    limit = size_limit(n)
    data = read_regular(path, "point file", limit)
    try:
        if suffix == ".npy":
            if data[:6] != b"\x93NUMPY":
                raise InputError(f"{name}: not a .npy file (corrupt, or another format)")
            _npy_header(io.BytesIO(data), name, limit)
            try:
                return _finite(np.load(io.BytesIO(data), allow_pickle=False), name)
            except ValueError as exc:
                if "pickle" in str(exc).lower():
                    raise InputError(
                        f"{name}: holds pickled objects, which hesscli refuses to load; "
                        "save a numeric array with np.save"
                    ) from None
                raise
        if suffix == ".npz":
            _npz_members(data, name, limit)
            try:
                with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                    flat = {key: _finite(archive[key], f"{name}[{key}]") for key in archive.files}
            except ValueError as exc:
                if "pickle" in str(exc).lower():
                    raise InputError(
                        f"{name}: holds pickled objects, which hesscli refuses to load"
                    ) from None
                raise
            if not flat:
                raise InputError(f"{name}: the archive holds no arrays")
            if set(flat) == {"arr_0"}:
                return flat["arr_0"]
            return nest(flat, name)
        if suffix == ".json":
            return _from_json(json.loads(data.decode("utf-8")), name)
        text = data.decode("utf-8")
        if not text.strip():
            raise InputError(f"point file {name!r} is empty")
        delimiter = "," if "," in text else None
        array = np.loadtxt(io.StringIO(text), delimiter=delimiter, ndmin=1, dtype=np.float64)
        return _finite(array, name)
    except InputError:
        raise
    except RecursionError:
        raise InputError(f"cannot read point file {name!r}: nested too deeply for a point "
                         "(lists inside lists beyond any parameter's rank)") from None
    except UnicodeDecodeError:
        raise InputError(f"cannot read point file {name!r}: not UTF-8 text (a {suffix} point "
                         "is text)") from None
    except (OSError, ValueError, json.JSONDecodeError, zipfile.BadZipFile, EOFError,
            KeyError, TypeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read point file {name!r}: {detail}") from None


def parse_literal(text: str) -> np.ndarray | None:
    """``"1,2.5,-3"`` -> array, or None when ``text`` is not a list of numbers."""
    parts = [p for p in text.replace(";", ",").split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return None
    return _finite(np.asarray(values), f"--at {text!r}")


def read_point(spec: str, template: Any | None, seed: int, like: Any | None = None) -> Any:
    """Parse POINT. ``template`` (the default point's parameters) gives ``zeros``/``random``
    their shape; ``like`` (the whole default point, e.g. an Equinox module) is what an
    Equinox leaves file is read into. ``FILE::sub.tree`` selects a sub-tree of FILE.
    """
    import jax

    from hesscli.objective.checkpoints import (
        is_checkpoint,
        read_checkpoint,
        select,
        split_selector,
    )

    if "::" in spec:
        file, sub = split_selector(spec)
        tree = read_point(file, template, seed, like)
        return select(tree, sub or "", f"--at {spec}")

    word = spec.strip().lower()
    if not word:
        raise InputError(
            f"--at {spec!r}: the point is empty; give a point file, a list of numbers like "
            "1,2.5,-3, 'zeros' or 'random'"
        )
    if word in ("zeros", "random"):
        if template is None:
            raise InputError(
                f"--at {word} needs the objective's default point (x0 or init) to know the "
                "shape; give the point itself instead, e.g. --at 0,0,0"
            )
        leaves, treedef = jax.tree_util.tree_flatten(template)
        if word == "zeros":
            new = [np.zeros(np.shape(leaf)) for leaf in leaves]
        else:
            rng = np.random.default_rng(seed)
            new = [rng.standard_normal(np.shape(leaf)) for leaf in leaves]
        return jax.tree_util.tree_unflatten(treedef, new)
    path = Path(spec)
    try:
        path.exists()
    except OSError as exc:  # e.g. a name longer than a file name can be: not a file
        literal = parse_literal(spec)
        if literal is not None:
            return literal
        shown = spec if len(spec) <= 60 else spec[:57] + "..."
        raise InputError(f"--at {shown!r}: cannot be a file ({exc.strerror}) and is not a "
                         "list of numbers like 1,2.5,-3") from None
    if path.suffix.lower() in WRITE_SUFFIXES and not path.exists():
        raise InputError(f"point file {spec!r} does not exist")
    if path.exists() and not (path.is_dir() or path.is_file()):
        read_regular(path, "point file", 0)  # a FIFO or a device: refused, never read
    if is_checkpoint(path):
        return read_checkpoint(path, like)
    if path.suffix.lower() in FILE_SUFFIXES or path.exists():
        n = None
        if template is not None:
            n = sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(template))
        return read_point_file(path, n)
    literal = parse_literal(spec)
    if literal is None:
        raise InputError(
            f"--at {spec!r}: not a point file ({', '.join(WRITE_SUFFIXES)} or an orbax "
            "checkpoint directory), a list of numbers like 1,2.5,-3, 'zeros' or 'random'"
        )
    return literal


FLAT_SUFFIXES = (".npy", ".txt", ".csv")  # one array: a pytree of several leaves does not fit


def _point_arrays(path: Path, tree: Any, params: Any | None) -> tuple[Any, dict[str, Any]]:
    """(the tree written, its leaves by dotted path as float64 arrays)."""
    import jax

    from hesscli.objective.layout import path_to_str

    if params is not None and not isinstance(tree, (dict, list, tuple)):
        tree = params  # a module's non-array parts cannot go into an array format
    flat_leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    arrays = {path_to_str(p): np.asarray(leaf, dtype=np.float64) for p, leaf in flat_leaves}
    if not isinstance(tree, (dict, list, tuple, np.ndarray)) and not hasattr(tree, "shape"):
        tree = nest(arrays, str(path))  # a module's parameters: their leaf paths as nesting
    return tree, arrays


def check_point_target(path: Path, tree: Any, params: Any | None, option: str) -> None:
    """Before any work: ``path``'s format can hold this point (``tree``, ``params`` as
    :func:`write_point` takes them), so a finished run never ends by refusing to save.

    ``.npy``/``.txt``/``.csv`` hold one array: a pytree of several leaves is refused.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FLAT_SUFFIXES:
        return
    _, arrays = _point_arrays(path, tree, params)
    if not (len(arrays) == 1 and "x" in arrays):
        raise InputError(
            f"{option} {str(path)!r}: the parameters are a pytree ({len(arrays)} "
            f"{'leaf' if len(arrays) == 1 else 'leaves'} with their names) and {suffix} holds "
            "one array; save them as .npz, .json or .safetensors"
        )


def write_point(path: Path, tree: Any, params: Any | None = None) -> None:
    """Save a point in the format named by ``path``'s suffix, atomically.

    ``tree`` is what the objective takes (the parameters, or a whole model);
    ``params`` its parameters alone when they differ (a model point). ``.eqx``
    gets the whole Equinox module; a Flax ``variables`` dict goes whole into
    every other format (collections included); for a module (Equinox, NNX)
    those formats get its parameters, keyed by their leaf paths. ``.npz`` keeps
    the leaf paths as keys (readable back by ``--at``); ``.json`` keeps the
    nesting; ``.npy``/``.txt``/``.csv`` take a single array and are refused for
    multi-leaf pytrees.
    """
    from hesscli.objective.checkpoints import write_checkpoint

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".eqx":  # the whole module: its leaves, read back into the objective's model
        write_checkpoint(path, tree, {})
        return
    tree, arrays = _point_arrays(path, tree, params)
    check_point_target(path, tree, params, "cannot write")
    if write_checkpoint(path, tree, arrays):
        return
    if suffix == ".npz":
        atomic_write(path, lambda fh: np.savez(fh, **arrays))
    elif suffix == ".json":

        def to_json(node: Any) -> Any:
            if isinstance(node, dict):
                return {str(k): to_json(v) for k, v in node.items()}
            if isinstance(node, (list, tuple)):
                return [to_json(v) for v in node]
            if node is None:
                return None  # an empty pytree node (not NaN): read back as None
            return np.asarray(node, dtype=np.float64).tolist()

        atomic_write(path, lambda fh: json.dump(to_json(tree), fh), mode="w")
    elif suffix in FLAT_SUFFIXES:
        arr = arrays["x"]
        if suffix == ".npy":
            atomic_write(path, lambda fh: np.save(fh, arr))
        else:
            sep = "," if suffix == ".csv" else " "
            atomic_write(path, lambda fh: np.savetxt(fh, arr.reshape(-1), delimiter=sep))
    else:
        raise InputError(
            f"cannot write {str(path)!r}: unknown format {suffix!r}; use .npz, .json, .npy, "
            ".txt, .csv, .msgpack, .safetensors, .eqx, or a folder (no suffix) for orbax"
        )
