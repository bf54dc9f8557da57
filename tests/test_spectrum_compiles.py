"""The programs a matrix-free ``spectrum`` compiles: each once, none for the trace (issue 19).

A 10⁶-parameter network's spectrum spent about half its wall time on fixed cost,
mostly XLA compilations, seconds to tens of seconds each whatever the size: the
trace compiled a ``lax.map`` of the HVP once per column count (Hutch++'s sketch,
then its basis and probes: two programs), and the value and the gradient were two
more programs. Counted here from JAX's own compile log (``jax_log_compiles``,
which names every program built, from the persistent cache or not), not timed.

The objective is f(x) = ½ Σ dᵢxᵢ² + ¼ Σ xᵢ⁴ at x = 0.1·1: H = diag(d + 3x²), so
the trace (Σ dᵢ + 3·0.01·n) and the ends are known by hand. The default estimator
chooses Hutch++ here (two column counts: the case that compiled two programs); its
interval must hold the true trace. On a diagonal matrix every Rademacher form zᵀHz
equals the trace, so Hutchinson's estimate must equal it to rounding: the products
the trace now borrows from the eigensolver are the Hessian at the point.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

N = 200
D = np.concatenate([[-5.0], 1.0 + np.arange(N - 2) / N, [20.0]])
SOURCE = f"""
import jax.numpy as jnp
D = jnp.array({D.tolist()!r})
def objective(x):
    return 0.5 * jnp.sum(D * x ** 2) + 0.25 * jnp.sum(x ** 4)
x0 = jnp.full({N}, 0.1)
"""
H_DIAG = D + 3 * 0.01


class Compiles(logging.Handler):
    """Every ``Compiling NAME with global shapes and types ARGS`` message, with the phase."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = "other"
        self.seen: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Compiling "):
            name, _, args = msg[len("Compiling "):].partition(" with global shapes and types ")
            self.seen.append((self.phase, name, args.split(". Argument mapping")[0]))


def spectrum(folder, *extra: str) -> tuple[dict, list[tuple[str, str, str]]]:
    """One ``spectrum --matrix-free --k 1 --format json`` of a fresh copy of the objective
    (new functions: nothing compiled in memory yet), with its compilations logged."""
    from hesscli.analysis import spectrum_report
    from hesscli.jaxconf import jax_module
    from tests.conftest import run_cli

    jax = jax_module()
    path = folder / "diag_quartic.py"
    path.write_text(SOURCE)
    handler = Compiles()
    logger = logging.getLogger("jax")
    old_level, old_flag = logger.level, jax.config.jax_log_compiles
    estimate = spectrum_report.estimate_trace

    def traced(*args, **kwargs):
        handler.phase = "trace"
        try:
            return estimate(*args, **kwargs)
        finally:
            handler.phase = "other"

    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    jax.config.update("jax_log_compiles", True)
    spectrum_report.estimate_trace = traced
    try:
        res = run_cli("spectrum", str(path), "--matrix-free", "--k", "1", "--format", "json",
                      *extra)
    finally:
        spectrum_report.estimate_trace = estimate
        jax.config.update("jax_log_compiles", old_flag)
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert res.exit_code == 0, res.output
    return res.json(), handler.seen


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return spectrum(tmp_path_factory.mktemp("auto"))


def test_the_numbers_are_the_hessians(run):
    doc, _ = run
    assert doc["n"] == N
    assert doc["lambda_max"] == pytest.approx(H_DIAG.max(), rel=1e-6)
    assert doc["lambda_min"] == pytest.approx(H_DIAG.min(), rel=1e-6)
    trace = doc["trace"]
    assert trace["hvps"] == 30 and trace["estimator"] == "hutch++"
    low, high = trace["interval"]
    assert low <= H_DIAG.sum() <= high


def test_hutchinson_on_a_diagonal_hessian_is_exact(tmp_path):
    doc, seen = spectrum(tmp_path, "--estimator", "hutchinson")
    assert doc["trace"]["estimator"] == "hutchinson"
    assert doc["trace"]["estimate"] == pytest.approx(float(H_DIAG.sum()), rel=1e-12)
    assert [s for s in seen if s[0] == "trace"] == []


def test_the_trace_compiles_nothing(run):
    """Its products go through the eigensolver's single-product program, compiled by then."""
    _, seen = run
    assert [s for s in seen if s[0] == "trace"] == []


def test_no_program_compiles_twice(run):
    """No name with the same argument shapes twice: a recompile, or the value and the
    gradient as two programs of the point (both ``jit(flat_fn)``)."""
    _, seen = run
    programs = [(name, args) for _, name, args in seen]
    twice = {p for p in programs if programs.count(p) > 1}
    assert not twice


def test_value_and_gradient_are_one_program(run):
    """The objective's programs of the point alone (``jit(flat_fn)``: the value, the
    gradient, or both): one."""
    _, seen = run
    point_only = [name for _, name, args in seen if args == f"(ShapedArray(float64[{N}]),)"]
    assert point_only.count("jit(flat_fn)") == 1, point_only
