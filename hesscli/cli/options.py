"""Options shared by the commands, and their validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from hesscli.vocab import Dtype, MethodRequest, words

F = Callable[..., Any]


class FiniteFloat(click.ParamType):
    """A float that is finite (``nan`` and ``inf`` are usage errors: they would only
    surface later as a diverged run or a solver that never converges)."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> float:
        import math

        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} must be a finite number", param, ctx)
        return number


finite_float = FiniteFloat()


def output_file(option: str, suffixes: tuple[str, ...] | None = None,
                directory: bool = True) -> Callable[..., Any]:
    """A callback that checks an output path when the options are parsed, before any
    work (:func:`hesscli.files.check_output`): a missing folder or a wrong format
    must not cost a finished computation its result. ``directory``: the output
    may be a folder (an orbax checkpoint)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            from hesscli.files import check_output

            check_output(value, option, suffixes, directory=directory)
        return value

    return callback


def compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(fn: F) -> F:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
    help="Rich table for people, or exactly one JSON document on stdout for machines.",
)
seed_option = click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True,
    help="Seed for 'random' points, init(key), start vectors and noise.",
)
objective_argument = click.argument("objective", metavar="OBJECTIVE")
at_option = click.option(
    "--at", "at", metavar="POINT", default=None,
    help="The point: file (.npy .npz .json .txt .csv), literal 1,2.5,-3, 'zeros' or "
    "'random'. Default: the file's x0 or init(key).",
)
param_option = click.option(
    "-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
    help="A parameter of the objective file (see 'hesscli problems'); repeatable.",
)
method_option = click.option(
    "--method", type=click.Choice(words(MethodRequest)), default="auto",
    show_default=True,
    help="exact: JAX autodiff; fd: finite differences; auto: exact when JAX can trace "
    "the objective.",
)
dtype_option = click.option(
    "--dtype", type=click.Choice(words(Dtype)), default="float64",
    show_default=True, help="Floating-point precision (float32 widens the tolerances).",
)
objective_options = compose(
    objective_argument, at_option, param_option, method_option, dtype_option, seed_option,
    format_option,
)

devices_options = compose(
    click.option(
        "--devices", "devices", default="1", show_default=True, metavar="N|all",
        help="Devices per process to shard the work over: the batch axis of the file's "
        "data (and the parameters its param_sharding names) is split over them. "
        "'all' takes every local device; 1 is the single-device path.",
    ),
    click.option(
        "--coordinator", metavar="HOST:PORT", default=None, envvar="JAX_COORDINATOR_ADDRESS",
        show_envvar=True,
        help="Several hosts: address of process 0 (jax.distributed.initialize); run the "
        "same command on every host.",
    ),
    click.option(
        "--num-processes", type=int, default=None, envvar="JAX_NUM_PROCESSES",
        show_envvar=True, help="Several hosts: how many processes take part.",
    ),
    click.option(
        "--process-id", type=int, default=None, envvar="JAX_PROCESS_ID", show_envvar=True,
        help="Several hosts: this process's rank (0 prints and writes files).",
    ),
)
expect_option = click.option(
    "--expect", "expects", multiple=True, metavar="KEY=VALUE",
    help="Exit 1 unless this holds for the JSON document's field KEY (dotted path); "
    "operators = != <= >= < >, e.g. classification=local_minimum, inertia.negative=0, "
    "'condition_number<=1e4'. Repeatable; the report is printed first.",
)


def curvature_option(*, several: str | None = None) -> Callable[[F], F]:
    """``--curvature``: the matrix whose spectrum is reported (``several``: a comma list
    is accepted, and the sentence that says what the command does with it)."""
    extra = f" A comma list (e.g. hessian,ggn) {several}" if several else ""
    return click.option(
        "--curvature", "curvature_kind", default="hessian", show_default=True,
        metavar="KIND" + (",..." if several else ""),
        help="hessian, or (for a file with model, output_loss and data) ggn: Gauss–Newton "
        "JᵀH_ℓJ; fisher: the true Fisher of the output likelihood; empirical-fisher: "
        "(1/N)Σgᵢgᵢᵀ. The last three are not the Hessian, so no minimum/saddle verdict "
        "comes from them (the Fisher and empirical Fisher are PSD; the GGN is PSD only where "
        "the output loss is convex in the outputs, which the notes report)." + extra,
    )
