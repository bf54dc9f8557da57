"""``hesscli check``: strict specs, pass/fail per expectation, exit codes 0/1/2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jsonschema
import pytest

from hesscli.schemas import load_schema
from tests.helpers import QUADRATIC, one_error

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = load_schema("check")

PASSING = """
checks:
  - name: saddle
    objective: saddle
    at: zeros
    expect:
      classification: saddle_point
      definiteness: indefinite
      lambda_min: {min: -1.0000001, max: -0.9999999}   # diag(1, -1): exactly -1
      lambda_max: {min: 0.9999999, max: 1.0000001}
      condition_number: {max: 1.0000001}
      gradient_norm: {max: 0}
      critical: true
  - name: ravine steps
    objective: ravine
    params: {kappa: 50, rotate: false}
    at: [1, 1]
    lr: 0.01
    expect:
      step_increases_loss: false   # lr < 2 gᵀg / gᵀHg
      stable: true                 # lr < 2/50
"""

FAILING = """
checks:
  - name: too steep
    objective: ravine
    params: {kappa: 50, rotate: false}
    at: [1, 1]
    lr: 0.1                        # g = (1, 50): 2 gᵀg/gᵀHg = 2·2501/125001 ≈ 0.04 < 0.1
    expect:
      step_increases_loss: false
      classification: [not_critical, local_minimum]
"""


def test_passing_spec_exit_0_and_json(hess, write):
    spec = write("ok.yaml", PASSING)
    res = hess("check", spec)
    assert res.exit_code == 0, res.output
    assert "9 of 9 expectations hold" in res.stdout
    js = hess("check", spec, "--format", "json")
    assert js.exit_code == 0, js.output
    doc = js.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["passed"] is True and doc["expectations_total"] == 9
    saddle = doc["checks"][0]
    measured = {r["key"]: r["measured"] for r in saddle["results"]}
    assert measured["classification"] == "saddle_point"
    assert measured["lambda_min"] == pytest.approx(-1.0)
    assert measured["critical"] is True


def test_failing_spec_exit_1_report_first(hess, write):
    spec = write("bad.yaml", FAILING)
    res = hess("check", spec)
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.stdout and "pass" in res.stdout  # the table is printed
    assert res.stderr.startswith("error: 1 of 2 expectations failed")
    assert "step_increases_loss expected false, measured true" in res.stderr
    js = hess("check", spec, "--format", "json")
    assert js.exit_code == 1
    doc = js.json()
    jsonschema.validate(doc, SCHEMA)
    results = doc["checks"][0]["results"]
    assert [r["passed"] for r in results] == [False, True]


def test_python_tags_are_refused_not_executed(hess, write, tmp_path):
    marker = tmp_path / "pwned"
    spec = write("evil.yaml", f"""
checks:
  - objective: !!python/object/apply:os.system ["touch {marker}"]
    expect: {{classification: local_minimum}}
