"""``hesscli convexity``: a sampled convexity test over a region, with a witness."""

from __future__ import annotations

from typing import Any

import click

from hesscli.cli.options import (
    compose,
    dtype_option,
    expect_option,
    format_option,
    method_option,
    objective_argument,
    param_option,
    seed_option,
)
from hesscli.cli.path_options import dense_budget_option

convexity_options = compose(
    objective_argument,
    click.option(
        "--box", "boxes", multiple=True, metavar="LO,HI",
        help="The region as a box: once for all coordinates (--box -3,3), or once per "
        "coordinate in flat order (--box -1,1 --box -2,2).",
    ),
    click.option(
        "--around", metavar="POINT", default=None,
        help="The region as a ball around POINT (same forms as --at) of radius --radius.",
    ),
    click.option("--radius", type=float, default=1.0, show_default=True,
                 help="Radius of the ball (with --around, or around the default point)."),
    click.option("--samples", type=int, default=1000, show_default=True,
                 help="Random pairs for the midpoint test (half spanning the region, half "
                 "short)."),
    click.option("--hessian-points", type=int, default=20, show_default=True,
                 help="Random points for the smallest-eigenvalue test (0 to skip it)."),
    click.option("--rtol", type=float, default=None,
                 help="Midpoint test: allowed violation relative to |f| (default 256·ε)."),
    click.option("--atol", type=float, default=0.0, show_default=True,
                 help="Midpoint test: allowed absolute violation (for objectives that cancel "
                 "large terms)."),
    param_option, method_option, dtype_option, seed_option, format_option, expect_option,
    dense_budget_option,
)


@click.command("convexity")
@convexity_options
def command(**_options: Any) -> None:
    """Is OBJECTIVE convex over a region? Tests Jensen's midpoint inequality on random
    pairs and the Hessian's smallest eigenvalue at random points.

    A violation beyond rounding proves 'not_convex' and is shown as a witness; none
    found is 'no_violation_found', which is evidence, not proof. The midpoint test
    needs only values, so it also catches non-smooth non-convexity (−|x|) where the
    Hessian is blind. Without --box or --around the region is the ball of radius
    --radius around the objective's default point.

    \b
    Examples:
      hesscli convexity svm --box -3,3 --samples 500 --seed 0
      hesscli convexity rosenbrock --box -2,2 --seed 0
      hesscli convexity mlp -p width=4 --around random --radius 0.5
      hesscli convexity my_loss.py --box -1,1 --box 0,2 --format json
    """
    from hesscli import api
    from hesscli.cli.context import App
    from hesscli.render.views import show

    app = App.current()
    res = app.call(api.convexity)
    app.report(res, lambda console: show(res, console)).enforce()
