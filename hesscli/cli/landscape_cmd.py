"""``hesscli landscape``: f and its quadratic model around a point, as slices and a plane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hesscli.cli.options import curvature_option, expect_option, objective_options
from hesscli.cli.path_options import dense_budget_option


@click.command("landscape")
@objective_options
@click.option("--lr", type=float, default=0.01, show_default=True,
              help="Learning rate of the gradient step drawn on the slices.")
@click.option("--radius", type=float, default=None,
              help="Half-width of the slices and the plane (default: from the curvature, "
              "so that the model's bowl and the step are in view).")
@click.option("--plane", default=None, metavar="D1,D2",
              help="Directions of the 2-D grid, two of grad, max, min (default: the two "
              "most informative here).")
@click.option("--points", type=int, default=101, show_default=True,
              help="Evaluations per slice.")
@click.option("--grid", "grid", type=int, default=41, show_default=True,
              help="Evaluations per side of the plane's grid.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the slices and the contour to FILE (.png or .svg).")
@dense_budget_option
@curvature_option()
@expect_option
def command(**_options: Any) -> None:
    """The objective along the gradient and the eigenvectors of λmax and λmin around
    a point (1-D slices), and on the plane of two of them, with the quadratic model
    f + tgᵀd + ½t²dᵀHd overlaid and the gradient step for --lr marked.

    \b
    Examples:
      hesscli landscape ravine --at 1,1 --lr 0.05
      hesscli landscape saddle --at zeros
      hesscli landscape rosenbrock --at 1,1 --plane max,min --plot valley.png
      hesscli landscape mlp --format json
    """
    from hesscli import api
    from hesscli.cli.context import App
    from hesscli.render.views import show

    app = App.current()
    plot = app.params["plot"]
    if plot is not None:
        from hesscli.render.plotting import check_plot_path, pyplot

        check_plot_path(plot)
        pyplot()  # fail early when matplotlib is missing
    res = app.call(api.landscape, cli_only=("plot",))
    pending = app.report(res, lambda console: show(res, console))
    if plot is not None:
        from hesscli.render.plot_landscape import plot_landscape

        plot_landscape(res.output, plot)
        click.echo(f"wrote {plot}", err=True)
    pending.enforce()
