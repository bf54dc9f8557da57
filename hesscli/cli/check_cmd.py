"""``hesscli check SPEC.yaml``: curvature expectations for CI; exit 1 when one fails."""

from __future__ import annotations

import click

from hesscli.cli.options import format_option


@click.command("check")
@click.argument("spec", metavar="SPEC.yaml")
@format_option
def command(spec: str, fmt: str) -> None:
    """Run the checks of SPEC.yaml and report pass/fail per expectation.

    Each check names an objective, a point, options (method, dtype, seed, lr,
    params) and expectations: classification, definiteness, critical, lambda_min /
    lambda_max / condition_number / gradient_norm / value bounds ({min, max}),
    negative_eigenvalues, step_increases_loss, stable, a convexity verdict over a
    region. Exit 1 when an expectation fails (after the report), 2 when the spec is
    invalid (nothing runs), 3 when an objective fails.

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
            step_increases_loss: false
            convexity: {box: [-3, 3], samples: 500, verdict: no_violation_found}
    """
    from hesscli.checks.run import run_spec
    from hesscli.checks.spec import read_spec
    from hesscli.cli import session
    from hesscli.errors import CheckFailed

    parsed = read_spec(spec)
    report = run_spec(parsed, session)  # type: ignore[arg-type]
    if fmt == "json":
        from hesscli.render.check_view import report_document
        from hesscli.render.jsonout import dump

        seeds = sorted({c.seed for c in parsed.checks})
        dtypes = sorted({c.dtype for c in parsed.checks})
        dump(report_document(report, session.meta(
            seeds[0] if len(seeds) == 1 else None,  # type: ignore[arg-type]
            dtypes[0] if len(dtypes) == 1 else ",".join(dtypes), spec=spec)))
    else:
        from hesscli.render.check_view import render_report
        from hesscli.render.console import stdout_console

        render_report(report, stdout_console())
    if not report.passed:
        ok, total = report.counts
        from hesscli.render.check_view import measured_text

        failed = [f"{c.name}: {o.key} expected {o.expected}, measured "
                  f"{measured_text(o.measured)}"
                  for c in report.checks for o in c.outcomes if not o.passed]
        raise CheckFailed(f"{total - ok} of {total} expectations failed: "
                          + "; ".join(failed[:5]) + ("; …" if len(failed) > 5 else ""))
