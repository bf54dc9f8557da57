"""``analyze --preconditioner``: Adam's preconditioned sharpness against its threshold."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from hesscli.render.numbers import num
from hesscli.vocab import Certainty


def verdict_line(ps: Any) -> str:
    """The stability sentence (the certainty rules of gradient descent's, with Adam's bound)."""
    st, pre = ps.stability, ps.preconditioner
    name = pre.optimizer
    if st is None:  # no learning rate: the largest one this P allows instead
        top = ps.max_stable_lr
        reach = (f"; with this P, {name}'s lr·λmax(P⁻¹H) reaches {num(ps.bound, 4)} at "
                 f"lr ≈ {num(top)}" if top is not None else "")
        return f"not compared with the threshold (no --lr){reach}"
    ratio = f"lr·λmax(P⁻¹H) = {num(ps.lr * ps.lambda_max, 4)}"
    limit = f"{ps.formula} = {num(ps.bound, 4)}"
    if st.stable is False:
        return (f"{ratio} ≥ {limit} (proven: λmax(P⁻¹H) ≥ {num(ps.interval[0], 6)}): {name} "
                f"with lr = {num(ps.lr)} is unstable near here with this preconditioner "
                f"(stable below lr ≈ {num(st.max_stable_lr)})")
    if st.stable and st.certainty == Certainty.PROBABILISTIC:
        return (f"lr·λmax(P⁻¹H) ≤ {num(ps.lr * st.lambda_max_at_most, 4)} < {limit} with "
                f"probability ≥ {num(st.probability, 3)} over the random start: {name} is "
                "stable near here, unless the run missed the top eigenvector")
    if st.stable:
        return f"{ratio} < {limit}: {name} with lr = {num(ps.lr)} is stable near here"
    return (f"{ratio} against {limit}: undetermined (the top eigenvalue is not resolved "
            "enough to decide)")


def render_preconditioned(ps: Any, console: Console) -> None:
    pre = ps.preconditioner
    t = Table(title=f"Preconditioned sharpness ({pre.optimizer}, Cohen et al. 2022)",
              show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    t.add_row("preconditioner", f"{pre.formula}, t = {pre.count}, β₁ = {num(pre.b1)}, "
              f"β₂ = {num(pre.b2)}, eps = {num(pre.eps)}; P in [{num(float(pre.diagonal.min()))}"
              f", {num(float(pre.diagonal.max()))}]")
    lo, hi = ps.interval
    value = num(ps.lambda_max, 6) if lo == hi else (
        f"{num(ps.lambda_max, 6)} (in [{num(lo, 6)}, {num(hi, 6)}]"
        + (f"; ≤ {num(ps.lambda_max_at_most, 6)} with probability "
           f"{num(ps.probability, 3)})" if ps.lambda_max_at_most else ")"))
    t.add_row("λmax(P⁻¹H)", value)
    if ps.threshold is None:
        t.add_row("threshold", f"{ps.formula}/lr = {num(ps.bound, 4)}/lr (no --lr given)")
    else:
        t.add_row("threshold", f"{ps.formula}/lr = {num(ps.bound, 4)}/{num(ps.lr)} = "
                  f"{num(ps.threshold, 6)}")
    t.add_row("verdict", verdict_line(ps))
    console.print(t)
    for note in ps.notes:
        console.print(f"[dim]note: {note}[/dim]")
