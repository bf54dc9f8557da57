"""Dense or matrix-free? The one curvature-path policy every command uses.

The dense path forms the n×n Hessian from n HVPs and hands it to LAPACK. Its
peak memory is not one matrix but about four: the Hessian as computed, its
symmetrized copy ``(H + Hᵀ)/2`` (and the temporary of the sum), and the working
copy plus workspace of the symmetric eigensolver (``scipy.linalg.eigh``
overwrites a copy of its input). All of it is float64 on the host, whatever
the objective's dtype, because the eigensolver and the verdicts run in float64:
``dense_bytes(n) = 4 · 8 · n²``.

The automatic choice compares that with a fixed **dense budget**, never with
the memory that happens to be free: the same command on the same input gives
the same path, the same number of eigenvalues and the same inertia on a laptop
and on a loaded CI machine. The budget is, in order of precedence,

1. ``--dense-budget SIZE`` (``512MiB``, ``1GiB``, ``2e9``),
2. the environment variable ``HESSCLI_DENSE_BUDGET`` (same syntax),
3. :data:`DEFAULT_DENSE_BUDGET` = 512 MiB, i.e. dense up to n = 4096.

512 MiB keeps the dense path interactive: at n = 4096 forming and diagonalizing
take seconds; at n = 10⁴ it would be 3.2 GiB and minutes. Free memory is
consulted only to *refuse* an explicit ``--dense`` that cannot fit (exit 2,
with the size it would need); it never changes an answer.

The same limit (:func:`dense_limit`) decides the dense eigenvalue test of
``convexity``, ``train``'s curvature monitoring, ``gradcheck``'s Hessian
comparison and the analyses ``check`` runs.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

from hesscli.errors import InputError
from hesscli.vocab import PathRequest, SpectrumPath

MATRICES = 4  # Hessian, symmetrized copy, sum temporary / LAPACK copy, workspace
HOST_BYTES = 8  # the eigensolver works in float64
DEFAULT_DENSE_BUDGET = 512 * 2**20
BUDGET_ENV = "HESSCLI_DENSE_BUDGET"
_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*")


@dataclass(frozen=True)
class Budget:
    """The dense budget in bytes and where it came from (for ``meta`` and messages)."""

    bytes: int
    source: str  # "default" | "--dense-budget" | "HESSCLI_DENSE_BUDGET"

    @property
    def limit(self) -> int:
        """The largest n whose dense path fits the budget."""
        return dense_limit(self)


@dataclass(frozen=True)
class PathChoice:
    """The chosen path, the memory the dense one would take, the budget, and why."""

    path: SpectrumPath
    dense_bytes: int
    available_bytes: int | None  # consulted only for an explicit --dense
    reason: str
    requested: str = PathRequest.AUTO
    budget: Budget | None = None

    def as_meta(self) -> dict[str, Any]:
        """What ``meta.path_choice`` records: enough to see and reproduce the choice."""
        budget = self.budget or dense_budget()
        return {
            "path": str(self.path),
            "requested": str(self.requested),
            "reason": self.reason,
            "dense_bytes": self.dense_bytes,
            "dense_budget": budget.bytes,
            "dense_budget_source": budget.source,
            "dense_limit": budget.limit,
        }


def parse_bytes(text: str, what: str = "--dense-budget") -> int:
    """``"512MiB"`` -> 536870912; decimal (``GB``) and binary (``GiB``) units, or bytes."""
    m = _SIZE.fullmatch(str(text))
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise InputError(
            f"{what} {text!r}: expected a size such as 512MiB, 1GiB, 2GB or 1e9 (bytes)"
        )
    size = float(m.group(1)) * _UNITS[unit]
    if not math.isfinite(size) or size < 1:
        raise InputError(f"{what} {text!r}: the size must be at least 1 byte")
    return int(size)


def dense_budget(option: str | int | None = None) -> Budget:
    """The budget from ``--dense-budget`` (``option``), else the environment, else default."""
    if isinstance(option, int):
        return Budget(option, "--dense-budget")
    if option is not None:
        return Budget(parse_bytes(option), "--dense-budget")
    env = os.environ.get(BUDGET_ENV, "").strip()
    if env:
        return Budget(parse_bytes(env, BUDGET_ENV), BUDGET_ENV)
    return Budget(DEFAULT_DENSE_BUDGET, "default")


def dense_bytes(n: int) -> int:
    """Peak host memory of the dense path for n parameters (see module docstring)."""
    return MATRICES * HOST_BYTES * n * n


def dense_limit(budget: Budget | None = None) -> int:
    """The largest n with ``dense_bytes(n) <= budget`` (default: :func:`dense_budget`)."""
    size = (budget or dense_budget()).bytes
    # 32·n² ≤ size  ⟺  n² ≤ ⌊size/32⌋ for integers, so the integer square root is exact
    return math.isqrt(size // (MATRICES * HOST_BYTES))


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable`` in /proc/meminfo, or less when the
    address space is capped by ``RLIMIT_AS``), None if unknown.

    Used only to refuse what cannot fit (an explicit ``--dense``, or a dense path
    a raised budget chose: :func:`check_fits`), never to change the automatic
    choice (which must not depend on the moment's free memory).
    """
    free = _meminfo_available()
    capped = _address_space_left()
    if capped is not None:
        free = capped if free is None else min(free, capped)
    return free


