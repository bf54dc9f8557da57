"""Training curves: value, gradient norm, λmin/λmax against 2/lr, events marked.

The article's advice made concrete: plot the sharpness λmax next to the
stability bound 2/lr (gradient descent diverges along the top eigenvector once
λmax > 2/lr) and the most negative eigenvalue (a saddle's signature), with the
events of the run drawn as vertical lines. The band around 2/lr in which an
edge of stability is recognised (Cohen et al. 2021: λmax hovering at 2/lr while
f falls) is shaded, and span events (progressive sharpening, edge of
stability, unstable, above the edge) are shaded over their steps. Several
summaries (``--compare``) share the axes, one colour each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hesscli.render.plotting import new_figure, save_figure
from hesscli.training.dynamics import EDGE_SHARE, STABILITY_BOUND, stability_bound

EVENT_COLOURS = {"at_saddle": "tab:orange", "escaped_saddle": "tab:green",
                 "reached_minimum": "tab:green", "stalled": "tab:olive",
                 "unstable": "tab:red", "diverged": "black",
                 "progressive_sharpening": "tab:purple", "edge_of_stability": "tab:blue",
                 "above_edge": "tab:pink",
                 "adaptive_progressive_sharpening": "tab:purple",
                 "adaptive_edge_of_stability": "tab:blue", "adaptive_unstable": "tab:red",
                 "adaptive_above_edge": "tab:pink"}
SPAN_KINDS = ("progressive_sharpening", "edge_of_stability", "unstable", "above_edge",
              "adaptive_progressive_sharpening", "adaptive_edge_of_stability",
              "adaptive_unstable", "adaptive_above_edge")


def _series(history: Any, field: str) -> tuple[np.ndarray, np.ndarray]:
    steps = np.array([r.step for r in history], dtype=float)
    vals = np.array([np.nan if getattr(r, field) is None else getattr(r, field)
                     for r in history], dtype=float)
    return steps, vals


def plot_training(summaries: list[Any], path: Path | str) -> None:
    """Write :func:`training_figure` for one or more runs to ``path`` (.png/.svg)."""
    save_figure(training_figure(summaries), path)


def training_figure(summaries: list[Any]) -> Any:
    """Value, ‖∇f‖ and the monitored eigenvalues against the step, one colour per run;
    a fourth panel with λmax(P⁻¹H) for Adam-type runs."""
    import matplotlib

    adaptive = any(r.preconditioned_lambda_max is not None
                   for s in summaries for r in s.result.history)
    fig = new_figure(figsize=(8, 12 if adaptive else 9))
    axes = fig.subplots(4 if adaptive else 3, 1, sharex=True)
    ax_f, ax_g, ax_l = axes[:3]
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    lrs: set[tuple[float, float]] = set()
    for i, s in enumerate(summaries):
        colour = colours[i % len(colours)]
        label = s.name or s.result.config.optimizer
        hist = s.result.history
        x, f = _series(hist, "value")
        ax_f.plot(x, f, color=colour, label=label)
        x, g = _series(hist, "gradient_norm")
        ax_g.semilogy(x, np.where(g > 0, g, np.nan), color=colour, label=label)
        x, lo = _series(hist, "lambda_min")
        _, hi = _series(hist, "lambda_max")
        ax_l.plot(x, hi, color=colour, label=f"{label}: λmax")
        ax_l.plot(x, lo, color=colour, linestyle="--", label=f"{label}: λmin")
        names = sorted({k for r in hist if r.block_lambda_max for k in r.block_lambda_max})
        for j, name in enumerate(names):  # per-block λmax (--monitor-blocks): thin lines
            ys = [np.nan if not r.block_lambda_max else r.block_lambda_max.get(name, np.nan)
                  for r in hist]
            ax_l.plot(x, ys, color=colour, linewidth=0.8, alpha=0.7,
                      linestyle=(0, (1, 1 + j)), label=f"{label}: λmax of {name}")
        config = s.result.config
        lrs.add((config.lr, stability_bound(config.optimizer, config.options)))
        for event in s.result.events:
            ec = EVENT_COLOURS.get(event.kind, "grey")
            end = event.data.get("end") if event.kind in SPAN_KINDS else None
            for ax in axes:
                if end is not None and end > event.step:
                    ax.axvspan(event.step, end, color=ec, alpha=0.12, linewidth=0)
                else:
                    ax.axvline(event.step, color=ec, alpha=0.5, linewidth=1)
            ax_f.annotate(event.kind, (event.step, 1.0), xycoords=("data", "axes fraction"),
                          rotation=90, va="top", ha="right", fontsize=7, color=ec)
    lo_data, hi_data = ax_l.get_ylim()
    for lr, factor in sorted(lrs):
        bound = factor / lr
        name = "2" if factor == STABILITY_BOUND else f"{factor:.3g}"
        if adaptive:  # Adam-type: 2/lr is plain GD's bound, not the criterion (panel 4)
            ax_l.annotate(f"{name}/lr = {bound:.3g}: plain GD's bound, not Adam's criterion "
                          "(see λmax(P⁻¹H) below)", (0.01, 0.97), xycoords="axes fraction",
                          va="top", fontsize=8, color="grey")
        elif bound <= hi_data + 0.5 * (hi_data - lo_data):
            ax_l.axhline(bound, color="tab:red", linestyle=":", label=f"{name}/lr = {bound:.3g}")
            band = EDGE_SHARE * factor
            ax_l.axhspan((factor - band) / lr, (factor + band) / lr,
                         color="tab:blue", alpha=0.1, linewidth=0,
                         label=f"edge-of-stability band ({name} ± {band:.3g})/lr")
        else:  # far above the spectrum: say so instead of squashing the curves
            ax_l.annotate(f"{name}/lr = {bound:.3g} (above the plot: stable)", (0.01, 0.97),
                          xycoords="axes fraction", va="top", fontsize=8, color="tab:red")
    if adaptive:
        _plot_preconditioned(axes[3], summaries, colours)
    ax_l.axhline(0.0, color="grey", linewidth=0.5)
    values = np.concatenate([_series(s.result.history, "value")[1] for s in summaries])
    values = values[np.isfinite(values)]
    if values.size and np.ptp(values) > 1e4 * max(1.0, float(np.min(np.abs(values)))):
        ax_f.set_yscale("symlog")  # an exploding run: keep the start readable
    ax_f.set_ylabel("f")
    ax_g.set_ylabel("‖∇f‖")
    ax_l.set_ylabel("eigenvalues")
    axes[-1].set_xlabel("step")
    title = summaries[0].objective
    ax_f.set_title(f"hesscli train {title}")
    for ax in axes:
        ax.legend(fontsize=7, loc="best")
    return fig


def _plot_preconditioned(ax: Any, summaries: list[Any], colours: list[str]) -> None:
    """λmax(P⁻¹H) (Adam-type runs) against its threshold bound/lr, with the edge band."""
    drawn: set[float] = set()
    for i, s in enumerate(summaries):
        hist = s.result.history
        x, lam = _series(hist, "preconditioned_lambda_max")
        if not np.isfinite(lam).any():
            continue
        colour = colours[i % len(colours)]
        label = s.name or s.result.config.optimizer
        ax.plot(x, lam, color=colour, label=f"{label}: λmax(P⁻¹H)")
        _, thr = _series(hist, "preconditioned_threshold")
        _, bound = _series(hist, "preconditioned_bound")
        ok = np.isfinite(thr)
        if ok.any():
            t, b = float(thr[ok][0]), float(bound[ok][0])
            if t not in drawn:
                drawn.add(t)
                ax.axhline(t, color="tab:red", linestyle=":",
                           label=f"{b:.3g}/lr = {t:.4g} (Adam's threshold)")
                band = EDGE_SHARE * t
                ax.axhspan(t - band, t + band, color="tab:blue", alpha=0.1, linewidth=0,
                           label="adaptive edge-of-stability band")
    ax.set_ylabel("λmax(P⁻¹H)")
    ax.legend(fontsize=7, loc="best")
