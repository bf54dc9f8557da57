"""Bind an objective file to a point: the flat-vector :class:`Objective`.

This is where the user's function is checked before any work (fail early, with
the reason):
the point's structure must match the default point's, the function is
shape-evaluated with ``jax.eval_shape`` and must return a floating-point scalar,
and a function JAX cannot trace (NumPy, ``float()``, a simulator) is marked as a
black box so that finite differences take over.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.errors import HesscliError, InputError, ObjectiveError, describe_exception, user_code
from hesscli.jaxconf import jax_module
from hesscli.objective.files import ObjectiveFile
from hesscli.objective.layout import Layout, layout_of
from hesscli.objective.models import Split, held_note, split_point
from hesscli.objective.points import read_point
from hesscli.objective.precision import (
    data_note,
    half_precision_note,
    is_number,
    promotion_note,
)
from hesscli.vocab import MethodRequest


@dataclass(frozen=True)
class Objective:
    """A flat-vector objective at a point, with names for its entries.

    ``flat_fn`` maps a flat vector (JAX or NumPy) to the scalar objective;
    ``unravel`` rebuilds what the user's function takes from a flat vector
    (the parameter pytree, or the whole model: an Equinox module, a Flax
    variables dict, with the held parts put back, see
    :mod:`hesscli.objective.models`); ``params_of`` the parameters alone;
    ``layout`` names flat indices; ``x`` is the point. ``traceable`` says
    whether JAX can trace the function (else ``why_untraceable`` says what
    stopped it). ``notes`` say what was held fixed and how the point was read.
    """

    file: ObjectiveFile
    x: np.ndarray
    layout: Layout
    treedef: Any
    dtype: str
    traceable: bool
    why_untraceable: str | None = None
    split: Split | None = None  # a model point: how to put the held parts back
    notes: tuple[str, ...] = ()
    # JAX traces the function for values though not for derivatives (while_loop,
    # host callbacks): finite differences may then evaluate it compiled and batched
    values_traceable: bool = False

    @property
    def n(self) -> int:
        return int(self.x.size)

    @property
    def label(self) -> str:
        return self.file.label

    def params_of(self, flat: Any) -> Any:
        """Flat vector -> the parameter pytree (works for NumPy and traced JAX arrays).

        A JAX array is cut with one ``jnp.split`` rather than a slice per leaf: a
        slice's transpose is a pad to the full length n, so the gradient of the flat
        objective summed one n-vector per leaf (68 pads and 67 adds of 10⁷ floats
        for the 10⁷-parameter transformer); the split's transpose is one
        concatenation."""
        import jax

        specs = self.layout.leaves
        cuts = [leaf.offset + leaf.size for leaf in specs[:-1]]
        contiguous = bool(specs) and specs[0].offset == 0 and all(
            b.offset == a.offset + a.size for a, b in zip(specs, specs[1:], strict=False))
        if isinstance(flat, jax.Array) and contiguous and \
                specs[-1].offset + specs[-1].size == flat.shape[0]:
            parts = jax.numpy.split(flat, cuts)
            leaves = [p.reshape(leaf.shape) for p, leaf in zip(parts, specs, strict=True)]
        else:
            leaves = [
                flat[leaf.offset : leaf.offset + leaf.size].reshape(leaf.shape)
                for leaf in specs
            ]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def unravel(self, flat: Any) -> Any:
        """Flat vector -> what the objective takes (the parameters, or the whole model)."""
        params = self.params_of(flat)
        return params if self.split is None else self.split.full(params)

    def flat_fn(self, flat: Any) -> Any:
        return self.file.fn(self.unravel(flat))

    def with_point(self, x: np.ndarray) -> Objective:
        """The same objective at another flat point (same layout)."""
        x = np.asarray(x, dtype=self.dtype).reshape(-1)
        if x.size != self.n:
            raise InputError(f"point has {x.size} entries; this objective has {self.n}")
        return dataclasses.replace(self, x=x)


def _structure(tree: Any) -> dict[str, tuple[int, ...]]:
    return {leaf.path: leaf.shape for leaf in layout_of(tree).leaves}


def _match_template(point: Any, template: Any, where: str) -> Any:
    """Give ``point`` the template's structure, or explain the mismatch."""
    import jax

    t_leaves, t_def = jax.tree_util.tree_flatten(template)
    t_struct = _structure(template)
    n_expected = sum(int(np.prod(np.shape(leaf))) for leaf in t_leaves)
    shapes = ", ".join(f"{k} {v}" for k, v in list(t_struct.items())[:6])
    if isinstance(point, np.ndarray):
        if point.size != n_expected:
            raise InputError(
                f"{where}: point has {point.size} entries; the objective expects "
                f"{n_expected} ({shapes})"
            )
        flat = point.reshape(-1)
        leaves, offset = [], 0
        for leaf in t_leaves:
            size = int(np.prod(np.shape(leaf)))
            leaves.append(flat[offset : offset + size].reshape(np.shape(leaf)))
            offset += size
        return jax.tree_util.tree_unflatten(t_def, leaves)
    p_paths = [leaf.path for leaf in layout_of(point).leaves]
    twice = sorted({path for path in p_paths if p_paths.count(path) > 1})
    if twice:
        raise InputError(
            f"{where}: the point names {twice[0]!r} twice (e.g. a key {twice[0]!r} and the "
            "same path as nested keys); give each parameter once")
    p_struct = _structure(point)
    if p_struct != t_struct:
        missing = sorted(set(t_struct) - set(p_struct))
        extra = sorted(set(p_struct) - set(t_struct))
        wrong = [k for k in t_struct if k in p_struct and p_struct[k] != t_struct[k]]
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:5])}")
        if wrong:
            k = wrong[0]
            parts.append(f"{k} has shape {p_struct[k]}, expected {t_struct[k]}")
        hint = ""
        if any(k.startswith("params.") for k in extra):
            hint = ("; the file holds a Flax variables dict: pick the parameters with "
                    f"--at {where.removeprefix('--at ').split('::')[0]}::params")
        raise InputError(f"{where}: point does not match the objective's parameters: "
                         + "; ".join(parts) + hint)
    # same paths and shapes: rebuild in the template's container types and order
    p_leaves = jax.tree_util.tree_flatten(point)[0]
    paths = [leaf.path for leaf in layout_of(point).leaves]
    lookup = {path: np.asarray(arr) for path, arr in zip(paths, p_leaves, strict=True)}
    return jax.tree_util.tree_unflatten(t_def, [lookup[path] for path in t_struct])


