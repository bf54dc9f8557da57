"""Matrix-free curvature: path choice, Lanczos/ARPACK extremes, SLQ density, Hutchinson
trace, the ``spectrum`` command, float32 and ``--chunk-size``.

References are derived, not copied: matrices built as Q diag(λ) Qᵀ with clustered and
negative eigenvalues, the saddle's analytic Hessian diag(1, …, 1, −1), the dense path
on small networks (its own tests check it against analytic Hessians).
"""

from __future__ import annotations

import json
import math
from importlib import resources

import jsonschema
import numpy as np
import pytest

from hesscli.curvature.exact import hessian_at
from hesscli.errors import InputError
from hesscli.jaxconf import jax_module
from hesscli.spectra.arpack import arpack_extremes
from hesscli.spectra.certify import Solve
from hesscli.spectra.density import slq_density
from hesscli.spectra.lanczos import lanczos_extremes
from hesscli.spectra.matrix_free import matrix_free_spectrum
from hesscli.spectra.route import choose_path, dense_bytes
from hesscli.spectra.trace import hutchinson_trace

jax = jax_module()
jnp = jax.numpy

N = 300
# clustered top (10, 9.999, 9.99), a negative cluster, a bulk straddling zero
LAMBDAS = np.concatenate([
    [-3.0, -2.999, -2.5], np.linspace(-0.01, 1.0, N - 6), [9.99, 9.999, 10.0]
])


def spectrum_schema() -> dict:
    text = resources.files("hesscli.schemas").joinpath("spectrum.schema.json").read_text()
    return json.loads(text)