""")
    res = hess("check", spec)
    assert res.exit_code == 2, res.output
    assert "!!python" in res.stderr and "not allowed" in res.stderr
    assert not marker.exists()
    spec2 = write("evil2.yaml", "!!python/object/new:os.system [echo hi]\n")
    assert hess("check", spec2).exit_code == 2


@pytest.mark.parametrize("body, message", [
    ("checks:\n  - objective: saddle\n    expect: {lamda_min: {max: 0}}\n",
     "checks[0].expect: unknown key 'lamda_min' (did you mean 'lambda_min'?)"),
    ("checks:\n  - objective: saddle\n    expect: {lambda_min: {mxa: 0}}\n",
     "checks[0].expect.lambda_min: unknown key 'mxa' (did you mean 'max'?)"),
    ("checks:\n  - objective: saddle\n    objetcive: x\n    expect: {critical: true}\n",
     "checks[0]: unknown key 'objetcive' (did you mean 'objective'?)"),
    ("chekcs: []\n", "(top level): unknown key 'chekcs' (did you mean 'checks'?)"),
    ("checks:\n  - objective: saddle\n    lr: fast\n    expect: {critical: true}\n",
     "checks[0].lr: expected a number, got the string 'fast'"),
    ("checks:\n  - objective: saddle\n    expect: {critical: 'yes'}\n",
     "checks[0].expect.critical: expected true or false"),
    ("checks:\n  - objective: saddle\n    expect: {classification: saddle}\n",
     "'saddle' is not one of"),
    ("checks:\n  - objective: saddle\n    expect: {lambda_min: 3}\n",
     "checks[0].expect.lambda_min: expected bounds like {min: 0.1, max: 10}"),
    ("checks:\n  - objective: saddle\n    expect: {convexity: {box: [1, -1], verdict: "
     "not_convex}}\n", "checks[0].expect.convexity.box: need lo < hi"),
    ("checks:\n  - objective: saddle\n", "checks[0]: missing 'expect'"),
    ("checks: [\n", "invalid YAML"),
])
def test_invalid_specs_exit_2(hess, write, body, message):
    res = hess("check", write("s.yaml", body))
    assert res.exit_code == 2, res.output
    assert message in res.stderr, res.stderr
    assert res.stdout == ""


def test_gradcheck_expectation(hess, write):
    spec = write("g.yaml", "checks:\n  - objective: saddle\n    expect: {gradcheck: passed}\n")
    res = hess("check", spec, "--format", "json")
    assert res.exit_code == 0, res.output
    ((result,),) = [c["results"] for c in res.json()["checks"]]
    assert (result["key"], result["measured"], result["passed"]) == ("gradcheck", "passed", True)
    # and a wrong rule fails it: the custom rule with factor 2 doubles the true gradient
    bad = write("b.yaml", f"checks:\n  - objective: {ROOT / 'examples' / 'custom_rule.py'}\n"
                "    params: {factor: 2}\n    expect: {gradcheck: passed}\n")
    failed = hess("check", bad, "--format", "json")
    assert failed.exit_code == 1, failed.output
    assert failed.json()["checks"][0]["results"][0]["measured"] == "failed"


def test_convexity_expectation_uses_the_convexity_test(hess, write):
    spec = write("c.yaml", """
checks:
  - objective: rosenbrock
    expect:
      convexity: {box: [-2, 2], samples: 300, hessian_points: 0, verdict: no_violation_found}
