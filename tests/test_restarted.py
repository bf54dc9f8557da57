"""Thick-restart Lanczos, certified eigenvalue bounds, the verdict target, --ends, the
solver policy.

The operators are H = Q diag(λ) Qᵀ with λ chosen here (an isolated negative
eigenvalue, a dense bulk around zero, a clustered or repeated top) and Q a product
of three random Householder reflectors, so an HVP costs O(n) at n = 10⁴ and the
true spectrum is known exactly. Bounds are checked against that spectrum, never
against the program's own output: Weyl (some eigenvalue within the true residual),
Rayleigh (λmin ≤ θmin, θmax ≤ λmax) and Kato–Temple with the *true* gap.
"""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import numpy as np
import pytest

from hesscli.errors import InputError
from hesscli.jaxconf import eps, jax_module
from hesscli.spectra import restarted
from hesscli.spectra.certify import KRYLOV_FLOOR, Solve, Target
from hesscli.spectra.lanczos import lanczos_extremes
from hesscli.spectra.matrix_free import FULL_BASIS_MAX_N, choose_solver, matrix_free_spectrum
from hesscli.spectra.restarted import basis_size, restarted_extremes

jax = jax_module()
jnp = jax.numpy

N = 10_000
M = 24  # a small basis, so that the solver must restart many times
SLACK = 1e3 * eps("float64")  # rounding of the HVP and the Ritz vectors, relative to ‖H‖


