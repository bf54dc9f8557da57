"""Trust at scale: matrix-free claims are true of the numbers computed, in float32 too.

Operators with a known spectrum (diagonal, and Householder-rotated so that no
coordinate is special) are wrapped as HVPs through ``jax.tree_util.Partial``, so
one compiled solver serves every spectrum of a size. Everything is compared with
the spectrum the test built, never with the program's own output:

- every reported eigenvalue is a Rayleigh quotient (``λmin − δ ≤ θ ≤ λmax + δ``):
  the float32 thick-restart solver once reported 55× λmax;
- the proven sides hold (``λmin ≤ θmin + δ``, ``λmax ≥ θmax − δ``), and each
  certified half-width ``r + δ`` reaches some true eigenvalue;
- no verdict contradicts the truth (over seeds, both dtypes, every ``--ends``,
  both Lanczos solvers): never ``stable`` when ``lr·λmax > 2``, never
  (semi)definite with a negative eigenvalue below −tol, never a minimum at a saddle;
- float32 reaches the same answers as float64 in at most 1.3× its HVPs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hesscli.analysis.step import stability
from hesscli.analysis.verdicts import (
    Evidence,
    classification_of,
    definiteness_of,
    eigen_tolerance,
)
from hesscli.spectra.arpack import arpack_extremes
from hesscli.spectra.bounds import KW_CONSTANT, EndBounds, kw_epsilon
from hesscli.spectra.certify import Solve, Target
from hesscli.spectra.lanczos import lanczos_extremes
from hesscli.spectra.matrix_free import matrix_free_spectrum
from hesscli.spectra.restarted import restarted_extremes

jax = pytest.importorskip("jax")
jnp = jax.numpy
Partial = jax.tree_util.Partial

SOLVERS = {"lanczos": lanczos_extremes, "restarted": restarted_extremes}


def _diag(d, x, v):
    return d * v


def _rotated(d, u, x, v):
    # H = Q diag(d) Q with Q = I − 2uuᵀ (a Householder reflection: symmetric, orthogonal)
    w = v - 2.0 * u * jnp.dot(u, v)
    w = d * w
    return w - 2.0 * u * jnp.dot(u, w)


def operator(d: np.ndarray, dtype: str, rotate: bool = False, seed: int = 0):
    dj = jnp.asarray(d, dtype=dtype)
    if not rotate:
        return Partial(_diag, dj)
    u = np.random.default_rng(1000 + seed).standard_normal(d.size)
    return Partial(_rotated, dj, jnp.asarray(u / np.linalg.norm(u), dtype=dtype))


def spectrum_with(n: int, *, top=(100.0,), bottom=-1e-2, bulk=(0.0, 1.0), seed=0):
    """An isolated top, a dense bulk near zero and a chosen bottom eigenvalue."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(bulk[0], bulk[1], n)
    d[: len(top)] = top
    d[len(top)] = bottom
    return d


def run(d, dtype, solver="restarted", *, rotate=False, seed=0, ends="both", k=1,
        max_steps=None):
    n = d.size
    hvp = operator(d, dtype, rotate, seed)
    ex = SOLVERS[solver](hvp, np.zeros(n, dtype),
                         Solve(k, seed=seed, ends=ends, target=Target.verdict(dtype),
                               max_steps=max_steps), dtype=dtype)
    return ex, matrix_free_spectrum(ex, dtype)


def verdicts(sp, dtype, n, gradient_norm=0.0):
    """tol, evidence and the verdicts as analyze forms them on the matrix-free path."""
    lam = sp.eigenvalues
    tol = max(eigen_tolerance(float(np.max(np.abs(lam))), math.isqrt(n - 1) + 1, dtype),
              sp.bounds.rounding)
    ev = Evidence.of(lam, sp.converged, sp.bounds)
    kind, _ = classification_of(gradient_norm, 1e-300, ev, tol)
    shape, _ = definiteness_of(ev, tol)
    return tol, kind, shape


