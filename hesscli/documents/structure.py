"""JSON fields of ``analyze --blocks`` and ``--null-space``, and the null space in words."""

from __future__ import annotations

from typing import Any

from hesscli.vocab import NullSource


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
            "trace_estimator": b.trace_estimator,
            "share": b.share, "leak": b.leak, "coupling": dict(b.coupling),
            "method": b.method, "residual": b.residual, "hvps": b.hvps,
            "converged": b.converged,
            **({} if b.bounds is None else {
                "lambda_min_interval": list(b.bounds.min_interval),
                "lambda_max_interval": list(b.bounds.max_interval)}),
        } for b in r.blocks],
    }


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
        if s.kind == NullSource.DEAD_UNIT:
            units = ", ".join(str(i) for i in s.indices[:10]) + (" …" if len(s.indices) > 10
                                                                 else "")
            parts.append(f"{s.dimension} from {len(s.indices)} dead unit"
                         f"{'s' * (len(s.indices) != 1)} in {s.where} ({units})")
        elif s.kind == NullSource.UNUSED_INPUT:
            ins = ", ".join(str(i) for i in s.indices[:10])
            parts.append(f"{s.dimension} from {len(s.indices)} unused input"
                         f"{'s' * (len(s.indices) != 1)} of {s.where} ({ins})")
        elif s.kind == NullSource.VANISHING:
            parts.append(f"{s.dimension} from parameters of {s.where} the loss does not "
                         "depend on")
        elif s.kind == NullSource.SHIFT:
            parts.append(f"{s.dimension} from shift invariance of {s.where} (adding a "
                         "constant across its outputs changes nothing: a softmax's shift)")
        elif s.kind == NullSource.SCALE and s.dimension == 0:
            parts.append(f"none yet from scale invariance of {s.where} (f(c·w) = f(w), but "
                         "the gradient along w is not zero here: H·w = −∇_w f; a zero "
                         "eigenvalue at critical points)")
        elif s.kind == NullSource.SCALE:
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
