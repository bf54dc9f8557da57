"""Property-based: any point file, ``--at`` text or ``--expect`` expression ends with exit
0, 1, 2 or 3 and at most one ``error:`` line, never a traceback (exit 4 would be a bug).

Few examples, in process, on a tiny objective (its compiled programs come from the
compilation cache after the first run), so the whole file takes seconds.
"""

from __future__ import annotations

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.conftest import Result, run_cli  # noqa: E402

TINY = """
import jax.numpy as jnp
def objective(x):
    return jnp.sum((x - 1.0) ** 2) + x[0] * x[1]
x0 = jnp.array([0.0, 0.0])
"""
SUFFIXES = [".npy", ".npz", ".json", ".txt", ".csv", ".bin", ""]
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "tiny.py"
    path.write_text(TINY)
    return folder, path


def well_behaved(res: Result) -> None:
    assert res.exit_code in (0, 1, 2, 3), res.output
    assert "Traceback" not in res.stderr, res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == (0 if res.exit_code == 0 else 1), res.output
    assert all(line.startswith(("error:", "warning:")) for line in res.stderr.splitlines()
               if line.strip()), res.output
    if res.exit_code in (0, 1):
        json.loads(res.stdout)  # --format json: exactly one document


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10),
                    st.booleans(), st.none(), st.text(max_size=3))
json_values = st.recursive(numbers, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8)


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()


point_bytes = st.one_of(
    st.binary(max_size=64),
    json_values.map(_dumps),
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=4).map(
        lambda xs: ",".join(repr(x) for x in xs).encode()),
    st.just(b"\x93NUMPY\x01\x00garbage"),
    st.just(b"PK\x03\x04broken zip"),
    st.just(b"[" * 5000 + b"]" * 5000),
)


@SETTINGS
@given(content=point_bytes, suffix=st.sampled_from(SUFFIXES))
def test_any_point_file(tiny, content, suffix):
    folder, objective = tiny
    point = folder / f"point{suffix}"
    point.write_bytes(content)
    well_behaved(run_cli("analyze", str(objective), "--at", str(point), "--format", "json"))


@SETTINGS
@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
                    max_size=20))
def test_any_at_text(tiny, text):
    _, objective = tiny
    well_behaved(run_cli("analyze", str(objective), "--at", text, "--format", "json"))


keys = st.one_of(
    st.sampled_from(["classification", "critical", "inertia.negative", "eigenvalues[0]",
                     "eigenvalues[-1]", "eigenvalues[9]", "condition_number", "step.lr",
                     "gradient_norm", "escape.direction[0]", "nosuch", "inertia"]),
    st.text(alphabet="abc._[]-0123456789", max_size=12),
)
values = st.one_of(st.sampled_from(["local_minimum", "true", "false", "yes", "null", "0",
                                    "1e4", "-inf", "nan", "\"x\"", "[1]", "{}", ""]),
                   st.floats().map(repr), st.text(max_size=5))
ops = st.sampled_from(["=", "==", "!=", "<=", ">=", "<", ">", "=<", ""])


@SETTINGS
@given(key=keys, op=ops, value=values)
def test_any_expect_expression(tiny, key, op, value):
    _, objective = tiny
    well_behaved(run_cli("analyze", str(objective), "--expect", f"{key}{op}{value}",
                         "--format", "json"))
