"""``hesscli train``: optax optimizers, Ge et al.'s noisy gradient, curvature watched live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hesscli.cli.options import devices_options, expect_option, finite_float, objective_options
from hesscli.cli.path_options import dense_budget_option


@click.command("train")
@objective_options
@devices_options
@click.option("--optimizer", "optimizer", default="sgd", show_default=True, metavar="NAME",
              help="sgd, momentum, nesterov, adam, adamw, nadam, amsgrad, adamax, adabelief, "
              "radam, yogi, rmsprop, adagrad, adadelta, lion, lamb, novograd, sign_sgd (optax).")
@click.option("--lr", type=float, default=0.01, show_default=True, help="Learning rate.")
@click.option("--steps", type=int, default=None,
              help="Number of optimizer steps  [default: 1000, or --epochs worth].")
@click.option("--epochs", type=int, default=None,
              help="With --batch-size: train this many passes over the data instead of --steps.")
@click.option("--batch-size", type=int, default=None,
              help="Minibatch SGD on the file's data and loss(params, batch), reshuffled "
              "(seeded) every epoch. Default: full batch on the objective.")
@click.option("--momentum", type=finite_float, default=None, help="Momentum (sgd, momentum, "
              "nesterov, rmsprop, ...).")
@click.option("--nesterov/--no-nesterov", default=None, help="Nesterov momentum.")
@click.option("--b1", type=finite_float, default=None,
              help="First-moment decay (adam family, lion).")
@click.option("--b2", type=finite_float, default=None, help="Second-moment decay (adam family).")
@click.option("--eps", type=finite_float, default=None,
              help="Denominator epsilon (adaptive methods).")
@click.option("--weight-decay", type=finite_float, default=None,
              help="Weight decay (adamw, lamb, ...).")
@click.option("--decay", type=finite_float, default=None, help="Averaging decay (rmsprop).")
@click.option("--opt", "opt_extra", multiple=True, metavar="KEY=VALUE",
              help="Any other option of the optax optimizer (number or true/false); repeatable.")
@click.option("--noisy", is_flag=True,
              help="Add Ge et al.'s noise: g + r·ν with ν uniform on the unit sphere.")
@click.option("--noise-scale", type=float, default=1.0, show_default=True,
              help="The radius r of the noise.")
@click.option("--noise-steps", type=int, default=None,
              help="Add noise in the first N steps only, then plain steps let the run settle "
              "(noise keeps ‖∇f‖ from vanishing, so the final verdict can't be a minimum).")
@click.option("--monitor-every", type=int, default=None,
              help="Log value, gradient norm and curvature every N steps [default: steps/100].")
@click.option("--curvature", "curvature_kind", is_flag=False, flag_value="hessian",
              default="hessian", show_default=True, metavar="[KIND]",
              help="Monitor λmin, λmax, lr·λmax and the step model of this matrix (dense "
              "within --dense-budget, n ≤ 4096 by default; Lanczos above): hessian, or for a "
              "file with model, output_loss and data: ggn, fisher, empirical-fisher. The "
              "final verdict is the Hessian's.")
@click.option("--no-curvature", "no_curvature", is_flag=True,
              help="Monitor no curvature at all (value and gradient norm only).")
@click.option("--monitor-blocks", "monitor_blocks", is_flag=False, flag_value="leaf",
              default=None, metavar="[leaf|DEPTH|PREFIX,...]",
              help="Also log each parameter group's λmax (its diagonal Hessian block; groups "
              "as analyze --blocks), to see which layer sharpens.")
@click.option("--gtol", type=float, default=None,
              help="Gradient norm counted as zero for stalled/at_saddle/reached_minimum "
              "(default 10·√n·ε·‖H‖·L + √ε·min|λ|·L with L = max(‖x‖,1), as analyze).")
@click.option("--tol", type=float, default=None,
              help="Eigenvalues with |λ| ≤ tol count as zero (default as analyze).")
@click.option("--compare", default=None, metavar="LIST",
              help="Run variants from the same start and seed, side by side: plain, noisy, "
              "an optimizer name, or NAME+noisy (e.g. plain,noisy or sgd,momentum,adam).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Stream the run to FILE.jsonl, one line per logged step (kept on Ctrl-C).")
@click.option("--checkpoint-every", type=int, default=None, metavar="N",
              help="With --out: also log the parameters and optimizer state (what --resume "
              "needs) every N steps  [default: only at the end, or when interrupted]; "
              "metrics are logged at every logged step either way.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Continue the run logged in FILE.jsonl from its last state, with the same "
              "options (appends to it unless --out names another file).")
@click.option("--force", is_flag=True,
              help="Let --out overwrite an existing file (without it train refuses, so no "
              "log is lost; --resume FILE appends to FILE and needs no --force).")
@click.option("--save-point", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the final parameters (same pytree) to .npz/.json/.npy/.txt/.csv, "
              ".msgpack (Flax), .safetensors, .eqx (Equinox) or a folder (orbax).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Plot value, ‖∇f‖, λmin/λmax against 2/lr, with events (.png/.svg).")
@click.option("--fail-on", default=None, metavar="KINDS",
              help="Exit 1 when any of these events happened (e.g. diverged,unstable).")
@expect_option
@dense_budget_option
def command(**_options: Any) -> None:
    """Train with an optax optimizer (optionally noisy) and watch the curvature.

    Every --monitor-every steps the run logs the value, the gradient norm, the
    Hessian's λmin and λmax, lr·λmax against 2 (gradient descent is unstable
    above it) and the error of the quadratic model's prediction of a gradient
    step, and reports events: stalled, at_saddle, escaped_saddle,
    reached_minimum, progressive_sharpening, edge_of_stability (lr·λmax hovering
    at 2 while f falls, Cohen et al. 2021), above_edge, unstable (f rising with
    lr·λmax > 2), diverged. Between logged steps the optimizer
    runs compiled (one jax.lax.scan per chunk). Everything is seeded. An
    objective file may define report(params) -> dict (see problems/tensor.py);
    train shows it for the final point.

    \b
    Examples:
      hesscli train saddle --at zeros --steps 500
      hesscli train saddle --at zeros --steps 500 --noisy --seed 0
      hesscli train saddle --at zeros --compare plain,noisy
      hesscli train tensor --noisy --lr 0.05 --steps 2000 --noise-steps 1500
      hesscli train mlp --optimizer momentum --lr 0.05 --batch-size 32 --monitor-every 50
      hesscli train my_loss.py --optimizer adam --out run.jsonl --format json
      hesscli train mlp --batch-size 32 --devices all   # data sharded over every device
      hesscli train mlp -p width=32 --lr 0.3 --steps 6000 --monitor-every 200  # edge of stability
      hesscli train mlp --monitor-blocks --plot run.png  # which layer sharpens
      hesscli train classifier --monitor-every 50 --curvature ggn
    """
    from hesscli.cli.context import App
    from hesscli.cli.train_run import run_command

    run_command(App.current())
