"""``hesscli landscape``: f and its quadratic model around a point, as slices and a plane."""

from __future__ import annotations

from pathlib import Path

import click

from hesscli.cli.options import objective_options

PLANE_CHOICES = ("grad", "max", "min")


def parse_plane(value: str | None) -> tuple[str, str] | None:
    from hesscli.errors import InputError

    if value is None:
        return None
    parts = tuple(p.strip() for p in value.split(","))
    if len(parts) != 2 or any(p not in PLANE_CHOICES for p in parts) or parts[0] == parts[1]:
        raise InputError(
            f"--plane {value!r}: expected two different directions of grad, max, min "
            "separated by a comma, e.g. --plane grad,min"
        )
    return parts[0], parts[1]


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
@click.option("--grid", "grid_size", type=int, default=41, show_default=True,
              help="Evaluations per side of the plane's grid.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the slices and the contour to FILE (.png or .svg).")
def command(
    objective: str, at: str | None, params: tuple[str, ...], method: str, dtype: str,
    seed: int, fmt: str, lr: float, radius: float | None, plane: str | None, points: int,
    grid_size: int, plot: Path | None,
) -> None:
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
    from hesscli.analysis.landscape import landscape
    from hesscli.cli.session import curvature_for, load, meta, positive, spectrum_for
    from hesscli.errors import InputError

    positive("--lr", lr)
    if radius is not None:
        positive("--radius", radius)
    if points < 3 or grid_size < 3:
        raise InputError("--points and --grid must be at least 3")
    chosen = parse_plane(plane)
    if plot is not None:
        from hesscli.render.plotting import check_plot_path, pyplot

        check_plot_path(plot)
        pyplot()  # fail early when matplotlib is missing
    from hesscli.budget import landscape_bytes, require

    require(landscape_bytes(1, points, grid_size), f"landscape --points {points} --grid "
            f"{grid_size}", "ask for fewer points (the default --points 101 --grid 41 "
            "resolve a slice well)")
    obj = load(objective, at, params, seed=seed, dtype=dtype, method=method)
    require(landscape_bytes(obj.n, points, grid_size), f"landscape at n = {obj.n}",
            "ask for fewer points")
    curvature, notes = curvature_for(obj, method)
    # the dense path (None: analyze forms H) or, when H would not fit, the matrix-free
    # extremes: the slices need only λmax, λmin and their eigenvectors
    spectrum, _, path_notes = spectrum_for(obj, curvature, k=1, seed=seed)
    result = landscape(obj, curvature, lr=lr, radius=radius, plane=chosen, points=points,
                       grid=grid_size, spectrum=spectrum, notes=notes + path_notes)
    if fmt == "json":
        from hesscli.render.jsonout import dump
        from hesscli.render.landscape_view import landscape_document

        dump(landscape_document(
            result,
            meta(seed, dtype, method=method, lr=lr, radius=radius, plane=plane, points=points,
                 grid=grid_size, at=at, params=list(params)),
            with_direction=obj.n <= 1000,
        ))
    else:
        from hesscli.render.console import stdout_console
        from hesscli.render.landscape_view import render_landscape

        render_landscape(result, stdout_console())
    if plot is not None:
        from hesscli.render.plot_landscape import plot_landscape

        plot_landscape(result, plot)
        click.echo(f"wrote {plot}", err=True)
