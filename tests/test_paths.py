"""The one dense/matrix-free policy: a fixed budget, never the free memory of the moment.

The references are the policy's own definition, 4·8·n² bytes against the budget:
n = 4096 is the largest n within the 512 MiB default (4·8·4096² = 2²⁹ exactly).
"""

from __future__ import annotations

import pytest

import hesscli.spectra.route as paths
from hesscli.errors import InputError
from hesscli.spectra.route import choose_path, dense_budget, dense_limit, parse_bytes


def test_default_budget_gives_n_4096():
    assert dense_limit() == 4096  # 4·8·4096² = 512 MiB exactly
    assert choose_path(4096).path == "dense" and choose_path(4097).path == "matrix-free"


@pytest.mark.parametrize("text,size", [
    ("512MiB", 512 * 2**20), ("1GiB", 2**30), ("2GB", 2 * 10**9), ("1e9", 10**9),
    ("128", 128), ("1.5 KiB", 1536),
])
def test_parse_bytes(text, size):
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["lots", "-1GiB", "0", "1 parsec", ""])
def test_parse_bytes_refuses_nonsense(text):
    with pytest.raises(InputError, match="--dense-budget"):
        parse_bytes(text)


def test_budget_precedence_option_then_environment_then_default(monkeypatch):
    assert dense_budget().source == "default"
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "1GiB")
    assert dense_budget() == paths.Budget(2**30, "HESSCLI_DENSE_BUDGET")
    assert dense_budget("128").bytes == 128 and dense_budget("128").source == "--dense-budget"
    assert dense_limit(dense_budget("128")) == 2  # 4·8·2² = 128
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "much")
    with pytest.raises(InputError, match="HESSCLI_DENSE_BUDGET"):
        dense_budget()


def test_auto_never_reads_free_memory(monkeypatch):
    def boom():
        raise AssertionError("the automatic choice must not look at free memory")

    monkeypatch.setattr(paths, "available_memory", boom)
    assert choose_path(3000).path == "dense"
    assert choose_path(5000).path == "matrix-free"
    with pytest.raises(AssertionError):
        choose_path(10, "dense")  # only --dense consults it (to refuse what cannot fit)


def _summary(doc):
    return (doc["path"], len(doc["eigenvalues"]), doc["inertia"], doc["eigenvalues_complete"],
            doc["meta"]["path_choice"])


@pytest.mark.parametrize("budget", [None, "1"])
def test_same_analyze_json_whatever_free_memory_reports(hess, monkeypatch, budget):
    """Low or high free memory: the same path, eigenvalue count and inertia."""
    args = ["analyze", "saddle", "-p", "n=6", "--at", "zeros", "--format", "json"]
    if budget:
        args += ["--dense-budget", budget]
    seen = []
    for free in (1, 2**20, 2**40):
        monkeypatch.setattr(paths, "available_memory", lambda free=free: free)
        res = hess(*args)
        assert res.exit_code == 0, res.output
        seen.append(_summary(res.json()))
    assert seen[0] == seen[1] == seen[2]
    path, count, inertia, complete, choice = seen[0]
    if budget is None:  # saddle: H = diag(1, …, 1, −1) at zeros
        assert (path, count, complete) == ("dense", 6, True)
        assert inertia == {"positive": 5, "negative": 1, "zero": 0, "complete": True}
        assert choice["dense_budget_source"] == "default" and choice["dense_limit"] == 4096
    else:
        # six parameters: the Lanczos basis spans the space, so the matrix-free path
        # has every eigenvalue and says so (a larger n would be incomplete)
        assert path == "matrix-free" and count == 6
        assert complete is True and inertia["complete"] is True
        assert choice["dense_budget"] == 1 and choice["dense_limit"] == 0
        assert "dense budget" in choice["reason"]


