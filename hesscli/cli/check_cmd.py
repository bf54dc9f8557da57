"""``hesscli check SPEC.yaml``: curvature expectations for CI; exit 1 when one fails."""

from __future__ import annotations

from typing import Any

import click

from hesscli.cli.options import format_option
from hesscli.cli.path_options import dense_budget_option


@click.command("check")
@click.argument("spec", metavar="SPEC.yaml")
@format_option
@dense_budget_option
def command(**_options: Any) -> None:
    """Run the checks of SPEC.yaml and report pass/fail per expectation.

    Each check names an objective, a point, options (method, dtype, seed, lr,
    params) and expectations: dotted paths of the analyze JSON document, as
    --expect takes them (classification, definiteness, critical, lambda_min,
    inertia.negative, stability.stable, step.increases_loss, ...) with a word,
    a list of words, true/false or {min, max} bounds as the field's type asks;
    the aliases negative_eigenvalues, stable and step_increases_loss; a
    convexity verdict over a region; gradcheck passed/failed. Exit 1 when an
    expectation fails (after the report), 2 when the spec is invalid (nothing
    runs), 3 when an objective fails. Paths in the spec are relative to its
    folder; --dense-budget (or HESSCLI_DENSE_BUDGET) sets the dense/matrix-free
    choice as for every command.

    \b
    Example checks.yaml:
      checks:
        - name: svm optimum
          objective: svm
          at: zeros
          lr: 0.1
          expect:
            definiteness: positive_definite
            lambda_min: {min: 0.1}
            condition_number: {max: 1.0e4}
            step.increases_loss: false
            convexity: {box: [-3, 3], samples: 500, verdict: no_violation_found}
    """
    from hesscli import api
    from hesscli.cli.context import App
    from hesscli.errors import CheckFailed
    from hesscli.render.check_view import measured_text
    from hesscli.render.views import show

    app = App.current()
    res = app.call(api.check)
    report = res.output
    app.report(res, lambda console: show(res, console))
    if not report.passed:
        ok, total = report.counts
        # the detail says when the measured value cannot decide (a partial count, an
        # undetermined verdict): "expected 1, measured 1" alone reads as a contradiction
        failed = [f"{c.name}: {o.key} expected {o.expected}, measured "
                  f"{measured_text(o.measured)}" + (f" ({o.detail})" if o.detail else "")
                  for c in report.checks for o in c.outcomes if not o.passed]
        raise CheckFailed(f"{total - ok} of {total} expectations failed: "
                          + "; ".join(failed[:5]) + ("; …" if len(failed) > 5 else ""))
