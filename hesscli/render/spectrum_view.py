"""The ``spectrum`` report: eigenvalues, residuals, trace, density, a terminal histogram."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hesscli.analysis.spectrum_compare import Comparison
from hesscli.analysis.spectrum_report import SpectrumReport
from hesscli.render.numbers import eigen_list, end_cell, num
from hesscli.vocab import CurvatureKind, Eigensolver, SpectrumPath, TraceMethod

BAR = 36  # characters of the longest histogram bar (the table fits in 80 columns)
LIST_ALL = 12  # list every eigenvalue in a table up to this many


def headline(r: SpectrumReport) -> str:
    sp = r.spectrum
    where = (
        f"all {r.n} eigenvalues ({'dense' if r.path == 'dense' else 'matrix-free'})"
        if sp.complete
        else f"the {r.extremes.k if r.extremes else '?'} smallest and largest of {r.n} "
        "eigenvalues (matrix-free)"
    )
    text = f"{r.title} spectrum, {where}: λmin = {num(sp.lambda_min)}, λmax = {num(sp.lambda_max)}."
    if r.trace_exact is not None:
        text += f" Trace = {num(r.trace_exact)}."
        if r.trace is not None:
            text += f" Estimated: {trace_text(r.trace)}."
    elif r.trace is not None:
        text += f" Trace ≈ {trace_text(r.trace)}."
    if r.trace is not None and r.trace.choice:
        text += f" {r.trace.choice[0].upper()}{r.trace.choice[1:]}."
    if r.density is not None:
        frac = r.density.fraction_below(-r.tolerance)
        text += f" About {num(100 * frac, 3)}% of the eigenvalues are negative (SLQ)."
    return text


def trace_text(tr: Any) -> str:
    """``12.3 ± 0.4 s.e. (95% in [11.4, 13.2]; Hutch++, 30 HVPs)``: the standard error, and
    the Student-t interval at the estimate's level (its degrees of freedom are in the JSON)."""
    name = {TraceMethod.HUTCHINSON: "Hutchinson",
            TraceMethod.HUTCH_PLUS_PLUS: "Hutch++"}.get(tr.estimator, tr.estimator)
    text = f"{num(tr.estimate)} ± {num(tr.standard_error)} s.e. ("
    if tr.interval is not None:
        lo, hi = tr.interval
        text += f"{num(100 * tr.confidence, 3)}% in [{num(lo)}, {num(hi)}]; "
    return text + f"{name}, {tr.hvps} HVPs)"


def eigen_table(r: SpectrumReport) -> Table:
    sp = r.spectrum
    t = Table(title="Eigenvalues" if sp.complete else "Extreme eigenvalues",
              title_justify="left", min_width=40)
    t.add_column("#", justify="right")
    t.add_column("λ", justify="right")
    if sp.residuals is not None:
        t.add_column("certified ± (‖Hv−λv‖)", justify="right")
    if sp.error_estimates is not None:
        t.add_column("estimated ± (Kato–Temple)", justify="right")
    if sp.residuals is not None:
        t.add_column("converged")
    lam = sp.eigenvalues
    for i, value in enumerate(lam):
        label = str(i + 1) if sp.complete else (
            f"min {i + 1}" if i < lam.size // 2 else f"max {lam.size - i}"
        )
        row = [label, num(float(value), 6)]
        if sp.residuals is not None:
            row.append(num(float(sp.residuals[i])))
        if sp.error_estimates is not None:
            row.append(num(float(sp.error_estimates[i])))
        if sp.residuals is not None and r.extremes is not None:
            row.append("yes" if bool(r.extremes.converged[i]) else "[bold red]NO[/]")
        t.add_row(*row)
    return t


def numbers_table(r: SpectrumReport) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="dim")
    t.add_column()
    sp = r.spectrum
    t.add_row("objective", f"{r.objective}  (n = {r.n}, method {r.method}, {r.dtype})")
    t.add_row("path", r.path_reason if r.path == SpectrumPath.MATRIX_FREE else
              f"dense ({r.path_reason})")
    if sp.complete and sp.eigenvalues.size > LIST_ALL:
        t.add_row("eigenvalues", eigen_list([float(v) for v in sp.eigenvalues]))
    t.add_row("inertia", f"{r.inertia.positive} positive, {r.inertia.negative} negative, "
              f"{r.inertia.zero} zero" + ("" if sp.complete else " (of those computed)"))
    t.add_row("tolerance", f"|λ| ≤ {num(r.tolerance)} counts as zero"
              + (f" (the HVP's rounding δ = {num(sp.bounds.rounding)}; residuals never widen "
                 "it)" if sp.bounds is not None else
                 f" (includes error band {num(sp.error)})" if sp.error else ""))
    ex = r.extremes
    if ex is not None:
        def hv(v: int | None) -> str:
            return "not converged" if v is None else str(v)

        label = {Eigensolver.LANCZOS: "Lanczos", Eigensolver.RESTARTED: "restarted Lanczos"}.get(
            ex.solver, "ARPACK")
        extra = (f"; basis ≤ {ex.basis_rows} vectors, {ex.restarts} restarts"
                 if ex.solver == Eigensolver.RESTARTED else "")
        t.add_row(label,
                  f"{ex.hvps} HVPs ({ex.steps} steps); to λmax end {hv(ex.hvps_max)}, "
                  f"to λmin end {hv(ex.hvps_min)}; seed {ex.seed}{extra}")
    if r.trace_exact is not None:
        t.add_row("trace", num(r.trace_exact))
    if r.trace is not None:
        t.add_row("trace estimate" if r.trace_exact is not None else "trace",
                  trace_text(r.trace))
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


