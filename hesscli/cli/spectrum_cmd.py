"""``hesscli spectrum``: eigenvalues (all, or the extremes), density, trace, plot."""

from __future__ import annotations

from pathlib import Path

import click

from hesscli.cli.options import devices_options, expect_option, objective_options
from hesscli.cli.path_options import path_options


@click.command("spectrum")
@objective_options
@devices_options
@path_options(default_k=3)
@click.option("--density", is_flag=True,
              help="Matrix-free: estimate the eigenvalue density by stochastic Lanczos "
              "quadrature.")
@click.option("--probes", type=click.IntRange(min=1), default=8, show_default=True,
              help="--density: random probe vectors (each a Lanczos run).")
@click.option("--steps", type=click.IntRange(min=2), default=80, show_default=True,
              help="--density: Lanczos steps per probe (quadrature nodes).")
@click.option("--sigma", type=float, default=None,
              help="--density: Gaussian smoothing width (default 1% of the spectrum's span).")
@click.option("--trace-probes", type=click.IntRange(min=2), default=30, show_default=True,
              help="Matrix-free: Rademacher probes for Hutchinson's trace estimate.")
@click.option("--bins", type=click.IntRange(min=2, max=40), default=12, show_default=True,
              help="Bins of the terminal histogram.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a figure of the spectrum (PNG or SVG by suffix; needs matplotlib).")
@expect_option
def command(
    objective: str, at: str | None, params: tuple[str, ...], method: str, dtype: str,
    seed: int, fmt: str, devices: str, coordinator: str | None, num_processes: int | None,
    process_id: int | None, path: str | None, k: int, eigensolver: str, rtol: float | None,
    max_steps: int | None, chunk_size: int | None, density: bool, probes: int, steps: int,
    sigma: float | None, trace_probes: int, bins: int, plot: Path | None,
    expects: tuple[str, ...] = (), dense_budget: str | None = None,
) -> None:
    """Hessian eigenvalues at a point: all of them when the dense Hessian fits, otherwise
    the --k largest and smallest (with residuals), Hutchinson's trace and, with
    --density, the spectral density by stochastic Lanczos quadrature.

    \b
    Examples:
      hesscli spectrum rosenbrock -p n=50
      hesscli spectrum mlp --density --plot spectrum.png
      hesscli spectrum mlp -p width=2048 --k 5 --format json
      hesscli spectrum saddle -p n=10000 --k 1
      hesscli spectrum mlp -p width=2048 --devices all   # data sharded over every device
      hesscli spectrum ravine --at 0,0 --expect 'lambda_max<=100'
    """
    from hesscli import api
    from hesscli.cli.session import emit, primary, start

    if plot is not None:
        from hesscli.render.plotting import check_plot_path

        check_plot_path(plot)
    start(devices, coordinator, num_processes, process_id)
    res = api.spectrum(
        objective, at, params=params, method=method, dtype=dtype, seed=seed, devices=devices,
        path=path, k=k, eigensolver=eigensolver, rtol=rtol, max_steps=max_steps,
        chunk_size=chunk_size, density=density, probes=probes, steps=steps, sigma=sigma,
        trace_probes=trace_probes, bins=bins, plot=str(plot) if plot else None,
        dense_budget=dense_budget,
    )
    report = res.value
    if plot is not None and primary():  # only process 0 writes files
        from hesscli.render.plot_spectrum import plot_spectrum

        plot_spectrum(report, plot)
    from hesscli.expect import expectations

    doc = res.document()
    pending = expectations(expects, doc)
    from hesscli.render.spectrum_view import render_spectrum

    emit(doc, fmt, lambda console: render_spectrum(report, console, plot))
    pending.enforce()
