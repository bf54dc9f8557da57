"""The ``landscape`` report: character plots of the slices and of the plane, ≤ 80 columns.

Each slice is a small canvas: ``*`` is f, ``·`` the quadratic model (drawn
under f, so where only ``*`` shows they agree), ``╌`` the level f(x), ``O`` the
point and ``X`` where the gradient step lands. The plane is two shade maps side
by side, f and the model, with the same shade levels (tenths of f's values on
the grid), so where the two maps differ the model is wrong. Everything here
only places precomputed values on a grid of characters.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.text import Text

from hesscli.analysis.landscape import Grid, Landscape, Slice, StepMark
from hesscli.render.numbers import num
from hesscli.vocab import Classification, PlaneDirection

PLOT_WIDTH = 64  # slice canvas columns; with the 11-column value axis: 75
PLOT_HEIGHT = 9
MAP_WIDTH = 37  # two maps and a gap: 77 columns
SHADES = " .:-=+*#%@"
SHADE_STYLES = ("blue", "blue", "cyan", "cyan", "green", "green", "yellow", "yellow", "red",
                "red")
GLYPH = {"level": "╌", "model": "·", "f": "*", "point": "O", "step": "X"}
STYLE = {"level": "dim", "model": "yellow", "f": "bold cyan", "point": "bold"}
PRIORITY = {"level": 0, "model": 1, "f": 2, "point": 3, "step": 4}


def _row(value: float, lo: float, hi: float, height: int) -> int | None:
    if not np.isfinite(value) or value < lo or value > hi:
        return None
    return int(round((hi - value) / (hi - lo) * (height - 1)))


def _y_range(sl: Slice, step: StepMark | None) -> tuple[float, float]:
    """f's range on the slice, widened to the model (by at most half f's span) and the step."""
    lo, hi = float(np.min(sl.values)), float(np.max(sl.values))
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    mlo = max(float(np.min(sl.model)), lo - 0.5 * span)
    mhi = min(float(np.max(sl.model)), hi + 0.5 * span)
    lo, hi = min(lo, mlo), max(hi, mhi)
    if step is not None and step.inside:
        lo, hi = min(lo, step.value), max(hi, step.value)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def slice_plot(sl: Slice, f0: float, step: StepMark | None, radius: float,
               width: int = PLOT_WIDTH, height: int = PLOT_HEIGHT) -> list[Text]:
    """The character plot of one slice: value axis, canvas, t axis."""
    step = step if sl.name == PlaneDirection.GRAD else None
    lo, hi = _y_range(sl, step)
    cells: list[list[tuple[str, str] | None]] = [[None] * width for _ in range(height)]

    def put(col: int, row: int | None, kind: str) -> None:
        if row is None or not 0 <= col < width:
            return
        cur = cells[row][col]
        if cur is None or PRIORITY[cur[0]] <= PRIORITY[kind]:
            cells[row][col] = (kind, GLYPH[kind])

    def col_of(t: float) -> int:
        return int(round((t + radius) / (2 * radius) * (width - 1)))

    tc = np.linspace(-radius, radius, width)
    level = _row(f0, lo, hi, height)
    for c in range(width):
        put(c, level, "level")
    for kind, ys in (("model", sl.model), ("f", sl.values)):
        rows = [_row(float(v), lo, hi, height) for v in np.interp(tc, sl.t, ys)]
        for c, r in enumerate(rows):
            put(c, r, kind)
            prev = rows[c - 1] if c else None
            if kind == "f" and r is not None and prev is not None and abs(r - prev) > 1:
                for rr in range(min(r, prev) + 1, max(r, prev)):  # a steep wall, joined
                    put(c if abs(rr - r) < abs(rr - prev) else c - 1, rr, kind)
    put(col_of(0.0), _row(f0, lo, hi, height), "point")
    if step is not None and step.inside:
        put(col_of(step.t), _row(step.value, lo, hi, height), "step")

    step_style = "bold red" if step is not None and step.increases_loss else "bold green"
    lines: list[Text] = []
    for r in range(height):
        label = num(hi) if r == 0 else num(lo) if r == height - 1 else (
            num(f0) if r == level else "")
        line = Text(f"{label:>9} " + ("┤" if label else "│"))
        for cell in cells[r]:
            if cell is None:
                line.append(" ")
            else:
                kind, glyph = cell
                line.append(glyph, style=step_style if kind == "step" else STYLE[kind])
        lines.append(line)
    lines.append(Text(" " * 10 + "└" + "─" * width))
    left, right = num(-radius), num(radius)
    mid = (width - 1) // 2
    axis = f"{left:<{mid}}0".ljust(width - len(right)) + right
    lines.append(Text(" " * 11 + axis[:width] + "  t"))
    return lines


def _cell_index(count: int, size: int) -> np.ndarray:
    return np.round(np.linspace(0, size - 1, count)).astype(int)


def shade_maps(grid: Grid, radius: float, step: StepMark | None,
               width: int = MAP_WIDTH) -> list[Text]:
    """f and the model on the plane as two shade maps with shared levels."""
    height = width // 2 + 1  # terminal cells are about twice as tall as wide
    cols = _cell_index(width, grid.a.size)
    rows = _cell_index(height, grid.b.size)[::-1]  # top row: b = +r
    # Levels compare values snapped to 1e-9 of the grid's range: symmetric grid points
    # have equal values in exact arithmetic, and the last bits XLA's kernels give them
    # differ between processors; without the snap a tie would shade either way.
    low, span = float(np.min(grid.values)), float(np.ptp(grid.values)) or 1.0

    def snap(v: np.ndarray | float) -> np.ndarray:
        return np.round((np.asarray(v) - low) / span, 9)

    edges = snap(np.quantile(grid.values, np.linspace(0.1, 0.9, 9)))

    def shade(v: float) -> tuple[str, str]:
        k = int(np.searchsorted(edges, snap(v), side="right"))
        return SHADES[k], SHADE_STYLES[k]

    def mark_cell(a: float, b: float) -> tuple[int, int] | None:
        if abs(a) > radius or abs(b) > radius:
            return None
        c = int(round((a + radius) / (2 * radius) * (width - 1)))
        r = int(round((radius - b) / (2 * radius) * (height - 1)))
        return r, c

    center = mark_cell(0.0, 0.0)
    target = mark_cell(*grid.step) if grid.step is not None else None
    step_style = "bold red" if step is not None and step.increases_loss else "bold green"
    lines = [Text(f"  {'f':<{width}}   quadratic model", style="bold")]
    for i, r in enumerate(rows):
        line = Text("  ")
        for which, data in enumerate((grid.values, grid.model)):
            if which:
                line.append("   ")
            for j, c in enumerate(cols):
                if (i, j) == center:
                    line.append(GLYPH["point"], style="bold")
                elif (i, j) == target:
                    line.append(GLYPH["step"], style=step_style)
                else:
                    ch, style = shade(float(data[r, c]))
                    line.append(ch, style=style)
        lines.append(line)
    lines.append(Text(
        f"  → a along {grid.labels[0]}, ↑ b along {grid.labels[1]}; "
        f"a, b in [{num(-radius)}, {num(radius)}]"
    ))
    lines.append(Text(
        f"  shades '{SHADES}': tenths of f on the grid, low to high", style="dim"
    ))
    return lines


def headline(ls: Landscape) -> str:
    """What the slices show, in one paragraph."""
    a = ls.analysis
    step = ls.step
    by_name = {s.name: s for s in ls.slices}
    if step is not None:
        text = (f"The gradient step with lr = {num(step.lr)} moves t = {num(step.t)} along "
                f"−∇f and {'increases' if step.increases_loss else 'decreases'} f by "
                f"{num(abs(step.change))} (model: "
                f"{'a rise' if step.predicted_change > 0 else 'a fall'} of "
                f"{num(abs(step.predicted_change))}).")
        if step.best_t is not None and step.max_t is not None:
            text += (f" Along −∇f the model is lowest at t = {num(step.best_t)} and back at "
                     f"f(x) at t = {num(step.max_t)}")
            text += (": the step overshoots the valley and lands up the far wall."
                     if step.t > step.max_t else
                     ": the step goes past the bottom but stays in the valley."
                     if step.t > step.best_t else ": the step stays on the near side.")
        return text
    if a.classification == Classification.SADDLE_POINT and PlaneDirection.MIN in by_name:
        s = by_name[PlaneDirection.MIN]
        return (f"Saddle point: along the eigenvector of λmin = {num(s.eigenvalue)} f falls on "
                f"both sides (model ½λt² < 0), lowest {num(s.lowest_value)} at "
                f"t = {num(s.lowest_t)}: the escape direction. Along λmax's it rises.")
    if a.classification == Classification.LOCAL_MINIMUM:
        return (f"Local minimum: f rises along every slice, ½λt² near x: for the same step "
                f"{num(ls.lambda_max / ls.lambda_min)}× faster along λmax's eigenvector than "
                "along λmin's (the condition number).")
    if a.classification == Classification.UNDETERMINED:
        why = ("f is not smooth at x (a kink: the quadratic model is only one side's)"
               if a.smooth is False else
               "the matrix-free extremes did not converge (raise --max-steps)")
        return (f"Undetermined: {why}; compare f (*) with the quadratic model (·) along each "
                "slice.")
    return (f"{ls.verdict.capitalize()}: compare f (*) with its "
            "quadratic model (·) along each slice.")


def render_landscape(ls: Landscape, console: Console) -> None:
    """Everything in 80 columns: headline, one plot per slice, the plane maps."""
    console.print(Text(
        f"{ls.objective}: {ls.verdict} "
        f"(n = {ls.n}, method {ls.method}, {ls.dtype})", style="bold"))
    console.print(Text(
        f"f(x) = {num(ls.value)}, ‖∇f‖ = {num(ls.gradient_norm)}, "
        f"λmin = {num(ls.lambda_min)}, λmax = {num(ls.lambda_max)}"))
    console.print(Text(headline(ls)))
    console.print(Text(f"radius {num(ls.radius)}: {ls.radius_reason}", style="dim"))
    legend = Text("legend: ")
    for kind, what in (("f", "f"), ("model", "quadratic model"), ("level", "f(x)"),
                       ("point", "x")):
        legend.append(GLYPH[kind], style=STYLE[kind])
        legend.append(f" {what}   ")
    if ls.step is not None:
        legend.append(GLYPH["step"], style="bold red" if ls.step.increases_loss else "bold green")
        legend.append(" x − lr·∇f")
    console.print(legend)
    for sl in ls.slices:
        console.print()
        what = f"λ = {num(sl.eigenvalue)}" if sl.eigenvalue is not None else (
            f"dᵀHd = {num(sl.curvature)}")
        console.print(Text(f"f(x + t·d), d = {sl.label}  ({what}, slope gᵀd = {num(sl.slope)})",
                           style="bold"))
        for line in slice_plot(sl, ls.value, ls.step, ls.radius):
            console.print(line, no_wrap=True, overflow="crop")
    if ls.grid is not None:
        console.print()
        console.print(Text(f"The plane of {ls.grid.labels[0]} and {ls.grid.labels[1]}",
                           style="bold"))
        for line in shade_maps(ls.grid, ls.radius, ls.step):
            console.print(line, no_wrap=True, overflow="crop")
    for note in ls.notes:
        console.print(Text(f"note: {note}", style="dim"))
