"""The networks benchmark's reading of the tight PyHessian run (no network, no torch).

``reach`` turns the run's recorded Rayleigh quotients into "after how many products
and seconds did it come, and stay, within an error of the reference's end". The
trajectory below is built by hand with known relative errors, one of them above the
target after an earlier one below it (power iteration is not monotone), so the
expected product counts and seconds follow from the definition, not from the code.
"""

from __future__ import annotations

import pytest

from tests.benchmarks.bench_networks import reach, tool_labels


def test_reach_counts_products_until_the_error_stays_below():
    lam = 2.0  # the reference λmax; λmin = -0.5
    errs = [0.1, 5e-4, 2e-3, 5e-4, 1e-5]  # relative to |λmax|, below the end
    run = {"tool": "pyhessian_tight", "quotients": [lam * (1 - e) for e in errs],
           "elapsed_s": [1.0, 2.0, 3.0, 4.0, 5.0], "wall_s": 20.0, "solver_s": 5.0}
    # hesscli's reported bounds (λmin, λmax): 6e-3 on λmax is 3e-3 relative to |λmax|
    hesscli = {"tool": "hesscli spectrum", "wall_s": 30.0, "err_max": 1e-4,
               "err_min": 1e-3, "eigenvalue_errors": [0.02, 6e-3]}
    reach(run, {"runs": [hesscli, run]}, lam, -0.5)
    got = run["reach"]["max"]
    by_err = {t["err"]: t for t in got["targets"] if t["kind"] == "fixed"}
    # hesscli's achieved 1e-4: only the last quotient (product 5) is within it
    achieved = next(t for t in got["targets"] if t["kind"] == "hesscli achieved")
    assert achieved["products"] == 5
    assert achieved["wall_s"] == pytest.approx(15.0 + 5.0)  # fixed 20 - 5, then 5 s
    assert achieved["hesscli_wall_over"] == pytest.approx(30.0 / 20.0)
    assert by_err[1e-4]["products"] == 5 and "hesscli_wall_over" not in by_err[1e-4]
    # 1e-3: product 2 is within it, product 3 leaves it again: it stays from product 4
    assert by_err[1e-3]["products"] == 4
    assert by_err[1e-3]["wall_s"] == pytest.approx(19.0)
    assert by_err[1e-6]["products"] is None and "wall_s" not in by_err[1e-6]
    # hesscli's bound 3e-3: within it from product 2 on (5e-4, 2e-3, 5e-4, 1e-5)
    bound = next(t for t in got["targets"] if t["kind"] == "hesscli bound")
    assert bound["err"] == pytest.approx(3e-3)
    assert bound["products"] == 2 and bound["wall_s"] == pytest.approx(17.0)
    assert got["best_err"] == pytest.approx(1e-5)
    assert got["best_at_product"] == 5
    # the other end: every quotient is about 2.5 / 2 away from λmin = -0.5
    low = run["reach"]["min"]
    assert low["best_err"] == pytest.approx((2 * (1 - 0.1) + 0.5) / 2)
    assert all(t["products"] is None for t in low["targets"])


def test_tool_labels_name_the_runs_they_replace():
    assert tool_labels({"hesscli", "ggn", "pyhessian_tight"}) == {
        "hesscli spectrum", "hesscli spectrum --curvature ggn", "pyhessian_tight"}