""")
    res = hess("check", spec, "--format", "json")
    assert res.exit_code == 1, res.output
    result = res.json()["checks"][0]["results"][0]
    assert result["measured"] == "not_convex" and "midpoint margin" in result["detail"]
    direct = hess("convexity", "rosenbrock", "--box", "-2,2", "--samples", "300",
                  "--hessian-points", "0", "--format", "json")
    margin = direct.json()["witness"]["margin"]
    assert result["detail"] == f"midpoint margin {margin:.4g}"  # same samples, same witness


def test_example_spec_passes(hess):
    """Each measured value of examples/checks.yaml against its analytic value: Rosenbrock's
    Hessian at (1, 1) is [[802, −400], [−400, 200]] with ∇f = 0 exactly; the saddle's is
    diag(1, −1); the ravine's eigenvalues are geomspace(1, κ) (condition κ = 1000, and
    lr = 0.001 < 2/κ is stable); the SVM's is 2λI = 0.2·I at zeros."""
    import numpy as np

    res = hess("check", ROOT / "examples" / "checks.yaml", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    measured = {(c["name"], r["key"]): r["measured"] for c in doc["checks"]
                for r in c["results"]}
    assert all(r["passed"] for c in doc["checks"] for r in c["results"])
    lo, hi = np.linalg.eigvalsh([[802.0, -400.0], [-400.0, 200.0]])
    rosenbrock = "rosenbrock minimum"
    assert measured[(rosenbrock, "classification")] == "local_minimum"
    assert measured[(rosenbrock, "gradient_norm")] == 0
    assert measured[(rosenbrock, "lambda_min")] == pytest.approx(lo, rel=1e-9)
    assert measured[(rosenbrock, "lambda_max")] == pytest.approx(hi, rel=1e-12)
    assert measured[(rosenbrock, "condition_number")] == pytest.approx(hi / lo, rel=1e-9)
    assert measured[("saddle is strict", "lambda_min")] == pytest.approx(-1.0, abs=1e-12)
    assert measured[("saddle is strict", "negative_eigenvalues")] == 1
    ravine = "ravine learning rate"
    assert measured[(ravine, "condition_number")] == pytest.approx(1000.0, rel=1e-9)
    assert measured[(ravine, "stable")] is True and measured[(ravine, "step_increases_loss")] \
        is False
    assert measured[("svm stays convex", "lambda_min")] == pytest.approx(0.2, rel=1e-12)
    assert measured[("rosenbrock is not convex", "convexity")] == "not_convex"


def test_missing_spec_file(hess, tmp_path):
    res = hess("check", tmp_path / "nope.yaml")
    assert res.exit_code == 2 and "does not exist" in res.stderr
    assert "nope.yaml" in res.stderr and res.stdout == ""  # the line names the file


def test_check_goes_matrix_free_above_the_dense_budget_like_analyze(hess, tmp_path,
                                                                   monkeypatch):
    """saddle n=6: H = diag(1, 1, 1, 1, 1, −1) at zeros; over budget the check's analysis
    is the matrix-free one (the same path analyze takes), and its verdicts still hold."""
    import hesscli.spectra.matrix_free as matrix_free

    spec = tmp_path / "big.yaml"
    spec.write_text("""
checks:
  - objective: saddle
    params: {n: 6}
    at: zeros
    expect:
      classification: saddle_point
      lambda_min: {min: -1.000001, max: -0.999999}
      lambda_max: {min: 0.999999, max: 1.000001}
""")
    runs = []
    real = matrix_free.extremes_of

    def spy(*args, **kwargs):
        runs.append((args[2] if len(args) > 2 else kwargs["solve"]).k)  # the run's Solve
        return real(*args, **kwargs)

    monkeypatch.setattr(matrix_free, "extremes_of", spy)
    dense = hess("check", spec, "--format", "json")
    assert dense.exit_code == 0, dense.output
    assert runs == []  # within the budget: the dense Hessian
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "1")  # auto now picks matrix-free
    free = hess("check", spec, "--format", "json")
    assert free.exit_code == 0, free.output
    assert runs == [1]  # one matrix-free run, k = 1 at each end (analyze's default)
    analyze = hess("analyze", "saddle", "-p", "n=6", "--at", "zeros", "--format", "json")
    assert analyze.json()["path"] == "matrix-free"
    measured = {r["key"]: r["measured"] for r in free.json()["checks"][0]["results"]}
    assert measured["lambda_min"] == pytest.approx(analyze.json()["lambda_min"], abs=1e-9)


def test_expect_keys_are_the_analyze_documents_dotted_paths(hess, write):
    """The same keys as --expect; the old names are aliases of the same fields.
    ravine kappa=50 at (1, 1): H = diag(1, 50), so λmax = 50 and lr = 0.05 > 2/50."""
    spec = write("paths.yaml", """
checks:
  - name: saddle
    objective: saddle
    at: zeros
    expect:
      inertia.negative: 1
      negative_eigenvalues: {min: 1, max: 1}
      inertia.positive: {min: 1}
      stability.lambda_max: {min: 0.5, max: 2}
      eigenvalues_complete: true
      method: exact
  - name: steep
    objective: ravine
    params: {kappa: 50, rotate: false}
    at: [1, 1]
    lr: 0.05
    expect:
      stability.stable: false
      stable: false
      step.increases_loss: true
      step_increases_loss: true
""")
    res = hess("check", spec, "--format", "json")
    assert res.exit_code == 0, res.output
    results = [r for c in res.json()["checks"] for r in c["results"]]
    by_key = {r["key"]: r for r in results}
    assert by_key["inertia.negative"]["measured"] == by_key["negative_eigenvalues"]["measured"] == 1
    assert by_key["stability.stable"]["measured"] is by_key["stable"]["measured"] is False
    assert by_key["negative_eigenvalues"]["path"] == "checks[0].expect.negative_eigenvalues"
    assert by_key["stable"]["expected"] == "false"
    assert by_key["stability.lambda_max"]["expected"] == "in [0.5, 2]"


