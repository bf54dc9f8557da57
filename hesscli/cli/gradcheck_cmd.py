"""``hesscli gradcheck``: exact derivatives vs finite differences; exit 1 when wrong."""

from __future__ import annotations

import click

from hesscli.cli.fd_options import fd_accuracy_option
from hesscli.cli.options import expect_option, objective_options


@click.command("gradcheck")
@objective_options
@fd_accuracy_option
@click.option("--top", type=int, default=5, show_default=True,
              help="How many of the worst entries to list per comparison.")
@expect_option
def command(
    objective: str, at: str | None, params: tuple[str, ...], method: str, dtype: str,
    seed: int, fmt: str, fd_accuracy: str, top: int, expects: tuple[str, ...] = (),
) -> None:
    """Check the objective's exact derivatives (JAX, custom_jvp/custom_vjp rules)
    against finite differences: the gradient against central differences of
    function values, the Hessian against differences of the exact gradient and
    against function-only second differences. Exit 1 when they disagree.

    \b
    Examples:
      hesscli gradcheck my_loss.py --at x.npy
      hesscli gradcheck my_loss.py --format json      # exit 1 when wrong
      hesscli gradcheck mlp --fd-accuracy high
    """
    from hesscli.analysis.gradcheck import gradcheck
    from hesscli.cli.session import load, meta
    from hesscli.errors import CheckFailed, InputError

    if method == "fd":
        raise InputError("--method fd: gradcheck checks exact (JAX) derivatives against finite "
                         "differences; use --method auto or exact")
    if top < 1:
        raise InputError(f"--top must be at least 1; got {top}")
    obj = load(objective, at, params, seed=seed, dtype=dtype, method=method)
    from hesscli.budget import gradcheck_bytes, require

    require(gradcheck_bytes(obj.n), f"gradcheck at n = {obj.n} (it compares dense n×n Hessians)",
            "check a smaller instance of the objective, or use 'hesscli analyze --verify', "
            "which checks Hessian-vector products")
    result = gradcheck(obj, fd_accuracy, top=top)
    from hesscli.expect import expectations
    from hesscli.render.gradcheck_view import gradcheck_document

    doc = gradcheck_document(result, meta(seed, dtype, method=method, at=at,
                                          params=list(params), fd_accuracy=fd_accuracy,
                                          top=top), top)
    pending = expectations(expects, doc)
    if fmt == "json":
        from hesscli.render.jsonout import dump

        dump(doc)
    else:
        from hesscli.render.console import stdout_console
        from hesscli.render.gradcheck_view import render_gradcheck

        render_gradcheck(result, stdout_console())
    if not result.passed:
        bad = [c.key for c in result.checks if c.passed is False]
        raise CheckFailed(f"gradcheck failed: {', '.join(bad)} disagree with finite differences")
    pending.enforce()
