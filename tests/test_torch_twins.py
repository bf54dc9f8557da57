"""The benchmark's torch twins compute the examples' functions (tiny sizes, float64).

The precondition of ``bench_networks``: on the same weights (the example's
``init(key)``) and data, the twin's loss and gradient equal JAX's up to rounding
(float64: a relative 1e-12 is ~10⁴ ulps, far above the summation-order
differences and far below any layout or convention mistake, which changes the
loss at O(1)).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")

from tests.benchmarks.torch_twins import save_twin  # noqa: E402


@pytest.mark.parametrize("kind,target,params", [
    ("transformer", "examples/transformer_lm.py",
     ["d_model=8", "layers=2", "heads=2", "context=6", "sequences=3"]),
    ("cnn", "examples/cnn.py", ["channels=3", "samples=20"]),
])
def test_twin_matches_jax(tmp_path, kind, target, params):
    import json

    net = tmp_path / "net.npz"
    save_twin(kind, target, params, net)
    # a separate process, as the benchmark runs it (torch and JAX thread pools apart)
    out = subprocess.run([sys.executable, "-W", "ignore", "-m", "tests.benchmarks.torch_twins",
                          "check", str(net), "float64"], capture_output=True, text=True,
                         check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["loss_rel_diff"] < 1e-12
    assert got["grad_rel_diff"] < 1e-12
    assert got["grad_norm"] > 0  # a zero gradient would make the check vacuous
