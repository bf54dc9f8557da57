"""Seconds per data-set Hessian-vector product: hesscli's path against the torch twin.

One process per (network, dtype, side), one thread (XLA: no Eigen thread pool,
intra-op parallelism 1; torch: ``set_num_threads(1)``); run it under ``taskset``
to pin the core. Usage::

    python -m tests.benchmarks.profile_hvp NETWORK DTYPE SIDE [REPEATS]

NETWORK is a key of ``bench_networks.NETWORKS``; SIDE is one of

- ``jax-linearized``: hesscli's eigensolver path, ``linearized_hvp`` (∇f linearized
  once at the point, then the tangent map per product);
- ``jax-fwdrev``: ``ExactCurvature.hvp_fn``, ``jvp(grad f)`` per product (what the
  trace estimators map over);
- ``jax-grad``: one gradient (the forward + backward pass, for scale);
- ``torch``: PyHessian's product, double backward
  (``grad(⟨grad f, v⟩)``) per batch of the peers' loader, summed as PyHessian
  does; ``torch-grad``: one gradient over the loader.

Prints one JSON line: compile / first-call seconds and the median seconds per
product over ``REPEATS`` (default 3) after one warm-up.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any


def jax_side(name: str, dtype: str, side: str, repeats: int) -> dict[str, Any]:
    import jax
    import numpy as np

    from hesscli.api import load
    from hesscli.curvature.exact import ExactCurvature, linearized_hvp
    from tests.benchmarks.bench_networks import NETWORKS

    _, target, params, _ = NETWORKS[name]
    obj = load(target, None, params, seed=0, dtype=dtype, method="auto")
    cur = ExactCurvature(obj)
    x = jax.numpy.asarray(np.asarray(obj.x), dtype=dtype)
    v = jax.numpy.asarray(np.random.default_rng(0).standard_normal(x.size), dtype=dtype)
    start = time.perf_counter()
    if side == "jax-linearized":
        hvp = linearized_hvp(cur.f, x)
        jax.block_until_ready(hvp(x, v))
        call = lambda: hvp(x, v)  # noqa: E731
    elif side == "jax-fwdrev":
        jax.block_until_ready(cur.hvp_fn(x, v))
        call = lambda: cur.hvp_fn(x, v)  # noqa: E731
    elif side == "jax-grad":
        jax.block_until_ready(cur.grad_fn(x))
        call = lambda: cur.grad_fn(x)  # noqa: E731
    else:
        raise SystemExit(f"unknown side {side}")
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
    norm = float(np.linalg.norm(np.asarray(out, dtype=np.float64)))
    return {"n": int(obj.n), "first_s": first, "per_product_s": statistics.median(times),
            "times": times, "out_norm": norm}


def torch_side(name: str, dtype: str, side: str, repeats: int) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    import torch

    from tests.benchmarks.bench_networks import NETWORKS
    from tests.benchmarks.torch_twins import batches, criterion, load_twin, save_twin

    torch.set_num_threads(1)
    kind, target, params, batch = NETWORKS[name]
    with tempfile.TemporaryDirectory() as tmp:
        net = Path(tmp) / "net.npz"
        save_twin(kind, target, params, net, with_grad=False)
        model, z = load_twin(net, dtype)
    loader = batches(z, batch)
    ps = model.ordered()
    gen = torch.Generator().manual_seed(0)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in ps]
    total = z["inputs_t"].shape[0]

    def hvp() -> list[Any]:  # PyHessian's dataloader_hv_product, without its .cuda() moves
        acc = [torch.zeros_like(p) for p in ps]
        for xb, yb in loader:
            model.zero_grad()
            loss = criterion(model(xb), yb)
            g = torch.autograd.grad(loss, ps, create_graph=True)
            hv = torch.autograd.grad(g, ps, grad_outputs=v, only_inputs=True)
            acc = [a + h * float(xb.shape[0]) for a, h in zip(acc, hv, strict=True)]
        return [a / float(total) for a in acc]

    def grad() -> list[Any]:
        acc = [torch.zeros_like(p) for p in ps]
        for xb, yb in loader:
            g = torch.autograd.grad(criterion(model(xb), yb), ps)
            acc = [a + h * float(xb.shape[0]) for a, h in zip(acc, g, strict=True)]
        return acc

    call = hvp if side == "torch" else grad
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t0)
    norm = float(torch.sqrt(sum((a.double() ** 2).sum() for a in out)))
    return {"n": int(sum(p.numel() for p in ps)), "first_s": first,
            "per_product_s": statistics.median(times), "times": times, "out_norm": norm,
            "batches": len(loader)}


def main(argv: list[str]) -> int:
    name, dtype, side = argv[:3]
    repeats = int(argv[3]) if len(argv) > 3 else 3
    if side.startswith("jax"):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1").strip()
        if dtype == "float64":
            import jax

            jax.config.update("jax_enable_x64", True)
        out = jax_side(name, dtype, side, repeats)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        out = torch_side(name, dtype, side, repeats)
    out.update({"network": name, "dtype": dtype, "side": side})
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
