"""Summaries a run ends with: the final verdict (as ``analyze`` gives it) and the file's report.

An objective file may define ``report(params) -> dict`` to say how good a point
is in the problem's own terms (``problems/tensor.py``: the alignment of each
recovered vector with a true component). ``train`` calls it at the final point
and shows the result; keys are strings, values numbers, strings, booleans or
short lists of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.analysis.analyze import Analysis, analyze
from hesscli.curvature.base import Curvature
from hesscli.errors import ObjectiveError, user_code
from hesscli.objective.bind import Objective
from hesscli.spectra.policy import SpectrumPolicy


def final_analysis(obj: Objective, curvature: Curvature, x: np.ndarray, lr: float, *,
                   gtol: float | None = None, tol: float | None = None,
                   policy: SpectrumPolicy | None = None) -> Analysis | None:
    """``analyze`` at the final point; None when the point is not finite.

    The spectrum comes by the run's policy (default the monitor's,
    :data:`hesscli.training.monitor.MONITOR_POLICY`: matrix-free extremes k = 1 at
    each end when the dense path is over budget), like ``analyze`` on the
    matrix-free path.
    """
    from hesscli.spectra.policy import spectrum_at
    from hesscli.training.monitor import MONITOR_POLICY

    if not np.all(np.isfinite(x)):
        return None
    at = obj.with_point(x)
    try:
        spectrum = spectrum_at(curvature, at.x, at.layout, policy or MONITOR_POLICY).spectrum
        return analyze(at, curvature, lr=lr, gtol=gtol, tol=tol, spectrum=spectrum)
    except ObjectiveError:
        return None


def problem_report(obj: Objective, x: np.ndarray) -> dict[str, Any] | None:
    """The objective file's ``report(params)`` at ``x``, or None when it defines none."""
    fn = getattr(obj.file.module, "report", None)
    if not callable(fn):
        return None
    with user_code(f"{obj.file.path.name}: report(params)"):
        out = fn(obj.unravel(np.asarray(x)))
    if not isinstance(out, dict):
        raise ObjectiveError(f"{obj.file.path.name}: report(params) must return a dict; "
                             f"got {type(out).__name__}")
    return {str(k): _plain(v) for k, v in out.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    arr = np.asarray(value) if not isinstance(value, str) else None
    if arr is not None and arr.ndim > 0:
        return [_plain(v) for v in arr.tolist()]
    if arr is not None and arr.dtype.kind == "b":
        return bool(arr)
    if arr is not None and arr.dtype.kind in "iu":
        return int(arr)
    if arr is not None and arr.dtype.kind == "f":
        return float(arr)
    return value


@dataclass(frozen=True)
class RunSummary:
    """One finished (or stopped) run, ready for rendering: what renderers read."""

    name: str  # variant name ("" for a single run)
    objective: str
    n: int
    dtype: str
    result: Any  # hesscli.training.loop.TrainResult
    analysis: Analysis | None
    report: dict[str, Any] | None
    requested_steps: int
    names: tuple[str, ...] = ()  # parameter names when n is small (for the final point)
    interrupted: bool = False


@dataclass(frozen=True)
class TrainComparison:
    """Runs from the same start and seed, side by side (``train --compare``), in order."""

    runs: tuple[RunSummary, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.runs)

    def __getitem__(self, name: str) -> RunSummary:
        """The run of variant ``name`` (``res.output["noisy"]``)."""
        for s in self.runs:
            if s.name == name:
                return s
        raise KeyError(name)
