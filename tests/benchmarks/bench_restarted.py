"""Full-basis or thick-restart Lanczos? The measurements behind the policy
(``hesscli.spectra.matrix_free.choose_solver``).

On the built-in tanh MLP (``-p width=W``, n = 49·W + 16) both solvers run the
same start vector and stopping rule: the verdict target (each eigenvalue to
1e-3·max|λ| by the Kato–Temple estimate, the sign of λmin) and a tight one
(rtol 1e-6, which needs hundreds of steps). Reported per row: HVPs to each end,
the first (compiling) call and the median of warm calls, wall and CPU seconds,
as ratios restarted/full measured in the same run. CPU time is given because
wall time on a shared machine mostly measures the neighbours.

``BENCH_WIDTHS`` (default ``204,408,2040``) and ``BENCH_RTOLS`` (default
``verdict,1e-6``) choose the rows.
"""

from __future__ import annotations

import os
import time
from typing import Any

from tests.benchmarks.common import print_table

WIDTHS = [int(w) for w in os.environ.get("BENCH_WIDTHS", "204,408,2040").split(",")]
RTOLS = os.environ.get("BENCH_RTOLS", "verdict,1e-6").split(",")


def measure(cur: Any, x: Any, solver: str, rtol: float | None) -> dict[str, Any]:
    from hesscli.spectra.certify import Solve, Target
    from hesscli.spectra.matrix_free import extremes_of

    wall, cpu = time.perf_counter(), time.process_time()
    ex = extremes_of(cur, x, Solve(k=1, seed=0, target=Target.verdict("float64", rtol)),
                     solver=solver)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "hvps": ex.hvps, "hvps_min": ex.hvps_min, "hvps_max": ex.hvps_max,
            "restarts": ex.restarts, "lambda_min": float(ex.eigenvalues[0]),
            "lambda_max": float(ex.eigenvalues[-1]), "residual_min": float(ex.residuals[0]),
            "converged": bool(ex.all_converged)}


def main() -> dict[str, Any]:
    from hesscli.api import load
    from hesscli.curvature.choose import curvature_for

    rows, results = [], []
    for width in WIDTHS:
        obj = load("mlp", None, (f"width={width}",), seed=0, dtype="float64")
        cur, _ = curvature_for(obj, "auto", "normal", devices=1)
        for label in RTOLS:
            rtol = None if label == "verdict" else float(label)
            runs: dict[str, Any] = {}
            for solver in ("lanczos", "restarted"):
                cold = measure(cur, obj.x, solver, rtol)
                warm = [measure(cur, obj.x, solver, rtol) for _ in range(2)]
                runs[solver] = {"cold": cold, "warm": min(warm, key=lambda r: r["cpu"])}
            full, rest = runs["lanczos"], runs["restarted"]
            results.append({"n": obj.n, "width": width, "target": label, **runs})
            rows.append([
                obj.n, label,
                f"{full['warm']['hvps_min']}/{full['warm']['hvps_max']}",
                f"{rest['warm']['hvps_min']}/{rest['warm']['hvps_max']}",
                rest["warm"]["restarts"],
                f"{full['warm']['cpu']:.2f}", f"{rest['warm']['cpu']:.2f}",
                f"{rest['warm']['cpu'] / full['warm']['cpu']:.2f}",
                f"{rest['cold']['cpu'] / full['cold']['cpu']:.2f}",
            ])
    print_table(
        "restarted vs full-basis Lanczos (k = 1, both ends)",
        ["n", "target", "full HVPs min/max", "restarted HVPs min/max", "restarts",
         "full CPU s", "restarted CPU s", "warm ratio", "cold ratio"],
        rows,
    )
    return {"rows": results}
