"""``--expect KEY<op>VALUE`` on a command's JSON document."""

from __future__ import annotations

import jsonschema
import pytest

from hesscli.errors import CheckFailed, InputError
from hesscli.expect import expectations, parse
from hesscli.schemas import load_schema

DOC = {
    "schema": "hesscli.test/1",
    "classification": "saddle_point",
    "condition_number": None,
    "inertia": {"positive": 1, "negative": 1, "zero": 0},
    "eigenvalues": [-1.0, 2.0],
    "step": {"increases_loss": False, "lr": 0.01},
}


def test_parse_operators():
    assert parse("condition_number<=1e4").op == "<="
    assert parse("condition_number<=1e4").value == 1e4
    assert parse("a.b>=-2").value == -2
    assert parse("classification==local_minimum").op == "="
    assert parse("classification=local_minimum").value == "local_minimum"
    assert parse("step.increases_loss=false").value is False
    assert parse("eigenvalues[-1]>0").key == "eigenvalues[-1]"
    with pytest.raises(InputError, match="expected KEY=VALUE"):
        parse("classification")
    with pytest.raises(InputError, match="compares numbers"):
        parse("classification<=local_minimum")


@pytest.mark.parametrize("text, ok", [
    ("classification=saddle_point", True),
    ("classification!=saddle_point", False),
    ("inertia.negative=1", True),
    ("inertia.negative=1.0", True),
    ("inertia.negative<1", False),
    ("eigenvalues[0]<0", True),
    ("eigenvalues[-1]>=2", True),
    ("step.increases_loss=false", True),
    ("condition_number<=1e4", False),  # null: undefined, satisfies no order comparison
    ("condition_number=null", True),
])
def test_evaluate(text, ok):
    pending = expectations([text], DOC, schema={})
    assert pending.outcomes[0].passed is ok
    if ok:
        pending.enforce()
    else:
        with pytest.raises(CheckFailed, match="1 of 1 expectation failed"):
            pending.enforce()


def test_unknown_key_suggests():
    with pytest.raises(InputError, match="did you mean 'classification'"):
        expectations(["clasification=x"], DOC, schema={})
    with pytest.raises(InputError, match="not a number"):
        expectations(["inertia>=1"], DOC, schema={})


def test_declared_but_absent_field_fails():
    schema = {"properties": {"escape": {"properties": {"eigenvalue": {}}}}}
    pending = expectations(["escape.eigenvalue<0"], DOC, schema=schema)
    assert not pending.outcomes[0].passed
    with pytest.raises(CheckFailed, match="absent"):
        pending.enforce()


def test_analyze_expect_cli(hess):
    ok = hess("analyze", "saddle", "--at", "zeros", "--expect", "classification=saddle_point",
              "--expect", "inertia.negative=1", "--expect", "condition_number<=1e4",
              "--expect", "eigenvalues[0]=-1")
    assert ok.exit_code == 0, ok.output
    fail = hess("analyze", "rosenbrock", "--at", "1,1", "--lr", "0.01", "--expect",
                "classification=local_minimum", "--expect", "stability.stable=true",
                "--format", "json")
    assert fail.exit_code == 1, fail.output
    jsonschema.validate(fail.json(), load_schema("analyze"))
    assert fail.json()["classification"] == "local_minimum"  # the report is still printed
    assert "stability.stable=true (measured stability.stable = false)" in fail.stderr
    unknown = hess("analyze", "saddle", "--at", "zeros", "--expect", "clasification=x")
    assert unknown.exit_code == 2
    assert "did you mean 'classification'" in unknown.stderr and unknown.stdout == ""


def test_analyze_field_declared_but_absent(hess):
    """At a minimum there is no escape block: the schema declares it, so the key is valid
    and the expectation fails (exit 1) instead of being a typo (exit 2)."""
    res = hess("analyze", "rosenbrock", "--at", "1,1", "--expect", "escape.eigenvalue<0")
    assert res.exit_code == 1, res.output
    assert "escape.eigenvalue is absent from this document" in res.stderr


def test_expect_on_undetermined_fails_even_with_not_equal():
    from hesscli.expect import expectations

    doc = {"schema": "x", "classification": "undetermined", "stability": {"stable": None}}
    schema = {"properties": {"classification": {}, "stability": {"properties": {"stable": {}}}}}
    pending = expectations(["classification!=saddle_point", "stability.stable=false",
                            "classification=undetermined"], doc, schema)
    assert [o.passed for o in pending.outcomes] == [False, False, True]

