"""The ``hesscli.gradcheck/1`` document: a gradcheck result as JSON."""

from __future__ import annotations

from typing import Any

from hesscli.analysis.gradcheck import SAFETY, Check, GradCheck
from hesscli.numfmt import num


def tolerance_why(r: GradCheck) -> str:
    return (
        f"tolerance: an entry passes when |exact − fd| ≤ {num(SAFETY, 2)}× its finite-difference "
        f"error estimate (from {'two' if r.accuracy == 'normal' else 'a ladder of'} step sizes "
        f"plus a rounding bound) + √ε = {num(r.tolerance, 3)} relative ({r.dtype}); fd accuracy "
        f"{r.accuracy}."
    )


def check_document(c: Check) -> dict[str, Any]:
    return {
        "what": c.what,
        "reference": c.reference,
        "passed": c.passed,
        "max_rel_error": c.max_rel_error,
        "evaluations": c.evaluations,
        "skipped": c.skipped,
        "worst": [entry_document(e) for e in c.worst],
    }


def entry_document(e: Any) -> dict[str, Any]:
    return {"check": e.check, "name": e.name, "parameters": list(e.parameters),
            "exact": e.exact, "fd": e.fd, "rel_error": e.rel_error, "allowed": e.allowed,
            "passed": e.ratio <= 1}


def gradcheck_document(r: GradCheck, meta: dict[str, Any], top: int) -> dict[str, Any]:
    """The ``hesscli.gradcheck/1`` JSON document (field names are a contract)."""
    return {
        "schema": "hesscli.gradcheck/1",
        "objective": r.objective,
        "n": r.n,
        "dtype": r.dtype,
        "fd_accuracy": r.accuracy,
        "gradient_max_rel_error": r.gradient_max_rel_error,
        "hessian_max_rel_error": r.hessian_max_rel_error,
        "passed": r.passed,
        "worst": [entry_document(e) for e in r.worst[:top]],
        "tolerance": {"relative": r.tolerance, "fd_error_factor": SAFETY,
                      "why": tolerance_why(r)},
        "checks": {c.key: check_document(c) for c in r.checks},
        "smooth": not r.nonsmooth,
        "nonsmooth_parameters": list(r.nonsmooth),
        "meta": meta,
    }
