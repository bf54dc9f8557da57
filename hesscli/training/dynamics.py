"""Training dynamics the literature names, detected over spans of logged steps.

Full-batch gradient descent with step size lr is stable along the top Hessian
eigenvector only while lr·λmax < 2. Cohen et al. (2021), *Gradient Descent on
Neural Networks Typically Occurs at the Edge of Stability* (ICLR 2021,
arXiv:2103.00065), showed what networks actually do: the sharpness λmax first
rises (**progressive sharpening**) until lr·λmax reaches 2, and then hovers at
2 — slightly above, slightly below — for the rest of training while the loss
keeps falling on average, non-monotonically (the **edge of stability**). A
monitor that calls every record with lr·λmax > 2 "unstable" gets this regime
exactly wrong, so the spans are judged as wholes:

- ``progressive_sharpening``: lr·λmax rises over at least :data:`MIN_RECORDS`
  records (dips of at most :data:`RISE_SLACK` allowed) by at least
  :data:`MIN_RISE`, toward 2; the span ends where the rise stops or the ratio
  enters the band.
- an *episode* is a maximal run of records with lr·λmax ≥ 2 − band. When it
  ends (the ratio falls below the band, the run ends or diverges) it is judged:

  - ``unstable``: some lr·λmax > 2 and f rose over the span (its last value
    above its first and a positive least-squares slope), or the run diverged
    during it — gradient descent really is blowing up along the top
    eigenvector;
  - ``edge_of_stability``: at least :data:`MIN_RECORDS` records hovering at 2
    — the median of lr·λmax within the band and at least :data:`IN_BAND_SHARE`
    of the records inside it (sharpness typically overshoots 2 a little before
    it settles, so not all of them) — and f decreasing on average (last value
    below the first and a negative least-squares slope);
  - ``above_edge``: at least :data:`MIN_RECORDS` records with the median of
    lr·λmax above the band and f not rising: gradient descent is unstable along
    the top eigenvector, yet the run tolerates it (an overshoot of the
    sharpness before it settles, or an iterate bouncing across a valley).

For momentum the bound is 2(1 + β) instead of 2 (:func:`stability_bound`), and
the band scales with it. Episodes of a single record are not judged (one sample says nothing about a
trend); after ``diverged`` nothing more is judged. Every event's ``step`` is the
span's first step, and ``data`` carries ``start``/``end`` steps, the range of
lr·λmax and f at both ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hesscli.vocab import EventKind, Optimizer

STABILITY_BOUND = 2.0
EDGE_BAND = 0.1  # half-width of the band around lr·λmax = 2 (5% of the bound)
EDGE_SHARE = EDGE_BAND / STABILITY_BOUND  # the band's half-width relative to any bound
MIN_RECORDS = 3  # a span shorter than this says nothing about a trend
IN_BAND_SHARE = 0.5  # the share of an edge-of-stability episode inside the band
MIN_RISE = 0.2  # progressive sharpening: lr·λmax must rise by at least this (10% of 2)
RISE_SLACK = 0.02  # ... tolerating dips of this much (Lanczos noise, small oscillations)


@dataclass(frozen=True)
class Span:
    """A finished span of logged steps with its verdict (see the module docstring)."""

    kind: EventKind
    start: int
    end: int
    message: str
    data: dict[str, Any]


def _slope(steps: list[int], values: list[float]) -> float:
    """Least-squares slope of values against steps (0 for fewer than two points)."""
    if len(steps) < 2:
        return 0.0
    t = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    t = t - t.mean()
    denom = float(np.dot(t, t))
    return float(np.dot(t, y - y.mean()) / denom) if denom > 0 else 0.0


@dataclass
class DynamicsWatch:
    """Streaming detector of the spans above; feed every record in order (replayable).

    ``feed`` returns the spans that ended with this record; ``close`` ends the
    open ones (at the end of the run, or on divergence).
    """

    lr: float
    band: float | None = None  # default: EDGE_SHARE of the bound (0.1 around 2)
    bound: float = STABILITY_BOUND  # lr·λ above which the optimizer is unstable on a quadratic
    rise: list[tuple[int, float, float]] = field(default_factory=list)  # (step, ratio, f)
    episode: list[tuple[int, float, float]] = field(default_factory=list)
    done: bool = False  # set after a divergence: nothing more to judge
    # what is judged, for the messages: lr·λmax(H) of gradient descent by default; Adam's
    # lr·λmax(P⁻¹H) (:mod:`hesscli.analysis.preconditioned`) with quantity "λmax(P⁻¹H)"
    quantity: str = "λmax"
    who: str = "gradient descent"
    #: the largest ratio of ``rise`` so far, kept as it grows: recomputing it per record
    #: made a long run quadratic (80 000 records: 188 s)
    rise_peak: float = -np.inf

    def __post_init__(self) -> None:
        if self.band is None:
            self.band = EDGE_SHARE * self.bound

    def feed(self, step: int, ratio: float | None, value: float) -> list[Span]:
        if self.done or ratio is None or not np.isfinite(ratio) or not np.isfinite(value):
            return []
        out: list[Span] = []
        point = (step, float(ratio), float(value))
        low = self.bound - self.band
        # progressive sharpening: a rising run below the band
        if self.rise:
            if len(self.rise) == 1 or self.rise_peak == -np.inf:  # e.g. replayed state
                self.rise_peak = max(r for _, r, _ in self.rise)
            if ratio < self.rise_peak - RISE_SLACK:
                out += self._close_rise()
                self.rise = [point]
                self.rise_peak = point[1]
            else:
                self.rise.append(point)
                self.rise_peak = max(self.rise_peak, point[1])
        else:
            self.rise = [point]
            self.rise_peak = point[1]
        if ratio >= low and self.rise:
            out += self._close_rise()
            self.rise = []
            self.rise_peak = -np.inf
        # episodes at or above the band's lower edge
        if ratio >= low:
            self.episode.append(point)
        elif self.episode:
            out += self._close_episode(diverged=False)
        return out

    def close(self, *, diverged: bool = False) -> list[Span]:
        """End the open spans: at the end of the run or when it diverged."""
        if self.done:
            return []
        out = self._close_rise() + self._close_episode(diverged=diverged)
        self.rise = []
        self.rise_peak = -np.inf
        self.done = diverged
        return out

    def _close_rise(self) -> list[Span]:
        run = self.rise
        if len(run) < 2:
            return []
        ratios = [r for _, r, _ in run]
        top = int(np.argmax(ratios))
        run = run[: top + 1]
        if len(run) < MIN_RECORDS or run[-1][1] - run[0][1] < MIN_RISE:
            return []
        (s0, r0, _), (s1, r1, _) = run[0], run[-1]
        lam0, lam1 = r0 / self.lr, r1 / self.lr
        q = self.quantity
        msg = (f"progressive sharpening over steps {s0}–{s1}: {q} rose from {lam0:.4g} to "
               f"{lam1:.4g} (lr·{q} {r0:.3f} → {r1:.3f}), toward the stability bound "
               f"{self.bound:.3g}/lr = {self.bound / self.lr:.4g}")
        return [Span(EventKind.PROGRESSIVE_SHARPENING, s0, s1, msg, {
            "start": s0, "end": s1, "records": len(run), "lambda_max_start": lam0,
            "lambda_max_end": lam1, "lr_times_lambda_max_start": r0,
            "lr_times_lambda_max_end": r1})]

    def _close_episode(self, *, diverged: bool) -> list[Span]:
        ep, self.episode = self.episode, []
        if not ep or (len(ep) < 2 and not diverged):
            return []
        steps = [s for s, _, _ in ep]
        ratios = np.array([r for _, r, _ in ep])
        values = [v for _, _, v in ep]
        slope = _slope(steps, values)
        f0, f1 = values[0], values[-1]
        in_band = float(np.mean(np.abs(ratios - self.bound) <= self.band))
        above = ratios > self.bound
        start = steps[int(np.argmax(above))] if above.any() else steps[0]
        data = {"start": steps[0], "end": steps[-1], "records": len(ep),
                "lr_times_lambda_max_min": float(ratios.min()),
                "lr_times_lambda_max_max": float(ratios.max()),
                "lr_times_lambda_max_median": float(np.median(ratios)),
                "value_start": f0, "value_end": f1, "band": self.band, "bound": self.bound,
                "share_in_band": in_band}
        lo, hi = float(ratios.min()), float(ratios.max())
        rising = f1 > f0 and slope > 0
        q, who = self.quantity, self.who
        if above.any() and (diverged or rising):
            why = "the run diverged" if diverged else f"f rose from {f0:.6g} to {f1:.6g}"
            # the advice uses the curvature where the instability began: later records
            # are taken at the blown-up points, whose curvature says nothing about the lr
            # that would have kept the run near where it was
            first = float(ratios[int(np.argmax(above))])
            return [Span(EventKind.UNSTABLE, start, steps[-1],
                         f"unstable over steps {start}–{steps[-1]}: lr·{q} up to {hi:.4g} > "
                         f"{self.bound:.3g} "
                         f"and {why}: {who} with lr = {self.lr:g} blows up along "
                         f"the top eigenvector (stable below lr = "
                         f"{self.bound * self.lr / first:.4g}, from λmax = "
                         f"{first / self.lr:.4g} at step {start}, where it began)",
                         {**data, "start": start, "diverged": diverged,
                          "lr_times_lambda_max": hi, "lambda_max": hi / self.lr,
                          "lambda_max_at_start": first / self.lr})]
        median = float(np.median(ratios))
        if (len(ep) >= MIN_RECORDS and abs(median - self.bound) <= self.band
                and in_band >= IN_BAND_SHARE and f1 < f0 and slope < 0):
            return [Span(EventKind.EDGE_OF_STABILITY, steps[0], steps[-1],
                         f"edge of stability over steps {steps[0]}–{steps[-1]}: lr·{q} hovered "
                         f"around {self.bound:.3g} (median {median:.4g}, {in_band:.0%} of the "
                         f"records within ± {self.band:.3g}; range {lo:.4g}–{hi:.4g}) "
                         f"while f fell from {f0:.6g} to {f1:.6g} on average: not divergence, "
                         f"the regime of Cohen et al. {2022 if q != 'λmax' else 2021} where "
                         f"{who} regulates its own sharpness", data)]
        if len(ep) >= MIN_RECORDS and median > self.bound + self.band and not rising:
            return [Span(EventKind.ABOVE_EDGE, start, steps[-1],
                         f"above the edge over steps {start}–{steps[-1]}: lr·{q} {lo:.4g}–"
                         f"{hi:.4g} (median {median:.4g}) > {self.bound:.3g} without diverging (f "
                         f"{f0:.6g} → "
                         f"{f1:.6g}): {who} is unstable along the top eigenvector "
                         f"and the run tolerates it; lr below {self.bound * self.lr / hi:.4g}"
                         " would be stable", {**data, "start": start})]
        return []


def stability_bound(optimizer: str, options: dict[str, Any] | None = None) -> float:
    """The value of lr·λ above which ``optimizer`` diverges on a quadratic with curvature λ.

    Plain gradient descent: 2. Heavy-ball momentum β (optax's ``sgd`` trace
    m ← g + βm, x ← x − lr·m): 2(1 + β); Nesterov's variant: 2(1 + β)/(1 + 2β)
    (both from the 2×2 recurrence's eigenvalues; Cohen et al. 2021 observe the
    edge of stability at the momentum bound). Adaptive optimizers rescale each
    coordinate's step, so no bound in lr·λmax applies; 2 is kept as the
    plain-GD reference.
    """
    opts = dict(options or {})
    if optimizer == Optimizer.MOMENTUM:
        opts.setdefault("momentum", 0.9)
    if optimizer == Optimizer.NESTEROV:
        opts.setdefault("momentum", 0.9)
        opts.setdefault("nesterov", True)
    if optimizer not in (Optimizer.SGD, Optimizer.MOMENTUM, Optimizer.NESTEROV):
        return STABILITY_BOUND
    beta = float(opts.get("momentum") or 0.0)
    if beta <= 0.0:
        return STABILITY_BOUND
    if opts.get("nesterov"):
        return 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta)
    return 2.0 * (1.0 + beta)
