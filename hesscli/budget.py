"""Memory a request will take, estimated before the work, and refused when it cannot fit.

A request whose size is known from its options (``--samples``, ``--points``,
``--grid``, ``--hessian-points``, the number of parameters n) is checked up
front, the way ``--dense`` is (:func:`hesscli.spectra.route.choose_path`):
exit 2 with the size it would need and what is available, instead of minutes
of work ending in a MemoryError or the OOM killer. The estimates count the
float64 arrays each analysis holds at its peak; they are deliberately simple
(a small constant times the array sizes), so they err on the side of refusing
only requests that are far out of reach.
"""

from __future__ import annotations

from hesscli.errors import InputError
from hesscli.spectra.route import (
    Budget,
    available_memory,
    choose_path,
    dense_bytes,
    human_bytes,
)
from hesscli.vocab import SpectrumPath

FLOAT = 8  # bytes per float64 entry (analyses work in float64 on the host)
# Peak of one matrix-free λmin (Lanczos, up to 400 steps with their basis and its
# reorthogonalization copy): measured 6.8 GB for convexity at n = 10⁶ with two
# points, i.e. about 800 float64 per parameter.
MATRIX_FREE_FLOATS = 800


def require(need: float, what: str, fix: str, available: int | None = None) -> None:
    """Raise :class:`InputError` when ``need`` bytes exceed the memory available."""
    avail = available_memory() if available is None else available
    if avail is not None and need > avail:
        raise InputError(f"{what} needs about {human_bytes(need)} of memory; only "
                         f"{human_bytes(avail)} is available; {fix}")


def gradcheck_bytes(n: int) -> float:
    """The finite-difference gradient evaluates all 2n stencil points of one step at
    once: the diagonal of steps, the points on either side and their concatenation,
    about five n×n arrays (:func:`hesscli.curvature.stencils.value_gradient`)."""
    return 5.0 * FLOAT * n * n


def convexity_bytes(n: int, samples: int, hessian_points: int,
                    budget: Budget | None = None) -> float:
    """Midpoint test: each sampled pair holds its two ends, the midpoint and the
    dyadic-rounded copies (about six n-vectors per pair). Eigenvalue test: the
    sampled points, plus per point either the dense path (when the path policy
    picks it for n under ``budget``, the command's ``--dense-budget``; None: the
    environment's or the default) or a Lanczos basis (:data:`MATRIX_FREE_FLOATS`
    per parameter)."""
    pairs = 6.0 * FLOAT * n * samples
    if hessian_points <= 0:
        return pairs
    dense = choose_path(n, budget=budget).path == SpectrumPath.DENSE
    per_point = dense_bytes(n) if dense else MATRIX_FREE_FLOATS * FLOAT * n
    return max(pairs, 2.0 * FLOAT * n * hessian_points + per_point)


def landscape_bytes(n: int, points: int, grid: int, slices: int = 3) -> float:
    """Each slice holds its abscissae, values and model values; the grid likewise
    for grid² points; the evaluation itself is chunked and adds a bounded amount.
    Measured: ``landscape ravine --points 10⁶`` peaked at 631 MB (table) and 640 MB
    (JSON), about 110 bytes per slice point above the process's own 300 MB (the
    abscissae, values and model as arrays, their device copies, the rendered
    lists); ``--points 10⁷`` used 6× the old estimate of three floats per point,
    so sixteen are counted."""
    return 16.0 * FLOAT * (slices * points + grid * grid) + 4.0 * FLOAT * n


# Measured: train saddle --monitor-every 1 grew by 78 MB over 60 000 logged steps
# (1.3 KB each: the record, its events and the document's copy), so 2 KiB per record.
RECORD_BYTES = 2048


#: Per optimizer step between two logged ones: the compiled loop (one ``lax.scan`` per
#: interval) returns each step's value, gradient norm and status, and the host copies
#: them in float64 (3 · 8 on the device, 3 · 8 on the host).
STEP_BYTES = 48


def train_bytes(records: int, every: int = 0) -> float:
    """Memory of a run: its history, one record per logged step (``steps / monitor_every``),
    plus the per-step outputs of one logged interval of ``every`` steps."""
    return float(RECORD_BYTES) * records + float(STEP_BYTES) * every


def require_train(steps: int, every: int, runs: int = 1) -> None:
    """Refuse (exit 2, with the size) a run whose history or logged interval cannot fit:
    ``--steps 10¹²`` logs every 10¹⁰ steps, and one such interval alone is 480 GB."""
    records = runs * (steps // every + 1)
    need = train_bytes(records, every)
    avail = available_memory()
    if avail is None or need <= avail:
        return
    if STEP_BYTES * every > RECORD_BYTES * records:
        fix = ("each logged interval runs as one compiled loop that keeps every step's "
               "value: log more often (--monitor-every) or train for fewer --steps")
    else:
        fix = "log less often (--monitor-every) or train for fewer --steps"
    raise InputError(f"train with {steps} steps logged every {every} needs about "
                     f"{human_bytes(need)} of memory ({records} records, {every} steps per "
                     f"logged interval); only {human_bytes(avail)} is available; {fix}")
