"""``analyze --curvature A,B``: the matrices side by side, and their blocks side by side.

Reads :class:`~hesscli.analysis.analyze_compare.AnalysisComparison` and computes
nothing. Ends on the matrix-free path are printed as what is known (a value with
its certified half-width, or a proven one-sided bound), never as bare numbers.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hesscli.render.numbers import end_cell, num
from hesscli.vocab import CurvatureKind

#: short column labels per matrix (the caption spells them out)
SHORT = {"hessian": "H", "ggn": "G", "fisher": "F", "empirical-fisher": "EF"}
#: the terminal width the tables are laid out for (CI logs, docs): wider ones only widen them
NOMINAL_WIDTH = 80


def title_of(kind: str) -> str:
    from hesscli.curvature.operators import TITLES

    return TITLES.get(kind, kind)


def curvatures_table(c: Any) -> Table:
    """One row per matrix: its ends, definiteness, condition number and path."""
    t = Table(title="Curvature matrices at this point (same path and settings)",
              title_justify="left")
    for col, just in (("matrix", "left"), ("λmin", "right"), ("λmax", "right"),
                      ("definiteness", "left"), ("condition", "right"), ("tol", "right")):
        t.add_column(col, justify=just, no_wrap=just == "right", overflow="fold")
    for e in c.entries:
        a = e.analysis
        sp = a.spectrum
        t.add_row(title_of(e.kind), end_cell(sp.lambda_min, sp.bounds, "min"),
                  end_cell(sp.lambda_max, sp.bounds, "max"), str(a.definiteness),
                  num(a.condition_number), num(a.tolerance, 2))
    return t


def blocks_side_by_side(c: Any) -> Table | None:
    """Per block (ranked by the first matrix's λmax): each matrix's λmin, λmax and trace."""
    rows = c.block_rows()
    if not rows:
        return None
    labels = [SHORT.get(k, k) for k in c.kinds]
    # λmin only for the Hessian: the Gauss–Newton and Fisher matrices are PSD by
    # construction (their λmin, ~0, is in the table above), and eight columns fold
    # the block names at 80 columns
    with_min = [k == CurvatureKind.HESSIAN for k in c.kinds]
    t = Table(title="Diagonal blocks side by side, sharpest first (by "
              f"{title_of(c.kinds[0])})", title_justify="left")
    cells = [_cells(size, results, with_min) for _, size, results in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    headers = ["size"] + [f"{what} {label}" for label, low in zip(labels, with_min, strict=True)
                          for what in ("λmin", "λmax", "trace")[0 if low else 1:]]
    # the numbers are never cut or wrapped; the names fold, but keep up to 16 characters a
    # line where an 80-column terminal leaves room (3 characters of border per column)
    numbers = sum(max(w, len(h)) + 3 for w, h in zip(widths, headers, strict=True))
    room = NOMINAL_WIDTH - numbers - 4
    t.add_column("block", overflow="fold",
                 min_width=max(4, min(16, room, max(len(r[0]) for r in rows))))
    for header in headers:
        t.add_column(header, justify="right", no_wrap=True)
    for (name, _, _), row in zip(rows, cells, strict=True):
        t.add_row(name, *row)
    t.caption = ", ".join(f"{s}: {title_of(k)}" for s, k in zip(labels, c.kinds, strict=True))
    return t


def _cells(size: int, results: list[Any], with_min: list[bool]) -> list[str]:
    """A block's size, then per matrix its λmin (the Hessian's only), λmax and trace."""
    out = [str(size)]
    for b, low in zip(results, with_min, strict=True):
        if b is None:
            out += ["—"] * (3 if low else 2)
            continue
        trace = num(b.trace) if b.trace_exact else \
            f"{num(b.trace)} ± {num(b.trace_standard_error, 2)}"
        out += ([end_cell(b.lambda_min, b.bounds, "min")] if low else []) + [
            end_cell(b.lambda_max, b.bounds, "max"), trace]
    return out


def render_curvatures(c: Any, console: Console) -> None:
    console.print()
    console.print(curvatures_table(c))
    side = blocks_side_by_side(c)
    if side is not None:
        console.print(side)
    seen = set(c.entries[0].analysis.notes)  # printed with the first matrix's report
    for e in c.entries[1:]:
        title = title_of(e.kind)
        for note in e.analysis.notes:
            if note in seen:
                continue
            seen.add(note)
            label = "" if note.startswith((title, f"the {title}")) else f"{title}: "
            console.print(Text(f"note: {label}{note}", style="dim"))
