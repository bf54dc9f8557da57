"""The ``gradcheck`` report: the verdict in words, then one table per comparison."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hesscli.analysis.gradcheck import Check, GradCheck
from hesscli.documents.gradcheck import tolerance_why
from hesscli.render.numbers import num


def headline(r: GradCheck) -> str:
    if r.passed:
        text = (f"Derivatives agree with finite differences: gradient max relative error "
                f"{num(r.gradient_max_rel_error, 3)}, Hessian {num(r.hessian_max_rel_error, 3)}.")
    else:
        bad = [c for c in r.checks if c.passed is False]
        first = bad[0]
        entry = first.worst[0] if first.worst else None
        where = (f" Worst: {entry.name}: exact {num(entry.exact, 6)} vs finite differences "
                 f"{num(entry.fd, 6)}." if entry else "")
        text = ("Derivatives are WRONG: the exact " + " and ".join(
            f"{c.what} disagrees with {c.reference}" for c in bad) + "." + where +
            " A custom_jvp/custom_vjp rule (or a hand-written derivative) is likely wrong.")
    if r.nonsmooth:
        text += (f" Not smooth at this point in {', '.join(r.nonsmooth[:6])}: those entries are "
                 "left out (the derivative does not exist there); try another point.")
    return text


def check_table(c: Check) -> Table:
    status = ("skipped" if c.passed is None else "passed" if c.passed else "FAILED")
    title = (f"{c.what} vs {c.reference}: {status}"
             + (f", max relative error {num(c.max_rel_error, 3)}" if c.max_rel_error is not None
                else "") + (f", {c.evaluations} evaluations" if c.evaluations else ""))
    t = Table(title=title, title_justify="left")
    t.add_column("entry")
    t.add_column("exact", justify="right")
    t.add_column("finite diff.", justify="right")
    t.add_column("rel. error", justify="right")
    t.add_column("allowed |Δ|", justify="right")
    for e in c.worst:
        style = "bold red" if e.ratio > 1 else ""
        t.add_row(e.name, num(e.exact, 8), num(e.fd, 8), num(e.rel_error, 3), num(e.allowed, 3),
                  style=style)
    return t


def render_gradcheck(r: GradCheck, console: Console) -> None:
    style = "green" if r.passed else "red"
    console.print(Panel(Text(headline(r)), title="passed" if r.passed else "FAILED",
                        title_align="left", border_style=style))
    for c in r.checks:
        if c.skipped:
            console.print(Text(f"{c.what} vs {c.reference}: skipped ({c.skipped})", style="dim"))
            continue
        console.print(check_table(c))
    console.print(Text(tolerance_why(r), style="dim"))
