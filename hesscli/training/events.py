"""Events along a run, decided from the logged records with analyze's own verdicts.

- ``stalled``: the gradient norm fell to ``gtol`` or below where the curvature
  gives no verdict (degenerate, a maximum, undetermined because a matrix-free
  end did not converge, or curvature not monitored);
- ``at_saddle``: stalled with λmin < −tol (the classification says ``saddle_point``;
  on the matrix-free path from the proven sides and the random-start bounds logged);
- ``reached_minimum``: stalled with λmin > tol (``local_minimum``);
- ``escaped_saddle``: after ``at_saddle``, the value fell below the saddle's by
  more than the quadratic model's drop for a move of ``ESCAPE_DISTANCE`` along
  the escape direction, ``½|λmin|·0.1²`` (analyze's ``--escape-step`` default):
  the run has clearly left, downhill, rather than jittered around it;
- ``progressive_sharpening``, ``edge_of_stability``, ``unstable`` and
  ``above_edge``: spans of lr·λmax (rising toward 2; hovering at 2 while f
  falls; above 2 while f rises; above the band while f does not rise), judged as
  wholes by :mod:`hesscli.training.dynamics` (Cohen et al. 2021: lr·λmax ≈ 2
  with a falling loss is the edge of stability, not divergence). The bound 2
  is exact for plain GD; adaptive optimizers rescale the step, so for them
  these are warning signs only;
- for Adam-type optimizers (``preconditioned``) the same four spans are judged on
  lr·λmax(P⁻¹H) against (2 + 2β₁)/(1 − β₁) instead (Cohen et al. 2022, P from the
  optimizer state), as ``adaptive_progressive_sharpening``, ``adaptive_edge_of_stability``,
  ``adaptive_above_edge`` and ``adaptive_unstable``; lr·λmax(H) against 2 is then no
  criterion and raises nothing;
- ``diverged``: decided inside the compiled loop (non-finite, exploding
  loss or a loss unbounded below); see :mod:`hesscli.training.loop`.

When the monitored curvature is not the Hessian (``hessian=False``: a GGN or
Fisher) a stall is only ``stalled``: minimum and saddle are statements about the
Hessian, and the monitored λmin's sign says nothing about them either way (the
Fisher is PSD by construction; the GGN only where the output loss is convex in
the outputs, and a negative GGN eigenvalue is the loss's curvature, not a
saddle's).

Each of stalled / at_saddle / reached_minimum fires once per episode (again only
after the gradient rose above ``gtol``). Span events carry ``start``/``end`` in
their data and are emitted when the span ends (or by :meth:`EventTracker.finish`
at the end of the run), with ``step`` = the span's start. Tolerances are
:mod:`hesscli.analysis.verdicts`'s unless given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hesscli.analysis.verdicts import (
    PROBABILISTIC,
    EndIntervals,
    Evidence,
    classification_of,
    curvature_scale,
    eigen_tolerance,
    gradient_tolerance,
    rounding_dimension,
    smallest_bounded,
)
from hesscli.spectra.bounds import KW_PROBABILITY
from hesscli.training.dynamics import STABILITY_BOUND, DynamicsWatch, Span
from hesscli.training.monitor import Record
from hesscli.vocab import Classification, EventKind

ESCAPE_DISTANCE = 0.1
__all__ = ["ESCAPE_DISTANCE", "STABILITY_BOUND", "Event", "EventTracker"]


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
    hessian: bool = True  # False: the monitored λ are a GGN's/Fisher's (no min/saddle verdict)
    optimizer: str = "sgd"  # the GD stability bound is labelled as such for other optimizers
    in_stall: bool = False
    bound: float = STABILITY_BOUND  # the optimizer's lr·λ bound (dynamics.stability_bound)
    # Adam-type: the spans judge lr·λmax(P⁻¹H) (Record.lr_times_preconditioned_lambda_max)
    # against ``bound`` = (2 + 2β₁)/(1 − β₁), and their kinds are the adaptive_* ones
    preconditioned: bool = False
    dynamics: DynamicsWatch | None = None
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
        # only the extremes are logged: min|λ| is known when they share a sign
        evidence = self.evidence(record)
        sigma = smallest_bounded(evidence, tol)
        if record.lambda_max_at_most is not None and record.lambda_min_at_least is not None:
            hess_norm = max(abs(record.lambda_min_at_least), abs(record.lambda_max_at_most))
        gtol = self.gtol if self.gtol is not None else gradient_tolerance(
            record.value, self.dtype, x_norm=x_norm, hessian_norm=hess_norm,
            smallest_curvature=sigma, n=self.n)
        return gtol, tol

    @staticmethod
    def evidence(record: Record) -> Evidence:
        """What the record proves of its ends (dense: both known; matrix-free: the Ritz
        values one-sidedly, the far sides from the random-start bounds when logged)."""
        lo, hi = float(record.lambda_min), float(record.lambda_max)  # type: ignore[arg-type]
        if record.lambda_min_converged is None and record.lambda_max_converged is None:
            return Evidence(EndIntervals((lo, lo), (hi, hi)))
        return Evidence.one_sided(lo, hi, record.lambda_min_at_least,
                                  record.lambda_max_at_most, KW_PROBABILITY)

    def feed(self, record: Record) -> list[Event]:
        new: list[Event] = []
        gtol, tol = self.tolerances(record)
        g, step = record.gradient_norm, record.step
        if g <= gtol:
            if not self.in_stall:
                self.in_stall = True
                kind = Classification.DEGENERATE
                if tol is not None and self.hessian:
                    kind, basis = classification_of(g, gtol, self.evidence(record), tol)
                if kind == Classification.SADDLE_POINT:
                    lam = float(record.lambda_min)  # type: ignore[arg-type]
                    self.saddle = (step, record.value, lam)
                    new.append(Event(step, EventKind.AT_SADDLE,
                                     f"at a strict saddle: ‖∇f‖ = {g:.3g} ≤ gtol and λmin = "
                                     f"{lam:.4g} < 0", {"value": record.value,
                                                        "gradient_norm": g, "lambda_min": lam}))
                elif kind == Classification.LOCAL_MINIMUM:
                    likely = basis == PROBABILISTIC
                    new.append(Event(step, EventKind.REACHED_MINIMUM,
                                     f"at a local minimum: ‖∇f‖ = {g:.3g} ≤ gtol, λmin = "
                                     f"{record.lambda_min:.4g} > 0"
                                     + (f" (with probability ≥ {KW_PROBABILITY:.3g} "
                                        "over the random start: λmin ≥ "
                                        f"{record.lambda_min_at_least:.4g})" if likely else ""),
                                     {"value": record.value, "gradient_norm": g,
                                      "lambda_min": record.lambda_min, "certainty": basis}))
                else:
                    why = ("curvature not monitored" if tol is None else
                           kind.replace("_", " ") if self.hessian else
                           "the monitored curvature is not the Hessian: no minimum/saddle verdict")
                    new.append(Event(step, EventKind.STALLED,
                                     f"stalled: ‖∇f‖ = {g:.3g} ≤ gtol = {gtol:.3g} ({why})",
                                     {"value": record.value, "gradient_norm": g,
                                      "classification": kind if tol is not None and self.hessian
                                      else None}))
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
        ratio = (record.lr_times_preconditioned_lambda_max if self.preconditioned
                 else record.lr_times_lambda_max)
        new += self._spans(self._watch().feed(step, ratio, record.value))
        self.events.extend(new)
        return new

    def add(self, event: Event) -> None:
        """Record an event decided elsewhere; ``diverged`` first closes the open spans."""
        if event.kind == EventKind.DIVERGED:
            self.events.extend(self._spans(self._watch().close(diverged=True)))
        self.events.append(event)

    def finish(self) -> list[Event]:
        """Close the spans still open when the run ends (once, after the last record)."""
        new = self._spans(self._watch().close())
        self.events.extend(new)
        return new

    def _watch(self) -> DynamicsWatch:
        if self.dynamics is None:
            self.dynamics = (DynamicsWatch(self.lr, bound=self.bound, quantity="λmax(P⁻¹H)",
                                           who=self.optimizer) if self.preconditioned
                             else DynamicsWatch(self.lr, bound=self.bound))
        return self.dynamics

    def _spans(self, spans: list[Span]) -> list[Event]:
        from hesscli.training.optimizers import plain_gd

        if self.preconditioned:
            return [Event(s.start, ADAPTIVE[s.kind], s.message, s.data) for s in spans]
        suffix = ""
        if not plain_gd(self.optimizer) and self.bound == STABILITY_BOUND:
            suffix = f"; a plain-GD bound: {self.optimizer} scales its own steps"
        return [Event(s.start, s.kind, s.message + suffix, s.data) for s in spans]


#: the span kinds of gradient descent and their adaptive counterparts
ADAPTIVE = {EventKind.PROGRESSIVE_SHARPENING: EventKind.ADAPTIVE_PROGRESSIVE_SHARPENING,
            EventKind.EDGE_OF_STABILITY: EventKind.ADAPTIVE_EDGE_OF_STABILITY,
            EventKind.ABOVE_EDGE: EventKind.ADAPTIVE_ABOVE_EDGE,
            EventKind.UNSTABLE: EventKind.ADAPTIVE_UNSTABLE}
