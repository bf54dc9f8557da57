"""``hesscli analyze``: the verdict at a point, in words and numbers."""

from __future__ import annotations

from pathlib import Path

import click

from hesscli.cli.fd_options import fd_accuracy_option, verify_option
from hesscli.cli.options import (
    devices_options,
    expect_option,
    objective_options,
    output_file,
)
from hesscli.cli.path_options import path_options


@click.command("analyze")
@objective_options
@devices_options
@click.option("--lr", type=float, default=0.01, show_default=True,
              help="Learning rate for the step prediction and the 2/λmax stability check.")
@click.option("--gtol", type=float, default=None,
              help="Gradient norm below which the point counts as critical "
              "(default √ε·|f|/L + ε·‖H‖·L with L = max(‖x‖,1)).")
@click.option("--tol", type=float, default=None,
              help="Eigenvalues with |λ| ≤ tol count as zero (default derived from dtype, "
              "n and the Hessian's scale).")
@click.option("--escape-step", type=float, default=0.1, show_default=True,
              help="Distance moved along the escape direction when reporting its effect.")
@click.option("--save-escape", type=click.Path(dir_okay=False, path_type=Path), default=None,
              callback=output_file("--save-escape"),
              help="Write the escape direction (same pytree structure) to .npz/.json/.npy, "
              ".msgpack (Flax), .safetensors, .eqx (Equinox) or a folder (orbax).")
@expect_option
@fd_accuracy_option
@verify_option
@path_options(default_k=1)
def command(
    objective: str, at: str | None, params: tuple[str, ...], method: str, dtype: str,
    seed: int, fmt: str, devices: str, coordinator: str | None, num_processes: int | None,
    process_id: int | None, lr: float, gtol: float | None, tol: float | None,
    escape_step: float, save_escape: Path | None, expects: tuple[str, ...],
    path: str | None, k: int, eigensolver: str, rtol: float | None, max_steps: int | None,
    chunk_size: int | None, fd_accuracy: str = "normal", verify: bool = False,
    dense_budget: str | None = None,
) -> None:
    """Gradient, Hessian spectrum, definiteness, classification, conditioning,
    step prediction and escape direction at a point.

    \b
    Examples:
      hesscli analyze rosenbrock --at 1,1
      hesscli analyze saddle --at zeros
      hesscli analyze ravine --at random --seed 0 --lr 0.05
      hesscli analyze my_loss.py:other_fn --at params.npz --format json
      hesscli analyze my_numpy_loss.py              # black box: finite differences
      hesscli analyze rosenbrock --at 0,0 --method fd --fd-accuracy high
      hesscli analyze mlp --verify
      hesscli analyze mlp --devices all             # data sharded over every device
      hesscli analyze mlp -p width=2048             # 10^5 parameters: matrix-free
      hesscli analyze mlp -p width=64 --matrix-free --k 5
    """
    from hesscli import api
    from hesscli.cli.session import emit, primary, start
    from hesscli.errors import InputError

    if save_escape is not None:
        from hesscli.objective.checkpoints import check_writer

        check_writer(save_escape, "--save-escape")  # its package, before any work
    start(devices, coordinator, num_processes, process_id)
    res = api.analyze(
        objective, at, params=params, method=method, dtype=dtype, seed=seed, lr=lr, gtol=gtol,
        tol=tol, escape_step=escape_step, fd_accuracy=fd_accuracy, verify=verify,
        devices=devices, path=path, k=k, eigensolver=eigensolver, rtol=rtol,
        max_steps=max_steps, chunk_size=chunk_size, dense_budget=dense_budget,
    )
    result, parallel = res.value, res.parallel
    if save_escape is not None:
        if result.escape is None:
            raise InputError(
                f"--save-escape {save_escape}: there is no escape direction here "
                f"(no eigenvalue below −tol; classification {result.classification})"
            )
        from hesscli.objective.points import write_point

        if primary():  # only process 0 writes files
            direction = result.escape.direction
            write_point(save_escape, res.objective.unravel(direction),
                        res.objective.params_of(direction))
    from hesscli.expect import expectations

    doc = res.document()
    pending = expectations(expects, doc)
    from hesscli.render.analyze_view import render_analysis

    rows = [("devices", parallel.describe())] if parallel.sharded else []
    emit(doc, fmt, lambda console: render_analysis(result, console, rows=rows))
    if result.verification is not None and result.verification.passed is False:
        from hesscli.errors import CheckFailed

        raise CheckFailed("--verify: the exact derivatives disagree with finite differences "
                          "(see the report); run 'hesscli gradcheck' for the entries")
    pending.enforce()
