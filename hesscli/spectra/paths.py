"""Dense or matrix-free? The choice of curvature path from n, the dtype and memory.

The dense path forms the n×n Hessian from n HVPs and hands it to LAPACK. Its
peak memory is not one matrix but about four: the Hessian as computed, its
symmetrized copy ``(H + Hᵀ)/2`` (and the temporary of the sum), and the working
copy plus workspace of the symmetric eigensolver (``scipy.linalg.eigh``
overwrites a copy of its input). All of it is float64 on the host, whatever
the objective's dtype, because the eigensolver and the verdicts run in float64.

Above :data:`DENSE_BUDGET` (or a quarter of the available memory, whichever is
smaller) the automatic choice is the matrix-free path: extreme eigenvalues by
Lanczos from Hessian-vector products. The budget is chosen so that the dense
path stays interactive: at n = 4000 (0.5 GiB) forming and diagonalizing takes
seconds; at n = 10⁴ it would be 3.2 GiB and minutes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hesscli.errors import InputError
from hesscli.vocab import Path, PathRequest

MATRICES = 4  # Hessian, symmetrized copy, sum temporary / LAPACK copy, workspace
HOST_BYTES = 8  # the eigensolver works in float64
DENSE_BUDGET = 512 * 2**20


@dataclass(frozen=True)
class PathChoice:
    """The chosen path, the memory the dense one would take, and why."""

    path: Path
    dense_bytes: int
    available_bytes: int | None
    reason: str


def dense_bytes(n: int) -> int:
    """Peak host memory of the dense path for n parameters (see module docstring)."""
    return MATRICES * HOST_BYTES * n * n


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable`` in /proc/meminfo), None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(size) < 1024 or unit == "PiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # pragma: no cover


def choose_path(
    n: int, request: str = "auto", available: int | None = None
) -> PathChoice:
    """Pick ``dense`` or ``matrix-free`` for ``request`` in auto|dense|matrix-free.

    ``--dense`` is refused (:class:`InputError`, exit 2) when the dense path
    would need more than the available memory; ``auto`` picks dense only when
    it needs at most ``min(DENSE_BUDGET, available/4)``.
    """
    need = dense_bytes(n)
    avail = available_memory() if available is None else available
    if request == PathRequest.MATRIX_FREE:
        return PathChoice(Path.MATRIX_FREE, need, avail, "--matrix-free requested")
    if request == PathRequest.DENSE:
        if avail is not None and need > avail:
            raise InputError(
                f"--dense: the dense Hessian for n = {n} needs about {human_bytes(need)} "
                f"({MATRICES} n×n float64 matrices: the Hessian, its symmetrized copy and the "
                f"eigensolver's copy and workspace); only {human_bytes(avail)} is available. "
                "Use --matrix-free (or drop --dense) for the extreme eigenvalues from "
                "Hessian-vector products"
            )
        return PathChoice(Path.DENSE, need, avail, "--dense requested")
    budget = DENSE_BUDGET if avail is None else min(DENSE_BUDGET, avail // 4)
    if need <= budget:
        return PathChoice(
            Path.DENSE, need, avail,
            f"dense Hessian needs about {human_bytes(need)} (≤ {human_bytes(budget)})",
        )
    return PathChoice(
        Path.MATRIX_FREE, need, avail,
        f"matrix-free: a dense Hessian would need about {human_bytes(need)} "
        f"(> {human_bytes(budget)} budget, including eigensolver workspace)",
    )
