"""Options that choose and tune the curvature path (dense or matrix-free), shared by
``analyze`` and ``spectrum``."""

from __future__ import annotations

from typing import Any

import click

from hesscli.cli.options import compose
from hesscli.vocab import EigensolverRequest, Ends, words


def _path_flag(value: str) -> Any:
    """Callback of ``--dense``/``--matrix-free``: both set ``path``; giving both is an error.

    (Two flags sharing one destination would silently let the last one win.)
    """

    def callback(ctx: click.Context, param: click.Parameter, given: bool) -> None:
        chosen = ctx.params.setdefault("path", None)
        if not given:
            return
        if chosen is not None and chosen != value:
            raise click.UsageError("--dense and --matrix-free exclude each other; give one",
                                   ctx=ctx)
        ctx.params["path"] = value

    return callback

dense_budget_option = click.option(
    "--dense-budget", "dense_budget", metavar="SIZE", default=None,
    help="Memory the dense Hessian path may use (e.g. 512MiB, 1GiB; default 512MiB or "
    "$HESSCLI_DENSE_BUDGET): dense exactly when 4·8·n² bytes fit, whatever memory is free.",
)


def _positive_or_none(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """``--rtol`` is checked when given, whichever path runs (the dense one ignores it,
    but a negative or NaN target is a mistake worth saying at once)."""
    if value is not None:
        from hesscli.validate import positive

        positive("--rtol", value)
    return value


def path_options(default_k: int) -> Any:
    """The options, with ``--k`` defaulting to ``default_k``."""
    return compose(
        click.option(
            "--dense", "dense_flag", is_flag=True, expose_value=False,
            callback=_path_flag("dense"),
            help="Force the dense Hessian (refused when it would not fit in memory).",
        ),
        dense_budget_option,
        click.option(
            "--matrix-free", "matrix_free_flag", is_flag=True, expose_value=False,
            callback=_path_flag("matrix-free"),
            help="Force the matrix-free path: extreme eigenvalues from Hessian-vector products.",
        ),
        click.option(
            "--k", "k", type=click.IntRange(min=1), default=default_k, show_default=True,
            help="Matrix-free: how many of the largest and of the smallest eigenvalues.",
        ),
        click.option(
            "--ends", type=click.Choice(words(Ends)), default=Ends.BOTH.value,
            show_default=True,
            help="Matrix-free: which end(s) of the spectrum must meet the target (the other "
            "is still reported, unconverged); one end costs only its own HVPs.",
        ),
        click.option(
            "--eigensolver", type=click.Choice(words(EigensolverRequest)),
            default=EigensolverRequest.AUTO.value, show_default=True,
            help="Matrix-free: full-basis Lanczos (small n), thick-restart Lanczos (bounded "
            "memory, large n), ARPACK (scipy eigsh) over the compiled HVP; auto picks and "
            "says which.",
        ),
        click.option(
            "--rtol", type=float, default=None, callback=_positive_or_none,
            help="Matrix-free: each eigenvalue's error target, relative to max|λ| (default "
            "1e-3, by the Kato–Temple estimate, plus the sign of λmin decided).",
        ),
        click.option(
            "--max-steps", type=click.IntRange(min=1), default=None,
            help="Matrix-free: HVP budget of the eigensolver (default: 600 restarted; 400 "
            "full-basis, fewer when its basis would exceed 1 GiB).",
        ),
        click.option(
            "--progress/--no-progress", "progress", default=None,
            help="Matrix-free: a progress line on stderr (HVPs, restarts, each end's bound) "
            "once a run takes over a second. Default: only when stderr is a terminal.",
        ),
        click.option(
            "--chunk-size", type=click.IntRange(min=1), default=None,
            help="Evaluate the full-data objective as loss over DATA in chunks of this many "
            "samples (needs `data` and `loss` in the file; checked against the objective).",
        ),
    )
