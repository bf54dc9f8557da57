"""Bad options and parameters: one ``error:`` line naming the option, exit 2, before any work.

Mutually exclusive flags, non-finite numbers, expectations that can never match,
built-in problems' parameters out of their declared range, usage errors, and requests
too large for the machine's memory (refused from their size, before the work).
"""

from __future__ import annotations

import pytest

from tests.helpers import one_error


@pytest.mark.parametrize(("args", "text"), [
    (["--dense", "--matrix-free"], "exclude each other"),
    (["--matrix-free", "--dense"], "exclude each other"),
    (["--rtol", "-1"], "--rtol must be a positive finite number"),
    (["--rtol", "nan"], "--rtol must be a positive finite number"),
    (["--bogus"], "No such option"),
    (["--expect", "critical=yes"], "can never match"),
    (["--expect", "inertia.negative=zero"], "can never match"),
    (["--expect", "eigenvalues[5]=1"], "out of range"),
    (["--at", ""], "the point is empty"),
])
def test_invalid_options_are_one_line_exit_2(hess, args, text):
    one_error(hess("analyze", "saddle", *args), 2, text)


@pytest.mark.parametrize("args", [["--momentum", "nan"], ["--opt", "momentum=inf"]])
def test_non_finite_optimizer_options_are_refused(hess, args):
    one_error(hess("train", "saddle", "--at", "0.1,0.1", *args), 2, "finite number")


@pytest.mark.parametrize(("args", "text"), [
    (["saddle", "-p", "n=1e9"], "expected int"),
    (["saddle", "-p", "n=2.0"], "expected int"),
    (["saddle", "-p", "n=-5"], "n >= 1"),
    (["ravine", "-p", "kappa=-1"], "kappa >= 1.0"),
    (["ravine", "-p", "n=1000000"], "n <= 20000"),
])
def test_builtin_parameters_are_validated(hess, args, text):
    one_error(hess("analyze", *args), 2, text)


def test_requests_too_large_are_refused_before_the_work(hess, monkeypatch):
    import hesscli.budget as budget

    monkeypatch.setattr(budget, "available_memory", lambda: 2**30)  # a 1 GiB machine
    one_error(hess("landscape", "saddle", "--points", "100000000"), 2, "GiB of memory")
    one_error(hess("landscape", "saddle", "--grid", "30000"), 2, "GiB of memory")
    one_error(hess("convexity", "saddle", "--box", "-1,1", "--samples", "300000000"), 2,
              "needs about")
    one_error(hess("gradcheck", "saddle", "-p", "n=100000"), 2, "n = 100000")
    one_error(hess("convexity", "saddle", "-p", "n=10000000", "--box", "-1,1"), 2,
              "needs about")
    one_error(hess("train", "saddle", "--steps", "1000000000", "--monitor-every", "1"), 2,
              "log less often")


def test_usage_errors_are_one_line(hess):
    one_error(hess("analyze"), 2, "Missing argument")
    one_error(hess("nosuchcommand"), 2, "no such command")


def test_bare_hesscli_shows_the_help(hess):
    res = hess()
    assert res.exit_code == 2, res.output
    assert "Usage: " in res.stdout + res.stderr
    assert "error:" not in res.stderr