def assert_true_of_spectrum(sp, d):
    """Every certified claim of ``sp`` holds for the spectrum ``d``."""
    b = sp.bounds
    lo, hi = float(d.min()), float(d.max())
    delta = b.rounding
    for theta, r in zip(sp.eigenvalues, sp.eigenvalue_errors, strict=True):
        assert lo - delta <= theta <= hi + delta, (theta, lo, hi)  # a Rayleigh quotient
        assert np.min(np.abs(d - theta)) <= r + delta  # Weyl, rounding included
    assert lo <= b.min_at_most and hi >= b.max_at_least  # the proven sides


def assert_verdicts_true(kind, shape, d, tol):
    lo, hi = float(d.min()), float(d.max())
    if kind == "local_minimum" or shape == "positive_definite":
        assert lo > 0, (kind, shape, lo)
    if shape == "positive_semidefinite":
        assert lo >= -tol, (shape, lo)
    if kind == "local_maximum" or shape == "negative_definite":
        assert hi < 0
    if kind == "saddle_point" or shape == "indefinite":
        assert lo < 0 < hi


# -- the bound itself -------------------------------------------------------------------


def test_kw_epsilon_formula():
    """ε = (ln(1.648·√n/p)/(2k−1))², from Kuczyński–Woźniakowski's Theorem 4.2."""
    n, k, p = 10**6, 40, 1e-3
    expected = (math.log(KW_CONSTANT * 1000.0 / p) / 79.0) ** 2
    assert kw_epsilon(n, k, p) == pytest.approx(expected, rel=1e-12)
    assert kw_epsilon(n, 3, p) is None  # ε ≥ 1/2: no bound
    assert kw_epsilon(n, 0, p) is None


def test_probable_sides_hold_over_random_starts():
    """Over 40 random starts on a matrix whose top eigenvector is a single coordinate,
    the probable upper bound on λmax holds every time (failure probability 10⁻³ each)."""
    n = 2000
    d = spectrum_with(n, top=(10.0, 9.99, 9.98), bottom=-0.5)
    misses = 0
    for seed in range(40):
        ex, sp = run(d, "float64", "lanczos", seed=seed, max_steps=12)
        b = sp.bounds
        misses += (b.max_at_most < d.max()) + (b.min_at_least > d.min())
    assert misses == 0


def test_end_bounds_arithmetic():
    b = EndBounds(theta_min=-2.0, theta_max=10.0, residual_min=0.5, residual_max=0.1,
                  rounding=1e-3, krylov_steps=60, n=10_000)
    assert b.min_interval == pytest.approx((-2.501, -1.999))
    assert b.max_interval == pytest.approx((9.999, 10.101))
    e = kw_epsilon(10_000, 60)
    s = (12.0 + 2e-3) / (1 - 2 * e)
    assert b.max_at_most == pytest.approx(10.0 + e * s + 1e-3)
    assert b.min_at_least == pytest.approx(-2.0 - e * s - 1e-3)
    assert b.probability == pytest.approx(0.998)


# -- solvers: certified means certified, in both precisions ----------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver", ["lanczos", "restarted"])
@pytest.mark.parametrize("rotate", [False, True])
def test_known_spectrum_claims_hold(dtype, solver, rotate):
    n = 10_000
    d = spectrum_with(n, top=(100.0, 60.0), bottom=-0.05)  # |λmin| < 1e-3·λmax
    ex, sp = run(d, dtype, solver, rotate=rotate)
    assert_true_of_spectrum(sp, d)
    tol, kind, shape = verdicts(sp, dtype, n)
    assert_verdicts_true(kind, shape, d, tol)
    # the negative end is found and proven in both precisions
    assert shape == "indefinite" and kind == "saddle_point"
    assert sp.eigenvalues[-1] == pytest.approx(100.0, rel=1e-5)
    # the Kato–Temple estimate is an estimate of the true error, rounding included: the
    # bare r²/gap once said 1.3e-12 for θmax = 100 − 3.3e-6 in float32 (and 1e-28 for an
    # error of 4e-14 in float64), below what the products' rounding allows
    true_error = np.array([np.min(np.abs(d - t)) for t in sp.eigenvalues])
    assert np.all(sp.error_estimates >= true_error), (sp.error_estimates, true_error)
    assert np.all(sp.error_estimates <= sp.eigenvalue_errors)