def householder_operator(lam: np.ndarray, seed: int):
    """A jitted HVP of H = Q diag(lam) Qᵀ, Q = three Householder reflectors (O(n) each)."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((3, lam.size))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    uj, lj = jnp.asarray(u), jnp.asarray(lam)

    def reflect(v, order):
        for i in order:
            v = v - 2.0 * uj[i] * (uj[i] @ v)
        return v

    return jax.jit(lambda x, v: reflect(lj * reflect(v, (0, 1, 2)), (2, 1, 0)))


def bulk_spectrum(seed: int = 0) -> np.ndarray:
    """Isolated −0.5, a dense bulk on [−0.05, 1], a clustered top 9.9, 9.95, 10."""
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([[-0.5], rng.uniform(-0.05, 1.0, N - 4), [9.9, 9.95, 10.0]]))


def repeated_spectrum() -> np.ndarray:
    """−2 twice, a bulk on [0, 1], 5 three times."""
    return np.sort(np.concatenate([[-2.0, -2.0], np.linspace(0.0, 1.0, N - 5), [5.0] * 3]))


@pytest.fixture(scope="module")
def bulk():
    lam = bulk_spectrum()
    return lam, householder_operator(lam, 1)


@pytest.fixture(scope="module")
def bulk_runs(bulk):
    """Restarted (m = 24, k = 3, residual target) and full-basis runs on the same operator."""
    lam, hvp = bulk
    shapes: list[tuple[int, ...]] = []
    original = restarted.restarted_kernel

    def recording(*args, **kwargs):
        run = original(*args, **kwargs)

        def wrapped(x, state, stop, params):
            out = run(x, state, stop, params)
            shapes.append(tuple(out[0].shape))
            return out

        return wrapped

    restarted.restarted_kernel = recording
    try:
        re = restarted_extremes(hvp, np.zeros(N),
                                Solve(3, seed=0, max_steps=400,
                                      target=Target.residual("float64", 1e-8)),
                                basis=M,
                                progress=lambda info: shapes.append(("progress", info["hvps"])))
    finally:
        restarted.restarted_kernel = original
    full = lanczos_extremes(hvp, np.zeros(N),
                            Solve(3, seed=0, target=Target.residual("float64", 1e-8)))
    return re, full, shapes


def weyl_holds(values, residuals, lam, scale):
    """Every value has some true eigenvalue within its residual (plus rounding)."""
    for v, r in zip(values, residuals, strict=True):
        if np.min(np.abs(lam - v)) > r + SLACK * scale:
            return False
    return True


# ---------------------------------------------------------------- the restarted solver


def test_restarted_finds_both_ends_and_agrees_with_full_basis(bulk, bulk_runs):
    lam, _ = bulk
    re, full, _ = bulk_runs
    want = np.concatenate([lam[:3], lam[-3:]])
    # the isolated negative eigenvalue and the clustered top: resolved by both solvers
    for ex in (re, full):
        assert ex.eigenvalues[0] == pytest.approx(lam[0], abs=1e-8)
        np.testing.assert_allclose(ex.eigenvalues[3:], want[3:], atol=1e-8)
    # where both converged they agree within the sum of their certified errors
    both = re.converged & full.converged
    assert both[0] and both[3:].all()
    gap = np.abs(re.eigenvalues - full.eigenvalues)[both]
    assert np.all(gap <= (re.residuals + full.residuals)[both] + SLACK * 10)


def test_basis_stays_within_m_rows_while_steps_exceed_it(bulk_runs):
    re, _, shapes = bulk_runs
    rows = {s for s in shapes if s[0] != "progress"}
    # one basis shape over the whole run: (m + 1, n)
    assert rows == {(M + 1, N)}
    assert re.basis_rows == M + 1
    assert re.restarts >= 3 and re.steps > 3 * M  # many more HVPs than basis vectors
    # progress: reported from inside the loop at every convergence test (every 2 steps)
    hvps = [s[1] for s in shapes if s[0] == "progress"]
    assert len(hvps) >= re.steps // 2 - 1 and re.steps - 2 <= max(hvps) <= re.steps


def test_every_certified_bound_contains_a_true_eigenvalue(bulk, bulk_runs):
    lam, _ = bulk
    re, full, _ = bulk_runs
    for ex in (re, full):
        assert weyl_holds(ex.eigenvalues, ex.residuals, lam, 10.0)
        # Rayleigh quotients: certain, whatever the residual
        assert lam[0] <= ex.eigenvalues[0] + SLACK * 10
        assert ex.eigenvalues[-1] <= lam[-1] + SLACK * 10
        assert np.all(ex.error_estimates <= ex.residuals)


def test_kato_temple_with_the_true_gap_bounds_the_isolated_eigenvalue(bulk, bulk_runs):
    """λ1 ∈ [θ − r²/(λ2 − θ), θ] (Kato–Temple with the true λ2): the estimate the solver
    reports, made with the Ritz gap, is of the same size."""
    lam, _ = bulk
    for ex in bulk_runs[:2]:
        theta, r = ex.eigenvalues[0], ex.residuals[0]
        true_bound = r**2 / (lam[1] - theta)
        assert abs(theta - lam[0]) <= true_bound + SLACK * 10
        assert ex.error_estimates[0] <= 10 * true_bound + SLACK * 10


def test_repeated_eigenvalues_are_found_with_bounds():
    lam = repeated_spectrum()
    hvp = householder_operator(lam, 2)
    ex = restarted_extremes(hvp, np.zeros(N),
                            Solve(2, seed=3, max_steps=300,
                                  target=Target.residual("float64", 1e-8)),
                            basis=M)
    assert weyl_holds(ex.eigenvalues, ex.residuals, lam, 5.0)
    assert ex.eigenvalues[0] == pytest.approx(-2.0, abs=1e-8)
    assert ex.eigenvalues[-1] == pytest.approx(5.0, abs=1e-8)
    # a single-vector Krylov method sees a multiple eigenvalue once; the second pair
    # of each end is then the next distinct eigenvalue (or a copy), never a wrong one
    assert ex.eigenvalues[1] >= -2.0 - 1e-8 and ex.eigenvalues[2] <= 5.0 + 1e-8


def test_verdict_target_stops_early_and_decides_the_sign(bulk):
    lam, hvp = bulk
    ex = restarted_extremes(hvp, np.zeros(N), Solve(1, seed=0, target=Target.verdict("float64")),
                            basis=M)
    assert ex.all_converged and ex.sign_decided
    assert ex.eigenvalues[0] < 0  # a Rayleigh quotient below zero proves it
    top = restarted_extremes(hvp, np.zeros(N),
                             Solve(1, seed=0, ends="max", target=Target.verdict("float64")),
                             basis=M)
    assert top.converged[-1] and top.hvps_max is not None
    # stopped when the top end met the target, but not before the Krylov floor (the
    # steps from the random start that the probable far side needs)
    assert top.steps == max(top.hvps_max, min(KRYLOV_FLOOR, M, N // 2))
    assert top.krylov_steps == top.steps
    scale = float(np.max(np.abs(lam)))
    # the estimate met 1e-3·max|λ| and the true error is within the certified bound
    assert np.all(ex.error_estimates <= 1e-3 * scale * 1.0001)
    assert weyl_holds(ex.eigenvalues, ex.residuals, lam, scale)
    tight = restarted_extremes(hvp, np.zeros(N),
                               Solve(1, seed=0, max_steps=400,
                                     target=Target.residual("float64", 1e-12)),
                               basis=M)
    assert ex.steps < tight.steps  # a tighter target asks for more and pays for it


def test_undecided_sign_is_reported_when_the_budget_runs_out():
    """λmin = 1e-4 at the edge of a dense bulk: 30 HVPs cannot separate it from zero."""
    lam = np.sort(np.concatenate([np.linspace(1e-4, 1.0, N - 1), [3.0]]))
    hvp = householder_operator(lam, 4)
    ex = restarted_extremes(hvp, np.zeros(N),
                            Solve(1, seed=0, max_steps=30, target=Target.verdict("float64")),
                            basis=M)
    assert ex.sign_decided is False
    assert not ex.converged[0] and ex.hvps_min is None
    sp = matrix_free_spectrum(ex, "float64")
    assert sp.converged is not None and not sp.converged[0]
    assert any("UNDECIDED" in note for note in sp.notes)
    assert sp.eigenvalue_errors is not None and sp.eigenvalue_errors[0] == ex.residuals[0]


def test_one_end_costs_only_that_end(bulk):
    lam, hvp = bulk
    target = Target.residual("float64", 1e-7)
    both = restarted_extremes(hvp, np.zeros(N), Solve(1, seed=0, target=target), basis=M)
    top = restarted_extremes(hvp, np.zeros(N), Solve(1, seed=0, target=target, ends="max"), basis=M)
    low = restarted_extremes(hvp, np.zeros(N), Solve(1, seed=0, target=target, ends="min"), basis=M)
    assert top.converged[-1] and low.converged[0] and both.all_converged
    assert top.steps < both.steps and low.steps <= both.steps
    assert top.eigenvalues[-1] == pytest.approx(lam[-1], abs=1e-6)
    assert low.eigenvalues[0] == pytest.approx(lam[0], abs=1e-6)
    assert top.ends == "max" and top.hvps_min is None


def test_basis_size_from_memory_and_k():
    assert basis_size(10**6, 3, "float64").m == 64
    assert basis_size(10**6, 10, "float64").m == 96
    # 10⁷ float32 parameters: 1 GiB holds 26 vectors
    small = basis_size(10**7, 3, "float32")
    assert (small.m + 2) * 10**7 * 4 <= 2**30 and small.keep == small.m // 2
    # 10⁸ float64 parameters: 1 GiB holds one vector; k = 5 needs 24 (+2 rows),
    # taken when they fit in half the memory, refused otherwise
    assert basis_size(10**8, 5, "float64", available=64 * 2**30).m == 24
    with pytest.raises(ValueError, match="lower --k"):
        basis_size(10**8, 5, "float64", available=16 * 2**30)
    with pytest.raises(ValueError, match="at least 16"):
        basis_size(12, 3, "float64")


# ---------------------------------------------------------------- the policy


def test_policy_chooses_and_says_why():
    assert choose_solver(5000, 3, "float64")[0] == "lanczos"
    solver, why = choose_solver(FULL_BASIS_MAX_N + 1, 3, "float64")
    assert solver == "restarted" and "thick-restart" in why
    assert choose_solver(100, 3, "float64", has_jax_hvp=False)[0] == "arpack"
    assert choose_solver(100, 3, "float64", "restarted")[0] == "restarted"
    with pytest.raises(InputError, match="restarted"):
        choose_solver(12, 3, "float64", "restarted")


# ---------------------------------------------------------------- the CLI


def schema(name: str) -> dict:
    return json.loads(resources.files("hesscli.schemas").joinpath(name).read_text())


DIAGONAL = """
import jax.numpy as jnp
import numpy as np

