"""A convolution's HVP inside a compiled loop on the CPU, and the callback that avoids it.

``python -m tests.benchmarks conv_loop``. On ``examples/cnn.py`` (Flax ``nn.Conv``)
at ``channels`` 16 and 64 (``BENCH_CONV_SAMPLES`` images, 256 by default), float32
and float64, seconds per Hessian-vector product:

- ``direct``: the backend's jitted HVP called on its own;
- ``in loop``: the same HVP as the body of a compiled ``lax.fori_loop`` (what the
  eigensolvers ran before ``hesscli/curvature/host_products.py``);
- ``callback``: the ``pure_callback`` ``hvp_fn`` that module installs, in a
  ``fori_loop`` of ``LOOP_STEPS`` steps (∇f linearized once on the host, as the
  solvers do in their loops; the first call's linearization is outside the timing);
- ``mlp in/out``: an MLP of similar direct cost, in a loop over direct (no slowdown:
  the effect is the convolution's).

Then ``hesscli spectrum examples/cnn.py -p channels=16 --matrix-free --k 2`` as a whole
process, before (``HESSCLI_HOST_PRODUCTS=0``: the products inside the loops, main's
code path) and after. Timings on a shared core: compare ratios.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.benchmarks.common import block, print_table, timeit

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "examples" / "cnn.py"
LOOP_STEPS = 4
SAMPLES = int(os.environ.get("BENCH_CONV_SAMPLES", "256"))
CHANNELS = (16, 64)
DTYPES = ("float32", "float64")

MLP = '''
import jax, jax.numpy as jnp, numpy as np
_r = np.random.default_rng(0)
X = jnp.asarray(_r.standard_normal(({samples}, 64)))
Y = jnp.asarray(_r.integers(0, 10, {samples}))
def objective(w):
    a, b = w[:64 * {h}].reshape(64, {h}), w[64 * {h}:].reshape({h}, 10)
    lp = jax.nn.log_softmax(jnp.tanh(X @ a) @ b)
    return -jnp.mean(jnp.take_along_axis(lp, Y[:, None], axis=1))
x0 = jnp.asarray(_r.standard_normal(74 * {h}) * 0.1)
'''


def per_hvp(curvature: Any, x: np.ndarray, slow_steps: int) -> dict[str, float]:
    import jax

    from hesscli.curvature.host_products import host_products

    rng = np.random.default_rng(0)
    v = rng.standard_normal(x.size).astype(curvature.dtype)
    hvp = curvature.hvp_fn
    looped = jax.jit(lambda x, v: jax.lax.fori_loop(
        0, slow_steps, lambda i, u: hvp(x, u / jax.numpy.linalg.norm(u)), v))
    block(hvp(x, v))
    block(looped(x, v))
    out = {"direct": timeit(lambda: block(hvp(x, v)), repeat=5),
           "in_loop": timeit(lambda: block(looped(x, v)), repeat=2, min_time=0) / slow_steps}
    host_products(curvature)
    if curvature.host is None:
        return out
    cb = curvature.hvp_fn
    cb_loop = jax.jit(lambda x, v: jax.lax.fori_loop(
        0, LOOP_STEPS, lambda i, u: cb(x, u / jax.numpy.linalg.norm(u)), v))
    block(cb_loop(x, v))
    out["callback"] = timeit(lambda: block(cb_loop(x, v)), repeat=3, min_time=0) / LOOP_STEPS
    curvature.host.release()
    return out


def backend(spec: str, params: dict[str, Any], dtype: str) -> tuple[Any, np.ndarray]:
    from hesscli.curvature.exact import ExactCurvature
    from hesscli.objective.bind import bind
    from hesscli.objective.files import load_file

    obj = bind(load_file(spec, {k: str(v) for k, v in params.items()}), None, dtype=dtype)
    return ExactCurvature(obj), np.asarray(obj.x, dtype=dtype)


def whole_process(switch: str, channels: int) -> float:
    env = dict(os.environ, HESSCLI_HOST_PRODUCTS=switch, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "hesscli", "spectrum", str(CNN), "-p", f"channels={channels}",
           "-p", f"samples={SAMPLES}", "--matrix-free", "--k", "2", "--format", "json"]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return elapsed


def main() -> dict[str, Any]:
    import jax  # noqa: F401 - x64 on through hesscli

    from hesscli.jaxconf import jax_module

    jax_module()
    rows, results = [], {"samples": SAMPLES, "loop_steps": LOOP_STEPS, "products": []}
    for channels in CHANNELS:
        for dtype in DTYPES:
            curv, x = backend(str(CNN), {"channels": channels, "samples": SAMPLES}, dtype)
            t = per_hvp(curv, x, slow_steps=1)
            rec = {"model": f"cnn c={channels}", "n": int(x.size), "dtype": dtype, **t}
            results["products"].append(rec)
            rows.append([rec["model"], rec["n"], dtype, t["direct"], t["in_loop"],
                         t.get("callback", float("nan")), t["in_loop"] / t["direct"],
                         t["in_loop"] / t.get("callback", float("nan"))])
            print(rows[-1], flush=True)
    for dtype in DTYPES:  # the control: no convolution, no slowdown, no callback
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "mlp.py"
            path.write_text(MLP.format(samples=8 * SAMPLES, h=512))
            curv, x = backend(str(path), {}, dtype)
            t = per_hvp(curv, x, slow_steps=LOOP_STEPS)
        rec = {"model": "mlp", "n": int(x.size), "dtype": dtype, **t}
        results["products"].append(rec)
        rows.append(["mlp (control)", rec["n"], dtype, t["direct"], t["in_loop"],
                     t.get("callback", float("nan")), t["in_loop"] / t["direct"], float("nan")])
    print_table("seconds per HVP (in loop / direct: the loop's slowdown; in loop / callback: "
                "what the callback saves)",
                ["model", "n", "dtype", "direct", "in loop", "callback", "loop/direct",
                 "loop/callback"], rows)
    whole = []
    for channels in (16,):
        before = whole_process("0", channels)
        after = whole_process("1", channels)
        whole.append({"channels": channels, "before_s": before, "after_s": after,
                      "speedup": before / after})
    results["spectrum_process"] = whole
    print_table(f"hesscli spectrum examples/cnn.py -p samples={SAMPLES} --matrix-free --k 2 "
                "(whole process, seconds)", ["channels", "before (in loop)", "after (callback)",
                                             "before/after"],
                [[w["channels"], w["before_s"], w["after_s"], w["speedup"]] for w in whole])
    return results
