"""``hesscli analyze``: the verdict at a point, in words and numbers."""

from __future__ import annotations

from pathlib import Path

import click

from hesscli.cli.options import expect_option, objective_options


@click.command("analyze")
@objective_options
@click.option("--lr", type=float, default=0.01, show_default=True,
              help="Learning rate for the step prediction and the 2/λmax stability check.")
@click.option("--gtol", type=float, default=None,
              help="Gradient norm below which the point counts as critical "
              "(default √ε·max(1,|f|)).")
@click.option("--tol", type=float, default=None,
              help="Eigenvalues with |λ| ≤ tol count as zero (default derived from dtype, "
              "n and the Hessian's scale).")
@click.option("--escape-step", type=float, default=0.1, show_default=True,
              help="Distance moved along the escape direction when reporting its effect.")
@click.option("--save-escape", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the escape direction (same pytree structure) to .npz/.json/.npy.")
@expect_option
def command(
    objective: str, at: str | None, params: tuple[str, ...], method: str, dtype: str,
    seed: int, fmt: str, lr: float, gtol: float | None, tol: float | None,
    escape_step: float, save_escape: Path | None, expects: tuple[str, ...],
) -> None:
    """Gradient, Hessian spectrum, definiteness, classification, conditioning,
    step prediction and escape direction at a point.

    \b
    Examples:
      hesscli analyze rosenbrock --at 1,1
      hesscli analyze saddle --at zeros
      hesscli analyze ravine --at random --seed 0 --lr 0.05
      hesscli analyze my_loss.py:other_fn --at params.npz --format json
    """
    from hesscli.analysis.analyze import analyze
    from hesscli.cli.session import curvature_for, load, meta, positive
    from hesscli.errors import InputError

    positive("--lr", lr)
    positive("--escape-step", escape_step)
    obj = load(objective, at, params, seed=seed, dtype=dtype, method=method)
    curvature, notes = curvature_for(obj, method)
    result = analyze(obj, curvature, lr=lr, gtol=gtol, tol=tol, escape_distance=escape_step,
                     notes=notes)
    if save_escape is not None:
        if result.escape is None:
            raise InputError(
                f"--save-escape {save_escape}: there is no escape direction here "
                f"(no eigenvalue below −tol; classification {result.classification})"
            )
        from hesscli.points import write_point

        write_point(save_escape, obj.unravel(result.escape.direction))
    from hesscli.expect import expectations
    from hesscli.render.analyze_view import analysis_document

    doc = analysis_document(
        result,
        meta(seed, dtype, method=method, lr=lr, gtol=gtol, tol=tol, at=at,
             params=list(params), escape_step=escape_step),
        with_direction=obj.n <= 1000,
    )
    pending = expectations(expects, doc)
    if fmt == "json":
        from hesscli.render.jsonout import dump

        dump(doc)
    else:
        from hesscli.render.analyze_view import render_analysis
        from hesscli.render.console import stdout_console

        render_analysis(result, stdout_console())
    pending.enforce()
