"""Events along a run, decided from the logged records with analyze's own verdicts.

- ``stalled``: the gradient norm fell to ``gtol`` or below where the curvature
  gives no verdict (degenerate, a maximum, undetermined because a matrix-free
  end did not converge, or curvature not monitored);
- ``at_saddle``: stalled with λmin < −tol (:func:`classify` says ``saddle_point``);
- ``reached_minimum``: stalled with λmin > tol (``local_minimum``);
- ``escaped_saddle``: after ``at_saddle``, the value fell below the saddle's by
  more than the quadratic model's drop for a move of ``ESCAPE_DISTANCE`` along
  the escape direction, ``½|λmin|·0.1²`` (analyze's ``--escape-step`` default):
  the run has clearly left, downhill, rather than jittered around it;
- ``unstable``: lr·λmax > 2, where gradient descent with this lr is unstable
  along the top eigenvector (the bound is exact for plain GD; adaptive
  optimizers rescale the step, so for them it is a warning sign only);
- ``diverged``: decided inside the compiled loop (non-finite, exploding
  loss or a loss unbounded below); see :mod:`hesscli.training.loop`.

Each of stalled / at_saddle / reached_minimum fires once per episode (again only
after the gradient rose above ``gtol``), ``unstable`` once per episode of
lr·λmax > 2. Tolerances are :mod:`hesscli.analysis.verdicts`'s unless given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hesscli.analysis.verdicts import (
    classify,
    curvature_scale,
    eigen_tolerance,
    gradient_tolerance,
    rounding_dimension,
    smallest_curvature,
)
from hesscli.training.monitor import Record
from hesscli.vocab import Classification, EventKind

ESCAPE_DISTANCE = 0.1
STABILITY_BOUND = 2.0


@dataclass(frozen=True)
class Event:
    step: int
    kind: EventKind
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class EventTracker:
    """Turns records into events; feed it every record in order (replayable on resume)."""

    n: int
    dtype: str
    lr: float
    gtol: float | None = None
    tol: float | None = None
    optimizer: str = "sgd"  # the GD stability bound is labelled as such for other optimizers
    in_stall: bool = False
    unstable_now: bool = False
    saddle: tuple[int, float, float] | None = None  # (step, value, λmin)
    events: list[Event] = field(default_factory=list)

    def tolerances(self, record: Record) -> tuple[float, float | None]:
        """(gtol, tol) for ``record`` by analyze's rules (:mod:`hesscli.analysis.verdicts`).

        Without monitored curvature the Hessian scale is unknown, so the derived
        gtol is 0: only an exactly zero gradient (or a given ``gtol``) stalls.
        """
        lams = [abs(v) for v in (record.lambda_min, record.lambda_max) if v is not None]
        hess_norm = max(lams) if lams else 0.0
        x_norm = record.x_norm or 0.0
        if record.lambda_min is None or record.lambda_max is None:
            gtol = self.gtol if self.gtol is not None else gradient_tolerance(
                record.value, self.dtype, x_norm=x_norm, hessian_norm=hess_norm, n=self.n)
            return gtol, None
        scale = curvature_scale(np.array(lams), record.value, record.gradient_norm, x_norm)
        dense = record.lambda_min_converged is None and record.lambda_max_converged is None
        tol = self.tol if self.tol is not None else eigen_tolerance(
            scale, rounding_dimension(self.n, dense), self.dtype, record.curvature_error or 0.0)
        ends = [record.lambda_min, record.lambda_max]
        # only the extremes are logged: min|λ| is known when they share a sign
        sigma = smallest_curvature(np.array(ends), tol, False, self.converged(record))
        gtol = self.gtol if self.gtol is not None else gradient_tolerance(
            record.value, self.dtype, x_norm=x_norm, hessian_norm=hess_norm,
            smallest_curvature=sigma, n=self.n)
        return gtol, tol

    @staticmethod
    def converged(record: Record) -> list[bool]:
        """Per-end convergence flags of the monitored extremes (dense: both known)."""
        return [record.lambda_min_converged is not False,
                record.lambda_max_converged is not False]

    def feed(self, record: Record) -> list[Event]:
        new: list[Event] = []
        gtol, tol = self.tolerances(record)
        g, step = record.gradient_norm, record.step
        if g <= gtol:
            if not self.in_stall:
                self.in_stall = True
                kind = Classification.DEGENERATE
                if tol is not None:
                    kind = classify(g, gtol, [record.lambda_min, record.lambda_max], tol,
                                    self.converged(record))
                if kind == Classification.SADDLE_POINT:
                    lam = float(record.lambda_min)  # type: ignore[arg-type]
                    self.saddle = (step, record.value, lam)
                    new.append(Event(step, EventKind.AT_SADDLE,
                                     f"at a strict saddle: ‖∇f‖ = {g:.3g} ≤ gtol and λmin = "
                                     f"{lam:.4g} < 0", {"value": record.value,
                                                        "gradient_norm": g, "lambda_min": lam}))
                elif kind == Classification.LOCAL_MINIMUM:
                    new.append(Event(step, EventKind.REACHED_MINIMUM,
                                     f"at a local minimum: ‖∇f‖ = {g:.3g} ≤ gtol, λmin = "
                                     f"{record.lambda_min:.4g} > 0",
                                     {"value": record.value, "gradient_norm": g,
                                      "lambda_min": record.lambda_min}))
                else:
                    why = "curvature not monitored" if tol is None else kind.replace("_", " ")
                    new.append(Event(step, EventKind.STALLED,
                                     f"stalled: ‖∇f‖ = {g:.3g} ≤ gtol = {gtol:.3g} ({why})",
                                     {"value": record.value, "gradient_norm": g,
                                      "classification": kind if tol is not None else None}))
        else:
            self.in_stall = False
        if self.saddle is not None:
            s_step, s_value, s_lam = self.saddle
            drop = 0.5 * abs(s_lam) * ESCAPE_DISTANCE**2
            if record.value < s_value - drop:
                self.saddle = None
                new.append(Event(step, EventKind.ESCAPED_SADDLE,
                                 f"escaped the saddle of step {s_step}: f fell from "
                                 f"{s_value:.6g} to {record.value:.6g}",
                                 {"saddle_step": s_step, "saddle_value": s_value,
                                  "value": record.value}))
        ratio = record.lr_times_lambda_max
        if ratio is not None and ratio > STABILITY_BOUND:
            if not self.unstable_now:
                self.unstable_now = True
                new.append(Event(step, EventKind.UNSTABLE,
                                 f"lr·λmax = {ratio:.4g} > 2: gradient descent with lr = "
                                 f"{self.lr:g} is unstable along the top eigenvector "
                                 f"(λmax = {record.lambda_max:.4g}, stable below lr = "
                                 f"{2.0 / float(record.lambda_max):.4g})"
                                 + ("" if self.optimizer == "sgd" else
                                    f"; a plain-GD bound: {self.optimizer} scales its own "
                                    "steps"),
                                 {"lr_times_lambda_max": ratio,
                                  "lambda_max": record.lambda_max}))
        elif ratio is not None:
            self.unstable_now = False
        self.events.extend(new)
        return new

    def add(self, event: Event) -> None:
        self.events.append(event)
