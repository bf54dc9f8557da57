"""``hesscli convexity``: a sampled convexity test over a region, with a witness."""

from __future__ import annotations

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
from hesscli.errors import InputError

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
)


def parse_box(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"--box {text!r}: expected LO,HI, e.g. --box -3,3") from None
    return lo, hi


@click.command("convexity")
@convexity_options
def command(
    objective: str, boxes: tuple[str, ...], around: str | None, radius: float, samples: int,
    hessian_points: int, rtol: float | None, atol: float, params: tuple[str, ...],
    method: str, dtype: str, seed: int, fmt: str, expects: tuple[str, ...],
) -> None:
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
    from hesscli.analysis import convexity as cx
    from hesscli.analysis.convexity import ball, box, convexity, hessian_backend
    from hesscli.cli import session

    if boxes and around is not None:
        raise InputError("give either --box or --around, not both")
    if samples < 0 or hessian_points < 0:
        raise InputError("--samples and --hessian-points must be ≥ 0")
    session.nonnegative("--rtol", rtol)
    session.nonnegative("--atol", atol)
    bounds = [parse_box(b) for b in boxes]
    try:
        obj = session.load(objective, around, params, seed=seed, dtype=dtype, method=method)
    except InputError as exc:
        if not bounds or "defines no default point" not in str(exc):
            raise
        if len(bounds) == 1:
            raise InputError(
                f"{objective}: --box given once needs the number of parameters, and the file "
                "defines no default point (x0 or init); give --box once per coordinate or "
                "use --around POINT"
            ) from None
        centers = ",".join(repr(0.5 * (lo + hi)) for lo, hi in bounds)
        obj = session.load(objective, centers, params, seed=seed, dtype=dtype, method=method)
    from hesscli.budget import convexity_bytes, require

    require(convexity_bytes(obj.n, samples, hessian_points, cx.DENSE_LIMIT),
            f"convexity at n = {obj.n} with --samples {samples} --hessian-points "
            f"{hessian_points}", "ask for fewer --samples or --hessian-points (0 skips the "
            "eigenvalue test)")
    region = box(bounds, obj.n) if bounds else ball(obj.x, radius)
    notes: tuple[str, ...] = ()
    if not bounds and around is None:
        notes = (f"region: ball of radius {radius:g} around the default point "
                 "(give --box or --around to choose)",)
    curvature, skipped, backend_notes = hessian_backend(obj, method, session.curvature_for)
    spectrum_fn = None
    if curvature is not None and skipped is None and hessian_points and obj.n > cx.DENSE_LIMIT:
        from hesscli.spectra.matrix_free import spectrum_function

        spectrum_fn = spectrum_function(seed=seed)
        notes += (f"eigenvalue test matrix-free: n = {obj.n} > {cx.DENSE_LIMIT}, λmin at each "
                  "point by Lanczos on Hessian-vector products (residuals widen the tolerance)",)
    result = convexity(
        obj, curvature, region, pairs=samples, hessian_points=hessian_points, seed=seed,
        rtol=rtol, atol=atol, hessian_skipped=skipped, spectrum_fn=spectrum_fn,
        notes=notes + backend_notes,
    )
    from hesscli.expect import expectations
    from hesscli.render.convexity_view import convexity_document

    doc = convexity_document(
        result, session.meta(seed, dtype, method=method, boxes=list(boxes), around=around,
                             radius=radius, samples=samples, hessian_points=hessian_points,
                             rtol=rtol, atol=atol, params=list(params)),
        with_points=obj.n <= 1000,
    )
    pending = expectations(expects, doc)
    if fmt == "json":
        from hesscli.render.jsonout import dump

        dump(doc)
    else:
        from hesscli.render.console import stdout_console
        from hesscli.render.convexity_view import render_convexity

        render_convexity(result, obj.layout, stdout_console())
    pending.enforce()
