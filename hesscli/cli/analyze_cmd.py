"""``hesscli analyze``: the verdict at a point, in words and numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hesscli.cli.fd_options import fd_accuracy_option, verify_option
from hesscli.cli.options import (
    curvature_option,
    devices_options,
    expect_option,
    objective_options,
    output_file,
)
from hesscli.cli.path_options import path_options
from hesscli.cli.stream_options import stream_options
from hesscli.vocab import CurvatureKind


@click.command("analyze")
@objective_options
@devices_options
@click.option("--lr", type=float, default=None,
              help="Learning rate for the step prediction and the 2/λmax stability check "
              "[default: 0.01], and for --preconditioner's threshold (default: a run log's "
              "own lr; a saved optimizer state holds none: without --lr its threshold is "
              "not compared).")
@click.option("--gtol", type=float, default=None,
              help="Gradient norm below which the point counts as critical "
              "(default 10·√n·ε·‖H‖·L + √ε·min|λ|·L with L = max(‖x‖,1); no |f| "
              "term, so an additive constant changes nothing).")
@click.option("--tol", type=float, default=None,
              help="Eigenvalues with |λ| ≤ tol count as zero (default derived from dtype, "
              "n and the Hessian's scale).")
@click.option("--escape-step", type=float, default=0.1, show_default=True,
              help="Distance moved along the escape direction when reporting its effect.")
@click.option("--save-escape", type=click.Path(dir_okay=False, path_type=Path), default=None,
              callback=output_file("--save-escape"),
              help="Write the escape direction (same pytree structure) to .npz/.json/.npy, "
              ".msgpack (Flax), .safetensors, .eqx (Equinox) or a folder (orbax).")
@click.option("--save-point", type=click.Path(dir_okay=False, path_type=Path), default=None,
              callback=output_file("--save-point"),
              help="Write the point analyzed (same pytree structure, as read by --at) in any "
              "of the --save-escape formats: converts a checkpoint, keeps a 'random' point.")
@click.option("--blocks", "blocks", is_flag=False, flag_value="leaf", default=None,
              metavar="[leaf|DEPTH|PREFIX,...]",
              help="Per parameter group: the diagonal Hessian block's λmin, λmax, trace, share "
              "of the trace and coupling to the rest, sharpest first. Groups: one per pytree "
              "leaf (default), leaves grouped by the first DEPTH path components, or by "
              "comma-separated prefixes such as layer1,layer2.")
@click.option("--null-space", "null_space", is_flag=True,
              help="The dimension of the zero eigenspace (exact when dense, an SLQ estimate "
              "with an error bar matrix-free) and where it lives: dead units, unused inputs, "
              "shift and scale symmetries.")
@click.option("--preconditioner", type=click.Path(), default=None,
              metavar="RUN.jsonl|STATE",
              help="Adam's preconditioned sharpness λmax(P⁻¹H) against (2 + 2β₁)/((1 − β₁)·lr), "
              "P from the last optimizer state of a 'train --optimizer adam --out RUN.jsonl' "
              "log (adam, adamw, nadam, amsgrad), or from an optax state a script saved "
              "(orbax directory, .msgpack, .npz, .safetensors; FILE::sub.tree picks a part): "
              "its count, mu and nu, bias-corrected.")
@click.option("--b1", type=float, default=None,
              help="β₁ for --preconditioner's threshold (default: the logged run's; for a "
              "saved state, optax.adam's 0.9 unless it holds injected hyperparameters).")
@click.option("--b2", type=float, default=None,
              help="β₂ of a saved --preconditioner state (its bias correction; default 0.999).")
@click.option("--eps", type=float, default=None,
              help="eps of a saved --preconditioner state (P = sqrt(ν̂) + eps; default 1e-8).")
@click.option("--weight-decay", type=float, default=None,
              help="A saved --preconditioner state is AdamW's with this decoupled weight decay.")
@click.option("--nesterov/--no-nesterov", default=None,
              help="A saved --preconditioner state is NAdam's (Nesterov momentum).")
@curvature_option(several="analyzes the first in full and reports every "
                  "matrix's ends, definiteness and (--blocks) blocks beside it, same settings.")
@expect_option
@fd_accuracy_option
@verify_option
@path_options(default_k=1)
@stream_options
def command(**_options: Any) -> None:
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
      hesscli analyze mlp -p width=2048 --ends max   # λmax only: pays for one end
      hesscli analyze mlp --blocks                  # which layer is sharpest
      hesscli analyze mlp --blocks 1                # grouped: hidden, head
      hesscli analyze mlp --null-space              # zero eigenvalues and their causes
      hesscli analyze classifier --curvature ggn    # Gauss–Newton JᵀH_ℓJ
      hesscli analyze classifier --curvature hessian,ggn --blocks   # side by side
      hesscli analyze mlp --at x.npz --preconditioner run.jsonl --lr 0.01  # Adam: λmax(P⁻¹H)
      hesscli analyze net.py --at ckpt::params --preconditioner ckpt::opt_state --lr 3e-4
      hesscli analyze mlp --batch-size 64 --batches 4   # data set in batches, streamed
    """
    from hesscli import api
    from hesscli.cli.context import App
    from hesscli.errors import InputError

    app = App.current()
    save_escape = app.params["save_escape"]
    save_point = app.params["save_point"]
    for option, target in (("--save-escape", save_escape), ("--save-point", save_point)):
        if target is not None:
            from hesscli.objective.checkpoints import check_writer

            check_writer(target, option)  # its package, before any work
    if save_escape is not None and save_point is not None and \
            Path(save_escape).resolve() == Path(save_point).resolve():
        raise InputError("--save-escape and --save-point name the same file; give two")
    kind = str(app.params.get("curvature_kind") or CurvatureKind.HESSIAN).split(",")[0].strip()
    if save_escape is not None and kind != CurvatureKind.HESSIAN:  # before any work
        raise InputError(f"--save-escape {save_escape}: escape directions come from the "
                         f"Hessian, and --curvature {kind} is not the Hessian; drop --curvature")
    app.start()
    if save_escape is not None:
        from hesscli.objective.points import FLAT_SUFFIXES, check_point_target

        if save_escape.suffix.lower() in FLAT_SUFFIXES:  # one array: is the point one?
            p = app.params
            obj = api.load(p["objective"], p["at"], p["params"], seed=p["seed"],
                           dtype=p["dtype"], method=p["method"])
            check_point_target(save_escape, obj.unravel(obj.x), obj.params_of(obj.x),
                               "--save-escape")
    from hesscli.cli.session import primary
    from hesscli.render.progress_view import progress_line

    with progress_line(app.params.get("progress") if primary() else False):
        res = app.call(api.analyze, cli_only=("save_escape", "save_point"))
    result = res.output
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
    if save_point is not None and primary():
        from hesscli.objective.points import write_point

        x = res.objective.x
        write_point(save_point, res.objective.unravel(x), res.objective.params_of(x))
    from hesscli.render.views import show

    pending = app.report(res, lambda console: show(res, console))
    if result.verification is not None and result.verification.passed is False:
        from hesscli.errors import CheckFailed

        raise CheckFailed("--verify: the exact derivatives disagree with finite differences "
                          "(see the report); run 'hesscli gradcheck' for the entries")
    pending.enforce()