def test_float32_matches_float64_at_a_million():
    """The regression: float32 thick-restart Lanczos at n = 10⁶ drifted past λmax
    (869 → 907 in 40 steps, 48 122 after 602 HVPs). Now the same answers as float64,
    in at most 1.3× its HVPs."""
    n = 10**6
    d = spectrum_with(n, top=(869.0, 600.0, 320.0), bottom=-2.05, bulk=(-0.03, 0.9), seed=3)
    ex64, sp64 = run(d, "float64")
    ex32, sp32 = run(d, "float32")
    for sp, dtype in ((sp64, "float64"), (sp32, "float32")):
        assert_true_of_spectrum(sp, d)
        tol, kind, shape = verdicts(sp, dtype, n)
        assert (kind, shape) == ("saddle_point", "indefinite")
    assert sp32.eigenvalues[-1] == pytest.approx(869.0, rel=1e-4)
    assert sp32.eigenvalues[0] == pytest.approx(-2.05, rel=1e-2)
    assert ex32.hvps <= 1.3 * ex64.hvps
    assert bool(ex32.converged.all()) and bool(ex64.converged.all())


# -- verdicts never contradict the truth ------------------------------------------------


@pytest.mark.parametrize("ends", ["both", "min", "max"])
@pytest.mark.parametrize("solver", ["lanczos", "restarted"])
def test_clustered_top_never_called_stable_when_unstable(ends, solver):
    """A cluster at the top (the trial's 86.38 ± 0.19 'converged' against 86.59): with
    lr·λmax = 2.002, 'stable' is never claimed, over seeds."""
    n = 4000
    d = spectrum_with(n, top=(86.59247, 86.5, 86.45, 86.4, 86.3), bottom=-1e-3,
                      bulk=(0.0, 30.0))
    lr = 2.002 / 86.59247
    for seed in range(6):
        _, sp = run(d, "float64", solver, seed=seed, ends=ends)
        st_ = stability(lr, sp.lambda_max, sp.max_converged, sp.bounds)
        assert st_.stable is not True, (seed, sp.lambda_max, st_)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("ends", ["both", "min", "max"])
def test_tiny_hidden_negative_end_never_semidefinite(dtype, ends):
    """λmin = −1e-4 on the coordinate the seed's start vector barely touches: the
    definiteness never claims (semi)definiteness, the classification never a minimum."""
    n = 20_000
    d = np.geomspace(1e-3, 1.0, n)
    for seed in range(3):
        v = np.random.default_rng(seed).standard_normal(n)
        dd = d.copy()
        dd[int(np.argmin(np.abs(v)))] = -1e-4
        _, sp = run(dd, dtype, "lanczos", seed=seed, ends=ends)
        tol, kind, shape = verdicts(sp, dtype, n)
        assert_verdicts_true(kind, shape, dd, tol)
        assert shape not in ("positive_definite", "positive_semidefinite")
        assert kind != "local_minimum"


def test_arpack_rayleigh_quotients_and_proven_sides():
    n = 3000
    d = spectrum_with(n, top=(50.0,), bottom=-0.5)
    hvp = operator(d, "float64")
    ex = arpack_extremes(hvp, np.zeros(n), Solve(1, target=Target.verdict("float64")),
                         dtype="float64")
    sp = matrix_free_spectrum(ex, "float64")
    assert_true_of_spectrum(sp, d)
    tol, kind, shape = verdicts(sp, "float64", n)
    assert_verdicts_true(kind, shape, d, tol)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    top=st.floats(1.0, 1e3),
    bottom=st.floats(-1.0, 1.0),
    bulk_lo=st.floats(-1e-3, 0.0),
    seed=st.integers(0, 50),
    dtype=st.sampled_from(["float64", "float32"]),
    rotate=st.booleans(),
)
def test_property_random_spectra(top, bottom, bulk_lo, seed, dtype, rotate):
    """Random spectra and seeds: every certified claim holds and no verdict is false."""
    n = 2000
    rng = np.random.default_rng(seed)
    d = rng.uniform(bulk_lo, 0.1 * top, n)
    d[0] = top
    d[1] = bottom * top
    _, sp = run(d, dtype, "lanczos", rotate=rotate, seed=seed)
    assert_true_of_spectrum(sp, d)
    tol, kind, shape = verdicts(sp, dtype, n)
    assert_verdicts_true(kind, shape, d, tol)
    lr = 1.9 / top
    st_ = stability(lr, sp.lambda_max, sp.max_converged, sp.bounds)
    if st_.stable:
        assert lr * d.max() < 2
    if st_.stable is False:
        assert lr * d.max() >= 2 - 1e-9


