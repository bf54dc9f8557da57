"""``landscape --plot``: the slices with their quadratic model, and the plane's contours.

Top row: one panel per slice, f solid and the model dashed, the point and the
gradient step marked. Bottom: filled contours of f on the plane with the
model's contours dashed at the same levels, and the gradient step (projected
on the plane) as an arrow. Levels are quantiles of f on the grid, so that a
ravine whose walls rise by orders of magnitude still shows its floor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hesscli.analysis.landscape import Landscape
from hesscli.render.plotting import new_figure, save_figure
from hesscli.vocab import PlaneDirection

FIGSIZE = (10.0, 8.0)  # inches
DPI = 100  # so a PNG is about 1000 × 800 pixels


def contour_levels(values: np.ndarray, count: int = 14) -> np.ndarray:
    """Quantiles of ``values`` (strictly increasing), at least two levels."""
    levels = np.unique(np.quantile(values, np.linspace(0.0, 1.0, count)))
    if levels.size < 2:
        levels = np.array([levels[0] - 0.5, levels[0] + 0.5])
    return levels


def plot_landscape(ls: Landscape, path: Path | str) -> None:
    """Draw ``ls`` to ``path`` (PNG or SVG by suffix), atomically."""
    save_figure(landscape_figure(ls), path, dpi=DPI)


def landscape_figure(ls: Landscape) -> Any:
    """The slices (top row) and the plane's contours (below), as ``--plot`` draws them."""
    fig = new_figure(figsize=FIGSIZE, layout="constrained")
    cols = max(len(ls.slices), 1)
    gs = fig.add_gridspec(2, cols, height_ratios=(1.0, 1.5))
    fig.suptitle(f"{ls.objective}: {ls.verdict}, "
                 f"f(x) = {ls.value:.4g}, ‖∇f‖ = {ls.gradient_norm:.3g}")
    for i, sl in enumerate(ls.slices):
        ax = fig.add_subplot(gs[0, i])
        ax.plot(sl.t, sl.values, color="C0", lw=1.8, label="f")
        ax.plot(sl.t, sl.model, color="C1", lw=1.4, ls="--", label="quadratic model")
        lo, hi = float(sl.values.min()), float(sl.values.max())
        span = hi - lo if hi > lo else 1.0
        ax.set_ylim(lo - 0.1 * span, hi + 0.1 * span)
        ax.plot([0], [ls.value], "ko", ms=5, label="x")
        if sl.name == PlaneDirection.GRAD and ls.step is not None and ls.step.inside:
            st = ls.step
            color = "C3" if st.increases_loss else "C2"
            ax.annotate("", xy=(st.t, st.value), xytext=(0, ls.value),
                        arrowprops={"arrowstyle": "->", "color": color, "lw": 1.5})
            ax.plot([st.t], [st.value], "x", color=color, ms=8, mew=2,
                    label=f"x − lr·∇f (lr = {st.lr:g})")
        what = (f"λ = {sl.eigenvalue:.4g}" if sl.eigenvalue is not None
                else f"dᵀHd = {sl.curvature:.4g}")
        ax.set_title(f"d = {sl.label}  ({what})", fontsize=9)
        ax.set_xlabel("t")
        if i == 0:
            ax.set_ylabel("f(x + t·d)")
            ax.legend(fontsize=7, loc="best")
    ax = fig.add_subplot(gs[1, :])
    g = ls.grid
    if g is not None:
        levels = contour_levels(g.values)
        filled = ax.contourf(g.a, g.b, g.values, levels=levels, cmap="viridis", extend="both")
        ax.contour(g.a, g.b, g.values, levels=levels, colors="k", linewidths=0.6)
        ax.contour(g.a, g.b, g.model, levels=levels, colors="w", linewidths=1.0,
                   linestyles="dashed")
        fig.colorbar(filled, ax=ax, label="f (quantile levels)")
        ax.plot([0], [0], "ko", ms=6)
        if g.step is not None:
            st = ls.step
            color = "C3" if st is not None and st.increases_loss else "C2"
            ax.annotate("", xy=g.step, xytext=(0, 0),
                        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 2})
        escape = next((sl for sl in ls.slices if sl.name == PlaneDirection.MIN), None)
        if escape is not None and ls.lambda_min < 0 and ls.step is None:
            end = (escape.lowest_t * float(escape.direction @ g.u),
                   escape.lowest_t * float(escape.direction @ g.w))
            ax.annotate("", xy=end, xytext=(0, 0),
                        arrowprops={"arrowstyle": "-|>", "color": "C3", "lw": 2})
            ax.annotate("escape", xy=end, xytext=(6, 0), textcoords="offset points",
                        color="C3", va="center")
        ax.set_xlim(g.a[0], g.a[-1])
        ax.set_ylim(g.b[0], g.b[-1])
        ax.set_aspect("equal", anchor="C")
        ax.set_xlabel(f"a along {g.labels[0]}")
        ax.set_ylabel(f"b along {g.labels[1]}")
        ax.set_title("f (filled, black lines) and the quadratic model (white dashed)",
                     fontsize=9)
    else:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no plane (n = 1)", ha="center", va="center")
    return fig
