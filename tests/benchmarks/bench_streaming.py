"""Streamed data set vs in memory: time per Hessian-vector product and working memory.

The built-in ``mlp`` (tanh, 32 inputs, 16 outputs) with ``width=256`` (12 560
parameters) on ``samples=4096``, float64. In memory: one HVP over all the data
(``jvp(grad)``, what ``ExactCurvature.hvp`` runs) and the linearized HVP the
eigensolvers use (forward pass done once per point). Streamed
(:mod:`hesscli.curvature.streamed`) in batches of 256, 1024 and 4096 samples: one
data-set HVP as the host loop over the batches, and through ``hvp_fn`` (the
``pure_callback`` the compiled solvers call). Memory: XLA's memory analysis
(temporaries + outputs) of the full-data HVP and of the per-batch step. The
machine is shared: ratios measured in the same run, never asserted.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tests.benchmarks.common import block, compiled_memory, print_table, timeit

SAMPLES = int(os.environ.get("BENCH_STREAM_SAMPLES", "4096"))
WIDTH = int(os.environ.get("BENCH_STREAM_WIDTH", "256"))


def main() -> dict[str, Any]:
    from hesscli.curvature.exact import ExactCurvature, linearized_hvp
    from hesscli.curvature.streamed import streamed_curvature
    from hesscli.jaxconf import jax_module
    from hesscli.objective.bind import bind
    from hesscli.objective.files import load_file
    from hesscli.objective.streaming import bind_streamed

    jax = jax_module()
    overrides = {"width": str(WIDTH), "samples": str(SAMPLES)}
    obj = bind(load_file("mlp", overrides), None)
    exact = ExactCurvature(obj)
    x = np.asarray(obj.x)
    v = np.random.default_rng(0).standard_normal(obj.n)
    exact.hvp(x, v)
    lin = linearized_hvp(obj.flat_fn, jax.numpy.asarray(x))
    block(lin(x, v))
    rows = [["in memory, jvp(grad)", SAMPLES, 1, timeit(lambda: exact.hvp(x, v)),
             compiled_memory(exact.hvp_fn, exact.example, exact.example)],
            ["in memory, linearized", SAMPLES, 1, timeit(lambda: block(lin(x, v))), None]]
    results: dict[str, Any] = {"n": obj.n, "samples": SAMPLES}
    for size in (256, 1024, SAMPLES):
        stream_obj, stream = bind_streamed(load_file("mlp", overrides), None, seed=0,
                                           dtype="float64", method="auto", batch_size=size,
                                           batches=None)
        backend = streamed_curvature(stream_obj, stream)[0]
        assert np.allclose(backend.hvp(x, v), exact.hvp(x, v), rtol=1e-10, atol=1e-12)
        mem = backend.step_memory()
        hvp_fn = backend.hvp_fn
        block(hvp_fn(x, v))
        rows.append([f"streamed, batches of {size}", SAMPLES, stream.count,
                     timeit(lambda b=backend: b.hvp(x, v), repeat=3),
                     int(mem.temp_size_in_bytes + mem.output_size_in_bytes)])
        rows.append([f"  via hvp_fn (callback), {size}", SAMPLES, stream.count,
                     timeit(lambda f=hvp_fn: block(f(x, v)), repeat=3), None])
    print_table(f"HVP over the data set, mlp width={WIDTH}, n = {obj.n}, float64",
                ["how", "samples", "batches", "seconds per HVP", "working bytes"], rows)
    results["rows"] = [dict(zip(["how", "samples", "batches", "seconds", "bytes"], r,
                                strict=True)) for r in rows]
    return results


if __name__ == "__main__":
    main()
