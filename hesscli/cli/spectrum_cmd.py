"""``hesscli spectrum``: eigenvalues (all, or the extremes), density, trace, plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hesscli.cli.options import (
    curvature_option,
    devices_options,
    expect_option,
    objective_options,
)
from hesscli.cli.path_options import path_options
from hesscli.cli.stream_options import stream_options
from hesscli.vocab import Estimator


@click.command("spectrum")
@objective_options
@devices_options
@path_options(default_k=3)
@stream_options
@click.option("--density", is_flag=True,
              help="Matrix-free: estimate the eigenvalue density by stochastic Lanczos "
              "quadrature.")
@click.option("--probes", type=click.IntRange(min=1), default=8, show_default=True,
              help="--density: random probe vectors (each a Lanczos run).")
@click.option("--steps", type=click.IntRange(min=2), default=80, show_default=True,
              help="--density: Lanczos steps per probe (quadrature nodes).")
@click.option("--sigma", type=float, default=None,
              help="--density: Gaussian smoothing width (default 1% of the spectrum's span).")
@click.option("--trace-probes", type=click.IntRange(min=0), default=30, show_default=True,
              help="HVPs spent on the stochastic trace estimate (Hutchinson: one per probe, "
              "at least 2; Hutch++: a third each for sketch, basis and residual probes; "
              "needs 3); 0: no trace estimate, the extremes alone.")
@click.option("--estimator", "estimator", type=click.Choice([e.value for e in (
              Estimator.AUTO, Estimator.HUTCHINSON, Estimator.HUTCH_PLUS_PLUS)]),
              default=Estimator.AUTO.value, show_default=True,
              help="Trace estimator; auto decides on the Hutch++ sketch's first HVPs (how "
              "much of the Hessian they capture, not the estimate's own noise), and says so.")
@click.option("--trace", "trace", is_flag=True,
              help="Also estimate the trace on the dense path, beside the exact one.")
@click.option("--bins", type=click.IntRange(min=2, max=40), default=12, show_default=True,
              help="Bins of the terminal histogram.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a figure of the spectrum (PNG or SVG by suffix; needs matplotlib).")
@curvature_option(several="reports each side by side with their difference.")
@expect_option
def command(**_options: Any) -> None:
    """Hessian eigenvalues at a point: all of them when the dense Hessian fits, otherwise
    the --k largest and smallest (with residuals), a trace estimate (Hutchinson or
    Hutch++) and, with
    --density, the spectral density by stochastic Lanczos quadrature.

    \b
    Examples:
      hesscli spectrum rosenbrock -p n=50
      hesscli spectrum mlp --density --plot spectrum.png
      hesscli spectrum mlp -p width=2048 --k 5 --format json
      hesscli spectrum saddle -p n=10000 --k 1
      hesscli spectrum mlp -p width=2048 --devices all   # data sharded over every device
      hesscli spectrum ravine --at 0,0 --expect 'lambda_max<=100'
      hesscli spectrum mlp --trace --estimator hutch++ --trace-probes 60
      hesscli spectrum classifier --curvature hessian,ggn   # side by side, and H − G
      hesscli spectrum mlp --batch-size 64 --trace         # over the data set, streamed
    """
    from hesscli import api
    from hesscli.cli.context import App
    from hesscli.cli.session import primary

    app = App.current()
    plot = app.params["plot"]
    if plot is not None:
        from hesscli.render.plotting import check_plot_path

        check_plot_path(plot)
    app.start()
    from hesscli.render.progress_view import progress_line

    with progress_line(app.params.get("progress") if primary() else False):
        res = app.call(api.spectrum)
    report = res.output
    from hesscli.analysis.spectrum_compare import Comparison

    several = isinstance(report, Comparison)  # --curvature A,B: side by side
    if plot is not None and primary():  # only process 0 writes files
        from hesscli.render.plot_spectrum import plot_comparison, plot_spectrum

        (plot_comparison if several else plot_spectrum)(report, plot)
    from hesscli.render.views import show

    app.report(res, lambda console: show(res, console, plot=plot)).enforce()
