"""Hostile inputs on the newer surfaces (issue 21: "Data lost", "Hangs and memory").

One test per class: the exit code, one ``error:`` line and no traceback, files
complete or absent, and, where memory is the hazard, a subprocess under
``RLIMIT_AS`` so a regression fails instead of swapping the machine.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    env.pop("HESSCLI_DENSE_BUDGET", None)
    env.update(extra)
    return env


def one_error_line(stderr: str) -> str:
    """The single ``error:`` line of a refused command (and nothing that looks like a
    traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert len(errors[0]) <= 2000 + len("error: "), errors[0][:200]
    return errors[0]


# ---- Ctrl-C during start-up ------------------------------------------------------------

#: Started by the test: Python's own start-up (``site``, .pth files) is done when it
#: prints "go"; from there on hesscli's code runs, exactly as in the ``hesscli`` script.
LAUNCH = textwrap.dedent("""
    import os, runpy, sys
    sys.argv = ["hesscli", *sys.argv[1:]]
    os.write(2, b"go\\n")
    runpy.run_module("hesscli", run_name="__main__", alter_sys=True)
""")


@pytest.mark.parametrize("delay", [0.02, 0.05, 0.15, 0.3, 0.6, 1.0, 1.6])
def test_ctrl_c_during_start_up_exits_130_with_one_line(delay, tmp_path):
    """Interrupted anywhere from its first instruction (imports, JAX's import, the
    first compile), hesscli says ``error: interrupted`` and exits 130: never a
    traceback, never "Exception ignored", never exit 0 with a result nor exit 4."""
    cmd = [sys.executable, "-c", LAUNCH, "analyze", "rosenbrock", "--at", "1,1",
           "--format", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            env=_env(HESSCLI_CACHE_DIR=str(tmp_path / "cache")))
    assert proc.stderr is not None
    assert proc.stderr.readline() == b"go\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    stderr = err.decode()
    if proc.returncode == 0:  # finished before the signal arrived: a whole result
        assert delay >= 0.6, stderr
        assert json.loads(out)["schema"] == "hesscli.analyze/1"
        assert "Traceback" not in stderr and "Exception ignored" not in stderr
        return
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert out == b""
    assert stderr.splitlines() == ["error: interrupted"], stderr


# ---- outputs checked before the work ---------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".txt", ".csv"])
def test_train_save_point_in_a_one_array_format_is_refused_before_training(suffix, tmp_path,
                                                                           hess):
    """The built-in mlp's parameters are a pytree: .npy/.txt/.csv cannot hold them, and
    that is said before a single step (not after the run)."""
    out = tmp_path / f"p{suffix}"
    log = tmp_path / "run.jsonl"
    t0 = time.process_time()
    res = hess("train", "mlp", "--steps", "100000000", "--save-point", out, "--out", log)
    assert res.exit_code == 2, res.output
    line = one_error_line(res.stderr)
    assert "--save-point" in line and "pytree" in line and ".npz" in line
    assert not out.exists() and not log.exists()
    assert time.process_time() - t0 < 120  # 10⁸ steps would take hours: none were run


def test_analyze_save_escape_in_a_one_array_format_is_refused_before_the_analysis(tmp_path,
                                                                                  hess):
    out = tmp_path / "e.txt"
    res = hess("analyze", "mlp", "--save-escape", out)
    assert res.exit_code == 2, res.output
    assert "--save-escape" in one_error_line(res.stderr)
    assert res.stdout == "" and not out.exists()


# ---- the API: a backend built for another function -------------------------------------


def test_api_refuses_a_backend_built_for_another_function():
    import jax.numpy as jnp

    import hesscli
    from hesscli.errors import InputError

    def bowl(p):
        return jnp.sum(p**2)

    def cap(p):  # every eigenvalue −2; the bowl's backend would say +2
        return -jnp.sum(p**2)

    x = jnp.ones(3)
    res = hesscli.analyze(bowl, x)
    with pytest.raises(InputError, match="built for"):
        hesscli.analyze(cap, x, curvature=res.curvature)
    with pytest.raises(InputError, match="built for"):
        hesscli.spectrum(cap, x, curvature=res.curvature)
    np.testing.assert_allclose(hesscli.analyze(cap, x).eigenvalues, [-2.0] * 3, atol=1e-12)
    again = hesscli.analyze(bowl, 2 * x, curvature=res.curvature)  # same function: reused
    np.testing.assert_allclose(again.eigenvalues, [2.0] * 3, atol=1e-12)


def test_api_loop_compiles_once_per_function():
    """A loop of API calls on one function reuses its compiled programs (it used to
    compile five new ones per call and die of memory near 460 calls)."""
    import jax.numpy as jnp
    from jax import monitoring

    import hesscli

    compiles = []

    def listener(event: str, duration: float, **_: object) -> None:
        if event.endswith("backend_compile_duration"):
            compiles.append(event)

    monitoring.register_event_duration_secs_listener(listener)
    try:
        def quartic(p):
            return jnp.sum(p**4) - jnp.sum(p[:-1] * p[1:]) + 0.5 * jnp.sum(p**2)

        x = jnp.linspace(-1.0, 1.0, 7)
        for seed in range(2):  # the first compiles the backend, the second the reuse check
            hesscli.spectrum(quartic, x, seed=seed, trace=True)
        first = len(compiles)
        for seed in range(2, 7):
            hesscli.spectrum(quartic, x, seed=seed, trace=True)
        assert len(compiles) == first, compiles
    finally:
        from jax._src import monitoring as private

        private.unregister_event_duration_listener(listener)


def test_api_rebuilds_when_the_function_reads_changed_globals():
    """Reuse must never analyze stale data: a function whose global data changed
    between calls gets a fresh backend (its compiled value no longer matches)."""
    import jax.numpy as jnp

    import hesscli

    scale = [1.0]

    def f(p):
        return scale[0] * jnp.sum(p**2)

    x = jnp.ones(2)
    np.testing.assert_allclose(hesscli.analyze(f, x).eigenvalues, [2.0, 2.0], atol=1e-12)
    scale[0] = -3.0
    np.testing.assert_allclose(hesscli.analyze(f, x).eigenvalues, [-6.0, -6.0], atol=1e-12)


def _limited(code: str, limit_bytes: int, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with its address space capped."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=_env(), preexec_fn=cap, cwd=ROOT)


# ---- --blocks on the matrix-free path --------------------------------------------------


def test_matrix_free_blocks_use_the_certified_solver_within_the_budget():
    """Two leaves of 450 parameters (above the dense-block size), each a diagonal
    quadratic with a known spectrum, one coupling term: every matrix-free block's
    certified intervals hold its true extremes, within the --max-steps budget (ARPACK
    at tol 1e-10 with 20·size iterations used to run past 50 000 products)."""
    import jax.numpy as jnp

    import hesscli

    m = 450
    # isolated ends (gap 0.5 to the rest), so a converged end is the true extreme
    da = np.concatenate([[-1.0], np.linspace(-0.5, 2.5, m - 2), [3.0]])  # λ ∈ [−1, 3]
    db = np.concatenate([[0.5], np.linspace(1.0, 6.5, m - 2), [7.0]])  # λ ∈ [0.5, 7]

    def f(p):
        return (0.5 * jnp.sum(da * p["a"] ** 2) + 0.5 * jnp.sum(db * p["b"] ** 2)
                + 0.01 * p["a"][0] * p["b"][0])

    # the diagonal blocks of H are exactly diag(da) and diag(db): the coupling is off-block
    point = {"a": np.full(m, 0.1), "b": np.full(m, -0.2)}
    res = hesscli.analyze(f, point, path="matrix-free", blocks="leaf", max_steps=400)
    report = res.parts["blocks"]
    got = {b.name: b for b in report.blocks}
    for name, diag in (("a", da), ("b", db)):
        b = got[name]
        assert b.method == "lanczos" and b.bounds is not None
        lo, hi = b.bounds.min_interval
        assert lo <= diag.min() <= hi, (name, b.bounds.min_interval)
        lo, hi = b.bounds.max_interval
        assert lo <= diag.max() <= hi, (name, b.bounds.max_interval)
        assert b.bounds.max_at_least <= diag.max()  # the proven side, rounding included
        assert b.bounds.min_at_most >= diag.min()
    block_hvps = sum(b.hvps for b in report.blocks)
    assert block_hvps <= 2 * (400 + 10 + 40)  # budget + Ritz checks + trace and coupling
    doc = res.to_json()["blocks"]["blocks"]
    assert all("lambda_max_interval" in b and b["converged"] in (True, False) for b in doc)


# ---- checks.yaml: alias bombs, long specs ------------------------------------------------


def _bomb(levels: int) -> str:
    """A YAML flow list whose last item expands to 9**levels numbers."""
    items = ["&a0 [1,2,3,4,5,6,7,8,9]"] + [
        f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize("where", ["seed", "at", "expect"])
def test_yaml_alias_bomb_is_refused_small_and_fast(where, tmp_path):
    """9 levels of nine aliases (9⁹ values once expanded): refused while reading, in
    bounded memory, with a short message (it was a 358 MB error line, or > 60 s)."""
    value = _bomb(9)
    body = (f"    expect: {{lambda_min: {value}}}\n" if where == "expect"
            else f"    {where}: {value}\n    expect: {{lambda_min: 1}}\n")
    spec = tmp_path / "bomb.yaml"
    spec.write_text("checks:\n  - objective: rosenbrock\n" + body)
    code = f"""
import sys
sys.argv = ["hesscli", "check", {str(spec)!r}]
from hesscli.cli import main
main()
"""
    out = _limited(code, 1 << 30, timeout=120)  # 1 GiB of address space is plenty
    assert out.returncode == 2, out.stderr[-500:]
    line = one_error_line(out.stderr)
    assert "alias" in line and len(line) < 400


def test_a_message_quoting_a_large_value_is_cut(tmp_path, hess):
    """Below the alias limit (9⁶ values) the value may reach a message: one line, cut."""
    spec = tmp_path / "big.yaml"
    spec.write_text(f"checks:\n  - objective: rosenbrock\n    expect: {{lambda_min: {_bomb(6)}}}\n")
    res = hess("check", spec)
    assert res.exit_code == 2, res.output[-500:]
    line = one_error_line(res.stderr)
    assert len(line) <= 2000 + len("error: ")


def test_spec_reports_a_missing_file_before_validating_every_check(tmp_path, hess):
    """Files are checked on the raw checks first (each distinct path once), so a
    long spec's missing file is reported before the rest is validated; the check
    names are compared in linear time."""
    lines = ["checks:"]
    lines += [f"  - {{name: c{i}, objective: rosenbrock, at: '1,1', expect: {{lambda_min: 0}}}}"
              for i in range(3000)]
    lines.append("  - {name: last, objective: missing.py, expect: {bogus_key: 1}}")
    spec = tmp_path / "long.yaml"
    spec.write_text("\n".join(lines) + "\n")
    res = hess("check", spec)
    assert res.exit_code == 2, res.output[-500:]
    line = one_error_line(res.stderr)
    assert "checks[3000].objective" in line and "missing.py" in line


# ---- memory: sizes refused up front ----------------------------------------------------


def test_msgpack_point_is_size_limited_like_the_other_formats(tmp_path):
    """A 16 MB msgpack for a 2-parameter objective is refused before it is read whole
    (a 3 GiB one held 6.4 GB resident before the error)."""
    serialization = pytest.importorskip("flax.serialization")
    big = tmp_path / "big.msgpack"
    big.write_bytes(serialization.msgpack_serialize({"x": np.zeros(2_000_000)}))
    code = f"""
import sys
sys.argv = ["hesscli", "analyze", "rosenbrock", "--at", {str(big)!r}]
from hesscli.cli import main
main()
"""
    out = _limited(code, 2 << 30)
    assert out.returncode == 2, out.stderr[-500:]
    line = one_error_line(out.stderr)
    assert "big.msgpack" in line and "MiB" in line


@pytest.mark.parametrize("budget", ["1e30", "40GiB"])
def test_a_raised_dense_budget_is_checked_against_the_machine(budget):
    """With the address space capped at 3 GiB, a budget that lets n = 12 560 go dense
    (4.7 GiB) is refused with the size, exit 2 (it aborted inside XLA, exit 134)."""
    code = """
import sys
sys.argv = ["hesscli", "analyze", "mlp", "-p", "width=256"]
from hesscli.cli import main
main()
"""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=_env(HESSCLI_DENSE_BUDGET=budget), preexec_fn=cap,
                         cwd=ROOT)
    assert out.returncode == 2, out.stderr[-500:]
    line = one_error_line(out.stderr)
    assert "HESSCLI_DENSE_BUDGET" in line and "4.7 GiB" in line and "--matrix-free" in line


# ---- quadratic costs -------------------------------------------------------------------


class _NaivePeak:
    """The old rule for a rising run, with the peak recomputed from the whole run."""

    def __init__(self) -> None:
        self.rise: list[float] = []
        self.closed: list[int] = []

    def feed(self, ratio: float) -> None:
        from hesscli.training.dynamics import RISE_SLACK

        if self.rise and ratio < max(self.rise) - RISE_SLACK:
            self.closed.append(len(self.rise))
            self.rise = [ratio]
        else:
            self.rise.append(ratio)


def test_dynamics_keeps_its_rising_peak_in_constant_time():
    """The rising-run peak is kept as it grows (it was recomputed per record: a
    monitor-every-1 run of 80 000 steps took 188 s); the runs it cuts are the ones
    the whole-run maximum cuts, on noisy sequences below the band."""
    from hesscli.training.dynamics import DynamicsWatch

    rng = np.random.default_rng(0)
    for trial in range(20):
        ratios = np.clip(np.cumsum(rng.normal(0.0, 0.02, 300)) + 1.0, 0.1, 1.7)
        watch = DynamicsWatch(lr=1.0)
        naive = _NaivePeak()
        lengths = []
        for step, r in enumerate(ratios):
            before = list(watch.rise)
            watch.feed(step, float(r), 1.0)
            if watch.rise and len(watch.rise) == 1 and before:
                lengths.append(len(before))
            naive.feed(float(r))
            assert watch.rise_peak == max(p[1] for p in watch.rise)
        assert lengths == naive.closed, trial


@pytest.mark.parametrize("steps", ["1000000000000", "1000000000000000000"])
def test_train_with_astronomical_steps_is_refused_up_front(steps, hess, tmp_path):
    """10¹² steps log every 10¹⁰: one logged interval's per-step outputs alone are
    hundreds of GiB (it was exit 4, RESOURCE_EXHAUSTED). Refused before any work,
    with the size, and no log file left."""
    log = tmp_path / "run.jsonl"
    res = hess("train", "ravine", "--steps", steps, "--out", log)
    assert res.exit_code == 2, res.output
    line = one_error_line(res.stderr)
    assert "needs about" in line and "--monitor-every" in line
    assert not log.exists()
