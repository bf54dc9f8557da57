"""``analyze --blocks`` and ``--null-space``: tables, sentences and JSON fields.

Renderers read :class:`hesscli.spectra.blocks.BlockReport` and
:class:`hesscli.analysis.null_space.NullSpace` values and compute nothing; the
JSON fields and the null space in words are :mod:`hesscli.documents.structure`'s.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from hesscli.documents.structure import describe
from hesscli.render.numbers import end_cell, num


def blocks_sentence(r: Any) -> str:
    top = r.sharpest
    share = f"{num(100 * top.share, 3)}%" if top.share == top.share else "—"
    cell = end_cell(top.lambda_max, top.bounds, "max")
    value = cell if cell.startswith("≥") else f"= {cell}"
    return (f"The sharpest block is {top.name} (λmax {value}, {top.size} "
            f"parameters, {share} of the trace); {len(r.blocks)} blocks, {r.grouping}.")


def blocks_table(r: Any, matrix: str = "Hessian") -> Table:
    t = Table(title=f"Diagonal {matrix} blocks, sharpest first", title_justify="left")
    # numbers are never cut (a narrow terminal folds the names instead: a truncated
    # "1.359e-…" or "block_1…" reads as nothing)
    for col, just in (("block", "left"), ("size", "right"), ("λmin", "right"),
                      ("λmax", "right"), ("trace", "right"), ("share", "right"),
                      ("leak", "right"), ("coupled to", "left")):
        if just == "left":
            t.add_column(col, justify=just, overflow="fold")
        else:
            t.add_column(col, justify=just, no_wrap=True)
    for b in r.blocks:
        trace = num(b.trace) if b.trace_exact else \
            f"{num(b.trace)} ± {num(b.trace_standard_error)}"
        share = f"{num(100 * b.share, 3)}%" if b.share == b.share else "—"
        partner = max(b.coupling.items(), key=lambda kv: kv[1]) if b.coupling else None
        t.add_row(b.name, str(b.size), end_cell(b.lambda_min, b.bounds, "min"),
                  end_cell(b.lambda_max, b.bounds, "max"), trace, share,
                  num(b.leak, 2),
                  partner[0] if partner else "—")
    t.caption = ("leak: share of ‖H u‖ outside the block for its top eigenvector u "
                 "(0: decoupled, 1: the coupling dominates); coupled to: the block j with "
                 "the largest ‖H_ji u‖")
    return t


def render_blocks(r: Any, console: Console, matrix: str = "Hessian") -> None:
    console.print()
    console.print(blocks_sentence(r))
    console.print(blocks_table(r, matrix))


def render_null_space(ns: Any, console: Console) -> None:
    console.print()
    console.print(describe(ns))
    for note in ns.notes:
        console.print(f"[dim]note: {note}[/dim]")
