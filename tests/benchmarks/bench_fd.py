"""Black-box Hessians: hesscli ``normal``/``high`` vs numdifftools, side by side.

For black-box Rosenbrock (plain NumPy, n = 2, 10, 50) and the NumPy-only
random smooth test function (n = 6, ``tests/fd_helpers.py``), and a saddle at
large coordinates, ``0.1(x₀ − C)² + cos x₀ + x₁²`` at x₀ = C = 2π·159155 ≈ 10⁶
(H = diag(−0.8, 2); steps scaled by |x₀| alone call it a minimum): the max relative
error ``max|H − H_true| / max|H_true|`` against the analytic Hessian, the number
of function evaluations, and the wall time (median of 3). numdifftools runs
with its defaults (``nd.Hessian(f)(x)``, Richardson over 15 steps).

Goal for ``high`` (issue 3): at least numdifftools' accuracy with at most half
of its evaluations, or better accuracy with no more evaluations.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.benchmarks.common import print_table
from tests.fd_helpers import NUMPY_SMOOTH, rosenbrock_hessian, smooth_hessian

ROSEN = '''
import numpy as np

def objective(x):
    x = np.asarray(x, dtype=float)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))

x0 = np.array([-1.2 if i % 2 == 0 else 1.0 for i in range({n})])
'''


BIG = '''
import numpy as np
C = 2 * np.pi * 159155

def objective(x):
    return float(0.1 * (x[0] - C) ** 2 + np.cos(x[0]) + x[1] ** 2)

x0 = np.array([C, 0.0])
'''


def big_hessian(x: np.ndarray) -> np.ndarray:
    return np.diag([0.2 - np.cos(x[0]), 2.0])


def _median_time(fn: Any, repeat: int = 3) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def _case(name: str, source: str, exact_fn: Any, tmp: Path) -> list[dict[str, Any]]:
    import numdifftools as nd

    from hesscli.curvature.finite_diff import ValueDifferences
    from hesscli.objective.bind import bind
    from hesscli.objective.files import load_file

    path = tmp / f"{name.replace(' ', '_').replace('=', '')}.py"
    path.write_text(source)
    obj = bind(load_file(str(path), {}), None)
    assert not obj.traceable, "the benchmark objectives must be black boxes"
    x = obj.x
    exact = exact_fn(x)
    scale = float(np.abs(exact).max())
    rows = []

    calls = [0]

    def counted(y: np.ndarray) -> float:
        calls[0] += 1
        return obj.flat_fn(np.asarray(y, dtype=float))

    def run_nd() -> np.ndarray:
        calls[0] = 0
        return nd.Hessian(counted)(x)

    t, h = _median_time(run_nd)
    rows.append({"problem": name, "n": obj.n, "method": "numdifftools",
                 "max_rel_error": float(np.abs(h - exact).max()) / scale,
                 "evaluations": calls[0], "seconds": t, "error_estimate": None})
    for accuracy in ("normal", "high"):
        last: dict[str, Any] = {}

        def run(acc: str = accuracy, box: dict[str, Any] = last) -> Any:
            backend = ValueDifferences(obj, acc, batched=False)
            dense = backend.hessian(x)
            box["evaluations"] = backend.evaluations
            return dense

        t, dense = _median_time(run)
        rows.append({"problem": name, "n": obj.n, "method": f"hesscli {accuracy}",
                     "max_rel_error": float(np.abs(dense.matrix - exact).max()) / scale,
                     "evaluations": last["evaluations"], "seconds": t,
                     "error_estimate": dense.error / scale})
    return rows


def main() -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (2, 10, 50):
            rows += _case(f"rosenbrock n={n}", ROSEN.format(n=n), rosenbrock_hessian, Path(tmp))
        rows += _case("smooth (NumPy) n=6", NUMPY_SMOOTH, smooth_hessian, Path(tmp))
        rows += _case("cos at x≈1e6 n=2", BIG, big_hessian, Path(tmp))
    table = []
    for r in rows:
        nd_row = next(q for q in rows if q["problem"] == r["problem"]
                      and q["method"] == "numdifftools")
        table.append([
            r["problem"], r["method"], f"{r['max_rel_error']:.2e}",
            "—" if r["error_estimate"] is None else f"{r['error_estimate']:.1e}",
            r["evaluations"], f"{r['evaluations'] / nd_row['evaluations']:.2f}",
            f"{r['seconds'] * 1e3:.1f}",
        ])
    print_table(
        "Black-box Hessians: hesscli vs numdifftools (max relative error vs analytic)",
        ["problem", "method", "max rel. error", "est. (rel.)", "evaluations", "evals / nd",
         "ms"],
        table,
    )
    return {"rows": rows}


if __name__ == "__main__":
    main()
