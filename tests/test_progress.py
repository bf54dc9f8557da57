"""Progress of the matrix-free eigensolvers: the reports, the hook out of compiled code,
and the line on stderr (never stdout, only after a delay, only on a terminal unless asked).

References are derived: A = Q diag(λ) Qᵀ with known eigenvalues; the reports' Ritz
values must approach them within the residual estimates the reports carry.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from rich.console import Console

from hesscli.curvature.exact import hessian_at
from hesscli.jaxconf import jax_module
from hesscli.progress import Progress, device_report, report, reporting
from hesscli.render import progress_view
from hesscli.render.progress_view import ProgressLine, progress_line, progress_text
from hesscli.spectra.arpack import arpack_extremes
from hesscli.spectra.certify import Solve
from hesscli.spectra.lanczos import lanczos_extremes

jax = jax_module()
jnp = jax.numpy

N = 200
LAMBDAS = np.concatenate([[-0.3], np.linspace(0.0, 1.0, N - 2), [1.4]])


@pytest.fixture(scope="module")
def known():
    """(jitted HVP of ½xᵀAx, f, sorted eigenvalues) for A = Q diag(λ) Qᵀ."""
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    a = jnp.asarray((q * LAMBDAS) @ q.T)

    def f(x):
        return 0.5 * x @ a @ x

    hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1])
    return hvp, f, np.sort(LAMBDAS)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lanczos_reports_converge_to_the_known_ends(known):
    hvp, f, lam = known
    seen: list[Progress] = []
    ex = lanczos_extremes(hvp, np.zeros(N), Solve(1, seed=0), f=hessian_at(f),
                          progress=seen.append)
    assert len(seen) >= 2
    counts = [p.hvps for p in seen]
    assert counts == sorted(counts) and counts[-1] == ex.steps
    last = seen[-1]
    assert last.solver == "lanczos" and last.restarts == 0
    # converged: the last report's bounds meet its target, and its Ritz values are the
    # true ends (isolated eigenvalues: error ≤ residual²/gap, far below the target)
    assert last.done("max") and last.done("min")
    assert last.lambda_max == pytest.approx(lam[-1], abs=last.target)
    assert last.lambda_min == pytest.approx(lam[0], abs=last.target)
    # Ritz values are interior: θmax ≤ λmax and θmin ≥ λmin at every report
    eps = 1e-12 * abs(lam).max()
    assert all(p.lambda_max <= lam[-1] + eps and p.lambda_min >= lam[0] - eps for p in seen)


def test_restarted_reports_from_the_compiled_loop(known):
    """The thick-restart solver reports from inside its compiled loop: restarts counted,
    Ritz values inside the spectrum and at the known ends when it stops."""
    from hesscli.spectra.restarted import restarted_extremes

    hvp, f, lam = known
    seen: list[Progress] = []
    ex = restarted_extremes(hvp, np.zeros(N), Solve(1, seed=0, rtol=1e-8), f=hessian_at(f),
                            basis=16, progress=seen.append)
    assert seen and all(p.solver == "thick-restart lanczos" for p in seen)
    counts = [p.hvps for p in seen]
    assert counts == sorted(counts) and counts[-1] == ex.steps
    assert seen[-1].restarts == ex.restarts > 0  # a basis of 16 must restart here
    assert seen[-1]["hvps"] == seen[-1].hvps  # mapping access, as callers may use it
    eps = 1e-12 * abs(lam).max()
    assert all(p.lambda_max <= lam[-1] + eps and p.lambda_min >= lam[0] - eps for p in seen)
    last = seen[-1]
    assert last.lambda_max == pytest.approx(lam[-1], abs=max(last.target, 1e-8))
    assert last.lambda_min == pytest.approx(lam[0], abs=max(last.target, 1e-8))


def test_installed_sink_is_used_and_removed(known):
    hvp, f, _ = known
    seen: list[Progress] = []
    with reporting(seen.append):
        lanczos_extremes(hvp, np.zeros(N), Solve(1, seed=0), f=hessian_at(f))
    assert seen
    count = len(seen)
    # no sink installed: nothing
    lanczos_extremes(hvp, np.zeros(N), Solve(1, seed=0), f=hessian_at(f))
    assert len(seen) == count
    report(None, Progress(solver="lanczos", hvps=1))  # no sink: a no-op
    assert len(seen) == count


def test_arpack_reports_hvp_counts(known):
    hvp, _, _ = known
    seen: list[Progress] = []
    ex = arpack_extremes(hvp, np.zeros(N), Solve(1, seed=0), progress=seen.append)
    assert [p.hvps for p in seen] == list(range(10, ex.hvps + 1, 10))
    assert all(p.solver == "arpack" and math.isnan(p.bound_max) for p in seen)


def test_device_report_leaves_compiled_loops():
    """Reports from inside a jitted loop reach the installed sink, one per iteration."""

    @jax.jit
    def run(x):
        def body(i, x):
            x = 0.5 * x
            device_report("thick-restart lanczos", (i + 1) * 10, i, -x, x, x / 10, x / 100,
                          1e-3)
            return x

        return jax.lax.fori_loop(0, 3, body, x)

    seen: list[Progress] = []
    with reporting(seen.append):
        jax.block_until_ready(run(jnp.asarray(8.0)))
        jax.effects_barrier()
    assert [(p.hvps, p.restarts) for p in seen] == [(10, 0), (20, 1), (30, 2)]
    assert [p.lambda_max for p in seen] == [4.0, 2.0, 1.0]
    assert seen[-1].bound_max == pytest.approx(0.01) and seen[-1].target == 1e-3
    assert seen[-1].done("max") is False and seen[-1].solver == "thick-restart lanczos"
    jax.block_until_ready(run(jnp.asarray(8.0)))  # no sink: the same program runs quietly
    jax.effects_barrier()
    assert len(seen) == 3


def test_progress_text_marks_the_ends_that_met_the_target():
    p = Progress(solver="lanczos", hvps=40, restarts=2, lambda_min=-2.5, lambda_max=92.5,
                 bound_min=3e-2, bound_max=1e-9, target=1e-4)
    text = progress_text(p)
    assert text.startswith("lanczos 40 HVPs · 2 restarts")
    assert "λmax 92.5 ±1.0e-09 ✓" in text and "λmin -2.5 ±3.0e-02 ·" in text
    assert "target 1.0e-04" in text
    assert "λmin …" in progress_text(Progress(solver="arpack", hvps=10))


def test_line_waits_for_the_delay_and_rate_limits_plain_output():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    clock = Clock()
    line = ProgressLine(console, delay=1.0, clock=clock)
    line(Progress(solver="lanczos", hvps=8))
    assert out.getvalue() == ""  # a run shorter than the delay shows nothing
    clock.now = 1.5
    line(Progress(solver="lanczos", hvps=16))
    clock.now = 2.0  # within a second of the last line: skipped
    line(Progress(solver="lanczos", hvps=24))
    clock.now = 2.6
    line(Progress(solver="lanczos", hvps=32))
    line.close()
    assert out.getvalue().splitlines() == [
        progress_text(Progress(solver="lanczos", hvps=16)),
        progress_text(Progress(solver="lanczos", hvps=32)),
    ]


def test_line_on_a_terminal_is_drawn_in_place_and_removed():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    clock = Clock()
    line = ProgressLine(console, delay=0.0, clock=clock)
    line(Progress(solver="lanczos", hvps=8))
    line(Progress(solver="lanczos", hvps=16))
    line.close()
    assert line.shown == 2 and line.live is None
    assert "lanczos" in out.getvalue()


def test_progress_line_off_when_not_a_terminal_unless_asked():
    console = Console(file=io.StringIO(), force_terminal=False)
    with progress_line(None, console) as sink:
        assert sink is None
    with progress_line(True, console) as sink:
        assert isinstance(sink, ProgressLine)
    with progress_line(False, Console(file=io.StringIO(), force_terminal=True)) as sink:
        assert sink is None


@pytest.mark.parametrize("flag", ["--progress", None])
def test_cli_progress_goes_to_stderr_only(hess, monkeypatch, flag):
    monkeypatch.setattr(progress_view, "DELAY", 0.0)
    args = ["analyze", "saddle", "-p", "n=40", "--matrix-free", "--format", "json"]
    res = hess(*args, *([flag] if flag else []))
    assert res.exit_code == 0, res.output
    doc = res.json()  # stdout is exactly the JSON document
    # the saddle's Hessian is diag(1, …, 1, −1)
    assert doc["eigenvalues"] == pytest.approx([-1.0, 1.0], abs=1e-6)
    if flag:
        assert "lanczos" in res.stderr and "HVPs" in res.stderr
    else:  # CliRunner's stderr is not a terminal: nothing unless asked
        assert "HVPs" not in res.stderr