LAM = jnp.asarray(np.concatenate([[-1.5], np.linspace(0.01, 1.0, 1997), [4.0, 5.0]]))
x0 = jnp.ones(2000)

def objective(x):
    return 0.5 * jnp.sum(LAM * x * x)
"""


@pytest.fixture(scope="module")
def diagonal_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("restarted") / "diag.py"
    path.write_text(DIAGONAL)
    return str(path)


@pytest.mark.parametrize("ends", ["min", "max"])
def test_cli_ends_with_the_restarted_solver(hess, diagonal_file, ends):
    res = hess("spectrum", diagonal_file, "--matrix-free", "--eigensolver", "restarted",
               "--k", "2", "--ends", ends, "--trace-probes", "2", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, schema("spectrum.schema.json"))
    ex = doc["extremes"]
    assert ex["solver"] == "restarted-lanczos" and ex["ends"] == ends
    lam = np.concatenate([[-1.5], np.linspace(0.01, 1.0, 1997), [4.0, 5.0]])
    got, err = np.array(doc["eigenvalues"]), np.array(doc["eigenvalue_errors"])
    assert weyl_holds(got, err, lam, 5.0)
    if ends == "min":
        assert doc["converged"][:2] == [True, True] and ex["hvps_min"] is not None
        assert got[0] == pytest.approx(-1.5, abs=err[0] + 1e-9)
    else:
        assert doc["converged"][2:] == [True, True] and ex["hvps_max"] is not None
        assert got[-1] == pytest.approx(5.0, abs=err[-1] + 1e-9)
    assert doc["meta"]["options"]["ends"] == ends


def test_cli_analyze_reports_certified_and_estimated_errors(hess, diagonal_file):
    res = hess("analyze", diagonal_file, "--matrix-free", "--k", "2", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, schema("analyze.schema.json"))
    assert len(doc["eigenvalue_errors"]) == len(doc["eigenvalues"]) == 4
    assert doc["eigenvalue_errors"] == doc["residuals"]
    assert all(e <= r for e, r in zip(doc["eigenvalue_error_estimates"], doc["residuals"],
                                      strict=True))
    assert doc["meta"]["options"]["eigensolver_used"] == "lanczos"  # n = 2000: the full basis
    assert any(note.startswith("eigensolver: full-basis Lanczos") for note in doc["notes"])
    table = hess("analyze", diagonal_file, "--matrix-free", "--k", "2")
    assert "certified errors" in table.stdout and "Kato–Temple" in table.stdout


def test_all_eigenvalues_found_are_reported_as_complete(hess):
    res = hess("spectrum", "saddle", "-p", "n=6", "--k", "3", "--matrix-free", "--format",
               "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, schema("spectrum.schema.json"))
    assert doc["eigenvalues"] == pytest.approx([-1, 1, 1, 1, 1, 1], abs=1e-12)
    assert doc["eigenvalues_complete"] is True
    assert doc["trace"]["exact"] is True and doc["trace"]["estimate"] == pytest.approx(4.0)
    assert doc["inertia"] == {"positive": 5, "negative": 1, "zero": 0, "complete": True}


def test_a_spanning_basis_reports_every_eigenvalue_even_for_small_k(hess):
    res = hess("analyze", "saddle", "-p", "n=6", "--at", "zeros", "--matrix-free", "--format",
               "json")
    doc = res.json()
    assert doc["eigenvalues"] == pytest.approx([-1, 1, 1, 1, 1, 1], abs=1e-12)
    assert doc["eigenvalues_complete"] is True and doc["inertia"]["complete"] is True
    big = hess("analyze", "saddle", "-p", "n=40", "--at", "zeros", "--matrix-free",
               "--format", "json").json()
    assert len(big["eigenvalues"]) == 2 and big["eigenvalues_complete"] is False


def test_dense_documents_carry_zero_errors(hess):
    res = hess("analyze", "saddle", "-p", "n=3", "--format", "json")
    doc = res.json()
    jsonschema.validate(doc, schema("analyze.schema.json"))
    assert doc["eigenvalue_errors"] == [0.0, 0.0, 0.0]


def test_float32_basis_with_float64_projected_matrix():
    lam = bulk_spectrum(5)
    rng = np.random.default_rng(6)
    u = rng.standard_normal(lam.size)
    u /= np.linalg.norm(u)
    uj, lj = jnp.asarray(u, jnp.float32), jnp.asarray(lam, jnp.float32)

    def hvp(x, v):  # H = (I − 2uuᵀ) diag(λ) (I − 2uuᵀ) in float32
        w = v - 2.0 * uj * (uj @ v)
        w = lj * w
        return w - 2.0 * uj * (uj @ w)

    ex = restarted_extremes(jax.jit(hvp), np.zeros(N, np.float32),
                            Solve(2, seed=0, target=Target.verdict("float32")), basis=M,
                            dtype="float32")
    assert ex.all_converged and ex.eigenvalues[0] < 0
    # float32 rounding of the HVP and the Ritz vectors: ~√n·ε·‖H‖
    assert weyl_holds(ex.eigenvalues, ex.residuals + 1e-4, lam, 10.0)
    assert ex.eigenvalues[-1] == pytest.approx(10.0, abs=ex.residuals[-1] + 1e-4)


@pytest.mark.parametrize("bad", ["0", "-1e-3", "nan"])
def test_bad_rtol_is_an_input_error(hess, bad):
    res = hess("spectrum", "saddle", "-p", "n=30", "--matrix-free", f"--rtol={bad}")
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: --rtol must be a positive finite number")


def test_kato_temple_estimate_uses_the_neighbours_residual():
    from hesscli.spectra.certify import kato_temple

    ritz = np.array([-1.0, 0.0, 4.0, 5.0])
    # θ = 5 with r = 0.1: gap to 4 is 1 − (neighbour's residual 0.5) = 0.5 → 0.01/0.5
    est = kato_temple(np.array([5.0]), np.array([0.1]), ritz, np.array([3]),
                      np.array([0.0, 0.0, 0.5, 0.1]))
    assert est[0] == pytest.approx(0.02)
    # a neighbour whose own residual covers the gap: no gap is known, Weyl remains
    est = kato_temple(np.array([5.0]), np.array([0.1]), ritz, np.array([3]),
                      np.array([0.0, 0.0, 1.5, 0.1]))
    assert est[0] == pytest.approx(0.1)
    # never above the residual, and without neighbours the residual itself
    assert kato_temple(np.array([2.0]), np.array([3.0]), np.array([2.0]), np.array([0]))[0] == 3.0
