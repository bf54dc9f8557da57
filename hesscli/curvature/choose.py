"""The one place that chooses a curvature backend for an objective.

``--method`` (auto|exact|fd), whether JAX can trace the objective, and how many
devices take part decide it:

- more than one device (or process): the sharded exact backend
  (:mod:`hesscli.curvature.sharded`), which needs a traceable objective and
  checks that the file's objective is the mean of its loss over its data;
- ``fd``, or an objective JAX cannot trace: finite differences
  (:mod:`hesscli.curvature.finite_diff`);
- otherwise exact autodiff (:mod:`hesscli.curvature.exact`).

A product with a convolution on the CPU then leaves the solvers' compiled loops
(:mod:`hesscli.curvature.host_products`).

Every function here returns notes (strings) that the result documents carry,
and raises :class:`~hesscli.errors.InputError` (exit 2) for combinations that
cannot work. Nothing here prints or imports click.
"""

from __future__ import annotations

from hesscli.curvature.base import Curvature
from hesscli.devices import Parallel
from hesscli.errors import InputError
from hesscli.objective.bind import Objective
from hesscli.vocab import CurvatureKind, MethodRequest


def curvature_for(
    obj: Objective, method: str = MethodRequest.AUTO, accuracy: str = "normal", *,
    devices: int | None = 1, kind: str = CurvatureKind.HESSIAN,
) -> tuple[Curvature, tuple[str, ...]]:
    """The backend that ``method``, ``devices`` and the objective call for, with notes.

    ``accuracy`` is ``--fd-accuracy`` (used by the finite-difference backends).
    ``devices`` counts devices per process (None: every local one); more than one
    device (or process) selects the sharded exact backend. ``kind`` (``--curvature``)
    other than ``hessian`` puts that matrix's operator (GGN, Fisher, empirical
    Fisher: :mod:`hesscli.curvature.operators`) on top of the chosen backend.
    """
    from hesscli.curvature.host_products import host_products

    curvature, notes = hessian_backend(obj, method, accuracy, devices=devices)
    if kind == CurvatureKind.HESSIAN:
        return host_products(curvature), notes
    from hesscli.curvature.operators import operator_curvature

    return host_products(operator_curvature(obj, curvature, kind)), notes


def hessian_backend(
    obj: Objective, method: str = MethodRequest.AUTO, accuracy: str = "normal", *,
    devices: int | None = 1,
) -> tuple[Curvature, tuple[str, ...]]:
    """The Hessian's backend (see :func:`curvature_for` and the module docstring)."""
    if devices != 1 or multi_process():
        from hesscli.devices import select

        parallel = select(devices)
        if parallel.sharded:
            return sharded_curvature(obj, method, parallel)
    if method == MethodRequest.FD or not obj.traceable:
        from hesscli.curvature import finite_diff

        notes = () if obj.traceable else (
            f"method fd: {obj.why_untraceable}; derivatives come from finite differences "
            "of function values",
        )
        return finite_diff.curvature(obj, accuracy), notes
    from hesscli.curvature.exact import ExactCurvature

    return ExactCurvature(obj), ()


def fd_reason(obj: Objective, method: str) -> str | None:
    """Why finite differences are used (None when they are not)."""
    if not obj.traceable:
        return obj.why_untraceable
    return "--method fd" if method == MethodRequest.FD else None


def multi_process() -> bool:
    """True when this process joined a multi-process run."""
    from hesscli.devices import joined

    return joined()


def sharded_curvature(
    obj: Objective, method: str, parallel: Parallel
) -> tuple[Curvature, tuple[str, ...]]:
    """The data-parallel (and parameter-sharded) exact backend over ``parallel.mesh``."""
    if method == MethodRequest.FD or not obj.traceable:
        why = "--method fd" if method == MethodRequest.FD else f"{obj.label}: {obj.why_untraceable}"
        raise InputError(
            f"--devices {parallel.local_devices}: sharding needs exact JAX derivatives, "
            f"but {why}; use --devices 1"
        )
    from hesscli.curvature.sharded import ShardedCurvature, check_mean

    curvature = ShardedCurvature(obj, parallel)
    check_mean(curvature)
    notes = list(curvature.notes)
    if curvature.samples is not None and curvature.padded_samples != curvature.samples:
        pad = curvature.padded_samples - curvature.samples
        notes.append(
            f"data: {curvature.samples} samples over {parallel.devices} devices, padded to "
            f"{curvature.padded_samples} ({pad} masked out of the mean)"
        )
    return curvature, tuple(notes)


def chunked(obj: Objective, chunk_size: int | None) -> tuple[Objective, tuple[str, ...]]:
    """``--chunk-size``: the full-data objective in chunks (:mod:`hesscli.objective.chunked`)."""
    if chunk_size is None:
        return obj, ()
    from hesscli.objective.chunked import with_chunks

    obj, note = with_chunks(obj, chunk_size)
    return obj, (note,)
