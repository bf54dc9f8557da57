"""hesscli train: a loss unbounded below is reported as diverged; --out never loses a log.

The objective f = Σa² − b² + Σc⁴ is unbounded below in b. Gradient descent with
lr = 0.1 maps b ↦ (1 + 2·lr)·b = 1.2·b, a ↦ 0.8·a and c ↦ c − 0.4·c³, so f runs
off to −∞ geometrically without ever becoming non-finite; the run must stop at
the first step whose value falls ``EXPLODE``·max(1, |f₀|) below f₀ (that step
is not taken), naming b.
"""

from __future__ import annotations

import json

import numpy as np

from hesscli.training.loop import EXPLODE

RUNAWAY = '''
import jax.numpy as jnp

def objective(p):
    return jnp.sum(p["a"] ** 2) - p["b"] ** 2 + jnp.sum(p["c"] ** 4)

x0 = {"a": jnp.array([0.3, -0.2]), "b": jnp.array(0.5), "c": jnp.array([0.1, 0.2])}
'''

SHORT = ("--steps", "20", "--monitor-every", "10", "--lr", "0.1", "--format", "json")


def expected_stop(lr: float = 0.1, steps: int = 300) -> int:
    """The first step t whose value lies below f₀ − EXPLODE·max(1, |f₀|), by the maps above."""
    a, b, c = np.array([0.3, -0.2]), 0.5, np.array([0.1, 0.2])

    def f() -> float:
        return float(np.sum(a**2) - b**2 + np.sum(c**4))

    f0 = f()
    floor = f0 - EXPLODE * max(1.0, abs(f0))
    for t in range(steps):
        if f() < floor:
            return t
        a, b, c = a - lr * 2 * a, b + lr * 2 * b, c - lr * 4 * c**3
    raise AssertionError("never crossed the floor")


def test_unbounded_below_is_diverged(hess, write):
    path = write("runaway.py", RUNAWAY)
    res = hess("train", path, "--steps", "300", "--lr", "0.1", "--monitor-every", "10",
               "--fail-on", "diverged", "--format", "json")
    assert res.exit_code == 1, res.output  # --fail-on diverged
    doc = res.json()
    div = [e for e in doc["events"] if e["kind"] == "diverged"]
    assert len(div) == 1, doc["events"]
    t = expected_stop()
    assert div[0]["reason"] == "unbounded below" and div[0]["parameter"] == "b"
    assert "unbounded below" in div[0]["message"] and "b blew up first" in div[0]["message"]
    assert div[0]["step"] == t and doc["steps"] == t and doc["diverged"] is True
    assert doc["history"][-1]["step"] == t  # everything up to there is kept
    assert -1e12 < doc["history"][-1]["value"] < -1e7  # stopped long before −1e47


def test_out_refuses_to_overwrite_an_existing_file(hess, write, tmp_path):
    path = write("runaway.py", RUNAWAY)
    log = tmp_path / "run.jsonl"
    log.write_text("precious\n")
    res = hess("train", path, *SHORT, "--out", log)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: --out") and "--force" in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert log.read_text() == "precious\n"  # untouched

    forced = hess("train", path, *SHORT, "--out", log, "--force")
    assert forced.exit_code == 0, forced.output
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines[0]["record"] == "header" and lines[-1]["record"] == "end"

    # --resume appends to its own log; writing the resumed run over another file needs --force
    other = tmp_path / "other.jsonl"
    other.write_text("keep me\n")
    again = hess("train", path, *SHORT, "--resume", log, "--out", other)
    assert again.exit_code == 2, again.output
    assert "--out" in again.stderr and other.read_text() == "keep me\n"
    more = ("--steps", "30", "--monitor-every", "10", "--lr", "0.1", "--format", "json")
    same = hess("train", path, *more, "--resume", log)
    assert same.exit_code == 0, same.output
    steps = [d["step"] for d in map(json.loads, log.read_text().splitlines())
             if d["record"] == "step"]
    assert steps == [0, 10, 20, 30]
