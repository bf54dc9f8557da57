"""One spectrum policy per command: the path decided once, the dense Hessian formed once.

``analyze`` needs the dense Hessian at its point for the spectrum and again for
``--blocks`` and ``--null-space``; ``train`` needs it for the monitor's last record
and again for the final verdict at the same point. Each is formed once
(:class:`hesscli.spectra.policy.HessianOnce`), counted here on the backend's own
``hessian``. The memory estimates of :mod:`hesscli.budget` take the command's
``--dense-budget``, so a request is refused or allowed by the path it will take.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import hesscli
from hesscli.errors import InputError
from hesscli.spectra.policy import HessianOnce, SpectrumPolicy
from hesscli.spectra.route import Budget, choose_path, dense_bytes

# f(p) = ½ xᵀAx over x = (p["a"], p["b"]): block-diagonal A, so each block's
# eigenvalues are those of its own 2×2 block, and A is singular in one direction
A = np.array([[4.0, 1.0, 0.0, 0.0],
              [1.0, 3.0, 0.0, 0.0],
              [0.0, 0.0, 1.0, 1.0],
              [0.0, 0.0, 1.0, 1.0]])


def quadratic(p):
    x = jnp.concatenate([p["a"], p["b"]])
    return 0.5 * x @ jnp.asarray(A) @ x


def tree(x):
    return {"a": jnp.asarray(x[:2]), "b": jnp.asarray(x[2:])}


X0 = np.array([0.3, -0.2, 0.1, 0.4])


@pytest.fixture(scope="module")
def backend():
    return hesscli.analyze(quadratic, tree(X0)).curvature


@pytest.fixture
def count_hessians(backend, monkeypatch):
    calls: list[np.ndarray] = []
    formed = type(backend).hessian

    def counted(self, x):
        calls.append(np.array(x))
        return formed(self, x)

    monkeypatch.setattr(type(backend), "hessian", counted)
    return calls


def test_analyze_forms_the_dense_hessian_once_for_spectrum_blocks_and_null_space(
        backend, count_hessians):
    res = hesscli.analyze(quadratic, tree(X0), curvature=backend, blocks="leaf",
                          null_space=True)
    assert len(count_hessians) == 1
    np.testing.assert_allclose(count_hessians[0], X0)
    # the one matrix gave every part its right numbers
    np.testing.assert_allclose(res.spectrum.eigenvalues, np.linalg.eigvalsh(A), atol=1e-12)
    blocks = {b.name: b for b in res.parts["blocks"].blocks}
    np.testing.assert_allclose(blocks["a"].lambda_max, np.linalg.eigvalsh(A[:2, :2])[-1],
                               atol=1e-12)
    np.testing.assert_allclose(blocks["b"].lambda_max, 2.0, atol=1e-12)
    assert res.parts["null_space"].dimension == 1
    # the backend kept in the result holds no matrix and forms afresh
    assert "hessian" not in vars(res.curvature)


def test_train_forms_the_final_points_hessian_once(backend, count_hessians):
    res = hesscli.train(quadratic, tree(X0), steps=20, monitor_every=10, lr=0.1,
                        curvature=backend)
    history = res.output.result.history
    assert [r.step for r in history] == [0, 10, 20]
    # one per logged step; the final verdict reuses the last record's (same point)
    assert len(count_hessians) == 3
    np.testing.assert_allclose(count_hessians[-1], res.output.result.x)
    np.testing.assert_allclose(res.output.analysis.spectrum.eigenvalues,
                               np.linalg.eigvalsh(A), atol=1e-12)


def test_hessian_once_reuses_only_at_the_same_point(backend, count_hessians):
    with HessianOnce(backend):
        first = backend.hessian(X0)
        assert backend.hessian(X0.copy()) is first
        other = backend.hessian(X0 + 1.0)
        assert other is not first
    assert len(count_hessians) == 2
    backend.hessian(X0)
    assert len(count_hessians) == 3  # released: the backend's own method again


def test_the_policy_parses_the_dense_budget_once_when_built():
    policy = SpectrumPolicy(dense_budget="1KiB")
    assert policy.dense_budget == Budget(1024, "--dense-budget")
    assert policy.budget.limit == 5  # 32·5² = 800 ≤ 1024 < 32·6²
    with pytest.raises(InputError, match="--dense-budget"):
        SpectrumPolicy(dense_budget="lots")


def test_the_policy_fixes_the_environments_budget_when_resolved(monkeypatch):
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "2KiB")
    policy = SpectrumPolicy().resolved()
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "1GiB")
    assert policy.budget == Budget(2048, "HESSCLI_DENSE_BUDGET")


N = 3000  # dense: 32·n² = 288 MB; matrix-free: about 800 floats per parameter, 19 MB


def test_convexity_estimate_follows_the_dense_budget():
    from hesscli.budget import FLOAT, MATRIX_FREE_FLOATS, convexity_bytes

    small, large = Budget(2**20, "--dense-budget"), Budget(2**30, "--dense-budget")
    assert choose_path(N, budget=small).path == "matrix-free"
    assert choose_path(N, budget=large).path == "dense"
    points = 2.0 * FLOAT * N * 1
    assert convexity_bytes(N, 0, 1, small) == points + MATRIX_FREE_FLOATS * FLOAT * N
    assert convexity_bytes(N, 0, 1, large) == points + dense_bytes(N)


def test_convexity_refuses_or_allows_by_the_path_it_will_take(monkeypatch):
    import hesscli.budget as budget

    monkeypatch.setattr(budget, "available_memory", lambda: 100 * 10**6)  # 100 MB free

    def fn(x):
        return 0.5 * jnp.sum(x * x)

    ask = dict(around=np.zeros(N), radius=1.0, samples=0, hessian_points=1)
    # within the default budget (512 MiB) the eigenvalue test is dense: 288 MB, refused
    with pytest.raises(InputError, match="needs about"):
        hesscli.convexity(fn, **ask)
    with pytest.raises(InputError, match="needs about"):
        hesscli.convexity(fn, **ask, dense_budget="1GiB")
    # a 1 MiB budget takes the matrix-free path, which fits: allowed, and it ran that way
    res = hesscli.convexity(fn, **ask, dense_budget="1MiB")
    assert any("matrix-free" in note for note in res.notes)
    assert res.meta["options"]["dense_budget"] == 2**20
