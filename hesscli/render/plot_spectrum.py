"""The spectrum figure: eigenvalue histogram (dense) or SLQ density (matrix-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hesscli.analysis.spectrum_compare import Comparison
from hesscli.analysis.spectrum_report import SpectrumReport
from hesscli.render.plotting import new_figure, save_figure


def plot_spectrum(r: SpectrumReport, path: Path) -> None:
    """Write :func:`spectrum_figure` to ``path``."""
    save_figure(spectrum_figure(r), path)


def plot_comparison(c: Comparison, path: Path) -> None:
    """Write :func:`comparison_figure` to ``path``."""
    save_figure(comparison_figure(c), path)


def spectrum_figure(r: SpectrumReport) -> Any:
    """The figure: density on a log axis (the bulk near zero dwarfs the outliers),
    computed extremes as vertical lines, and the zero tolerance band shaded."""
    fig = new_figure(figsize=(7, 4))
    ax = fig.subplots()
    sp = r.spectrum
    if r.density is not None:
        d = r.density
        ax.semilogy(d.grid, np.maximum(d.density, 1e-12), color="C0",
                    label=f"SLQ density ({d.probes} probes × {d.steps} steps, σ = {d.sigma:.3g})")
        ax.set_ylim(bottom=max(1e-8, float(d.density.max()) * 1e-8))
        ax.set_ylabel("density (fraction of eigenvalues per unit λ)")
    else:
        h = r.histogram
        ax.hist(h.edges[:-1], bins=h.edges, weights=h.counts, color="C0", alpha=0.7,
                label="eigenvalues" if sp.complete else "computed extremes")
        ax.set_ylabel("count")
    if not sp.complete:
        for i, value in enumerate(sp.eigenvalues):
            ax.axvline(float(value), color="C3", lw=0.8, alpha=0.7,
                       label="extreme eigenvalues (Lanczos)" if i == 0 else None)
    ax.axvspan(-r.tolerance, r.tolerance, color="0.8", alpha=0.5, label="|λ| ≤ tol")
    ax.set_xlabel("eigenvalue λ")
    ax.set_title(f"{r.title} spectrum of {r.objective} (n = {r.n}, {r.path})")
    ax.legend(fontsize=8)
    return fig


def comparison_figure(c: Comparison) -> Any:
    """One figure for ``spectrum --curvature A,B``: each matrix's density (SLQ) or
    eigenvalue histogram (dense) as a line, the difference dashed, the zero band."""
    fig = new_figure(figsize=(7, 4))
    ax = fig.subplots()
    reports = [(r.title, r, "-") for r in c.reports]
    if c.difference is not None and c.difference_of is not None:
        from hesscli.curvature.operators import TITLES

        a, b = c.difference_of
        reports.append((f"{TITLES.get(a, a)} − {TITLES.get(b, b)}", c.difference, "--"))
    log_axis = False
    complete = [r.spectrum.eigenvalues for _, r, _ in reports if r.spectrum.complete]
    if complete:  # one set of bins for every matrix, so the bars compare
        lo = min(float(lam.min()) for lam in complete)
        hi = max(float(lam.max()) for lam in complete)
        pad = max(hi - lo, 1e-12) * 0.02
        edges = np.linspace(lo - pad, hi + pad, 41)
    for i, (label, r, style) in enumerate(reports):
        if r.density is not None:
            d = r.density
            ax.plot(d.grid, np.maximum(d.density, 1e-12), style, color=f"C{i}", label=label)
            log_axis = True
        elif r.spectrum.complete:
            counts, _ = np.histogram(r.spectrum.eigenvalues, bins=edges)
            ax.stairs(counts, edges, linestyle=style, color=f"C{i}", label=label)
        else:
            for j, value in enumerate(r.spectrum.eigenvalues):
                ax.axvline(float(value), linestyle=style, color=f"C{i}", lw=0.8,
                           label=f"{label} (extremes)" if j == 0 else None)
    if log_axis:
        ax.set_yscale("log")
        ax.set_ylabel("density (fraction of eigenvalues per unit λ)")
    else:
        ax.set_ylabel("count")
    tol = max(r.tolerance for _, r, _ in reports)
    ax.axvspan(-tol, tol, color="0.85", alpha=0.5, label="|λ| ≤ tol")
    ax.set_xlabel("eigenvalue λ")
    first = c.reports[0]
    ax.set_title(f"Curvature spectra of {first.objective} (n = {first.n}, {first.path})")
    ax.legend(fontsize=8)
    return fig