# -- the command line on the trial's hostile cases --------------------------------------

SADDLE = """
import jax.numpy as jnp
import numpy as np
n = {n}
d = np.linspace(0.01, 1.0, n); d[0] = -0.5
D = jnp.asarray(d)
def objective(x):
    return 0.5 * jnp.sum(D * x * x)
x0 = jnp.zeros(n)
"""

HIDDEN = """
import jax.numpy as jnp
import numpy as np
n = {n}
v = np.random.default_rng(0).standard_normal(n)  # the direction of hesscli's seed-0 start
d = np.geomspace(1e-3, 1.0, n)
d[int(np.argmin(np.abs(v)))] = -1e-4
D = jnp.asarray(d)
def objective(x):
    return 0.5 * jnp.sum(D * x * x)
x0 = jnp.zeros(n)
"""


def test_cli_strict_saddle_is_a_saddle_matrix_free(hess, tmp_path):
    path = tmp_path / "saddle.py"
    path.write_text(SADDLE.format(n=3000))
    res = hess("analyze", str(path), "--matrix-free", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["classification"] == "saddle_point"
    assert doc["definiteness"] == "indefinite"
    assert doc["certainty"]["classification"] == "proven"
    lo, hi = doc["lambda_min_interval"]
    assert hi >= -0.5 and doc["bounds"]["lambda_min_at_most"] >= -0.5


def test_cli_hidden_negative_is_never_a_minimum(hess, tmp_path):
    path = tmp_path / "hidden.py"
    path.write_text(HIDDEN.format(n=20_000))
    res = hess("analyze", str(path), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["classification"] in ("saddle_point", "undetermined")
    assert doc["definiteness"] in ("indefinite", "undetermined")
    table = hess("analyze", str(path))
    assert "Local minimum" not in table.output


def test_gradient_tolerance_uses_a_bound_not_an_unconverged_value():
    """An early stop (8 HVPs, no random-start bound yet): the ‖H‖ the gradient tolerance
    uses is θmax widened by its certified half-width — at least the proven λmax ≥ θmax − δ,
    at most the true λmax plus that half-width — never a value beyond the spectrum."""
    from hesscli.analysis.analyze import hessian_norm_bound

    n = 20_000
    d = spectrum_with(n, top=(50.0, 49.0, 48.5), bottom=-0.2, bulk=(0.0, 40.0))
    for dtype in ("float64", "float32"):
        _, sp = run(d, dtype, "restarted", max_steps=8)
        b = sp.bounds
        bound = hessian_norm_bound(sp)
        assert bound >= b.max_at_least
        assert bound <= d.max() + b.residual_max + b.rounding + 1e-9
        assert b.kw is None or np.isfinite(b.max_at_most)


def test_cli_not_critical_with_an_early_stop(hess, tmp_path):
    path = tmp_path / "tilted.py"
    path.write_text(SADDLE.format(n=5000).replace("x0 = jnp.zeros(n)", "x0 = 0.01 * jnp.ones(n)"))
    res = hess("analyze", str(path), "--matrix-free", "--max-steps", "6", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["classification"] == "not_critical"
    assert doc["gradient_tolerance"] < 1e-6 * doc["gradient_norm"]


def test_arpack_end_without_a_pair_is_bounded_by_a_formed_vector():
    """ARPACK returning no pair for an end (one restart allowed) used to fill it with the
    other end's value (a 'local minimum' at a saddle) or crash: now the start vector's
    Rayleigh quotient bounds it, it is unconverged, and no random-start bound is claimed."""
    n = 3000
    d = np.linspace(-1e-3, 1.0, n)
    d[-2:] = (1.0000001, 1.0000002)
    ex = arpack_extremes(operator(d, "float64"), np.zeros(n),
                         Solve(1, max_steps=1, target=Target.verdict("float64")))
    sp = matrix_free_spectrum(ex, "float64")
    assert not ex.converged.any() and ex.krylov_steps == 0 and sp.bounds.kw is None
    assert_true_of_spectrum(sp, d)
    tol, kind, shape = verdicts(sp, "float64", n)
    assert (kind, shape) == ("undetermined", "undetermined")


BLACK_BOX = """
import numpy as np
n = 100
rng = np.random.default_rng(3)
lam = np.linspace(0.1, 1.0, n)
lam[0] = 1e-6
Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
H = (Q * lam) @ Q.T
def objective(x):
    x = np.asarray(x, dtype=np.float64)
    return 1e6 + 0.5 * x @ (H @ x)
x0 = np.zeros(n)
"""


def test_cli_finite_difference_hvps_prove_no_false_sign(hess, tmp_path):
    """A black box (value differences) on the matrix-free path: the differences' noise
    gave θmin = −4.9e-4 for a positive definite Hessian; δ now carries that noise, so no
    negative curvature is claimed."""
    path = tmp_path / "black_box.py"
    path.write_text(BLACK_BOX)
    res = hess("analyze", str(path), "--matrix-free", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["method"] == "fd"
    assert doc["classification"] not in ("saddle_point", "local_maximum")
    assert doc["definiteness"] not in ("indefinite", "negative_definite",
                                       "negative_semidefinite")
    assert doc["bounds"]["lambda_min_at_most"] >= 1e-6


OFFSET = """
import jax.numpy as jnp
import numpy as np
n = 2000
d = np.linspace(0.5, 1.0, n)
D = jnp.asarray(d)
c = 220.0  # far from the origin: ‖x‖ ≈ 10⁴ widens float32's rounding model of the gradient
def objective(x):
    return 0.5 * jnp.sum(D * (x - c) ** 2)
x0 = np.full(n, c) + np.where(np.arange(n) % 2 == 0, 3e-3, -3e-3)
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_measured_first_order_decrease_is_never_called_critical(hess, tmp_path, dtype):
    """‖∇f‖ ≈ 0.1 (a real gradient: a step lowers f to first order) sits inside float32's
    rounding-model gtol at ‖x‖ ≈ 10⁴; float32 called the point critical (a 'local
    minimum') where float64 says not critical. Now both say not critical."""
    path = tmp_path / "offset.py"
    path.write_text(OFFSET)
    res = hess("analyze", str(path), "--dtype", dtype, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    g = np.sqrt(np.sum((np.linspace(0.5, 1.0, 2000) * 3e-3) ** 2))
    assert doc["gradient_norm"] == pytest.approx(g, rel=1e-2)
    assert doc["classification"] == "not_critical" and doc["critical"] is False


PROMOTED = """
import jax.numpy as jnp
import numpy as np
A = jnp.asarray(np.arange(1.0, 4.0))  # float64 data under x64
def objective(x):
    return 0.5 * jnp.sum(A * x * x)
x0 = np.ones(3)
"""


def test_float32_run_of_a_float64_objective_says_so(hess, tmp_path):
    """float64 data promotes float32 parameters: --dtype float32 is then float64 arithmetic
    rounded to float32, which the output must say (never a silent change of precision)."""
    path = tmp_path / "promoted.py"
    path.write_text(PROMOTED)
    f32 = hess("analyze", str(path), "--dtype", "float32", "--format", "json")
    f64 = hess("analyze", str(path), "--format", "json")
    assert f32.exit_code == 0 and f64.exit_code == 0, f32.output + f64.output
    assert any("computes in float64" in n for n in f32.json()["notes"])
    assert not any("computes in float64" in n for n in f64.json()["notes"])
    clean = tmp_path / "clean.py"
    clean.write_text(PROMOTED.replace("np.arange(1.0, 4.0))", "np.arange(1.0, 4.0), jnp.float32)"))
    f32c = hess("analyze", str(clean), "--dtype", "float32", "--format", "json")
    assert not any("computes in" in n for n in f32c.json()["notes"])
