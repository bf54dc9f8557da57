"""``hesscli analyze``: the verdict at a point, in words and numbers."""

from __future__ import annotations

from pathlib import Path

import click

from hesscli.cli.options import objective_options
from hesscli.cli.path_options import path_options


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
@path_options(default_k=1)
def command(
    objective: str, at: str | None, params: tuple[str, ...], method: str, dtype: str,
    seed: int, fmt: str, lr: float, gtol: float | None, tol: float | None,
    escape_step: float, save_escape: Path | None, path: str | None, k: int,
    eigensolver: str, rtol: float | None, max_steps: int | None, chunk_size: int | None,
) -> None:
    """Gradient, Hessian spectrum, definiteness, classification, conditioning,
    step prediction and escape direction at a point.

    \b
    Examples:
      hesscli analyze rosenbrock --at 1,1
      hesscli analyze saddle --at zeros
      hesscli analyze ravine --at random --seed 0 --lr 0.05
      hesscli analyze my_loss.py:other_fn --at params.npz --format json
      hesscli analyze mlp -p width=2048          # 10^5 parameters: matrix-free
      hesscli analyze mlp -p width=64 --matrix-free --k 5
    """
    from hesscli.analysis.analyze import analyze
    from hesscli.cli.session import chunked, curvature_for, load, meta, positive, spectrum_for
    from hesscli.errors import InputError

    positive("--lr", lr)
    positive("--escape-step", escape_step)
    obj = load(objective, at, params, seed=seed, dtype=dtype, method=method)
    obj, chunk_notes = chunked(obj, chunk_size)
    curvature, notes = curvature_for(obj, method)
    spectrum, _, path_notes = spectrum_for(
        obj, curvature, path=path or "auto", k=k, seed=seed, solver=eigensolver, rtol=rtol,
        max_steps=max_steps,
    )
    result = analyze(obj, curvature, lr=lr, gtol=gtol, tol=tol, escape_distance=escape_step,
                     spectrum=spectrum, notes=notes + chunk_notes + path_notes)
    if save_escape is not None:
        if result.escape is None:
            raise InputError(
                f"--save-escape {save_escape}: there is no escape direction here "
                f"(no eigenvalue below −tol; classification {result.classification})"
            )
        from hesscli.points import write_point

        write_point(save_escape, obj.unravel(result.escape.direction))
    if fmt == "json":
        from hesscli.render.analyze_view import analysis_document
        from hesscli.render.jsonout import dump

        dump(analysis_document(
            result,
            meta(seed, dtype, method=method, lr=lr, gtol=gtol, tol=tol, at=at,
                 params=list(params), escape_step=escape_step, path=path or "auto", k=k,
                 eigensolver=eigensolver, rtol=rtol, max_steps=max_steps,
                 chunk_size=chunk_size),
            with_direction=obj.n <= 1000,
        ))
        return
    from hesscli.render.analyze_view import render_analysis
    from hesscli.render.console import stdout_console

    render_analysis(result, stdout_console())