def _address_space_left() -> int | None:
    """What ``RLIMIT_AS`` leaves this process (None: no limit, or not POSIX)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft <= 0:
            return None
        with open("/proc/self/statm") as fh:
            used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        return max(int(soft) - used, 0)
    except (ImportError, OSError, ValueError, AttributeError):
        return None


def check_fits(n: int, budget: Budget, what: str = "the dense path") -> None:
    """Refuse (exit 2, with the size) a dense path that a raised budget allows but this
    machine cannot hold: ``--dense-budget 1e30`` must not end inside XLA's allocator.

    The default budget is small enough for any machine and is not checked, so
    the automatic choice stays the same everywhere.
    """
    if budget.source == "default":
        return
    need = dense_bytes(n)
    avail = available_memory()
    if avail is not None and need > avail:
        raise InputError(
            f"{budget.source} {human_bytes(budget.bytes)} allows {what} for n = {n}, which "
            f"needs about {human_bytes(need)} ({MATRICES} n×n float64 matrices), but only "
            f"{human_bytes(avail)} is available on this machine; lower {budget.source} "
            f"(at most about {human_bytes(avail)}) or use --matrix-free")


def _meminfo_available() -> int | None:
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
    n: int, request: str = PathRequest.AUTO, available: int | None = None, *,
    budget: Budget | None = None,
) -> PathChoice:
    """Pick ``dense`` or ``matrix-free`` for ``request`` in auto|dense|matrix-free.

    ``auto`` is dense exactly when ``dense_bytes(n)`` fits the budget
    (:func:`dense_budget`); it reads nothing about the machine. ``--dense`` is
    refused (:class:`InputError`, exit 2) when the dense path would need more
    than the memory available now (``available``, default
    :func:`available_memory`).
    """
    budget = budget or dense_budget()
    need = dense_bytes(n)
    if request == PathRequest.MATRIX_FREE:
        return PathChoice(SpectrumPath.MATRIX_FREE, need, None, "--matrix-free requested", request,
                          budget)
    if request == PathRequest.DENSE:
        avail = available_memory() if available is None else available
        if avail is not None and need > avail:
            raise InputError(
                f"--dense: the dense Hessian for n = {n} needs about {human_bytes(need)} "
                f"({MATRICES} n×n float64 matrices: the Hessian, its symmetrized copy and the "
                f"eigensolver's copy and workspace); only {human_bytes(avail)} is available. "
                "Use --matrix-free (or drop --dense) for the extreme eigenvalues from "
                "Hessian-vector products"
            )
        return PathChoice(SpectrumPath.DENSE, need, avail, "--dense requested", request, budget)
    if request != PathRequest.AUTO:
        raise InputError(f"unknown curvature path {request!r}; use auto, dense or matrix-free")
    where = "" if budget.source == "default" else f" from {budget.source}"
    if need <= budget.bytes:
        check_fits(n, budget)
        return PathChoice(
            SpectrumPath.DENSE, need, None,
            f"dense Hessian needs about {human_bytes(need)} "
            f"(≤ {human_bytes(budget.bytes)} budget{where})", request, budget,
        )
    return PathChoice(
        SpectrumPath.MATRIX_FREE, need, None,
        f"matrix-free: a dense Hessian would need about {human_bytes(need)} with the "
        f"eigensolver's workspace (> {human_bytes(budget.bytes)} dense budget{where}: dense "
        f"up to n = {budget.limit}; raise it with --dense-budget or {BUDGET_ENV})",
        request, budget,
    )
