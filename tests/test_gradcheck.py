"""``hesscli gradcheck``: catches wrong custom_jvp / custom_vjp rules, passes right ones."""

from __future__ import annotations

import jsonschema
import pytest

from hesscli.schemas import load_schema
from tests.fd_helpers import CUSTOM_RULES, NUMPY_ABS, NUMPY_HINGE

SCHEMA = load_schema("gradcheck")


@pytest.fixture
def rules(write):
    return str(write("rules.py", CUSTOM_RULES))


@pytest.mark.parametrize("kind", ["jvp", "vjp"])
def test_right_rule_passes(hess, rules, kind):
    res = hess("gradcheck", rules, "-p", f"kind={kind}", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["passed"] is True
    # central differences at ε^(1/3): relative accuracy ≈ ε^(2/3) ≈ 4e-11 (×10)
    assert doc["gradient_max_rel_error"] < 1e-9
    # second differences of values at ε^(1/4): ≈ √ε ≈ 1.5e-8 (×100 for |f|/|H| ≈ 5)
    assert doc["hessian_max_rel_error"] < 1e-6
    assert set(doc["checks"]) == {"gradient", "hessian_fd_gradient", "hessian_fd_values"}


@pytest.mark.parametrize("kind", ["jvp", "vjp"])
def test_rule_off_by_two_fails(hess, rules, kind):
    res = hess("gradcheck", rules, "-p", f"kind={kind}", "-p", "factor=2", "--format", "json")
    assert res.exit_code == 1, res.output
    doc = res.json()  # the report is printed before exiting 1
    jsonschema.validate(doc, SCHEMA)
    assert doc["passed"] is False
    assert doc["checks"]["gradient"]["passed"] is False
    # the gradient is (1 + factor·rule)/(1 + rule)-off: far beyond any FD error
    assert doc["gradient_max_rel_error"] > 0.1
    # a consistently wrong rule fools the gradient-difference check, not the values one
    assert doc["checks"]["hessian_fd_values"]["passed"] is False
    assert doc["worst"][0]["name"].startswith("x[")
    assert "gradcheck failed" in res.stderr


def test_table_names_the_worst_entry(hess, rules):
    res = hess("gradcheck", rules, "-p", "factor=2")
    assert res.exit_code == 1, res.output
    assert "WRONG" in res.stdout and "x[1]" in res.stdout
    assert "tolerance" in res.stdout
    ok = hess("gradcheck", rules)
    assert ok.exit_code == 0, ok.output
    assert "agree with finite differences" in ok.stdout


def test_black_box_has_nothing_to_check(hess, write):
    path = write("abs_np.py", NUMPY_ABS)
    res = hess("gradcheck", str(path))
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: gradcheck compares JAX's derivatives")


def test_method_fd_is_refused(hess, rules):
    res = hess("gradcheck", rules, "--method", "fd")
    assert res.exit_code == 2, res.output
    assert "--method fd" in res.stderr


def test_kink_is_named_not_failed(hess, write):
    path = write("hinge.py", NUMPY_HINGE.replace("numpy as jnp", "jax.numpy as jnp"))
    res = hess("gradcheck", str(path), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, SCHEMA)
    assert doc["smooth"] is False
    assert doc["nonsmooth_parameters"] == ["x[0]", "x[1]"]


def test_worst_lists_are_ranked_by_the_reported_error(hess, rules):
    """Each comparison's first worst entry carries the maximum relative error it reports."""
    res = hess("gradcheck", rules, "-p", "factor=2", "--top", "4", "--format", "json")
    assert res.exit_code == 1, res.output
    for check in res.json()["checks"].values():
        rels = [e["rel_error"] for e in check["worst"]]
        failing = [e["rel_error"] for e in check["worst"] if not e["passed"]]
        assert failing == sorted(failing, reverse=True)
        if check["max_rel_error"]:
            assert rels[0] == check["max_rel_error"]