def comparison_table(c: Comparison) -> Table:
    """One row per matrix and one for the difference: extremes, trace, inertia."""
    t = Table(title="Side by side", title_justify="left")
    for name, justify in (("matrix", "left"), ("λmin", "right"), ("λmax", "right"),
                          ("trace", "right"), ("negative", "right"), ("zero", "right")):
        t.add_column(name, justify=justify)
    density = any(r.density is not None for r in c.reports)
    if density:
        t.add_column("negative mass (SLQ)", justify="right")
    rows = [(r.title, r) for r in c.reports]
    if c.difference is not None and c.difference_of is not None:
        from hesscli.curvature.operators import TITLES

        a, b = c.difference_of
        rows.append((f"{TITLES.get(a, a)} − {TITLES.get(b, b)}", c.difference))
    for label, r in rows:
        sp = r.spectrum
        trace = (num(r.trace_exact) if r.trace_exact is not None else
                 f"{num(r.trace.estimate)} ± {num(r.trace.standard_error)} s.e."
                 if r.trace is not None else "—")
        suffix = "" if sp.complete else " (of computed)"
        # matrix-free ends as what is known (certified digits, or the proven bound)
        row = [label, end_cell(sp.lambda_min, sp.bounds, "min", 6),
               end_cell(sp.lambda_max, sp.bounds, "max", 6), trace,
               f"{r.inertia.negative}{suffix}", str(r.inertia.zero)]
        if density:
            row.append(f"{num(100 * r.density.fraction_below(-r.tolerance), 3)}%"
                       if r.density is not None else "—")
        t.add_row(*row)
    return t


def comparison_headline(c: Comparison) -> str:
    """The comparison in words: do the matrices agree, and what the difference holds."""
    first = c.reports[0]
    parts = [f"{len(c.reports)} curvature matrices of {first.objective} at the same point "
             f"(n = {first.n}, {first.path})."]
    d = c.difference
    if d is not None and c.description is not None:
        sp = d.spectrum
        parts.append(f"{c.description}: λ from {num(sp.lambda_min)} to {num(sp.lambda_max)}"
                     + (f", {d.inertia.negative} negative" if sp.complete else "") + ".")
        hess = next((r for r in c.reports if r.curvature == CurvatureKind.HESSIAN), None)
        if hess is not None and hess.inertia.negative and c.difference_of == (
                CurvatureKind.HESSIAN, CurvatureKind.GGN):
            count = hess.inertia.negative
            # matrix-free, the count is of the computed extremes only, not of the spectrum
            what = (f"{count} negative eigenvalue{'s' if count != 1 else ''}"
                    if hess.spectrum.complete else
                    f"negative eigenvalues ({count} among the computed extremes; the full "
                    "count is not known on this path)")
            ggn = next((r for r in c.reports if r.curvature == CurvatureKind.GGN), None)
            if ggn is not None and ggn.inertia.negative:
                # H_ℓ is not PSD here: the GGN has negative curvature of its own
                parts.append(f"The Hessian's {what} come from this residual and from the "
                             f"GGN's own negative eigenvalues ({ggn.inertia.negative} here: "
                             "the output loss is not convex in the outputs).")
            else:
                parts.append(f"The Hessian's {what} come from this residual: the GGN has "
                             "no negative eigenvalue here.")
    return " ".join(parts)


def render_comparison(c: Comparison, console: Console, plot: Path | None = None) -> None:
    """The side-by-side report: headline, table, then each matrix's notes."""
    border = "yellow" if any(r.inertia.negative for r in c.reports) else "green"
    console.print(Panel(Text(comparison_headline(c)), title="spectrum, side by side",
                        title_align="left", border_style=border))
    console.print(comparison_table(c))
    if plot is not None:
        console.print(Text(f"plot written to {plot}", style="dim"))
    seen: set[str] = set()
    reports = [*c.reports, *([c.difference] if c.difference is not None else [])]
    for r in reports:
        for note in r.notes:
            if note not in seen:
                seen.add(note)
                label = "" if note.startswith((r.title, f"the {r.title}")) else f"{r.title}: "
                console.print(Text(f"note: {label}{note}", style="dim"))
