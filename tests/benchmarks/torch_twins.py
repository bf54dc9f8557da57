"""PyTorch twins of ``examples/transformer_lm.py`` and ``examples/cnn.py`` for the peers.

Each twin computes the same function as the Flax network, with the parameters in
Flax's own layouts (a Dense kernel is (in, out), a Conv kernel (h, w, in, out)), so
the weights of hesscli's point (the example's ``init(key)``) are copied without
transposes; the forward pass does the layout changes. Flax conventions followed:
LayerNorm ε = 1e-6 with scale and bias, GELU by its tanh approximation, causal
scores masked with the dtype's smallest value, the unembedding tied to the token
embedding, Conv padding SAME, and the CNN's NHWC flatten order.

:func:`save_twin` writes a network's weights and data (float64) to an ``.npz`` from
the JAX side, with the float64 JAX loss and gradient at that point (the precondition
row compares them with the twin's); :func:`load_twin` rebuilds model, criterion and
data in torch in float64 or float32 (the float64 values rounded once, as hesscli's
``--dtype float32`` rounds them). Running this module as a script is one whole peer
process (``python -m tests.benchmarks.torch_twins TOOL NET.npz DTYPE``), printing
one JSON line; TOOL is ``check``, ``pyhessian``, ``pyhessian_tight``, ``eigenthings`` or
``curvlinops``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SEP = "/"  # flat parameter names: block_0/attn/qkv/kernel


# ------------------------------------------------------------------ JAX side


def flat_params(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key in sorted(tree):
        value = tree[key]
        name = f"{prefix}{SEP}{key}" if prefix else str(key)
        if isinstance(value, dict) or hasattr(value, "keys"):
            out.update(flat_params(value, name))
        else:
            out[name] = np.asarray(value, dtype=np.float64)
    return out


def save_twin(kind: str, target: str, params: list[str], path: Path,
              with_grad: bool = True) -> int:
    """Weights (hesscli's point, seed 0), data and config of ``target`` with ``-p``
    ``params`` into ``path``; with the float64 JAX loss and gradient. Returns n."""
    import jax

    from hesscli.api import load

    obj = load(target, None, params, seed=0, dtype="float64", method="auto")
    flat = flat_params(obj.params_of(obj.x))
    inputs, targets = (np.asarray(a) for a in obj.file.data)
    extra: dict[str, Any] = {"kind": kind, "inputs": inputs, "targets": targets}
    if kind == "transformer":
        heads = dict(p.split("=") for p in params if p.startswith("heads=")).get("heads", "4")
        extra["heads"] = int(heads)
    if with_grad:
        loss, grad = jax.jit(jax.value_and_grad(obj.flat_fn))(jax.numpy.asarray(obj.x))
        extra["jax_loss"] = float(loss)
        by_name = flat_params(obj.params_of(np.asarray(grad)))
        extra["jax_grad"] = np.concatenate([by_name[k].ravel() for k in flat])
    np.savez(path, names=np.array(list(flat)), **{f"p:{k}": v for k, v in flat.items()},
             **extra)
    return int(obj.n)


# ------------------------------------------------------------------ torch side


def _torch_modules() -> Any:
    import torch
    import torch.nn.functional as F  # noqa: N812

    class Twin(torch.nn.Module):
        """Parameters by their Flax names ('/' → '__': torch forbids dots)."""

        def __init__(self, flat: dict[str, np.ndarray], dtype: Any) -> None:
            super().__init__()
            self.names = list(flat)
            self.p = torch.nn.ParameterDict({
                k.replace(SEP, "__"): torch.nn.Parameter(torch.tensor(v, dtype=dtype))
                for k, v in flat.items()})

        def w(self, name: str) -> Any:
            return self.p[name.replace(SEP, "__")]

        def ordered(self) -> list[Any]:
            return [self.w(k) for k in self.names]

    class TransformerTwin(Twin):
        def __init__(self, flat: dict[str, np.ndarray], dtype: Any, heads: int) -> None:
            super().__init__(flat, dtype)
            self.heads = heads
            self.layers = len({k.split(SEP)[0] for k in flat if k.startswith("block_")})

        def ln(self, x: Any, name: str) -> Any:
            d = x.shape[-1]
            return F.layer_norm(x, (d,), self.w(f"{name}/scale"), self.w(f"{name}/bias"),
                                eps=1e-6)

        def forward(self, tokens: Any) -> Any:
            emb = self.w("tok_embed/embedding")
            b, t = tokens.shape
            x = emb[tokens] + self.w("pos_embed/embedding")[:t]
            d = x.shape[-1]
            dh = d // self.heads
            causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
            for i in range(self.layers):
                blk = f"block_{i}"
                h = self.ln(x, f"{blk}/ln1")
                qkv = (h @ self.w(f"{blk}/attn/qkv/kernel")).reshape(b, t, 3, self.heads, dh)
                q, k, v = qkv.movedim(2, 0)
                scores = torch.einsum("bqhc,bkhc->bhqk", q, k) / math.sqrt(dh)
                scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
                mixed = torch.einsum("bhqk,bkhc->bqhc", torch.softmax(scores, -1), v)
                x = x + mixed.reshape(b, t, d) @ self.w(f"{blk}/attn/out/kernel")
                h = self.ln(x, f"{blk}/ln2")
                h = F.gelu(h @ self.w(f"{blk}/mlp/fc/kernel"), approximate="tanh")
                x = x + h @ self.w(f"{blk}/mlp/proj/kernel")
            return self.ln(x, "ln_f") @ emb.T

    class CNNTwin(Twin):
        def conv(self, x: Any, name: str) -> Any:
            kernel = self.w(f"{name}/kernel").permute(3, 2, 0, 1)  # HWIO → OIHW
            return F.conv2d(x, kernel, self.w(f"{name}/bias"), padding=1)  # SAME, 3×3

        def forward(self, images: Any) -> Any:
            x = images.permute(0, 3, 1, 2)  # NHWC → NCHW
            x = F.avg_pool2d(torch.relu(self.conv(x, "conv1")), 2)
            x = F.avg_pool2d(torch.relu(self.conv(x, "conv2")), 2)
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # Flax's NHWC flatten order
            return x @ self.w("dense/kernel") + self.w("dense/bias")

    return TransformerTwin, CNNTwin


def criterion(logits: Any, targets: Any) -> Any:
    """Mean softmax cross-entropy over every prediction (tokens or images)."""
    import torch.nn.functional as F  # noqa: N812

    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def load_twin(path: str | Path, dtype: str = "float64") -> tuple[Any, dict[str, Any]]:
    """The torch twin (model) and the saved arrays; data in ``dtype``."""
    import torch

    torch.set_default_dtype(getattr(torch, dtype))
    z = dict(np.load(path))
    names = [str(k) for k in z["names"]]
    flat = {k: z[f"p:{k}"].astype(dtype) for k in names}  # rounded once
    transformer, cnn = _torch_modules()
    tdtype = getattr(torch, dtype)
    if str(z["kind"]) == "transformer":
        model = transformer(flat, tdtype, int(z["heads"]))
        z["inputs_t"] = torch.from_numpy(z["inputs"].astype(np.int64))
    else:
        model = cnn(flat, tdtype)
        z["inputs_t"] = torch.from_numpy(z["inputs"].astype(dtype))
    z["targets_t"] = torch.from_numpy(z["targets"].astype(np.int64))
    return model, z


def batches(z: dict[str, Any], size: int) -> list[tuple[Any, Any]]:
    x, y = z["inputs_t"], z["targets_t"]
    return [(x[i:i + size], y[i:i + size]) for i in range(0, x.shape[0], size)]


# ------------------------------------------------------------------ peer processes


def run_check(model: Any, z: dict[str, Any]) -> dict[str, Any]:
    """The twin's loss and gradient against the saved JAX ones (same weights, data)."""
    import torch

    loss = criterion(model(z["inputs_t"]), z["targets_t"])
    grads = torch.autograd.grad(loss, model.ordered())
    g = torch.cat([a.reshape(-1) for a in grads]).detach().double().numpy()
    jg = z["jax_grad"]
    jl = float(z["jax_loss"])
    value = loss.item()
    return {"loss_torch": value, "loss_jax": jl, "loss_rel_diff": abs(value - jl) / abs(jl),
            "grad_rel_diff": float(np.linalg.norm(g - jg) / np.linalg.norm(jg)),
            "grad_norm": float(np.linalg.norm(jg))}


def run_pyhessian(model: Any, z: dict[str, Any], batch: int) -> dict[str, Any]:
    """PyHessian's defaults over a data loader: eigenvalues() (power iteration, maxIter
    100, tol 1e-3), then trace() (Hutchinson, maxIter 100, tol 1e-3). HVPs are data-set
    products (one per pass over the loader)."""
    import pyhessian.hessian  # noqa: F401
    import torch

    ph = sys.modules["pyhessian.hessian"]

    torch.manual_seed(0)
    loader = batches(z, batch)
    count = [0]
    original = ph.hessian.dataloader_hv_product

    def counted(self: Any, v: Any) -> Any:
        count[0] += 1
        return original(self, v)

    ph.hessian.dataloader_hv_product = counted
    start = time.perf_counter()
    h = ph.hessian(model, criterion, dataloader=loader, cuda=False)
    vals, _ = h.eigenvalues()
    eig_s, eig_hvps = time.perf_counter() - start, count[0]
    traces = h.trace()
    total = time.perf_counter() - start
    return {"lambda_max": float(vals[0]), "hvps_max": eig_hvps, "eig_s": eig_s,
            "trace": float(np.mean(traces)), "trace_probes": len(traces),
            "trace_standard_error": (float(np.std(traces, ddof=1) / np.sqrt(len(traces)))
                                     if len(traces) > 1 else None),
            "hvps": count[0], "solver_s": total, "batches": len(loader)}


class _OutOfTime(Exception):
    """The tight run's own time limit: stop and report the products so far."""


def run_pyhessian_tight(model: Any, z: dict[str, Any], batch: int, tol: float = 1e-7,
                        max_iter: int = 1000, seconds: float = 600.0) -> dict[str, Any]:
    """PyHessian's ``eigenvalues(maxIter=max_iter, tol=tol)`` (power iteration, the same
    seed and start vector as :func:`run_pyhessian`), every Rayleigh quotient it computes
    recorded with the seconds since ``eigenvalues()`` began: the trajectory from which
    the harness reads how many products and seconds PyHessian needs to come within a
    given error of the reference (its own stopping test is not an error bound). Stopped
    after ``seconds`` (its last quotient is then its answer so far, ``stopped``)."""
    import pyhessian.hessian  # noqa: F401
    import torch

    ph = sys.modules["pyhessian.hessian"]

    torch.manual_seed(0)
    loader = batches(z, batch)
    quotients: list[float] = []
    elapsed: list[float] = []
    original = ph.hessian.dataloader_hv_product
    start = [0.0]

    def recorded(self: Any, v: Any) -> Any:
        if time.perf_counter() - start[0] > seconds:
            raise _OutOfTime
        value, hv = original(self, v)
        quotients.append(float(value))
        elapsed.append(time.perf_counter() - start[0])
        return value, hv

    ph.hessian.dataloader_hv_product = recorded
    h = ph.hessian(model, criterion, dataloader=loader, cuda=False)
    start[0] = time.perf_counter()
    stopped = False
    try:
        vals, _ = h.eigenvalues(maxIter=max_iter, tol=tol)
        value = float(vals[0])
    except _OutOfTime:
        stopped, value = True, quotients[-1]
    solver_s = time.perf_counter() - start[0]
    return {"lambda_max": value, "hvps_max": len(quotients), "eig_s": solver_s,
            "solver_s": solver_s, "tol": tol, "max_iter": max_iter, "seconds_limit": seconds,
            "stopped_at_time_limit": stopped,
            "converged": not stopped and len(quotients) < max_iter,
            "quotients": quotients, "elapsed_s": elapsed, "batches": len(loader)}


def run_eigenthings(model: Any, z: dict[str, Any], batch: int) -> dict[str, Any]:
    """hessian-eigenthings' power_iteration_one (its defaults: max_iter 100, tol 1e-4)
    on its HessianOperator and its GGNOperator over the full data loader."""
    import hessian_eigenthings as he

    loader = batches(z, batch)
    out: dict[str, Any] = {"batches": len(loader)}
    ops = {
        "hessian": he.HessianOperator(model, loader, he.supervised_loss(criterion)),
        "ggn": he.GGNOperator(model, loader, he.supervised_forward,
                              he.supervised_loss_of_output(criterion)),
    }
    for name, op in ops.items():
        count = [0]
        inner = op.matvec

        def counted(v: Any, inner: Any = inner, count: list[int] = count) -> Any:
            count[0] += 1
            return inner(v)

        op.matvec = counted  # type: ignore[method-assign]
        start = time.perf_counter()
        lam, _, resid, iters, conv = he.power_iteration_one(op, seed=0)
        out[name] = {"lambda_max": float(lam), "hvps": count[0], "converged": bool(conv),
                     "residual": float(resid), "solver_s": time.perf_counter() - start}
    return out


def run_curvlinops(model: Any, z: dict[str, Any], batch: int, products: int = 5
                   ) -> dict[str, Any]:
    """curvlinops' GGNLinearOperator (over the full data loader): seconds per GGN
    matvec (``products`` of them after one warm-up), and its λmax by power iteration
    is not asked: its matvec is what is compared."""
    import torch
    from curvlinops import GGNLinearOperator

    class Flat(torch.nn.Module):  # curvlinops wants (N, C) logits for CrossEntropyLoss
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            out = self.inner(x)
            return out.reshape(-1, out.shape[-1])

    loader = [(x, y.reshape(-1)) for x, y in batches(z, batch)]
    params = [p for p in model.parameters()]
    start = time.perf_counter()
    op = GGNLinearOperator(Flat(model), torch.nn.CrossEntropyLoss(), params, loader,
                           check_deterministic=False)
    build_s = time.perf_counter() - start
    n = sum(p.numel() for p in params)
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(n, generator=gen, dtype=params[0].dtype)
    w = op @ v  # warm-up
    start = time.perf_counter()
    for _ in range(products):
        w = op @ v
    per = (time.perf_counter() - start) / products
    return {"matvec_s": per, "build_s": build_s, "products": products + 1,
            "vGv": float(v @ w) / float(v @ v), "batches": len(loader)}


def main(argv: list[str]) -> int:
    tool, path, dtype = argv[:3]
    batch = int(argv[3]) if len(argv) > 3 else 8
    import torch

    torch.manual_seed(0)
    model, z = load_twin(path, dtype)
    start = time.perf_counter()
    if tool == "check":
        out = run_check(model, z)
    elif tool == "pyhessian":
        out = run_pyhessian(model, z, batch)
    elif tool == "pyhessian_tight":
        import os

        out = run_pyhessian_tight(
            model, z, batch, tol=float(os.environ.get("BENCH_NETWORKS_TIGHT_TOL", "1e-7")),
            max_iter=int(os.environ.get("BENCH_NETWORKS_TIGHT_ITERS", "1000")),
            seconds=float(os.environ.get("BENCH_NETWORKS_TIGHT_SECONDS", "600")))
    elif tool == "eigenthings":
        out = run_eigenthings(model, z, batch)
    elif tool == "curvlinops":
        out = run_curvlinops(model, z, batch)
    else:
        raise SystemExit(f"unknown tool {tool}")
    out["in_process_s"] = time.perf_counter() - start
    out["n"] = int(sum(p.numel() for p in model.parameters()))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