def _arrays(tree: Any, file: ObjectiveFile) -> Any:
    """Every leaf of a parameter pytree as a NumPy array (or what is wrong with it)."""
    import jax

    try:
        return jax.tree_util.tree_map(np.asarray, tree)
    except Exception as exc:  # noqa: BLE001
        raise ObjectiveError(
            f"{file.path.name}: the default point is not a pytree of arrays ({exc})"
        ) from exc


def _raw_bfloat16(at: Any, leaves: list[Any]) -> bool:
    """Whether bfloat16 leaves came from a NumPy file (stored there as raw ``|V2``)."""
    if not isinstance(at, str):
        return False
    from pathlib import Path

    suffix = Path(at.split("::")[0]).suffix.lower()
    return suffix in (".npy", ".npz") and any(
        np.asarray(leaf).dtype.name == "bfloat16" for leaf in leaves)


def _untraceable_errors() -> tuple[type[BaseException], ...]:
    jax = jax_module()
    return (
        jax.errors.TracerArrayConversionError,
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerIntegerConversionError,
        jax.errors.NonConcreteBooleanIndexError,
    )


def check_scalar(out: Any, where: str) -> None:
    shape = tuple(np.shape(out))
    dtype = np.dtype(getattr(out, "dtype", np.asarray(out).dtype))
    if shape != ():
        raise ObjectiveError(
            f"{where} must return a scalar; got shape {shape}"
            + (" (did you forget .sum() or .mean()?)" if shape else "")
        )
    if dtype.kind != "f":
        raise ObjectiveError(f"{where} must return a floating-point scalar; got dtype {dtype}")


