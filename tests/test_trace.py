"""Trace estimators: Hutchinson and Hutch++ against matrices of known trace, over seeds.

The matrices are Q diag(λ) Qᵀ with a seeded orthogonal Q, so the trace Σλ is known
exactly. Statistical statements are checked over many fixed seeds: unbiasedness
(the mean over seeds within 4 standard errors of the mean of the true trace),
calibrated standard errors, and Hutch++'s lower variance than Hutchinson's at the
same number of products when the spectrum decays fast (Meyer, Musco, Musco &
Woodruff 2021), by an F-test on the two samples of estimates.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from hesscli.spectra.trace import (
    estimate_trace,
    hutch_plus_plus,
    hutchinson,
)

N = 120
SEEDS = 300
HVPS = 30


def known(lam: np.ndarray, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((lam.size, lam.size)))
    return (q * lam) @ q.T


@pytest.fixture(scope="module")
def fast():
    """Eigenvalues 0.8^i (and a few negative ones): the sketch captures nearly everything."""
    lam = 10 * 0.8 ** np.arange(N)
    lam[[3, 7]] *= -1
    return known(lam, 1), float(lam.sum())


@pytest.fixture(scope="module")
def flat():
    """A slowly decaying spectrum with both signs: no low-rank part to exploit."""
    lam = np.random.default_rng(2).uniform(-1.0, 3.0, N)
    return known(lam, 3), float(lam.sum())


def runs(fn, a, seeds=SEEDS, hvps=HVPS):
    out = [fn(lambda v: a @ v, a.shape[0], hvps=hvps, seed=s) for s in range(seeds)]
    return np.array([t.estimate for t in out]), np.array([t.standard_error for t in out])


@pytest.mark.parametrize("fn", [hutchinson, hutch_plus_plus], ids=["hutchinson", "hutch++"])
@pytest.mark.parametrize("which", ["fast", "flat"])
def test_unbiased_within_standard_errors(fn, which, request):
    a, exact = request.getfixturevalue(which)
    est, se = runs(fn, a)
    sem = est.std(ddof=1) / math.sqrt(SEEDS)
    assert abs(est.mean() - exact) <= 4 * sem
    # each run's standard error is calibrated: |error| ≤ 3 se in nearly every run, and the
    # typical reported se matches the spread over seeds within a factor 1.5
    z = (est - exact) / se
    assert np.mean(np.abs(z) > 3) < 0.05
    assert 1 / 1.5 < np.sqrt(np.mean(se**2)) / est.std(ddof=1) < 1.5


def test_hutchinson_variance_is_the_rademacher_formula(flat):
    a, _ = flat
    est, _ = runs(hutchinson, a)
    # Var(zᵀAz) = 2(‖A‖_F² − Σ A_ii²) for Rademacher z, divided by the probes
    sd = math.sqrt(2 * (np.sum(a**2) - np.sum(np.diag(a) ** 2)) / HVPS)
    assert est.std(ddof=1) == pytest.approx(sd, rel=0.15)  # 300 seeds: ~4% sampling error


def test_hutch_plus_plus_has_lower_variance_on_a_fast_decaying_spectrum(fast):
    a, _ = fast
    h, _ = runs(hutchinson, a)
    pp, _ = runs(hutch_plus_plus, a)
    ratio = h.var(ddof=1) / pp.var(ddof=1)
    p_value = scipy.stats.f.sf(ratio, SEEDS - 1, SEEDS - 1)
    assert ratio > 10 and p_value < 1e-10


def test_hvp_counts_are_the_products_spent(fast):
    a, _ = fast
    seen = []

    def counting(v):
        seen.append(v.shape[1])
        return a @ v

    for fn in (hutchinson, hutch_plus_plus):
        seen.clear()
        tr = fn(counting, N, hvps=31, seed=0)
        assert tr.hvps == sum(seen) == 31
    seen.clear()
    tr = estimate_trace(counting, N, estimator="auto", hvps=31, seed=0)
    assert tr.hvps == sum(seen) == 31


def test_auto_picks_hutch_plus_plus_when_the_spectrum_decays(fast):
    a, exact = fast
    tr = estimate_trace(lambda v: a @ v, N, estimator="auto", hvps=HVPS, seed=0)
    assert tr.estimator == "hutch++" and "Hutch++" in tr.choice
    assert tr.standard_error < tr.alternative_standard_error
    assert abs(tr.estimate - exact) <= 4 * tr.standard_error + 1e-12


def test_auto_picks_hutchinson_on_a_diagonal():
    """Rademacher zᵀDz = tr D exactly: Hutchinson has zero variance, Hutch++ does not."""
    d = np.random.default_rng(4).uniform(1.0, 2.0, N)
    tr = estimate_trace(lambda v: d[:, None] * v, N, estimator="auto", hvps=HVPS, seed=0)
    assert tr.estimator == "hutchinson" and "Hutchinson" in tr.choice
    assert tr.estimate == pytest.approx(d.sum(), rel=1e-13)
    assert tr.standard_error <= 1e-12 * d.sum() and tr.alternative_standard_error > 0.1


def test_spectrum_trace_with_an_estimator(hess):
    """Dense path with --trace: the exact trace beside the estimate, which is within its se."""
    schema = json.loads((Path(__file__).resolve().parent.parent /
                         "hesscli/schemas/spectrum.schema.json").read_text())
    res = hess("spectrum", "rosenbrock", "-p", "n=30", "--trace", "--estimator", "hutch++",
               "--trace-probes", "24", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    import jsonschema

    jsonschema.validate(doc, schema)
    tr = doc["trace"]
    assert tr["exact"] is True
    st = tr["stochastic"]
    assert st["estimator"] == "hutch++" and st["hvps"] == 24
    assert abs(st["estimate"] - tr["estimate"]) <= 4 * st["standard_error"] + 1e-9 * abs(
        tr["estimate"])
    # 24 HVPs: a sketch of 8, its basis (8), 8 residual probes whose spread is the s.e.
    assert st["degrees_of_freedom"] == 7 and st["confidence"] == 0.95
    lo, hi = st["interval"]
    assert lo < st["estimate"] < hi
    table = hess("spectrum", "rosenbrock", "-p", "n=30", "--trace", "--trace-probes", "24")
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.replace("│", " ").split())
    assert "Auto: Hutch" in text and "on the same 24 HVPs" in text and "s.e. (95% in [" in text


def test_hutch_plus_plus_is_exact_once_the_sketch_spans_everything():
    """k = n sketch columns: Q spans Rⁿ, tr(QᵀAQ) = tr A and the residual is zero."""
    lam = np.linspace(-1.0, 4.0, 10)
    a = known(lam, 5)
    tr = hutch_plus_plus(lambda v: a @ v, 10, hvps=40, seed=0)
    assert tr.estimate == pytest.approx(lam.sum(), abs=1e-12)
    assert tr.standard_error <= 1e-12 and tr.hvps == 40


def test_hutch_plus_plus_with_too_few_probes_is_bad_input(hess):
    """Hutch++ needs a sketch, its basis and a residual probe (3 HVPs): asking for 2 is
    an input error (exit 2), not an internal error (exit 4)."""
    res = hess("spectrum", "rosenbrock", "--trace", "--estimator", "hutch++",
               "--trace-probes", "2")
    assert res.exit_code == 2, res.output
    assert "needs --trace-probes ≥ 3" in res.stderr and "internal error" not in res.stderr


def test_no_trace_estimate_spends_no_products(hess, tmp_path):
    """``--trace-probes 0``: the extremes alone (diag(d), d known): the trace is null in the
    JSON and absent from the table, the same extremes as with 30 probes, and 1 probe (no
    standard error) is refused in one line."""
    src = tmp_path / "diag.py"
    src.write_text("import jax.numpy as jnp, numpy as np\n"
                   "d = jnp.linspace(-1.0, 3.0, 300)\n"
                   "def objective(x):\n"
                   "    return 0.5 * jnp.sum(d * x * x)\n"
                   "x0 = np.ones(300)\n")
    docs = {}
    for probes in ("0", "30"):
        res = hess("spectrum", str(src), "--matrix-free", "--k", "1", "--trace-probes", probes,
                   "--estimator", "hutchinson", "--format", "json")
        assert res.exit_code == 0, res.output
        docs[probes] = json.loads(res.stdout)
    assert docs["0"]["trace"] is None
    assert "--trace-probes 0: no trace estimate" in docs["0"]["notes"]
    assert docs["30"]["trace"]["hvps"] == 30
    assert docs["30"]["trace"]["estimate"] == pytest.approx(300.0, rel=0.2)  # Σd = 300
    for doc in docs.values():  # each end within its certified error of the true one
        for theta, err, true in zip(doc["eigenvalues"], doc["eigenvalue_errors"], (-1.0, 3.0),
                                    strict=True):
            assert abs(theta - true) <= err + 1e-12
    table = hess("spectrum", str(src), "--matrix-free", "--k", "1", "--trace-probes", "0")
    assert table.exit_code == 0 and "Trace ≈" not in table.stdout
    assert not [line for line in table.stdout.splitlines()
                if line.strip("│ ").startswith("trace")]
    res = hess("spectrum", str(src), "--matrix-free", "--trace-probes", "1")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "--trace-probes must be 0 (no trace estimate) or an integer ≥ 2" in res.stderr


def test_leave_one_out_residuals_are_those_of_least_squares():
    """‖(I − P₋ᵢ)yᵢ‖²: the residual of regressing column i on the others (lstsq), and 0
    for a column that is a combination of the others."""
    from hesscli.spectra.trace import leave_one_out_residuals

    y = np.random.default_rng(6).standard_normal((30, 6))
    want = []
    for i in range(6):
        others = np.delete(y, i, axis=1)
        coef = np.linalg.lstsq(others, y[:, i], rcond=None)[0]
        want.append(np.sum((y[:, i] - others @ coef) ** 2))
    assert leave_one_out_residuals(y) == pytest.approx(want, rel=1e-10)
    dup = np.column_stack([y[:, :3], y[:, 0] + 2 * y[:, 1]])
    res = leave_one_out_residuals(dup)
    assert res[[0, 1, 3]] == pytest.approx(0.0, abs=1e-20 * np.sum(dup**2))
    assert res[2] > 1.0


def test_auto_with_a_sketch_spanning_everything_is_exact():
    """n = 8 with 30 HVPs: the sketch has 8 columns and spans R⁸, Hutch++ is exact and
    its interval (rounding allowance only) contains the trace."""
    lam = np.linspace(-2.0, 5.0, 8)
    a = known(lam, 7)
    tr = estimate_trace(lambda v: a @ v, 8, estimator="auto", hvps=30, seed=0)
    assert tr.estimator == "hutch++" and tr.hvps == 30
    assert tr.interval[0] <= lam.sum() <= tr.interval[1]
    assert tr.interval[1] - tr.interval[0] < 1e-10


def test_auto_below_six_products_is_hutchinson(flat):
    a, _ = flat
    tr = estimate_trace(lambda v: a @ v, N, estimator="auto", hvps=5, seed=0)
    assert tr.estimator == "hutchinson" and tr.probes == 5 and tr.choice is None


def test_one_residual_probe_gives_an_unbounded_interval(flat):
    """Hutch++ with 3 HVPs: one residual probe, no spread to measure."""
    a, _ = flat
    tr = hutch_plus_plus(lambda v: a @ v, N, hvps=3, seed=0)
    assert tr.probes == 1 and tr.degrees_of_freedom == 0
    assert tr.interval == (-math.inf, math.inf)


def test_float32_rounding_allowance_covers_the_products_rounding_and_no_more():
    """A float32 network (the example transformer, n = 7,520, float32 arithmetic) against
    its float64 twin on the same Rademacher probes: each form's float32 rounding lies within
    the per-form allowance 20·u·‖z‖‖Az‖, and so does the estimate's; the allowance is far
    below the estimate's standard error (the earlier 4n·u·‖z‖‖Az‖ model, n times wider,
    made a float32 interval at 10⁶ parameters read ±2.7e5 around 1116)."""
    import hesscli
    from hesscli.curvature.exact import ExactCurvature
    from hesscli.spectra.trace import ROUNDING_FACTOR, hvp_matmat

    p = {"d_model": 16, "layers": 1, "heads": 2, "context": 16, "sequences": 8}
    path = str(Path(__file__).resolve().parents[1] / "examples" / "transformer_lm.py")
    runs, forms = {}, {}
    for dt in ("float32", "float64"):
        obj = hesscli.load(path, params=p, dtype=dt)
        curv = ExactCurvature(obj)
        x = np.asarray(obj.x, dtype=dt)
        mm = hvp_matmat(curv.hvp_fn, x, dt)
        runs[dt] = hutchinson(mm, obj.n, hvps=8, seed=5,
                              unit_roundoff=float(np.finfo(dt).eps) / 2)
        z = np.random.default_rng(1).choice([-1.0, 1.0], size=(obj.n, 4))
        forms[dt] = (z, mm(z))
    z, az32 = forms["float32"]
    _, az64 = forms["float64"]
    u = 2.0**-24
    allowance = ROUNDING_FACTOR * u * np.linalg.norm(z, axis=0) * np.linalg.norm(az64, axis=0)
    diff = np.abs(np.einsum("ij,ij->j", z, az32) - np.einsum("ij,ij->j", z, az64))
    assert np.all(diff <= allowance), (diff, allowance)
    t32, t64 = runs["float32"], runs["float64"]
    assert abs(t32.estimate - t64.estimate) <= t32.rounding
    assert 0 < t32.rounding < 1e-3 * t32.standard_error
