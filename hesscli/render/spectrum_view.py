"""The ``spectrum`` report: eigenvalues, residuals, trace, density, a terminal histogram."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hesscli.analysis.spectrum_report import SpectrumReport
from hesscli.render.numbers import eigen_list, num

BAR = 36  # characters of the longest histogram bar (the table fits in 80 columns)
LIST_ALL = 12  # list every eigenvalue in a table up to this many


def headline(r: SpectrumReport) -> str:
    sp = r.spectrum
    where = (
        f"all {r.n} eigenvalues (dense)" if sp.complete
        else f"the {r.extremes.k if r.extremes else '?'} smallest and largest of {r.n} "
        "eigenvalues (matrix-free)"
    )
    text = f"Hessian spectrum, {where}: λmin = {num(sp.lambda_min)}, λmax = {num(sp.lambda_max)}."
    if r.trace_exact is not None:
        text += f" Trace = {num(r.trace_exact)}."
    elif r.trace is not None:
        text += (f" Trace ≈ {num(r.trace.estimate)} ± {num(r.trace.standard_error)} "
                 f"(Hutchinson, {r.trace.probes} probes).")
    if r.density is not None:
        frac = r.density.fraction_below(-r.tolerance)
        text += f" About {num(100 * frac, 3)}% of the eigenvalues are negative (SLQ)."
    return text


def eigen_table(r: SpectrumReport) -> Table:
    sp = r.spectrum
    t = Table(title="Eigenvalues" if sp.complete else "Extreme eigenvalues",
              title_justify="left", min_width=40)
    t.add_column("#", justify="right")
    t.add_column("λ", justify="right")
    if sp.residuals is not None:
        t.add_column("residual ‖Hv−λv‖", justify="right")
        t.add_column("converged")
    lam = sp.eigenvalues
    for i, value in enumerate(lam):
        label = str(i + 1) if sp.complete else (
            f"min {i + 1}" if i < lam.size // 2 else f"max {lam.size - i}"
        )
        row = [label, num(float(value), 6)]
        if sp.residuals is not None and r.extremes is not None:
            ok = bool(r.extremes.converged[i])
            row += [num(float(sp.residuals[i])),
                    "yes" if ok else "[bold red]NO[/]"]
        t.add_row(*row)
    return t


def numbers_table(r: SpectrumReport) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="dim")
    t.add_column()
    sp = r.spectrum
    t.add_row("objective", f"{r.objective}  (n = {r.n}, method {r.method}, {r.dtype})")
    t.add_row("path", r.path_reason if r.path == "matrix-free" else
              f"dense ({r.path_reason})")
    if sp.complete and sp.eigenvalues.size > LIST_ALL:
        t.add_row("eigenvalues", eigen_list([float(v) for v in sp.eigenvalues]))
    t.add_row("inertia", f"{r.inertia.positive} positive, {r.inertia.negative} negative, "
              f"{r.inertia.zero} zero" + ("" if sp.complete else " (of those computed)"))
    t.add_row("tolerance", f"|λ| ≤ {num(r.tolerance)} counts as zero"
              + (f" (includes residual band {num(sp.error)})" if sp.error else ""))
    ex = r.extremes
    if ex is not None:
        def hv(v: int | None) -> str:
            return "not converged" if v is None else str(v)

        t.add_row("Lanczos" if ex.solver == "lanczos" else "ARPACK",
                  f"{ex.hvps} HVPs ({ex.steps} steps); to λmax end {hv(ex.hvps_max)}, "
                  f"to λmin end {hv(ex.hvps_min)}; seed {ex.seed}")
    if r.trace is not None:
        t.add_row("trace", f"{num(r.trace.estimate)} ± {num(r.trace.standard_error)} "
                  f"(Hutchinson, {r.trace.probes} Rademacher probes)")
    elif r.trace_exact is not None:
        t.add_row("trace", num(r.trace_exact))
    d = r.density
    if d is not None:
        t.add_row("density", f"SLQ: {d.probes} probes × {d.steps} Lanczos steps, "
                  f"Gaussian smoothing σ = {num(d.sigma)}")
    return t


def histogram_table(r: SpectrumReport) -> Table:
    h = r.histogram
    title = ("Eigenvalue histogram" + (" (SLQ estimate of counts)" if h.estimated else "")
             + (" of the computed extremes only" if not h.estimated and not r.spectrum.complete
                else ""))
    t = Table(title=title, title_justify="left", box=None, pad_edge=False)
    t.add_column("λ from", justify="right")
    t.add_column("to", justify="right")
    t.add_column("count", justify="right")
    t.add_column("(bar ∝ log count)", no_wrap=True)
    top = math.log1p(float(np.max(h.counts))) if h.counts.size else 1.0
    for i, c in enumerate(h.counts):
        length = 0 if c <= 0 or top <= 0 else max(1, round(BAR * math.log1p(float(c)) / top))
        count = f"{c:.0f}" if not h.estimated else (f"≈{c:.0f}" if c >= 0.5 else
                                                     ("<1" if c > 0 else "0"))
        t.add_row(num(float(h.edges[i]), 3), num(float(h.edges[i + 1]), 3), count,
                  "█" * length)
    return t


def render_spectrum(r: SpectrumReport, console: Console, plot: Path | None = None) -> None:
    border = "yellow" if r.inertia.negative else "green"
    console.print(Panel(Text(headline(r)), title="spectrum", title_align="left",
                        border_style=border))
    console.print(numbers_table(r))
    if not r.spectrum.complete or r.spectrum.eigenvalues.size <= LIST_ALL:
        console.print()
        console.print(eigen_table(r))
    console.print()
    console.print(histogram_table(r))
    if plot is not None:
        console.print(Text(f"plot written to {plot}", style="dim"))
    for note in r.notes:
        console.print(Text(f"note: {note}", style="dim"))