def bind(
    file: ObjectiveFile,
    at: str | Any | None,
    *,
    seed: int = 0,
    dtype: str = "float64",
    method: str = "auto",
) -> Objective:
    """Parse POINT, match it to the objective's parameters and check the function.

    ``at`` is POINT as the command line takes it (a string), a pytree of arrays
    or a model (from Python), or None for the file's default point. A model
    point (an Equinox or NNX module, a Flax variables dict) is split into its
    parameters and what is held fixed (:mod:`hesscli.objective.models`); a
    model read from a file brings its own held parts (its ``batch_stats``).
    """
    jax = jax_module()
    jnp = jax.numpy
    held_from: str | None = None
    full = file.default_point(seed) if file.has_default_point else None
    if isinstance(full, (list, tuple)) and all(isinstance(v, (int, float)) for v in full):
        full = np.asarray(full, dtype=np.float64)  # x0 = [1.0, 2.0] means an array
    split = split_point(full) if full is not None else None
    template = _arrays(split.params, file) if split is not None else None
    if at is None:
        if template is None:
            raise InputError(
                f"{file.label}: no --at POINT given and {file.path.name} defines no default "
                "point (x0 or init(key)); pass --at, e.g. --at 0,0"
            )
        point = template
    else:
        if isinstance(at, str):
            shown = at if len(at) <= 80 else at[:77] + "..."
            raw, where = read_point(at, template, seed, like=full), f"--at {shown}"
        else:
            raw, where = at, "the point"
        given = split_point(raw)
        if given.kind is not None and (split is None or split.kind == given.kind):
            split = given  # the file's own held parts (its batch_stats, its statics)
            raw = given.params
        elif split is not None and split.kind == "flax":
            held_from = ("the parameters come from the point; the held collections from the "
                         "objective's default point (x0/init)")
        raw = _arrays(raw, file)
        point = _match_template(raw, template, where) if template is not None else raw
    if split is not None and split.kind is None:
        split = None
    leaves, treedef = jax.tree_util.tree_flatten(point)
    if not leaves:
        raise InputError(f"{file.label}: the point has no parameters")
    for leaf in leaves:
        if not is_number(np.asarray(leaf).dtype):
            raise InputError(f"{file.label}: point entries must be numbers (got dtype "
                             f"{np.asarray(leaf).dtype})")
    layout = layout_of(point)
    # the run's dtype, whatever the point was stored in: half precision is upcast
    # exactly here (and said so below), never computed in
    flat = np.concatenate([np.asarray(leaf, dtype=dtype).reshape(-1) for leaf in leaves])
    if flat.size == 0:
        raise InputError(f"{file.label}: the point has no parameters (size 0)")
    if not np.all(np.isfinite(flat)):
        raise InputError(f"{file.label}: the point has non-finite entries")
    note = held_note(split) if split is not None else None
    half = half_precision_note(leaves, dtype, raw_bfloat16=_raw_bfloat16(at, leaves))
    notes = tuple(n for n in (note, held_from if note else None, half,
                              data_note(file.data, dtype)) if n)
    obj = Objective(file, flat, layout, treedef, dtype, traceable=True, split=split, notes=notes)
    where = f"{file.path.name}:{file.function_name}"

    # Shape-evaluate first: cheap, and it tells traceable from black-box functions.
    try:
        out = jax.eval_shape(obj.flat_fn, jax.ShapeDtypeStruct(flat.shape, jnp.dtype(dtype)))
    except _untraceable_errors() as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__
        reason = f"JAX cannot trace it ({type(exc).__name__}: {reason[:160]})"
        if method == MethodRequest.EXACT:
            raise InputError(
                f"--method exact: {where} cannot be differentiated by JAX: {reason}; "
                "use --method fd (finite differences) or --method auto"
            ) from exc
        obj = dataclasses.replace(obj, traceable=False, why_untraceable=reason)
        with user_code(where, catch=(Exception, SystemExit)):
            value = obj.flat_fn(flat.copy())
        check_scalar(np.asarray(value), where)
        check_split(obj)
        return obj
    except HesscliError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's function failed
        raise ObjectiveError(f"{where} raised {describe_exception(exc)}") from exc
    check_scalar(out, where)
    promoted = promotion_note(out.dtype, dtype)
    if promoted is not None:
        obj = dataclasses.replace(obj, notes=obj.notes + (promoted,))
    why = not_differentiable(obj.flat_fn, flat.shape, dtype)
    if why is not None:
        if method == MethodRequest.EXACT:
            raise ObjectiveError(
                f"--method exact: JAX cannot differentiate {where} ({why}); use --method fd "
                "(finite differences) or --method auto"
            )
        # traceable but not differentiable: a black box for derivatives, as NumPy code is
        obj = dataclasses.replace(obj, traceable=False,
                                  why_untraceable=f"{NOT_DIFFERENTIABLE} ({why})",
                                  values_traceable=batches(obj.flat_fn, flat.shape, dtype))
    check_split(obj)
    return obj


