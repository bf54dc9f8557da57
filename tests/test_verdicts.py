"""Verdict logic on spectra chosen by hand (no autodiff involved)."""

import numpy as np
import pytest

from hesscli.analysis.verdicts import (
    classify,
    condition_number,
    definiteness,
    eigen_tolerance,
    inertia,
)
from hesscli.spectra.spectrum import fix_sign, spectrum_of_matrix

TOL = 1e-10


@pytest.mark.parametrize(
    "lam, grad, expected",
    [
        ([1.0, 2.0], 0.0, "local_minimum"),
        ([-1.0, -2.0], 0.0, "local_maximum"),
        ([-1.0, 2.0], 0.0, "saddle_point"),
        ([0.0, 2.0], 0.0, "degenerate"),  # x² + y⁴ at 0
        ([0.0, 0.0], 0.0, "degenerate"),  # monkey saddle, x⁴ + y⁴
        ([-1.0, 0.0], 0.0, "degenerate"),  # -x² + y⁴: second-order test silent
        ([-1.0, 0.0, 3.0], 0.0, "saddle_point"),  # a zero does not hide a strict saddle
        ([1.0, 2.0], 1.0, "not_critical"),
        ([TOL / 2, 1.0], 0.0, "degenerate"),  # inside the band counts as zero
    ],
)
def test_classify(lam, grad, expected):
    assert classify(grad, 1e-8, np.array(lam), TOL) == expected


@pytest.mark.parametrize(
    "lam, expected",
    [
        ([1.0, 2.0], "positive_definite"),
        ([0.0, 2.0], "positive_semidefinite"),
        ([-1.0, -2.0], "negative_definite"),
        ([-1.0, 0.0], "negative_semidefinite"),
        ([-1.0, 1.0], "indefinite"),
        ([0.0, 0.0], "zero"),
    ],
)
def test_definiteness(lam, expected):
    assert definiteness(np.array(lam), TOL) == expected


def test_inertia_counts_band_as_zero():
    lam = np.array([-3.0, -TOL / 3, 0.0, TOL / 2, 5.0, 6.0])
    got = inertia(lam, TOL)
    assert (got.positive, got.negative, got.zero) == (2, 1, 3)


def test_condition_number():
    assert condition_number(np.array([-4.0, 2.0, 8.0]), TOL) == pytest.approx(4.0)
    assert condition_number(np.array([0.0, 8.0]), TOL) is None


def test_tolerance_scales_with_n_eps_and_norm():
    eps64 = np.finfo(np.float64).eps
    assert eigen_tolerance(2.0, 5, "float64") == pytest.approx(10 * 5 * eps64 * 2.0)
    assert eigen_tolerance(2.0, 5, "float32") > 1e8 * eigen_tolerance(2.0, 5, "float64")
    assert eigen_tolerance(2.0, 5, "float64", error=1e-6) == pytest.approx(1e-6, rel=1e-6)


def test_spectrum_of_known_matrix():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    lam = np.array([-2.0, -0.5, 0.1, 1.0, 3.0, 7.0])
    spec = spectrum_of_matrix((q * lam) @ q.T)
    np.testing.assert_allclose(spec.eigenvalues, lam, atol=1e-12)
    # end eigenvectors are the known columns, up to the fixed sign
    np.testing.assert_allclose(spec.vec_min, fix_sign(q[:, 0]), atol=1e-10)
    np.testing.assert_allclose(spec.vec_max, fix_sign(q[:, -1]), atol=1e-10)


def test_fix_sign_is_deterministic():
    v = np.array([0.1, -0.9, 0.3])
    np.testing.assert_array_equal(fix_sign(v), fix_sign(-v))
    assert fix_sign(v)[1] > 0


@pytest.mark.parametrize("n", [1, 2, 3, 40, 300])  # 300: the LAPACK tridiagonal path
def test_end_vectors_match_full_eigh(n):
    from hesscli.spectra.spectrum import eigvals_and_end_vectors

    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n))
    a = a + a.T
    lam, vmin, vmax = eigvals_and_end_vectors(a)
    w = np.linalg.eigvalsh(a)
    np.testing.assert_allclose(lam, w, atol=1e-12 * max(1, np.abs(w).max()))
    # eigenpair residuals at rounding level, unit norm
    for v, mu in [(vmin, w[0]), (vmax, w[-1])]:
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-12)
        assert np.linalg.norm(a @ v - mu * v) < 1e-11 * max(1, np.abs(w).max())