def test_environment_budget_is_recorded(hess, monkeypatch):
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "128")  # dense up to n = 2
    res = hess("analyze", "saddle", "-p", "n=3", "--at", "zeros", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["path"] == "matrix-free"
    assert doc["meta"]["path_choice"]["dense_budget_source"] == "HESSCLI_DENSE_BUDGET"


def test_dense_refused_only_when_it_cannot_fit(hess, monkeypatch):
    monkeypatch.setattr(paths, "available_memory", lambda: 1000)
    res = hess("analyze", "saddle", "-p", "n=6", "--at", "zeros", "--dense")
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: --dense:") and "Traceback" not in res.stderr


def test_malformed_budget_is_an_input_error(hess):
    res = hess("analyze", "saddle", "--at", "zeros", "--dense-budget", "lots")
    assert res.exit_code == 2, res.output
    assert "--dense-budget 'lots'" in res.stderr


def test_one_limit_for_every_command(hess, monkeypatch):
    """gradcheck, convexity and train follow the same budget as analyze."""
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "128")  # dense up to n = 2
    g = hess("gradcheck", "saddle", "-p", "n=3", "--at", "zeros", "--format", "json")
    assert g.exit_code == 0, g.output
    skipped = g.json()["checks"]["hessian_fd_gradient"]["skipped"]
    assert skipped and "dense limit" in skipped
    t = hess("train", "saddle", "-p", "n=3", "--at", "0.1,0.1,0.1", "--steps", "4",
             "--monitor-every", "2", "--format", "json")
    assert t.exit_code == 0, t.output
    assert any("matrix-free" in note for note in t.json()["notes"])


def test_expect_on_partial_inertia_fails_and_says_so(hess):
    """Matrix-free: inertia counts only the computed extremes, so it is not the inertia.

    (n = 40: at n ≤ 8 the Lanczos basis spans the space and the count is complete.)"""
    args = ("analyze", "saddle", "-p", "n=40", "--at", "zeros", "--matrix-free", "--format",
            "json")
    res = hess(*args, "--expect", "inertia.negative=1")
    assert res.exit_code == 1, res.output
    assert "partial" in res.stderr and "inertia.complete is false" in res.stderr
    ok = hess(*args, "--expect", "inertia.complete=false", "--expect", "n=40")
    assert ok.exit_code == 0, ok.output
    dense = hess("analyze", "saddle", "-p", "n=6", "--at", "zeros", "--expect",
                 "inertia.negative=1", "--expect", "inertia.complete=true")
    assert dense.exit_code == 0, dense.output


def test_check_follows_the_policy_and_refuses_a_partial_count(hess, write, monkeypatch):
    spec = write("c.yaml", "checks:\n  - objective: saddle\n    params: {n: 40}\n"
                           "    at: zeros\n    expect: {negative_eigenvalues: {max: 1}, "
                           "lambda_min: {max: -0.5}}\n")
    ok = hess("check", spec, "--format", "json")
    assert ok.exit_code == 0, ok.output
    monkeypatch.setenv("HESSCLI_DENSE_BUDGET", "1")  # matrix-free: extremes only
    res = hess("check", spec, "--format", "json")
    assert res.exit_code == 1, res.output
    outcomes = {o["key"]: o for c in res.json()["checks"] for o in c["results"]}
    assert outcomes["negative_eigenvalues"]["passed"] is False
    assert "partial" in outcomes["negative_eigenvalues"]["detail"]
    assert outcomes["lambda_min"]["passed"] is True  # an extreme is computed either way


def test_check_takes_the_dense_budget_option(hess, write):
    spec = write("c.yaml", "checks:\n  - objective: saddle\n    params: {n: 40}\n"
                           "    at: zeros\n    expect: {inertia.negative: 1}\n")
    ok = hess("check", spec, "--format", "json")
    assert ok.exit_code == 0, ok.output
    res = hess("check", spec, "--dense-budget", "1", "--format", "json")
    assert res.exit_code == 1, res.output  # the matrix-free count is partial: refused
    assert res.json()["meta"]["options"]["dense_budget"] == 1
    assert hess("check", spec, "--dense-budget", "lots").exit_code == 2
