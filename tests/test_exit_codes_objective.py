"""Whose failure it is: the objective's code failing is exit 3, a bug in hesscli exit 4.

One place (``hesscli.cli.outcome``) maps exceptions to exit codes: an exception whose
traceback passes through the objective's file, ``os._exit``/``sys.exit`` from objective
code, a file that is not Python, and a starting point where f is not finite are the
objective's (exit 3, one ``error:`` line naming it); anything unanticipated is an
internal error (exit 4, "rerun with --debug").
"""

from __future__ import annotations

import sys

from tests.conftest import ROOT
from tests.helpers import one_error


def test_unanticipated_exception_is_internal_error_exit_4(hess, quadratic, monkeypatch):
    import hesscli.analysis.analyze as analyze_module

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in hesscli")

    monkeypatch.setattr(analyze_module, "analyze", broken)
    res = hess("analyze", quadratic, "--format", "json")
    line = one_error(res, 4, "internal error: RuntimeError: a bug in hesscli")
    assert line.endswith("rerun with --debug and report it")
    debug = hess("--debug", "analyze", quadratic)
    assert debug.exit_code == 4, debug.output  # --debug keeps the code...
    assert "Traceback" in debug.stderr  # ...and shows where
    assert debug.stderr.strip().splitlines()[-1].startswith("error: internal error")


def test_exception_in_objective_code_is_exit_3_wherever_it_is_raised():
    """An exception whose traceback passes through the objective file is the objective's."""
    import click

    from hesscli.cli.outcome import classify

    module = {"__name__": "hesscli_objective_7_mine"}
    exec(compile("def objective(x):\n    return 1 / 0\n", "/tmp/mine.py", "exec"), module)
    try:
        module["objective"](1.0)
    except ZeroDivisionError as exc:
        code, message = classify(exc)
    assert code == 3
    assert message.startswith("the objective raised ZeroDivisionError") and "mine.py:2" in message
    assert classify(KeyError("x"))[0] == 4
    assert classify(MemoryError())[0] == 2
    assert classify(click.UsageError("bad"))[0] == 2


def test_objective_calling_sys_exit_late_is_an_objective_error():
    """sys.exit from objective code reached after the first call (say, inside a
    finite-difference evaluation) must not end hesscli with exit 0 and no report."""
    from hesscli.cli.outcome import finish

    module = {"__name__": "hesscli_objective_8_quits", "sys": sys}
    exec(compile("def objective(x):\n    sys.exit(0)\n", "/tmp/quits.py", "exec"), module)
    try:
        module["objective"](1.0)
    except SystemExit as exc:
        assert finish(exc, debug=False) == 3
    assert finish(SystemExit(0), debug=False) == 0  # hesscli's own exits pass through


def test_objective_calling_os_exit_is_an_objective_error(hess, write):
    path = write("quits.py", "import os\nimport jax.numpy as jnp\n"
                 "def objective(x):\n    os._exit(0)\nx0 = jnp.ones(2)\n")
    one_error(hess("analyze", path), 3, "os._exit(0)")


def test_random_bytes_objective_file(hess, tmp_path):
    path = tmp_path / "noise.py"
    path.write_bytes(bytes(range(256)) * 4)
    line = one_error(hess("analyze", path), 3, "is not Python source")
    assert "None" not in line


def test_spectrum_refuses_a_point_where_f_is_not_finite_as_analyze_does(hess, write):
    """f = Σ log x at x = (−1, −1) is NaN, but its Hessian −1/x² is finite (−I): a
    spectrum there describes no function, so both commands exit 3 with one line."""
    path = write("logneg.py", "import jax.numpy as jnp\ndef objective(x):\n"
                 "    return jnp.sum(jnp.log(x))\nx0 = -jnp.ones(2)\n")
    for command in ("analyze", "spectrum"):
        res = hess(command, path)
        assert res.exit_code == 3, (command, res.output)
        assert "value is not finite" in res.stderr and "Traceback" not in res.stderr


def test_train_from_a_point_where_f_is_not_finite_is_an_objective_failure(hess, write):
    """log at x = −1 is NaN before any step: not 'diverged at step 0' with exit 0."""
    path = write("logneg_train.py", "import jax.numpy as jnp\ndef objective(x):\n"
                 "    return jnp.sum(jnp.log(x))\nx0 = -jnp.ones(2)\n")
    res = hess("train", path, "--steps", "5")
    assert res.exit_code == 3, res.output
    assert "starting point is not finite" in res.stderr and "Traceback" not in res.stderr


def test_exit_code_4_is_documented():
    readme = (ROOT / "README.md").read_text()
    assert "| 4 |" in readme and "rerun with --debug" in readme

