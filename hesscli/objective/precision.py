"""Points stored in half precision (bfloat16, float16, float8): computed in the run's dtype.

Flax and Equinox checkpoints often hold their parameters in bfloat16 or
float16. Curvature in such a format is meaningless (bfloat16 keeps 8
significant bits: a gradient difference, a Hessian-vector product or a
Lanczos recurrence drowns in its rounding), so hesscli computes in the run's
dtype (``--dtype``: float64 by default, or float32) from the stored values.
Every half-precision value is exactly representable in float32, so the
upcast changes no parameter; what it changes is the arithmetic, and the
output says so in one note (:func:`half_precision_note`).

NumPy knows float16 but not bfloat16: arrays of ``ml_dtypes.bfloat16`` (what
``np.asarray`` of a ``jnp.bfloat16`` array gives) have dtype kind ``V``, and
``np.save`` writes them as 2-byte raw records (``|V2``). :func:`numeric`
reads those back as bfloat16, as ``jax.numpy.load`` does.

Data arrays (``data = (inputs, targets)``) are the file's own globals, which
its functions may read directly; hesscli cannot cast those, and does not:
JAX promotes a half-precision array to the parameters' dtype where the two
meet, so derivatives are taken in the run's dtype, while arithmetic on the
data alone stays in half precision. :func:`data_note` says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RAW_BFLOAT16 = np.dtype("V2")  # how np.save stores ml_dtypes.bfloat16


def is_low_float(dtype: Any) -> bool:
    """A floating-point dtype narrower than float32 (float16, bfloat16, float8 types)."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        return False
    if dtype.kind == "f":
        return dtype.itemsize < 4
    if dtype.kind != "V" or dtype.fields is not None or dtype == RAW_BFLOAT16:
        return False
    try:
        import ml_dtypes
    except ImportError:  # pragma: no cover - ml_dtypes comes with JAX
        return False
    try:
        return int(ml_dtypes.finfo(dtype).bits) < 32
    except (ValueError, TypeError):
        return False


def is_number(dtype: Any) -> bool:
    """What a point may hold: booleans, integers, floats (half precision included)."""
    dtype = np.dtype(dtype)
    return dtype.kind in "biuf" or is_low_float(dtype)


def numeric(array: np.ndarray) -> np.ndarray:
    """``array``, with raw 2-byte records (``|V2``, how ``np.save`` writes bfloat16)
    viewed as bfloat16, as ``jax.numpy.load`` reads them."""
    if array.dtype == RAW_BFLOAT16:
        import ml_dtypes

        return array.view(ml_dtypes.bfloat16)
    return array


def _count(n: int) -> str:
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (10_000, "k")):
        if n >= size:
            return f"{n / size:.3g}{suffix}"
    return str(n)


def _values(n: int) -> str:
    return f"{_count(n)} value" + ("" if n == 1 else "s")


def _dtypes(arrays: list[np.ndarray]) -> str:
    names: list[str] = []
    for arr in arrays:
        if arr.dtype.name not in names:
            names.append(arr.dtype.name)
    return " and ".join(names)


def half_precision_note(leaves: list[Any], dtype: str, raw_bfloat16: bool = False) -> str | None:
    """The one line about parameters stored in half precision (None when none are).

    ``leaves`` are the point's parameter leaves as read (before the upcast),
    ``dtype`` the run's dtype, ``raw_bfloat16`` whether some were read from
    ``|V2`` records of a NumPy file.
    """
    arrays = [np.asarray(leaf) for leaf in leaves]
    low = [arr for arr in arrays if is_low_float(arr.dtype)]
    if not low:
        return None
    count = f"{len(low)} leaf" if len(low) == 1 else f"{len(low)} leaves"
    if len(low) < len(arrays):
        count = f"{len(low)} of {len(arrays)} leaves"
    values = sum(int(arr.size) for arr in low)
    raw = ("; NumPy files store bfloat16 as raw 2-byte records (|V2), read as bfloat16 as "
           "jax.numpy.load does") if raw_bfloat16 else ""
    kinds = _dtypes(low)
    return (f"parameters stored in {kinds} ({count}, {_values(values)}): computed in {dtype} "
            f"from the stored values (an exact upcast); half precision cannot resolve "
            f"curvature. Points written back (--save-point, --save-escape) keep the {dtype} "
            f"values, not rounded to {kinds}{raw}")


def data_note(data: Any, dtype: str) -> str | None:
    """The one line about ``data`` arrays stored in half precision (None when none are)."""
    import jax

    try:
        leaves = jax.tree_util.tree_leaves(data)
    except Exception:  # noqa: BLE001 - data that is not a pytree is the file's business
        return None
    low = [leaf for leaf in leaves
           if hasattr(leaf, "dtype") and hasattr(leaf, "shape") and is_low_float(leaf.dtype)]
    if not low:
        return None
    arrays = "1 array" if len(low) == 1 else f"{len(low)} arrays"
    values = sum(int(np.prod(leaf.shape, dtype=np.int64)) for leaf in low)
    kinds = " and ".join(dict.fromkeys(np.dtype(leaf.dtype).name for leaf in low))
    return (f"data stored in {kinds} ({arrays}, {_values(values)}): used as stored (hesscli "
            f"does not cast the file's data); JAX promotes it to {dtype} where it meets the "
            f"parameters, so derivatives are {dtype} arithmetic, but operations on the data "
            f"alone stay in {kinds}")


def promotion_note(value_dtype: Any, dtype: str) -> str | None:
    """The one line for an objective that computes wider than the run's dtype (None when
    it does not): float64 data or constants promote float32 parameters, so the HVPs of a
    ``--dtype float32`` run are float64 arithmetic, rounded to float32 — never silently."""
    wide, run = np.dtype(value_dtype), np.dtype(dtype)
    if wide.kind != "f" or wide.itemsize <= run.itemsize:
        return None
    return (f"the objective computes in {wide.name} (its data or constants are {wide.name}, "
            f"and JAX promotes the {run.name} parameters where they meet them): the "
            f"derivatives are {wide.name} arithmetic rounded to {run.name}, and the "
            f"tolerances still assume {run.name}; store the data as {run.name} for "
            f"{run.name} arithmetic")
