"""Glue shared by the commands: load and bind the objective, pick a backend, emit output."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

from hesscli import __version__
from hesscli.devices import Parallel
from hesscli.errors import InputError
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import Objective, bind
from hesscli.objective.files import load_file
from hesscli.objective.params import parse_assignments


def load(
    objective: str, at: str | None, params: tuple[str, ...], *, seed: int, dtype: str,
    method: str,
) -> Objective:
    """OBJECTIVE + POINT + ``-p`` -> a checked flat objective."""
    overrides = parse_assignments(params)
    file = load_file(objective, overrides)
    return bind(file, at, seed=seed, dtype=dtype, method=method)


def start(
    devices: str, coordinator: str | None, num_processes: int | None, process_id: int | None
) -> int | None:
    """Check ``--devices`` and join a multi-process run; call before :func:`load`.

    Returns the devices per process (None = all local ones). ``jax.distributed``
    must be initialized before JAX touches a device, hence before the objective
    file (which builds arrays) is imported.
    """
    from hesscli.devices import parse_devices, start_processes

    wanted = parse_devices(devices)
    if start_processes(coordinator, num_processes, process_id):
        if jax_module().process_count() > 1:
            native_stdout_to_stderr()
    return wanted


def native_stdout_to_stderr() -> None:
    """Send what native libraries write to file descriptor 1 to stderr instead.

    The CPU collectives (Gloo) print connection messages straight to fd 1,
    which would break "exactly one JSON document on stdout". Python's
    Reports keep the real stdout (a duplicate of the old fd 1).
    """
    import os

    from hesscli.render.streams import (
        replace_report_stream,
        report_stream,
        stdout_fd_redirected,
    )

    if stdout_fd_redirected():
        return  # already done for the whole command
    old = report_stream()
    old.flush()
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    replace_report_stream(os.fdopen(saved, "w", encoding=getattr(old, "encoding", None)
                                    or "utf-8", buffering=1))


def emit(doc: dict[str, Any], fmt: str, table: Callable[[Any], None]) -> None:
    """Print the command's result: the JSON document, or ``table(console)``.

    Only process 0 prints; in a multi-process run the others computed alongside it.
    """
    if not primary():
        return
    if fmt == "json":
        from hesscli.render.jsonout import dump

        dump(doc)
    else:
        from hesscli.render.console import stdout_console

        table(stdout_console())


def primary() -> bool:
    """True in the process that prints and writes files (process 0)."""
    from hesscli import devices

    return devices.is_primary()


def parallel_of(curvature: Any) -> Parallel:
    """Who computed with ``curvature``: its ``parallel``, or one device in one process."""
    return getattr(curvature, "parallel", None) or Parallel()


def curvature_for(
    obj: Objective, method: str, accuracy: str = "normal", *, devices: int | None = 1
) -> tuple[Any, tuple[str, ...]]:
    """The backend that ``--method``, ``--devices`` and the objective call for, with notes.

    ``accuracy`` is ``--fd-accuracy`` (used by the finite-difference backends).
    More than one device (or process) selects the sharded exact backend
    (:mod:`hesscli.curvature.sharded`), which needs a JAX-traceable objective
    and checks that the file's objective is the mean of its loss over its data.
    """
    if devices != 1 or multi_process():
        from hesscli.devices import select

        parallel = select(devices)
        if parallel.sharded:
            return sharded_curvature(obj, method, parallel)
    if method == "fd" or not obj.traceable:
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
    return "--method fd" if method == "fd" else None


def multi_process() -> bool:
    """True when this process joined a multi-process run."""
    from hesscli.devices import _started

    return bool(_started)


def sharded_curvature(
    obj: Objective, method: str, parallel: Parallel
) -> tuple[Any, tuple[str, ...]]:
    """The data-parallel (and parameter-sharded) exact backend over ``parallel.mesh``."""
    if method == "fd" or not obj.traceable:
        why = "--method fd" if method == "fd" else f"{obj.label}: {obj.why_untraceable}"
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


def meta(
    seed: int, dtype: str, *, parallel: Parallel | None = None, **options: Any
) -> dict[str, Any]:
    """The ``meta`` block every JSON document carries (for reproducing a CI log).

    ``parallel`` records how many devices and processes took part (one of each
    when not given).
    """
    import jax
    import numpy

    return {
        "hesscli": __version__,
        "jax": jax.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
        "dtype": dtype,
        "seed": seed,
        "argv": sys.argv[1:],
        "options": options,
        "parallel": (parallel or Parallel()).as_dict(),
    }


def positive(name: str, value: float) -> float:
    """``value`` if it is a finite number > 0, else an input error naming ``name``."""
    if not (value > 0 and math.isfinite(value)):
        raise InputError(f"{name} must be a positive finite number; got {value}")
    return value


def nonnegative(name: str, value: float | None) -> float | None:
    """``value`` (or None) if it is a finite number ≥ 0, else an input error."""
    if value is not None and not (value >= 0 and math.isfinite(value)):
        raise InputError(f"{name} must be a finite number ≥ 0; got {value}")
    return value


def chunked(obj: Objective, chunk_size: int | None) -> tuple[Objective, tuple[str, ...]]:
    """``--chunk-size``: the full-data objective in chunks (:mod:`hesscli.objective.chunked`)."""
    if chunk_size is None:
        return obj, ()
    from hesscli.objective.chunked import with_chunks

    obj, note = with_chunks(obj, chunk_size)
    return obj, (note,)


def spectrum_for(
    obj: Objective, curvature: Any, *, path: str = "auto", k: int = 3, seed: int = 0,
    solver: str = "lanczos", rtol: float | None = None, max_steps: int | None = None,
) -> tuple[Any, Any, tuple[str, ...]]:
    """The spectrum ``analyze`` should use: None on the dense path (it forms H itself),
    the matrix-free extremes otherwise; with the :class:`PathChoice` and notes.

    ``path`` is auto|dense|matrix-free (``--dense``/``--matrix-free``); ``--dense``
    beyond the available memory raises InputError (exit 2) with the size needed.
    """
    from hesscli.spectra.paths import choose_path

    choice = choose_path(obj.n, path)
    if choice.path == "dense":
        return None, choice, ()
    from hesscli.spectra.matrix_free import extremes_of, matrix_free_spectrum

    ex = extremes_of(curvature, obj.x, k=k, seed=seed, solver=solver, rtol=rtol,
                     max_steps=max_steps)
    return matrix_free_spectrum(ex, obj.dtype), choice, (choice.reason,)
