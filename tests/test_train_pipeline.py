"""``hesscli.train`` is the one training pipeline: observers, resume and --compare in Python.

The command passes its options to :func:`hesscli.api.train` and watches the runs
through observers (its run log and its progress bar); here a plain Python
observer sees the same things. Reference trajectory: gradient descent on the
saddle f = ½x² + ¼y⁴ − ½y² (∇f = (x, y³ − y)), computed here in NumPy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import hesscli
from hesscli.training.observers import Observer

START = "0.5,0.5"


def gradient_descent(lr: float, steps: int) -> np.ndarray:
    p = np.array([0.5, 0.5])
    for _ in range(steps):
        p = p - lr * np.array([p[0], p[1] ** 3 - p[1]])
    return p


class Recorder(Observer):
    def __init__(self, stop_at: int | None = None) -> None:
        self.calls: list[tuple] = []
        self.stop_at = stop_at

    def begin(self, plan):
        self.calls.append(("begin", plan.objective, plan.n, [label for label, _ in plan.runs]))

    def start(self, label, config, state):
        self.calls.append(("start", label, config.steps, state))

    def progress(self, label, p):
        self.calls.append(("progress", label, p.record.step, p.state.step,
                           [e.kind for e in p.events], np.array(p.state.x)))
        if self.stop_at is not None and p.state.step >= self.stop_at:
            raise KeyboardInterrupt

    def end(self, label, result):
        self.calls.append(("end", label, result.steps, result.diverged))

    def interrupted(self, step):
        self.calls.append(("interrupted", step))

    def close(self, error):
        self.calls.append(("close", type(error).__name__ if error else None))


def test_an_observer_sees_every_logged_step_with_its_state():
    seen = Recorder()
    res = hesscli.train("saddle", START, lr=0.1, steps=30, monitor_every=10, observers=[seen])
    kinds = [c[0] for c in seen.calls]
    assert kinds == ["begin", "start", "progress", "progress", "progress", "progress", "end",
                     "close"]
    assert seen.calls[0] == ("begin", "saddle", 2, [""])
    assert seen.calls[1] == ("start", "", 30, None)
    progress = [c for c in seen.calls if c[0] == "progress"]
    assert [c[2] for c in progress] == [0, 10, 20, 30] == [c[3] for c in progress]
    for c in progress:  # each state is the point after that many GD steps
        np.testing.assert_allclose(c[5], gradient_descent(0.1, c[3]), rtol=1e-12)
    assert seen.calls[-2] == ("end", "", 30, False) and seen.calls[-1] == ("close", None)
    np.testing.assert_allclose(res.output.result.x, gradient_descent(0.1, 30), rtol=1e-12)


def test_ctrl_c_in_an_observer_is_reported_to_every_observer_then_raised():
    first, second = Recorder(stop_at=10), Recorder()
    with pytest.raises(KeyboardInterrupt):
        hesscli.train("saddle", START, lr=0.1, steps=30, monitor_every=10,
                      observers=[first, second])
    for seen in (first, second):
        assert seen.calls[-2:] == [("interrupted", 10), ("close", "KeyboardInterrupt")]
        assert "end" not in [c[0] for c in seen.calls]
    # the first observer raised at step 10 before the second heard of it
    assert [c[2] for c in second.calls if c[0] == "progress"] == [0]


def test_python_continues_a_run_the_command_logged(hess, tmp_path):
    log = tmp_path / "run.jsonl"
    cli = hess("train", "saddle", "--at", START, "--lr", "0.1", "--steps", "20",
               "--monitor-every", "10", "--out", log)
    assert cli.exit_code == 0, cli.output
    seen = Recorder()
    res = hesscli.train("saddle", START, lr=0.1, steps=40, monitor_every=10, resume=log,
                        observers=[seen])
    assert seen.calls[1][0] == "start" and seen.calls[1][3].step == 20  # the logged state
    assert [c[2] for c in seen.calls if c[0] == "progress"] == [30, 40]
    assert [r.step for r in res.output.result.history] == [0, 10, 20, 30, 40]
    np.testing.assert_allclose(res.output.result.x, gradient_descent(0.1, 40), rtol=1e-12)
    assert res.to_json()["meta"]["options"]["resume"] == str(log)
    with pytest.raises(hesscli.InputError, match="repeat the logged run's options"):
        hesscli.train("saddle", START, lr=0.2, steps=40, resume=log)


def test_compare_in_python_returns_each_run_by_name():
    res = hesscli.train("saddle", "zeros", lr=0.1, steps=100, monitor_every=10,
                        compare="plain,noisy")
    assert isinstance(res.output, hesscli.TrainComparison)
    assert res.output.names == ("plain", "noisy")
    plain, noisy = res.output.runs
    assert res.output["noisy"] is noisy
    np.testing.assert_array_equal(plain.result.x, [0.0, 0.0])  # ∇f(0) = 0: GD stays
    assert plain.analysis.classification == "saddle_point"
    assert any(e.kind == "escaped_saddle" for e in noisy.result.events)
    doc = res.to_json()
    assert doc["schema"] == "hesscli.train-compare/1"
    assert [v["name"] for v in doc["variants"]] == ["plain", "noisy"]


def test_the_command_records_the_dense_budget_in_bytes_as_python_does(hess):
    cli = hess("train", "saddle", "--at", START, "--steps", "2", "--monitor-every", "1",
               "--dense-budget", "1MiB", "--format", "json")
    assert cli.exit_code == 0, cli.output
    assert cli.json()["meta"]["options"]["dense_budget"] == 2**20


def test_noise_is_short_for_noisy_with_that_radius():
    a = hesscli.train("saddle", "zeros", lr=0.1, steps=10, monitor_every=5, noise=0.5)
    b = hesscli.train("saddle", "zeros", lr=0.1, steps=10, monitor_every=5, noisy=True,
                      noise_scale=0.5)
    np.testing.assert_array_equal(a.output.result.x, b.output.result.x)
    assert a.to_json()["noise"] == {"scale": 0.5, "steps": None, "kind": "unit_sphere"}
    x = np.asarray(a.output.result.x)
    assert np.linalg.norm(x) > 0  # the noise moved it off the saddle
    options = a.to_json()["meta"]["options"]
    assert options["noisy"] is True and options["noise_scale"] == 0.5
    assert "noise" not in options and json.dumps(options)
