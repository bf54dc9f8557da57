"""Progress of a long computation (an eigensolver, the streamed backend's pass over its
batches): what it reports, and how a report leaves compiled code. Below the curvature
backends and the spectra, which both report.

An eigensolver accepts ``progress``, an ``OnProgress`` callable taking one
:class:`Progress`, and calls it at its natural checkpoints (each convergence
check of either Lanczos loop, every few ARPACK products). The numerics never
print: what to do with a report (a Rich line on stderr) is the
caller's business (:mod:`hesscli.render.progress_view`).

Two ways to deliver a report:

- from the host (a solver loop in Python): :func:`report`;
- from inside ``jit`` (a restart cycle compiled as a whole): a
  ``jax.debug.callback`` to a fixed host function (the thick-restart solver's
  own, or :func:`device_report` to the sink installed by :func:`reporting`). The
  compiled program calls one fixed host function whatever the sink, so it is
  compiled (and cached on disk) once, with or without anyone listening; a
  report costs a few scalars copied to the host. The callbacks are not
  ``ordered`` (ordered effects are refused in some multi-device programs);
  the iterations of a compiled loop run one after another, so neither are
  they reordered in practice, and a late report would only show an older
  count for a moment.

``progress=None`` means "the sink installed by :func:`reporting`, if any":
the command line installs one around a whole command without threading it
through every layer, and a library caller can pass its own callable.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from hesscli.vocab import Ends


@dataclass(frozen=True)
class Progress:
    """One report: work done so far and how far each end is from its target.

    ``bound_min`` / ``bound_max``: the current error bound (or residual
    estimate) of the smallest / largest wanted eigenvalue, NaN when not known;
    ``target``: the bound each end must reach (NaN when not known);
    ``lambda_min`` / ``lambda_max``: the current Ritz values (NaN when not known).
    """

    solver: str
    hvps: int
    restarts: int = 0
    lambda_min: float = math.nan
    lambda_max: float = math.nan
    bound_min: float = math.nan
    bound_max: float = math.nan
    target: float = math.nan
    batch: int = 0  # streamed data: the batch a pass over the data has reached (1-based)
    batches: int = 0  # ... out of this many (0: not known yet, on the first pass)

    def __getitem__(self, name: str) -> Any:
        """``progress["hvps"]``: the fields by name, as a mapping would give them."""
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)

    def done(self, end: str) -> bool:
        """True when ``end`` ('min' or 'max') is within the target."""
        bound = self.bound_min if end == Ends.MIN else self.bound_max
        return bool(bound <= self.target)  # False when either is NaN


OnProgress = Callable[[Progress], None]

_SINK: ContextVar[OnProgress | None] = ContextVar("hesscli_progress_sink", default=None)


@contextlib.contextmanager
def reporting(on_progress: OnProgress | None) -> Iterator[None]:
    """Install ``on_progress`` as the sink of solvers called with ``progress=None``."""
    token = _SINK.set(on_progress)
    try:
        yield
    finally:
        _SINK.reset(token)


def sink(on_progress: OnProgress | None = None) -> OnProgress | None:
    """The callable a solver should report to: its argument, else the installed sink."""
    return on_progress if on_progress is not None else _SINK.get()


def report(on_progress: OnProgress | None, progress: Progress) -> None:
    """Send ``progress`` to ``on_progress`` (or the installed sink); no-op without one."""
    target = sink(on_progress)
    if target is not None:
        target(progress)


SOLVER_NAMES = ("lanczos", "thick-restart lanczos", "arpack")


def _from_device(code: Any, hvps: Any, restarts: Any, lambda_min: Any, lambda_max: Any,
                 bound_min: Any, bound_max: Any, target: Any) -> None:
    """Host side of :func:`device_report` (a fixed function: one compiled program)."""
    on_progress = _SINK.get()
    if on_progress is None:
        return
    on_progress(Progress(
        solver=SOLVER_NAMES[int(code)], hvps=int(hvps), restarts=int(restarts),
        lambda_min=float(lambda_min), lambda_max=float(lambda_max),
        bound_min=float(bound_min), bound_max=float(bound_max), target=float(target),
    ))


def device_report(solver: str, hvps: Any, restarts: Any = 0, lambda_min: Any = math.nan,
                  lambda_max: Any = math.nan, bound_min: Any = math.nan,
                  bound_max: Any = math.nan, target: Any = math.nan) -> None:
    """Report from inside compiled code (``jit``, ``lax.while_loop`` bodies) to the sink
    installed by :func:`reporting` when the program runs.

    ``solver`` is static (one of :data:`SOLVER_NAMES`); the rest may be traced
    scalars. Call it once per restart cycle, not per HVP: each call is a
    device-to-host copy of eight scalars and a Python call.
    """
    from hesscli.jaxconf import jax_module

    jax = jax_module()
    jax.debug.callback(_from_device, SOLVER_NAMES.index(solver), hvps, restarts, lambda_min,
                       lambda_max, bound_min, bound_max, target)

