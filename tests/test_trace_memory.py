"""The trace estimators' memory: probes applied a block at a time, with the same numbers.

At 10⁷ parameters a float64 vector is 80 MB; holding 30 probes and their products
(with their temporaries) was most of ``spectrum``'s peak. The estimators now keep the
probes as int8 and apply them k (the sketch width) at a time. Pinned here by counting
the host buffers NumPy allocates (``tracemalloc``: deterministic, not RSS), the widths of
the product calls, and the estimates against a direct textbook implementation with the
documented probes (``rng.choice([-1, 1])``), so the numbers are those of before.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from hesscli.spectra import trace as tr

N = 100_000
HVPS = 30
K = HVPS // 3


def _diag(kind: str) -> np.ndarray:
    if kind == "decaying":  # a few outliers over a flat bulk: auto keeps Hutch++
        return np.where(np.arange(N) < 5, 1000.0, 1.0)
    return np.random.default_rng(7).uniform(-1.0, 3.0, N)  # flat: auto keeps Hutchinson


def _probes(rng: np.random.Generator, k: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=(N, k))


def _textbook(d: np.ndarray, estimator: str) -> float:
    """Hutchinson / Hutch++ written out densely from their definitions (seed 0)."""
    rng = np.random.default_rng(0)
    if estimator == "hutchinson":
        z = _probes(rng, HVPS)
        return float(np.mean(np.sum(z * (d[:, None] * z), axis=0)))
    s = _probes(rng, K)
    g = _probes(rng, HVPS - 2 * K)
    q, _ = np.linalg.qr(d[:, None] * s)
    w = g - q @ (q.T @ g)
    return float(np.trace(q.T @ (d[:, None] * q)) + np.mean(np.sum(w * (d[:, None] * w), 0)))


def test_probes_are_the_documented_draws_across_row_blocks(monkeypatch):
    monkeypatch.setattr(tr, "PROBE_ROWS", 7)  # many ragged blocks
    for n, k in ((1, 3), (50, 7), (51, 1), (64, 4)):
        want = np.random.default_rng(3).choice(np.array([-1.0, 1.0]), size=(n, k))
        got = tr.rademacher_matrix(n, k, np.random.default_rng(3))
        small = tr.rademacher_matrix(n, k, np.random.default_rng(3), np.int8)
        assert got.dtype == np.float64 and small.dtype == np.int8
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(small, want)


@pytest.mark.parametrize("estimator", ["hutchinson", "hutch++"])
def test_estimates_are_the_textbook_ones(estimator):
    d = _diag("decaying")
    got = tr.estimate_trace(lambda v: d[:, None] * v, N, estimator=estimator, hvps=HVPS, seed=0)
    want = _textbook(d, estimator)
    assert got.estimate == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("kind, chosen, limit", [
    ("flat", "hutchinson", 3 * K),  # one block of probes and products, the sketch's y
    ("decaying", "hutch++", 5 * K),  # Q, AQ and one block of probes and products
])
def test_host_memory_is_a_few_blocks_not_every_probe(kind, chosen, limit):
    d = _diag(kind)
    widths: list[int] = []

    def matmat(v: np.ndarray) -> np.ndarray:
        widths.append(v.shape[1])
        return d[:, None] * v

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        got = tr.estimate_trace(matmat, N, estimator="auto", hvps=HVPS, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.estimator == chosen
    assert sum(widths) == got.hvps == HVPS
    assert max(widths) == K  # every call the sketch's width: one compiled product shape
    vectors = peak / (8 * N)  # in float64 n-vectors; before: 90 (Hutch++), 110 (auto)
    assert vectors <= limit, f"{vectors:.1f} float64 n-vectors at the peak"
