"""The matrix-free spectrum: extreme eigenpairs from HVPs, packaged for the verdicts.

:func:`matrix_free_spectrum` turns an :class:`~hesscli.spectra.lanczos.Extremes`
into a :class:`~hesscli.spectra.spectrum.Spectrum` with ``complete=False``,
``path="matrix-free"``, the residuals (also as ``eigenvalue_errors``), the
``converged`` flags, and ``error`` = the largest residual: for a symmetric
matrix every Ritz value θ with residual ‖Hv − θv‖ = r has an eigenvalue within
r of it, so a tolerance that adds ``error`` never calls a sign that the
residuals cannot support.

The verdicts of ``analyze`` and ``train`` add only the residuals of
*converged* pairs (:attr:`Spectrum.certified_error`): an unconverged
residual says nothing about the *extreme* eigenvalue (the missing side is what
is unknown, not the band around θ). They use an unconverged end one-sidedly
instead (a Ritz value bounds λmin from above and λmax from below) and say
``undetermined`` where that is not enough. Unconverged pairs are named in the
notes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hesscli.curvature.base import Curvature
from hesscli.errors import InputError
from hesscli.jaxconf import eps
from hesscli.spectra.lanczos import SOLVERS, Extremes
from hesscli.spectra.spectrum import Spectrum, fix_sign
from hesscli.vocab import Dtype, Path


def extremes_of(
    curvature: Curvature, x: np.ndarray, *, k: int = 3, seed: int = 0, solver: str = "lanczos",
    rtol: float | None = None, max_steps: int | None = None,
) -> Extremes:
    """Run ``solver`` on the backend's HVP at ``x``.

    Lanczos needs the compiled JAX HVP (``curvature.hvp_fn``); a backend that
    declares none (finite differences, black-box objectives) goes through ARPACK
    with the backend's own ``hvp``.
    """
    if solver not in SOLVERS:
        raise InputError(f"unknown eigensolver {solver!r}; choose one of {', '.join(SOLVERS)}")
    if k < 1:
        raise InputError(f"--k must be at least 1; got {k}")
    hvp_fn = curvature.hvp_fn
    if hvp_fn is None:
        hvp_fn, solver = (lambda x_, v: curvature.hvp(x_, v)), "arpack"
    extra: dict[str, Any] = {}
    if solver == "lanczos":
        extra["basis_sharding"], extra["shards"] = basis_sharding(curvature)
    return SOLVERS[solver](
        hvp_fn, x, k, seed=seed, rtol=rtol, max_steps=max_steps, dtype=curvature.dtype,
        f=curvature.linearizable, **extra,
    )


def basis_sharding(curvature: Curvature) -> tuple[Any, int]:
    """(sharding of a Lanczos basis, devices it splits n over) for a backend.

    A parameter-sharded backend (flat vectors split in blocks over the mesh)
    gets its basis split the same way along n, and the basis budget counts
    n/devices per device; every other backend: (None, 1).
    """
    vector, parallel = curvature.vector_sharding, curvature.parallel
    if vector is None or not parallel.sharded or vector.is_fully_replicated:
        return None, 1
    from hesscli.curvature.sharded import basis_sharding_of

    return basis_sharding_of(parallel), parallel.devices


def num(value: float) -> str:
    """Compact number for notes (analysis must not import the render layer)."""
    return f"{value:.4g}"


def extremes_notes(ex: Extremes, dtype: str) -> tuple[str, ...]:
    """What the output must say about how the extremes were found and how well."""
    def count(v: int | None) -> str:
        return "not converged" if v is None else f"{v} HVPs"

    notes = [
        f"matrix-free: {ex.k} smallest and {ex.k} largest eigenvalues by {ex.solver} "
        f"(seed {ex.seed}), {ex.hvps} HVPs in all; λmax end: {count(ex.hvps_max)}, "
        f"λmin end: {count(ex.hvps_min)}; residual target {num(ex.tolerance)} "
        f"(rtol {num(ex.rtol)}·max|λ|)"
    ]
    bad = [i for i in range(ex.eigenvalues.size) if not ex.converged[i]]
    if bad:
        listed = ", ".join(
            f"λ = {num(float(ex.eigenvalues[i]))} (residual {num(float(ex.residuals[i]))})"
            for i in bad[:4]
        )
        notes.append(
            f"NOT CONVERGED: {len(bad)} eigenpair(s) above the residual target: {listed}; "
            "verdicts that need the far side of an unconverged end are undetermined. "
            "Raise --max-steps or --rtol"
        )
    if dtype == Dtype.FLOAT32:
        notes.append(
            f"float32: tolerances widened (ε = {num(eps('float32'))}, residual target "
            f"rtol {num(ex.rtol)})"
        )
    return tuple(notes)


def matrix_free_spectrum(ex: Extremes, dtype: str) -> Spectrum:
    """The :class:`Spectrum` the verdicts of ``analyze`` work from (see module docstring)."""
    residuals = np.asarray(ex.residuals, dtype=np.float64)
    converged = np.asarray(ex.converged, dtype=bool)
    # when 2k ≥ n the two ends meet: every eigenvalue is there, and converged it is
    # the whole spectrum (inertia counts are then exact, not bounds)
    n = int(np.size(ex.vec_min))
    complete = bool(ex.eigenvalues.size >= n and np.all(ex.converged))
    return Spectrum(
        eigenvalues=np.asarray(ex.eigenvalues, dtype=np.float64),
        complete=complete,
        vec_min=fix_sign(ex.vec_min),
        vec_max=fix_sign(ex.vec_max),
        symmetry_error=0.0,
        error=float(np.max(residuals)) if residuals.size else 0.0,
        residuals=residuals,
        path=Path.MATRIX_FREE,
        notes=extremes_notes(ex, dtype),
        eigenvalue_errors=residuals.copy(),
        converged=converged,
    )
