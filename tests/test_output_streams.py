"""stdout carries the one document; everything else is one line each on stderr.

Warnings from objective code become ``warning:`` lines (each text once); native
writes to file descriptor 1 (``os.write(1, ...)``, C ``puts``) are sent to stderr so
that ``--format json`` output stays one JSON document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT


def test_warnings_are_one_line_each(hess, write):
    path = write("warns.py", """
import warnings
import numpy as np
def objective(x):
    warnings.warn("this objective is experimental")
    np.log(np.asarray(x) - 10.0)          # RuntimeWarning: invalid value in log
    return float(np.sum(np.asarray(x) ** 2))
x0 = np.array([1.0, 2.0])
""")
    res = hess("analyze", path, "--format", "json")
    assert res.exit_code == 0, res.output
    res.json()
    lines = res.stderr.splitlines()
    assert "warning: this objective is experimental" in lines
    assert any(line.startswith("warning: invalid value") and "RuntimeWarning" in line
               for line in lines), res.stderr
    assert all(line.startswith("warning: ") for line in lines), res.stderr
    assert len(lines) == len(set(lines))  # each text once


def test_native_writes_to_fd_1_never_reach_stdout(tmp_path):
    """os.write(1, ...) and C-level prints go to stderr; stdout is one JSON document."""
    path = tmp_path / "native.py"
    path.write_text(textwrap.dedent("""
        import ctypes, os
        import jax.numpy as jnp
        os.write(1, b"native at import\\n")
        libc = ctypes.CDLL(None)
        def objective(x):
            os.write(1, b"native in call\\n")
            libc.puts(b"C puts in call")
            return jnp.sum(x ** 2)
        x0 = jnp.ones(2)
    """))
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-m", "hesscli", "analyze", str(path), "--format",
                          "json"], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["schema"] == "hesscli.analyze/1"
    assert "native in call" in out.stderr and "C puts in call" in out.stderr

