"""``analyze`` on black boxes and with ``--method fd``, ``--fd-accuracy``, ``--verify``, kinks."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import numpy as np
import pytest

from hesscli.schemas import load_schema
from tests.fd_helpers import NUMPY_ABS, NUMPY_HINGE, NUMPY_SMOOTH, smooth_hessian

QUARTIC = '''
import numpy as np

def objective(x):
    return float(x[0] ** 2 + x[1] ** 4)   # degenerate minimum at 0: H = diag(2, 0)

x0 = np.zeros(2)
'''


def validate_analyze(doc: dict) -> None:
    jsonschema.validate(doc, load_schema("analyze"))


@pytest.fixture
def smooth_np(write):
    return str(write("smooth_np.py", NUMPY_SMOOTH))


def test_black_box_falls_back_to_fd(hess, smooth_np):
    res = hess("analyze", smooth_np, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate_analyze(doc)
    assert doc["method"] == "fd"
    assert "JAX cannot trace it" in doc["method_reason"]
    assert doc["fd"]["source"] == "function values"
    assert doc["fd"]["accuracy"] == "normal"
    assert doc["fd"]["evaluations"] > 0
    assert doc["smooth"] is True
    # eigenvalues of the hand-derived Hessian at x0, within the FD error band
    x0 = np.linspace(-0.5, 0.7, 6)
    lam = np.linalg.eigvalsh(smooth_hessian(x0))
    assert doc["fd"]["hessian_error"] < 1e-4
    np.testing.assert_allclose(doc["eigenvalues"], lam, atol=doc["fd"]["hessian_error"])
    assert doc["tolerance"] >= doc["fd"]["hessian_error"]
    table = hess("analyze", smooth_np)
    assert table.exit_code == 0, table.output
    assert "method fd" in table.stdout and "JAX cannot trace it" in table.stdout
    assert "function values, accuracy normal" in table.stdout


def test_method_exact_on_black_box_is_input_error(hess, smooth_np):
    res = hess("analyze", smooth_np, "--method", "exact")
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: --method exact:")
    assert "--method fd" in res.stderr and res.stdout == ""


def test_method_fd_on_traceable_rosenbrock(hess):
    res = hess("analyze", "rosenbrock", "--at", "1,1", "--method", "fd", "--fd-accuracy",
               "high", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate_analyze(doc)
    assert doc["method"] == "fd" and doc["method_reason"] == "--method fd"
    assert doc["fd"]["source"] == "gradient differences" and doc["fd"]["accuracy"] == "high"
    # H(1,1) = [[802, −400], [−400, 200]]
    lam = np.linalg.eigvalsh(np.array([[802.0, -400.0], [-400.0, 200.0]]))
    np.testing.assert_allclose(doc["eigenvalues"], lam, rtol=1e-9)
    assert doc["classification"] == "local_minimum"
    assert 0 <= doc["symmetry_error"] < 1e-9


def test_zero_eigenvalue_inside_error_band_is_degenerate(hess, write):
    # FD of y⁴ at 0 gives 2h² ≈ 3e-8 > 0: without the error band that would read
    # "local minimum"; the band (|D(h) − D(2h)|/3 = 2h²) makes it zero
    path = write("quartic.py", QUARTIC)
    res = hess("analyze", str(path), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["eigenvalues"][0] > 0
    assert doc["eigenvalues"][0] <= doc["tolerance"]
    assert doc["classification"] == "degenerate"
    assert doc["inertia"] == {"positive": 1, "negative": 0, "zero": 1, "complete": True}


def test_kink_abs_in_analyze(hess, write):
    path = write("abs_np.py", NUMPY_ABS)
    res = hess("analyze", str(path), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate_analyze(doc)
    assert doc["smooth"] is False
    assert doc["nonsmooth"]["parameters"] == ["x[0]"]
    assert doc["nonsmooth"]["slope_jump"] == pytest.approx([2.0])
    # no Hessian exists at a kink: no second-order verdict (the word for that is
    # "undetermined", as for the exact path's kink probe)
    assert doc["classification"] == "undetermined"
    table = hess("analyze", str(path))
    assert "Not smooth at this point" in table.stdout and "x[0]" in table.stdout
    assert "no second-order verdict" in table.stdout


def test_kink_hinge_margin_one_in_analyze(hess, write):
    path = write("hinge_np.py", NUMPY_HINGE)
    res = hess("analyze", str(path), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate_analyze(doc)
    assert doc["smooth"] is False
    assert doc["nonsmooth"]["parameters"] == ["x[0]", "x[1]"]
    # the gradient (1.46) is beyond gtol plus half the slope jumps (‖(1,2)‖/2 = 1.12)
    assert doc["classification"] == "not_critical"
    assert "escape" not in doc


def test_kink_on_builtin_svm_at_a_margin(hess):
    from hesscli.objective.files import load_file

    svm = load_file("svm", {})
    X, y = np.asarray(svm.module.X), np.asarray(svm.module.y)
    w = y[0] * X[0] / (X[0] @ X[0])  # margin of sample 0 exactly 1 (up to rounding)
    at = ",".join(repr(float(v)) for v in w)
    res = hess("analyze", "svm", "--at", at, "--method", "fd", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["smooth"] is False
    assert len(doc["nonsmooth"]["parameters"]) == 5  # X[0] has no zero entry
    assert doc["classification"] in ("degenerate", "not_critical")


def test_verify_passes_on_exact_and_reports(hess):
    res = hess("analyze", "rosenbrock", "--at", "-1.2,1", "--verify", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate_analyze(doc)
    v = doc["verify"]
    assert v["performed"] is True and v["passed"] is True
    # FD of the gradient at ε^(1/3): relative error ≈ ε^(2/3)·|f'''|/|H| ≲ 1e-8
    assert v["hvp"]["relative_error"] < 1e-8
    assert v["relative_error"] == v["hvp"]["relative_error"]
    table = hess("analyze", "rosenbrock", "--at", "-1.2,1", "--verify")
    assert "verify Hessian-vector product" in table.stdout and "passed" in table.stdout


def test_verify_catches_wrong_rule_and_exits_1(hess, write):
    from tests.fd_helpers import CUSTOM_RULES

    path = write("rules.py", CUSTOM_RULES)
    res = hess("analyze", str(path), "-p", "factor=2", "--verify", "--format", "json")
    assert res.exit_code == 1, res.output
    doc = res.json()
    validate_analyze(doc)
    assert doc["verify"]["passed"] is False
    assert doc["verify"]["directional_derivative"]["passed"] is False
    assert "--verify" in res.stderr


def test_verify_on_black_box_is_skipped(hess, smooth_np):
    res = hess("analyze", smooth_np, "--verify", "--format", "json")
    assert res.exit_code == 0, res.output
    validate_analyze(res.json())
    v = res.json()["verify"]
    assert v["performed"] is False and v["passed"] is None
    assert "black box" in v["why"]


def test_black_box_minimum_is_a_minimum(hess, write):
    from tests.fd_helpers import NUMPY_ROSENBROCK

    path = write("rosen_np.py", NUMPY_ROSENBROCK)
    res = hess("analyze", str(path), "--at", "1,1,1,1", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate_analyze(doc)
    assert doc["classification"] == "local_minimum"
    # gtol is widened by the FD gradient's own error estimate, which is reported:
    # truncation h²·|f‴|/6 with h = ε^(1/3) ≈ 6e-6 and f‴ = 2400 is 1.5e-8 per entry
    assert 0 < doc["fd"]["gradient_error"] < 1e-7
    assert doc["gradient_tolerance"] >= doc["fd"]["gradient_error"]


def test_examples_black_box_and_custom_rule(hess):
    root = Path(__file__).resolve().parent.parent / "examples"
    res = hess("analyze", str(root / "black_box.py"), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["method"] == "fd" and doc["classification"] == "not_critical"
    # Rosenbrock in 4 variables at (−1.2, 1, −1.2, 1): f and ∇f by hand; the gradient
    # from values is good to ~1e-7 relative (second-order steps of size ε^(1/3))
    x = np.array([-1.2, 1.0, -1.2, 1.0])
    r = x[1:] - x[:-1] ** 2
    grad = np.zeros(4)
    grad[:-1] += -400.0 * x[:-1] * r - 2.0 * (1.0 - x[:-1])
    grad[1:] += 200.0 * r
    assert doc["value"] == pytest.approx(np.sum(100.0 * r**2 + (1.0 - x[:-1]) ** 2), rel=1e-15)
    assert doc["gradient_norm"] == pytest.approx(np.linalg.norm(grad), rel=1e-6)
    wrong = hess("gradcheck", str(root / "custom_rule.py"), "-p", "factor=2",
                 "--format", "json")
    assert wrong.exit_code == 1, wrong.output
    # the rule says d softplus = 2σ(x); the truth is σ(x): ∂f/∂xᵢ = σ(xᵢ) + xᵢ
    x0 = np.array([0.3, -0.7, 1.1])
    sigma = 1.0 / (1.0 + np.exp(-x0))
    worst = [w for w in wrong.json()["worst"] if w["check"] == "gradient"]
    assert worst and not any(w["passed"] for w in worst)
    for w in worst:
        i = int(w["name"][2:-1])  # "x[i]"
        assert w["exact"] == pytest.approx(2 * sigma[i] + x0[i], rel=1e-12)
        assert w["fd"] == pytest.approx(sigma[i] + x0[i], rel=1e-6)
    right = hess("gradcheck", str(root / "custom_rule.py"), "--format", "json")
    assert right.exit_code == 0, right.output
    assert right.json()["gradient_max_rel_error"] < 1e-6
