"""Hutchinson against Hutch++: relative error per HVP budget on real and synthetic Hessians.

For each operator (the tanh MLP's dense Hessian at its initialization, widths 8
and 32, and synthetic Q diag(λ) Qᵀ with a fast-decaying and a flat spectrum)
and each budget m of products, the root-mean-square error of each estimator
over 200 seeds relative to the exact trace, and how often ``auto`` keeps
Hutch++. Accuracy, not time: no timing is measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hesscli.spectra.trace import estimate_trace, hutch_plus_plus, hutchinson
from tests.benchmarks.common import print_table

SEEDS = 200
BUDGETS = (30, 90)


def operators() -> list[tuple[str, np.ndarray]]:
    from hesscli.api import load
    from hesscli.curvature.exact import ExactCurvature

    out = []
    for width in (8, 32):
        obj = load("mlp", None, (f"width={width}",))
        out.append((f"mlp width={width} (n={obj.n})", ExactCurvature(obj).hessian(obj.x).matrix))
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((400, 400)))
    out.append(("0.9^i spectrum (n=400)", (q * 0.9 ** np.arange(400)) @ q.T))
    out.append(("uniform(−1, 3) spectrum (n=400)", (q * rng.uniform(-1, 3, 400)) @ q.T))
    return out


def main() -> dict[str, Any]:
    rows, results = [], []
    for name, a in operators():
        exact = float(np.trace(a))
        n = a.shape[0]
        for m in BUDGETS:
            err = {}
            for label, fn in (("hutchinson", hutchinson), ("hutch++", hutch_plus_plus)):
                est = np.array([fn(lambda v, a=a: a @ v, n, hvps=m, seed=s).estimate
                                for s in range(SEEDS)])
                err[label] = float(np.sqrt(np.mean((est - exact) ** 2)) / abs(exact))
            picks = sum(estimate_trace(lambda v, a=a: a @ v, n, hvps=m, seed=s).estimator
                        == "hutch++" for s in range(SEEDS))
            rows.append([name, m, err["hutchinson"], err["hutch++"],
                         err["hutchinson"] / err["hutch++"], f"{picks}/{SEEDS}"])
            results.append({"operator": name, "hvps": m, **err, "auto_hutch_pp": picks})
    print_table("relative RMS error of the trace estimate (200 seeds)",
                ["operator", "HVPs", "Hutchinson", "Hutch++", "ratio", "auto → Hutch++"],
                rows)
    return {"results": results}
