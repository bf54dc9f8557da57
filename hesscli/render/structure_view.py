"""``analyze --blocks`` and ``--null-space``: tables, sentences and JSON fields.

Renderers read :class:`hesscli.spectra.blocks.BlockReport` and
:class:`hesscli.analysis.null_space.NullSpace` values and compute nothing.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from hesscli.render.numbers import num


def blocks_sentence(r: Any) -> str:
    top = r.sharpest
    share = f"{num(100 * top.share, 3)}%" if top.share == top.share else "—"
    return (f"The sharpest block is {top.name} (λmax = {num(top.lambda_max)}, {top.size} "
            f"parameters, {share} of the trace); {len(r.blocks)} blocks, {r.grouping}.")


def blocks_table(r: Any) -> Table:
    t = Table(title="Diagonal Hessian blocks, sharpest first", title_justify="left")
    for col, just in (("block", "left"), ("size", "right"), ("λmin", "right"),
                      ("λmax", "right"), ("trace", "right"), ("share", "right"),
                      ("leak", "right")):
        t.add_column(col, justify=just)
    for b in r.blocks:
        trace = num(b.trace) if b.trace_exact else \
            f"{num(b.trace)} ± {num(b.trace_standard_error)}"
        share = f"{num(100 * b.share, 3)}%" if b.share == b.share else "—"
        t.add_row(b.name, str(b.size), num(b.lambda_min), num(b.lambda_max), trace, share,
                  num(b.leak, 2))
    t.caption = ("leak: share of ‖H u‖ outside the block for its top eigenvector u "
                 "(0: decoupled, 1: the coupling dominates)")
    return t


def render_blocks(r: Any, console: Console) -> None:
    console.print()
    console.print(blocks_sentence(r))
    console.print(blocks_table(r))


def blocks_document(r: Any) -> dict[str, Any]:
    return {
        "grouping": r.grouping,
        "sharpest": r.sharpest.name,
        "total_trace": r.total_trace,
        "hvps": r.hvps,
        "blocks": [{
            "name": b.name, "size": b.size, "lambda_min": b.lambda_min,
            "lambda_max": b.lambda_max, "trace": b.trace,
            "trace_standard_error": b.trace_standard_error, "trace_exact": b.trace_exact,
            "share": b.share, "leak": b.leak, "coupling": dict(b.coupling),
            "method": b.method, "residual": b.residual, "hvps": b.hvps,
        } for b in r.blocks],
    }


def render_null_space(ns: Any, console: Console) -> None:
    console.print()
    console.print(describe(ns))
    for note in ns.notes:
        console.print(f"[dim]note: {note}[/dim]")


def null_space_document(ns: Any) -> dict[str, Any]:
    return {
        "dimension": ns.dimension,
        "standard_error": ns.standard_error,
        "exact": ns.exact,
        "tolerance": ns.tolerance,
        "vanishing": ns.vanishing,
        "symmetry_rank": ns.symmetry_rank,
        "explained": ns.explained,
        "hvps": ns.hvps,
        "summary": describe(ns),
        "sources": [{"kind": s.kind, "where": s.where, "dimension": s.dimension,
                     "indices": list(s.indices), "parameters": list(s.parameters)}
                    for s in ns.sources],
        "notes": list(ns.notes),
    }


def describe(ns: Any) -> str:
    """The null space in words: '27 zero eigenvalues: 18 from 2 dead units in hidden, …'."""
    if ns.exact:
        head = f"{int(ns.dimension)} zero eigenvalue{'s' * (ns.dimension != 1)}"
    else:
        head = (f"about {ns.dimension:.1f} ± {ns.standard_error:.1f} zero eigenvalues "
                "(SLQ estimate)")
    head += f" (|λ| ≤ {ns.tolerance:.3g}) of {ns.n}"
    if ns.dimension == 0 and not ns.sources:
        return head + "."
    parts = []
    for s in ns.sources:
        if s.kind == "dead_unit":
            units = ", ".join(str(i) for i in s.indices[:10]) + (" …" if len(s.indices) > 10
                                                                 else "")
            parts.append(f"{s.dimension} from {len(s.indices)} dead unit"
                         f"{'s' * (len(s.indices) != 1)} in {s.where} ({units})")
        elif s.kind == "unused_input":
            ins = ", ".join(str(i) for i in s.indices[:10])
            parts.append(f"{s.dimension} from {len(s.indices)} unused input"
                         f"{'s' * (len(s.indices) != 1)} of {s.where} ({ins})")
        elif s.kind == "vanishing":
            parts.append(f"{s.dimension} from parameters of {s.where} the loss does not "
                         "depend on")
        elif s.kind == "shift":
            parts.append(f"{s.dimension} from shift invariance of {s.where} (adding a "
                         "constant across its outputs changes nothing: a softmax's shift)")
        elif s.kind == "scale":
            parts.append(f"{s.dimension} from scale invariance of {s.where}")
    text = head + ": " + "; ".join(parts) if parts else head
    rest = ns.unexplained
    if ns.exact and rest > 0:
        text += f"; {int(rest)} not attributed"
    elif ns.exact and rest < 0:
        text += (f"; the attributed directions number {ns.explained}, more than the "
                 f"{int(ns.dimension)} eigenvalues within the tolerance")
    elif not ns.exact:
        text += f"; {ns.explained} attributed"
    return text + "."