@pytest.mark.parametrize("expect, message", [
    ("{inertia.negativ: 1}", "unknown key 'inertia.negativ' (did you mean 'inertia.negative'?)"),
    ("{inertia: 1}", "checks[0].expect.inertia: inertia is an object; expect one of its fields"),
    ("{inertia.negative: 0.5}", "checks[0].expect.inertia.negative: expected an integer"),
    ("{stability.stable: 1}", "checks[0].expect.stability.stable: expected true or false"),
])
def test_dotted_path_expectations_are_typed_by_the_schema(hess, write, expect, message):
    res = hess("check", write("t.yaml", f"checks:\n  - objective: saddle\n    expect: {expect}\n"))
    assert res.exit_code == 2, res.output
    assert message in res.stderr, res.stderr


def test_spec_paths_are_relative_to_the_spec_file(hess, tmp_path, monkeypatch):
    """objective and at: files beside the spec, whatever the working directory."""
    import numpy as np

    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "bowl.py").write_text(
        "import jax.numpy as jnp\n\ndef objective(x):\n    return jnp.sum((x - 1.0) ** 2)\n")
    np.save(folder / "one.npy", np.ones(3))
    (folder / "c.yaml").write_text(
        "checks:\n  - objective: bowl.py\n    at: one.npy\n"
        "    expect: {classification: local_minimum, lambda_min: {min: 1.9, max: 2.1}}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = hess("check", folder / "c.yaml", "--format", "json")
    assert res.exit_code == 0, res.output
    # f = Σ(x − 1)² at x = 1 (from one.npy beside the spec): a minimum with H = 2I
    measured = {r["key"]: r["measured"] for r in res.json()["checks"][0]["results"]}
    assert measured["classification"] == "local_minimum"
    assert measured["lambda_min"] == pytest.approx(2.0, rel=1e-12)


def test_check_expectations_fail_on_undetermined():
    from types import SimpleNamespace

    from hesscli.checks.registry import document_expectation, measure

    doc = {"classification": "undetermined", "definiteness": "undetermined",
           "stability": {"stable": None}}
    ctx = SimpleNamespace(analysis=lambda: doc)
    for key, value in (("stable", True), ("stable", False),
                       ("classification", ["local_minimum", "saddle_point"]),
                       ("definiteness", "positive_definite")):
        outcome = measure(ctx, document_expectation(key, value, "checks[0].expect"))
        assert not outcome.passed and "could not decide" in outcome.detail, key
    ok = measure(ctx, document_expectation("classification", "undetermined", "c"))
    assert ok.passed


def test_check_spec_is_validated_whole_before_any_check_runs(hess, tmp_path):
    marker = tmp_path / "ran"
    first = tmp_path / "first.py"
    first.write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\n" + QUADRATIC)
    spec = tmp_path / "checks.yaml"
    spec.write_text(textwrap.dedent(f"""
        checks:
          - objective: {first}
            expect: {{classification: not_critical}}
          - objective: {tmp_path / 'missing.py'}
            expect: {{classification: not_critical}}
    """))
    one_error(hess("check", spec), 2, "checks[1].objective")
    assert not marker.exists()
    spec.write_text(textwrap.dedent(f"""
        checks:
          - objective: {first}
            expect:
              classification: not_critical
              classification: local_minimum
    """))
    one_error(hess("check", spec), 2, "duplicate key 'classification'")