NOT_DIFFERENTIABLE = "JAX cannot differentiate it"


def no_derivatives_error(obj: Objective) -> type[HesscliError]:
    """The error class for "this needs JAX's derivatives and ``obj`` has none".

    JAX traces it but cannot differentiate it (``while_loop``, host callbacks): a
    transformation JAX cannot apply to the objective, :class:`ObjectiveError`
    (exit 3). Not JAX code at all (NumPy): the command does not fit the
    objective, :class:`InputError` (exit 2).
    """
    why = obj.why_untraceable or ""
    return ObjectiveError if why.startswith(NOT_DIFFERENTIABLE) else InputError


def batches(fn: Any, shape: tuple[int, ...], dtype: str) -> bool:
    """Whether ``vmap(fn)`` traces (a host callback without a ``vmap_method`` does not)."""
    jax = jax_module()
    try:
        jax.eval_shape(jax.vmap(fn), jax.ShapeDtypeStruct((2, *shape), jax.numpy.dtype(dtype)))
    except HesscliError:
        raise
    except Exception:  # noqa: BLE001 - evaluate it point by point instead
        return False
    return True


def not_differentiable(fn: Any, shape: tuple[int, ...], dtype: str) -> str | None:
    """Why JAX cannot take the gradient of ``fn`` (None when it can).

    ``lax.while_loop`` and ``fori_loop`` with traced bounds refuse reverse mode,
    host callbacks refuse every derivative; both only show when the gradient is
    traced, which ``eval_shape`` of the gradient does without computing anything.
    """
    jax = jax_module()
    try:
        jax.eval_shape(jax.grad(fn), jax.ShapeDtypeStruct(shape, jax.numpy.dtype(dtype)))
    except HesscliError:
        raise
    except Exception as exc:  # noqa: BLE001 - JAX refuses the transformation
        text = str(exc).strip().splitlines()[0] if str(exc) else ""
        return f"{type(exc).__name__}: {text[:160]}"
    return None


def split_tolerance(dtype: str) -> float:
    """Relative tolerance for ``objective`` vs ``output_loss(model(...))``: √ε.

    The two are the same sum in possibly different orders (rounding ≈ N·ε
    relative at worst, far below √ε); a real mismatch (a missing factor ½, a
    sum instead of a mean, other data) is O(1) relative.
    """
    return float(np.sqrt(np.finfo(np.dtype(dtype)).eps))


def check_split(obj: Objective) -> None:
    """A file with both ``objective`` and a model split: they must agree at the point.

    Gauss–Newton and Fisher curvature are computed from the split; if it is
    not the same function as ``objective`` they would describe another
    problem. Raises :class:`ObjectiveError` (exit 3) with both values.
    """
    file = obj.file
    if file.function_name != "objective" or getattr(file.module, "objective", None) is None:
        return
    split = file.split
    if split is None:
        return
    name = file.path.name
    with user_code(f"{name}: output_loss(model(params, inputs), targets)"):
        by_split = float(np.asarray(split.objective(obj.unravel(obj.x))))
    direct = float(np.asarray(obj.flat_fn(obj.x)))
    rtol = split_tolerance(obj.dtype)
    if not abs(by_split - direct) <= rtol * max(abs(direct), abs(by_split), 1e-300):
        raise ObjectiveError(
            f"{name}: objective(params) = {direct:.10g} but output_loss(model(params, inputs), "
            f"targets) = {by_split:.10g} at this point (relative tolerance {rtol:.1e}); the "
            "model split must compute the same mean loss over data = (inputs, targets). "
            "Fix one of them, or delete objective and let hesscli derive it"
        )