@pytest.fixture(scope="module")
def known():
    """(A, jitted HVP of ½xᵀAx, sorted eigenvalues) for A = Q diag(λ) Qᵀ."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    a = (q * LAMBDAS) @ q.T
    a = 0.5 * (a + a.T)
    aj = jnp.asarray(a)

    def f(x):
        return 0.5 * x @ aj @ x

    hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])
    return a, hvp, f, np.sort(LAMBDAS)


# ---------------------------------------------------------------- path choice


def test_dense_bytes_counts_eigensolver_workspace():
    assert dense_bytes(1000) == 4 * 8 * 1000**2


def test_auto_path_switches_on_the_dense_budget_not_on_free_memory():
    assert choose_path(100, "auto", available=16 * 2**30).path == "dense"
    big = choose_path(20_000, "auto", available=16 * 2**30)
    assert big.path == "matrix-free"
    assert "GiB" in big.reason
    # the free memory of the moment never changes the automatic choice (reproducible
    # output on shared machines); 4·8·n² = 128 MB at n = 2000 is within the 512 MiB budget
    assert choose_path(2000, "auto", available=400 * 2**20).path == "dense"
    assert choose_path(2000, "auto", available=1).path == "dense"


def test_dense_refused_beyond_memory_with_size():
    with pytest.raises(InputError, match=r"--dense: .*n = 100000 needs about 298\.0 GiB"):
        choose_path(100_000, "dense", available=8 * 2**30)
    assert choose_path(100_000, "matrix-free", available=8 * 2**30).path == "matrix-free"


# ---------------------------------------------------------------- extremes


@pytest.mark.parametrize("solver", [lanczos_extremes, arpack_extremes])
def test_extremes_of_known_spectrum(known, solver):
    _, hvp, f, lam = known
    ex = solver(hvp, np.zeros(N), Solve(3, seed=0),
                f=hessian_at(f) if solver is lanczos_extremes else None)
    want = np.concatenate([lam[:3], lam[-3:]])
    assert ex.all_converged
    assert np.all(ex.residuals <= ex.tolerance)
    # a Ritz value with residual r has an eigenvalue within r (symmetric H); the
    # clusters are resolved, so it is the matching one (slack: rounding of the HVP)
    assert np.all(np.abs(ex.eigenvalues - want) <= ex.residuals + 1e-12)
    assert ex.hvps_max is not None and ex.hvps_min is not None
    assert ex.hvps_max <= ex.hvps and ex.hvps_min <= ex.hvps


def test_lanczos_vectors_are_eigenvectors(known):
    a, hvp, _, lam = known
    ex = lanczos_extremes(hvp, np.zeros(N), Solve(1, seed=1))
    for vec, value in ((ex.vec_min, lam[0]), (ex.vec_max, lam[-1])):
        assert np.linalg.norm(a @ vec - value * vec) <= 1e-5 * 10


def test_unconverged_pairs_are_flagged_and_widen_the_band(known):
    _, hvp, _, _ = known
    ex = lanczos_extremes(hvp, np.zeros(N), Solve(3, seed=0, max_steps=8))
    assert not ex.all_converged
    assert ex.hvps_min is None or ex.hvps_max is None
    sp = matrix_free_spectrum(ex, "float64")
    assert sp.complete is False and sp.path == "matrix-free"
    assert sp.error == pytest.approx(float(ex.residuals.max()))
    assert any("NOT CONVERGED" in note for note in sp.notes)


def test_seeded_start_vectors_are_reproducible(known):
    _, hvp, _, _ = known
    one = lanczos_extremes(hvp, np.zeros(N), Solve(2, seed=5))
    two = lanczos_extremes(hvp, np.zeros(N), Solve(2, seed=5))
    assert np.array_equal(one.eigenvalues, two.eigenvalues)
    assert one.hvps == two.hvps


def test_breakdown_on_two_distinct_eigenvalues():
    """diag(1, …, 1, −1): the Krylov space is exhausted after 2 steps (restart path)."""
    n = 50
    d = jnp.asarray(np.r_[np.ones(n - 1), -1.0])
    hvp = jax.jit(lambda x, v: d * v)
    ex = lanczos_extremes(hvp, np.zeros(n), Solve(3, seed=0))
    assert ex.eigenvalues == pytest.approx([-1, 1, 1, 1, 1, 1], abs=1e-12)
    assert ex.all_converged


# ---------------------------------------------------------------- density and trace


def test_hutchinson_trace_within_its_standard_error(known):
    a, hvp, _, lam = known
    probes = 60
    tr = hutchinson_trace(hvp, np.zeros(N), probes=probes, seed=0)
    exact = float(lam.sum())
    # Rademacher: Var(zᵀAz) = 2(‖A‖_F² − Σ A_ii²)
    sd = math.sqrt(2 * (np.sum(a**2) - np.sum(np.diag(a) ** 2)) / probes)
    assert tr.standard_error == pytest.approx(sd, rel=0.5)
    assert abs(tr.estimate - exact) <= 4 * sd


def test_slq_density_against_exact_spectrum(known):
    _, hvp, f, lam = known
    d = slq_density(hvp, np.zeros(N), probes=12, steps=40, seed=0, f=hessian_at(f))
    assert np.trapezoid(d.density, d.grid) == pytest.approx(1.0, abs=2e-3)
    assert np.allclose(d.weights.sum(axis=1), 1.0)
    # the Gauss nodes reach the extremes (40 steps resolve them to high accuracy)
    assert d.nodes.min() == pytest.approx(lam[0], abs=1e-6)
    assert d.nodes.max() == pytest.approx(lam[-1], abs=1e-6)
    # quadrature CDF vs the exact fraction: probe noise ~ √(2F(1−F)/(n·probes)) ≈ 0.01,
    # Gauss discreteness ≤ the largest node weight (~1/steps)
    for t in (-1.0, 0.0, 0.25, 0.5, 0.75, 5.0):
        assert d.fraction_below(t) == pytest.approx(np.mean(lam <= t), abs=0.06)
    # the mean eigenvalue is a degree-1 moment: exact per probe, probe noise only
    mean = float(np.sum(d.weights * d.nodes) / d.probes)
    assert mean == pytest.approx(lam.mean(), abs=0.05)


# ---------------------------------------------------------------- CLI


def test_dense_refusal_exit_2(hess):
    res = hess("analyze", "mlp", "-p", "width=2048", "--dense")
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    assert res.stderr.startswith("error: --dense: the dense Hessian for n = 100368 needs about")
    assert "GiB" in res.stderr and "--matrix-free" in res.stderr


@pytest.fixture(scope="module")
def mlp_pair():
    from tests.conftest import run_cli

    args = ("analyze", "mlp", "-p", "width=4", "--format", "json")
    dense = run_cli(*args, "--dense")
    free = run_cli(*args, "--matrix-free", "--k", "3")
    return dense, free


def test_matrix_free_agrees_with_dense_on_small_mlp(mlp_pair):
    dense, free = mlp_pair
    assert dense.exit_code == 0, dense.output
    assert free.exit_code == 0, free.output
    d, m = dense.json(), free.json()
    assert d["eigenvalues_complete"] is True and m["eigenvalues_complete"] is False
    assert m["path"] == "matrix-free" and d["path"] == "dense"
    lam = np.array(d["eigenvalues"])
    ends = np.concatenate([lam[:3], lam[-3:]])
    res = np.array(m["residuals"])
    # within the residuals (plus the dense solver's own n·ε·‖H‖ rounding)
    slack = 10 * lam.size * np.finfo(float).eps * np.abs(lam).max()
    assert np.all(np.abs(np.array(m["eigenvalues"]) - ends) <= res + slack)
    assert m["classification"] == d["classification"]
    assert m["definiteness"] == d["definiteness"]
    # the verdict band is the HVP's rounding only: a residual never widens it (it would
    # swallow a proven sign); the proven sides bound the dense truth
    assert m["tolerance"] >= m["bounds"]["rounding"]
    assert m["tolerance"] < res.max()
    assert lam[0] <= m["lambda_min_interval"][1] and lam[-1] >= m["lambda_max_interval"][0]
    assert any("matrix-free" in note for note in m["notes"])


def test_saddle_in_ten_thousand_dimensions(hess):
    res = hess("analyze", "saddle", "-p", "n=10000", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["n"] == 10000 and doc["path"] == "matrix-free"
    assert doc["eigenvalues"][0] == pytest.approx(-1.0, abs=max(doc["residuals"][0], 1e-12))
    assert doc["eigenvalues"][-1] == pytest.approx(1.0, abs=1e-10)
    assert doc["classification"] == "saddle_point"
    assert doc["escape"]["top_parameters"][0]["name"] == "x[9999]"
    assert abs(doc["escape"]["top_parameters"][0]["weight"]) == pytest.approx(1.0, abs=1e-8)
    assert doc["condition_number"] is None  # indefinite: no condition number claimed


def test_spectrum_dense_json_and_schema(hess):
    res = hess("spectrum", "saddle", "-p", "n=4", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, spectrum_schema())
    assert doc["eigenvalues"] == pytest.approx([-1, 1, 1, 1])
    assert doc["eigenvalues_complete"] is True
    assert doc["trace"] == {"estimate": pytest.approx(2.0), "standard_error": 0.0,
                            "probes": 0, "exact": True}
    assert sum(doc["histogram"]["counts"]) == 4


def test_spectrum_matrix_free_density_json_and_schema(hess, tmp_path):
    plot = tmp_path / "spec.svg"
    res = hess("spectrum", "saddle", "-p", "n=40", "--matrix-free", "--density",
               "--probes", "3", "--steps", "12", "--k", "2", "--trace-probes", "4",
               "--plot", plot, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, spectrum_schema())
    assert doc["path"] == "matrix-free" and doc["eigenvalues_complete"] is False
    assert doc["eigenvalues"] == pytest.approx([-1, 1, 1, 1], abs=1e-10)
    assert doc["converged"] == [True] * 4
    assert doc["density"]["probes"] == 3 and doc["density"]["lanczos_steps"] == 12
    # diag(1, …, 1, −1): one eigenvalue in 40 is negative; the quadrature of each probe
    # puts weight v_n² on −1, whose mean over probes is 1/40 (Rademacher: exactly)
    assert doc["density"]["negative_fraction"] == pytest.approx(1 / 40, abs=1e-9)
    assert doc["trace"]["estimate"] == pytest.approx(38.0, abs=1e-9)  # zᵀDz = tr D exactly
    assert doc["density"]["sigma"] > 0
    assert doc["trace"]["exact"] is False
    assert doc["histogram"]["estimated"] is True
    assert sum(doc["histogram"]["counts"]) == pytest.approx(doc["n"], rel=1e-9)
    assert plot.read_text().lstrip().startswith("<?xml")


def test_spectrum_table_fits_80_columns(hess, tmp_path):
    plot = tmp_path / "spec.png"
    res = hess("spectrum", "rosenbrock", "-p", "n=30", "--plot", plot)
    assert res.exit_code == 0, res.output
    assert "Eigenvalue histogram" in res.stdout and "dense" in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 80
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spectrum_bad_plot_suffix_is_input_error(hess):
    res = hess("spectrum", "saddle", "--plot", "out.pdf")
    assert res.exit_code == 2, res.output
    assert "unknown image format" in res.stderr


def test_float32_says_tolerances_widened(hess):
    res = hess("analyze", "saddle", "-p", "n=200", "--matrix-free", "--dtype", "float32",
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["dtype"] == "float32"
    assert any("float32: tolerances widened" in note for note in doc["notes"])
    assert doc["eigenvalues"][0] == pytest.approx(-1.0, abs=1e-5)
    assert doc["classification"] == "saddle_point"


def test_lanczos_honours_float32(known):
    _, _, f, lam = known
    hvp32 = jax.jit(lambda x, v: jax.jvp(jax.grad(lambda y: f(y.astype(jnp.float64))
                                                  .astype(jnp.float32)), (x,), (v,))[1])
    ex = lanczos_extremes(hvp32, np.zeros(N, np.float32), Solve(1, seed=0), dtype="float32")
    assert ex.rtol == 1e-3
    assert ex.eigenvalues[0] == pytest.approx(lam[0], abs=ex.residuals[0] + 1e-5)
    assert ex.eigenvalues[-1] == pytest.approx(lam[-1], abs=ex.residuals[-1] + 1e-5)


# ---------------------------------------------------------------- --chunk-size


def test_chunked_objective_matches_full_data():
    """mean of chunk losses weighted by size == the full-data mean (3×16 + remainder 2)."""
    from hesscli.api import load
    from hesscli.curvature.exact import ExactCurvature
    from hesscli.objective.chunked import with_chunks

    obj = load("mlp", None, ("width=3", "samples=50"), seed=0, dtype="float64",
               method="auto")
    chunked, note = with_chunks(obj, 16)
    assert "4 chunk(s) of ≤ 16 samples" in note and "mean" in note
    full, part = ExactCurvature(obj), ExactCurvature(chunked)
    v = np.random.default_rng(0).standard_normal(obj.n)
    assert part.value(obj.x) == pytest.approx(full.value(obj.x), rel=1e-12)
    assert np.allclose(part.gradient(obj.x), full.gradient(obj.x), rtol=1e-10, atol=1e-12)
    assert np.allclose(part.hvp(obj.x, v), full.hvp(obj.x, v), rtol=1e-10, atol=1e-12)


def test_chunked_hvp_memory_is_bounded_by_the_chunk():
    """HVPs over chunks keep one chunk's activations, not all of them (XLA's own account
    of the compiled programs' temporaries: memory, not time). 4096 samples, width 64:
    the activations of all samples alone are 4096·64·8 B = 2 MiB, per chunk of 128 1/32
    of that."""
    from hesscli.api import load
    from hesscli.curvature.exact import ExactCurvature, linearized_hvp
    from hesscli.objective.chunked import with_chunks

    obj = load("mlp", None, ("width=64", "samples=4096"), seed=0, dtype="float64",
               method="auto")
    chunked, _ = with_chunks(obj, 128)
    full, part = ExactCurvature(obj), ExactCurvature(chunked)
    x = np.asarray(obj.x)

    def temp_bytes(cur):
        mem = cur.hvp_fn.lower(x, x).compile().memory_analysis()
        return mem.temp_size_in_bytes

    activations = 4096 * 64 * 8
    assert temp_bytes(full) >= activations  # the unchunked HVP holds them all
    assert temp_bytes(part) < temp_bytes(full) / 8
    # the linearization kept for reuse across HVPs holds the chunks' inputs, not their
    # activations (data: 4096·(32 + 16)·8 B; parameters: n·8 B)
    kept = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(linearized_hvp(part.f, x)))
    assert kept < activations
    v = np.random.default_rng(1).standard_normal(obj.n)
    assert np.allclose(np.asarray(linearized_hvp(part.f, x)(x, v)), full.hvp(x, v),
                       rtol=1e-10, atol=1e-12)


MISMATCH = """
import jax.numpy as jnp
X = jnp.arange(12.0).reshape(6, 2)
data = (X,)
x0 = jnp.ones(2)
def loss(w, batch):
    return jnp.mean((batch[0] @ w) ** 2)
def objective(w):
    return loss(w, data) + jnp.sum(w ** 2)   # regularized: not the data loss alone
"""


def test_chunked_refused_when_objective_is_not_the_data_loss(hess, write):
    path = write("reg.py", MISMATCH)
    res = hess("analyze", str(path), "--chunk-size", "4")
    assert res.exit_code == 2, res.output
    assert "--chunk-size assumes objective(params) == loss(params, data)" in res.stderr


def test_chunked_needs_data_and_loss(hess):
    res = hess("analyze", "saddle", "--chunk-size", "4")
    assert res.exit_code == 2, res.output
    assert "must define both `data` and `loss" in res.stderr
