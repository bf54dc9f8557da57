"""The shared mechanisms reach every command: matrix-free extremes in train's monitor,
convexity's eigenvalue test and landscape above the dense limit; --expect on spectrum,
gradcheck and train.

Dense and matrix-free answers are compared on small problems with the dense
limit forced down (a parameter, not a large n): every Ritz value θ with
residual r = ‖Hv − θv‖ has an eigenvalue within r, so the matrix-free λmin and
λmax must agree with LAPACK's to within their reported error band (plus
rounding).
"""

from __future__ import annotations

import numpy as np
import pytest

from hesscli.api import load
from hesscli.curvature.exact import ExactCurvature


@pytest.fixture(scope="module")
def mlp():
    obj = load("mlp", None, ("width=2", "samples=32"), seed=0, dtype="float64", method="auto")
    return obj, ExactCurvature(obj)


def close(got: float, want: float, band: float, scale: float) -> bool:
    return abs(got - want) <= band + 1e-9 * scale


def test_monitor_matrix_free_extremes_match_dense(mlp):
    from hesscli.spectra.policy import SpectrumPolicy
    from hesscli.training.monitor import extreme_eigenvalues

    obj, cur = mlp
    dense = extreme_eigenvalues(cur, obj.x)
    free = extreme_eigenvalues(cur, obj.x, policy=SpectrumPolicy(path="matrix-free", k=1))
    lam = np.linalg.eigvalsh(cur.hessian(obj.x).matrix)
    scale = float(np.max(np.abs(lam)))
    assert dense.path == "dense" and free.path == "matrix-free"
    assert dense.lambda_min == pytest.approx(lam[0], abs=1e-10 * scale)
    assert free.error <= 1e-6 * scale  # the residual target rtol·max|λ|
    assert close(free.lambda_min, lam[0], free.error, scale)
    assert close(free.lambda_max, lam[-1], free.error, scale)


def test_train_monitors_matrix_free_above_the_limit(mlp):
    from hesscli.spectra.policy import SpectrumPolicy
    from hesscli.training.loop import TrainConfig, optimizer_for, train

    obj, cur = mlp
    config = TrainConfig(lr=0.05, steps=20, monitor_every=10)
    dense = train(obj, cur, optimizer_for(config), config)
    free = train(obj, cur, optimizer_for(config), config,
                 policy=SpectrumPolicy(path="matrix-free", k=1))
    assert any("matrix-free" in note for note in free.notes)
    assert len(dense.history) == len(free.history) == 3
    for a, b in zip(dense.history, free.history, strict=True):
        assert a.value == b.value  # the trajectory does not depend on the monitor
        scale = max(abs(a.lambda_min), abs(a.lambda_max))
        assert b.lambda_min is not None and b.lambda_max is not None
        assert close(b.lambda_min, a.lambda_min, 1e-6 * scale, scale)
        assert close(b.lambda_max, a.lambda_max, 1e-6 * scale, scale)


def test_convexity_eigenvalue_test_goes_matrix_free_above_the_limit(hess, monkeypatch):
    """saddle n=4: H = diag(1, 1, 1, 3y² − 1); same points, same smallest λmin."""
    args = ("convexity", "saddle", "-p", "n=4", "--box", "-1,1", "--samples", "0",
            "--hessian-points", "6", "--seed", "2", "--format", "json")
    dense = hess(*args)
    assert dense.exit_code == 0, dense.output
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "1")  # auto now picks matrix-free
    free = hess(*args)
    assert free.exit_code == 0, free.output
    a, b = dense.json()["hessian"], free.json()["hessian"]
    assert b["skipped"] is None and b["points"] == a["points"] == 6
    assert b["violations"] == a["violations"]
    assert b["smallest_eigenvalue"] == pytest.approx(a["smallest_eigenvalue"], abs=1e-8)
    assert any("matrix-free" in note for note in free.json()["notes"])
    assert not any("matrix-free" in note for note in dense.json()["notes"])


def test_landscape_uses_the_matrix_free_spectrum_when_the_chooser_says_so(hess, monkeypatch):
    args = ("landscape", "mlp", "-p", "width=2", "-p", "samples=32", "--points", "5",
            "--grid", "3", "--format", "json")
    dense = hess(*args)
    assert dense.exit_code == 0, dense.output
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "1")  # auto now picks matrix-free
    free = hess(*args)
    assert free.exit_code == 0, free.output
    a, b = dense.json(), free.json()
    scale = max(abs(a["lambda_min"]), abs(a["lambda_max"]))
    assert b["lambda_min"] == pytest.approx(a["lambda_min"], abs=1e-6 * scale)
    assert b["lambda_max"] == pytest.approx(a["lambda_max"], abs=1e-6 * scale)
    assert b["classification"] == a["classification"]
    assert any(note.startswith("matrix-free") for note in b["notes"])
    assert not any(note.startswith("matrix-free") for note in a["notes"])


# --- --expect on spectrum, gradcheck, train ----------------------------------------------
# ravine: ½xᵀAx with eigenvalues 1 and kappa = 100; rosenbrock's derivatives are right;
# the saddle ½x² + ¼y⁴ − ½y² started at 0 never moves under plain gradient descent.


@pytest.mark.parametrize("command", [
    ("spectrum", "ravine", "--at", "0,0"),
    ("gradcheck", "rosenbrock", "--at", "0,0"),
    ("train", "saddle", "--at", "zeros", "--steps", "4", "--monitor-every", "2"),
])
def test_expect_passes_and_fails(hess, command):
    holds = {"spectrum": ("inertia.negative=0", "lambda_max<=100.000001", "lambda_min>=0.999999"),
             "gradcheck": ("passed=true", "gradient_max_rel_error<1e-6"),
             "train": ("steps=4", "final_value=0", "final_classification=saddle_point")}[command[0]]
    broken = {"spectrum": "lambda_max<99", "gradcheck": "hessian_max_rel_error<1e-12",
              "train": "final_value<-0.1"}[command[0]]
    ok = hess(*command, *(a for h in holds for a in ("--expect", h)))
    assert ok.exit_code == 0, ok.output
    fail = hess(*command, "--expect", holds[0], "--expect", broken)
    assert fail.exit_code == 1, fail.output
    last = fail.stderr.splitlines()[-1]  # train shows progress on stderr before it
    assert last.startswith("error: 1 of 2 expectations failed: " + broken)
    assert fail.stdout  # the report is printed first
    typo = hess(*command, "--expect", "lamda=1")
    assert typo.exit_code == 2, typo.output
    assert typo.stderr.startswith("error: --expect 'lamda=1': no field 'lamda'")
