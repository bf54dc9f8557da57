"""The ``convexity`` report: the verdict and its witness, then what was sampled."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hesscli.analysis.convexity import NOT_CONVEX, Box, Convexity, Witness
from hesscli.objective.layout import Layout
from hesscli.render.numbers import num
from hesscli.vocab import WitnessKind

SHOW = 6  # coordinates of a point shown in the table


def region_text(c: Convexity) -> str:
    r = c.region
    if isinstance(r, Box):
        if np.all(r.lo == r.lo[0]) and np.all(r.hi == r.hi[0]):
            return f"box [{num(float(r.lo[0]))}, {num(float(r.hi[0]))}] in all {c.n} coordinates"
        return f"box with per-coordinate bounds ({c.n} coordinates)"
    return f"ball of radius {num(r.radius)} around ({point_text(r.center)})"


def point_text(x: np.ndarray | None) -> str:
    if x is None:
        return "—"
    shown = ", ".join(num(float(v), 6) for v in x[:SHOW])
    return shown + (f", … ({x.size - SHOW} more)" if x.size > SHOW else "")


def witness_table(w: Witness, layout: Layout) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False,
              title="Witness", title_justify="left")
    t.add_column(style="dim")
    t.add_column()
    if w.kind == WitnessKind.MIDPOINT:
        t.add_row("x", point_text(w.x))
        t.add_row("y", point_text(w.y))
        t.add_row("m = (x+y)/2", point_text(w.midpoint))
        t.add_row("f(x), f(y)", f"{num(w.f_x, 10)}, {num(w.f_y, 10)}")
        t.add_row("violated", "f(m) ≤ (f(x)+f(y))/2")
        t.add_row("f(m)", num(w.lhs, 10))
        t.add_row("(f(x)+f(y))/2", num(w.rhs, 10))
        t.add_row("margin", f"f(m) − (f(x)+f(y))/2 = {num(w.margin)} > tolerance "
                  f"{num(w.tolerance)}")
    else:
        t.add_row("point", point_text(w.point))
        t.add_row("eigenvalue", f"λmin = {num(w.eigenvalue)} < −tol = {num(-w.tolerance)}")
        t.add_row("direction", ", ".join(f"{n} ({num(v, 3)})" for n, v in w.top_parameters))
    return t


def render_convexity(c: Convexity, layout: Layout, console: Console) -> None:
    bad = c.verdict == NOT_CONVEX
    console.print(Panel(Text(c.statement), title=c.verdict.replace("_", " "),
                        title_align="left", border_style="red" if bad else "green"))
    if c.witness is not None:
        console.print(witness_table(c.witness, layout))
        console.print()
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="dim")
    t.add_column()
    t.add_row("objective", f"{c.objective}  (n = {c.n}, {c.dtype})")
    t.add_row("region", region_text(c))
    m = c.midpoint
    t.add_row("midpoint test", f"{m.violations} violation(s) in {m.pairs} pairs; "
              f"largest f(m) − (f(x)+f(y))/2 = {num(m.worst_margin)} "
              f"(tolerance {num(m.rtol)}·|f| + {num(m.atol)})")
    h = c.hessian
    if h.skipped:
        t.add_row("eigenvalue test", h.skipped)
    else:
        t.add_row("eigenvalue test", f"{h.violations} violation(s) at {h.points} points; "
                  f"smallest λmin = {num(h.smallest_eigenvalue)} (tol {num(h.tolerance)})"
                  + (f"; λmin not converged at {h.unconverged} point(s): there it is an upper "
                     "bound only (raise --max-steps)" if h.unconverged else ""))
    t.add_row("seed", str(c.seed))
    console.print(t)
    for note in c.notes:
        if note == h.skipped:
            continue  # already in the table
        console.print(Text(f"note: {note}", style="dim"))
