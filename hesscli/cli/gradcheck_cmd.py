"""``hesscli gradcheck``: exact derivatives vs finite differences; exit 1 when wrong."""

from __future__ import annotations

from typing import Any

import click

from hesscli.cli.fd_options import fd_accuracy_option
from hesscli.cli.options import expect_option, objective_options
from hesscli.cli.path_options import dense_budget_option


@click.command("gradcheck")
@objective_options
@fd_accuracy_option
@click.option("--top", type=int, default=5, show_default=True,
              help="How many of the worst entries to list per comparison.")
@expect_option
@dense_budget_option
def command(**_options: Any) -> None:
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
    from hesscli import api
    from hesscli.cli.context import App
    from hesscli.errors import CheckFailed
    from hesscli.render.views import show

    app = App.current()
    res = app.call(api.gradcheck)
    result = res.output
    pending = app.report(res, lambda console: show(res, console))
    if not result.passed:
        bad = [c.key for c in result.checks if c.passed is False]
        raise CheckFailed(f"gradcheck failed: {', '.join(bad)} disagree with finite differences")
    pending.enforce()
