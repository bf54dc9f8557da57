"""Cost of a GGN-vector product: ratio to an HVP and to a gradient, and curvlinops beside it.

The network is the built-in ``mlp`` problem (tanh, 32 inputs, 16 outputs, 256
samples, squared error summed over outputs and averaged over samples):
``width=2048`` has 100 368 parameters, ``width=20480`` has 1 003 536. Per size,
in float64, all timed in the same run:

- one gradient (``grad``), one HVP (``jvp(grad)``), one GGN matvec from scratch
  (``jvp`` of the model, output-loss HVP, ``vjp``: what ``hesscli`` calls once
  per point), and both operators *linearized once* and applied to 10 vectors in
  one compiled ``lax.map`` (what Lanczos, SLQ and the dense path do): the cost
  per matvec there is the one that matters for a spectrum;
- curvlinops' ``GGNLinearOperator`` on the identical torch network (same weights
  and data, float64, in a fresh process: JAX's and torch's thread pools in one
  process slow torch down), checked against hesscli's matvec, and torch's
  gradient and double-backward HVP for its own ratios.

curvlinops and torch are benchmark-only (``pip install torch==2.13.0
curvlinops-for-pytorch``); without them those rows are skipped.
``BENCH_GGN_WIDTHS=2048`` (comma list) picks the sizes. The machine is shared:
the load average is recorded with the results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tests.benchmarks.common import block, print_table, timeit

ROOT = Path(__file__).resolve().parents[2]
BATCH = 10  # matvecs per linearization in the amortized timings


def load_mlp(width: int) -> tuple[Any, Any, Any]:
    from hesscli.api import load
    from hesscli.curvature.choose import curvature_for

    obj = load("mlp", None, params=[f"width={width}"], seed=0, dtype="float64", method="auto")
    hessian, _ = curvature_for(obj, "auto")
    ggn, _ = curvature_for(obj, "auto", kind="ggn")
    return obj, hessian, ggn


def jax_costs(obj: Any, hessian: Any, ggn: Any) -> dict[str, float]:
    """Seconds per gradient, HVP and GGN matvec (from scratch and amortized)."""
    from hesscli.curvature.exact import hessian_at
    from hesscli.jaxconf import jax_module

    jax = jax_module()
    x = jax.numpy.asarray(obj.x)
    rng = np.random.default_rng(1)
    vs = jax.numpy.asarray(rng.standard_normal((BATCH, obj.n)))
    v = vs[0]
    h_at, g_at = hessian_at(hessian.f), ggn.operator_at
    many_h = jax.jit(lambda x, vs: jax.lax.map(h_at(x), vs))
    many_g = jax.jit(lambda x, vs: jax.lax.map(g_at(x), vs))
    for warm in (lambda: hessian.grad_fn(x), lambda: hessian.hvp_fn(x, v),
                 lambda: ggn.hvp_fn(x, v), lambda: many_h(x, vs), lambda: many_g(x, vs)):
        block(warm())
    out = {
        "grad_s": timeit(lambda: block(hessian.grad_fn(x)), repeat=5),
        "hvp_s": timeit(lambda: block(hessian.hvp_fn(x, v)), repeat=5),
        "ggn_s": timeit(lambda: block(ggn.hvp_fn(x, v)), repeat=5),
        "hvp_linearized_s": timeit(lambda: block(many_h(x, vs)), repeat=3) / BATCH,
        "ggn_linearized_s": timeit(lambda: block(many_g(x, vs)), repeat=3) / BATCH,
    }
    out["ggn_over_hvp"] = out["ggn_s"] / out["hvp_s"]
    out["ggn_over_grad"] = out["ggn_s"] / out["grad_s"]
    out["ggn_linearized_over_hvp_linearized"] = out["ggn_linearized_s"] / out["hvp_linearized_s"]
    out["ggn_linearized_over_grad"] = out["ggn_linearized_s"] / out["grad_s"]
    return out


# ------------------------------------------------------------------ torch side


def save_network(obj: Any, ggn: Any, path: Path) -> None:
    """Weights, data, one probe vector and hesscli's GGN matvec on it, for the worker."""
    params = obj.unravel(obj.x)
    X, Y = (np.array(a, dtype=np.float64) for a in obj.file.data)
    v = np.random.default_rng(7).standard_normal(obj.n)
    np.savez(path, X=X, Y=Y, w1=np.asarray(params["hidden"]["w"]),
             b1=np.asarray(params["hidden"]["b"]), w2=np.asarray(params["head"]["w"]),
             b2=np.asarray(params["head"]["b"]), v=v, gv=ggn.hvp(obj.x, v))


def torch_network(path: Path) -> tuple[Any, Any, Any, dict[str, np.ndarray]]:
    """The same network, weights and data in float64 PyTorch, and the saved arrays."""
    import torch

    torch.set_default_dtype(torch.float64)
    z = dict(np.load(path))
    w1, w2 = z["w1"], z["w2"]
    model = torch.nn.Sequential(
        torch.nn.Linear(w1.shape[0], w1.shape[1]), torch.nn.Tanh(),
        torch.nn.Linear(w2.shape[0], w2.shape[1]),
    )
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(w1.T.copy()))
        model[0].bias.copy_(torch.from_numpy(z["b1"]))
        model[2].weight.copy_(torch.from_numpy(w2.T.copy()))
        model[2].bias.copy_(torch.from_numpy(z["b2"]))
    return model, torch.from_numpy(z["X"]), torch.from_numpy(z["Y"]), z


def to_torch_order(flat: np.ndarray, z: dict[str, np.ndarray]) -> list[np.ndarray]:
    """hesscli's flat order (head.b, head.w, hidden.b, hidden.w; row-major) ->
    torch's parameter list (W1ᵀ, b1, W2ᵀ, b2)."""
    shapes = [("head.b", z["b2"].shape), ("head.w", z["w2"].shape),
              ("hidden.b", z["b1"].shape), ("hidden.w", z["w1"].shape)]
    parts, offset = {}, 0
    for name, shape in shapes:
        size = int(np.prod(shape))
        parts[name] = flat[offset:offset + size].reshape(shape)
        offset += size
    return [parts["hidden.w"].T, parts["hidden.b"], parts["head.w"].T, parts["head.b"]]


def torch_worker(folder: str) -> None:
    """curvlinops' GGN matvec and torch's gradient/HVP; writes out.json."""
    import torch
    from curvlinops import GGNLinearOperator

    tmp = Path(folder)
    model, X, Y, z = torch_network(tmp / "net.npz")
    params = [p for p in model.parameters() if p.requires_grad]
    n_samples = X.shape[0]
    # Σ over samples and outputs of (m − y)²: N × hesscli's mean over samples
    loss_func = torch.nn.MSELoss(reduction="sum")
    op = GGNLinearOperator(model, loss_func, params, [(X, Y)], progressbar=False,
                           check_deterministic=False)
    v_parts = [torch.from_numpy(np.ascontiguousarray(a)) for a in to_torch_order(z["v"], z)]

    def matvec() -> Any:
        return op @ v_parts

    try:
        out = matvec()
    except Exception:  # noqa: BLE001 - older curvlinops: scipy operator on flat NumPy
        flat_v = np.concatenate([p.numpy().reshape(-1) for p in v_parts])

        def matvec() -> Any:  # noqa: F811
            return op @ flat_v

        out = matvec()
    got = (np.concatenate([np.asarray(p.detach()).reshape(-1) for p in out])
           if isinstance(out, (list, tuple)) else np.asarray(out).reshape(-1))
    want = np.concatenate([a.reshape(-1) for a in to_torch_order(z["gv"], z)])
    rel = float(np.linalg.norm(got / n_samples - want) / np.linalg.norm(want))

    def crit(out: Any, y: Any) -> Any:
        return ((out - y) ** 2).sum(-1).mean()

    def grad() -> Any:
        return torch.autograd.grad(crit(model(X), Y), params)

    g = torch.autograd.grad(crit(model(X), Y), params, create_graph=True)

    def hvp() -> Any:
        return torch.autograd.grad(g, params, grad_outputs=v_parts, retain_graph=True)

    grad_s = timeit(grad, repeat=5)
    hvp_s = timeit(hvp, repeat=5)
    ggn_s = timeit(matvec, repeat=5)
    from importlib.metadata import version

    (tmp / "out.json").write_text(json.dumps({
        "curvlinops": version("curvlinops-for-pytorch"), "torch": torch.__version__,
        "grad_s": grad_s, "hvp_s": hvp_s, "ggn_s": ggn_s,
        "ggn_over_hvp": ggn_s / hvp_s, "ggn_over_grad": ggn_s / grad_s,
        "matvec_rel_difference_vs_hesscli": rel,
    }))


def have_curvlinops() -> bool:
    try:
        import curvlinops  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def one_size(width: int, with_torch: bool) -> dict[str, Any]:
    obj, hessian, ggn = load_mlp(width)
    print(f"\n-- mlp width={width}: n = {obj.n} parameters", flush=True)
    costs = jax_costs(obj, hessian, ggn)
    anchor = None
    if with_torch:
        with tempfile.TemporaryDirectory() as tmp:
            save_network(obj, ggn, Path(tmp) / "net.npz")
            subprocess.run(
                [sys.executable, "-c", "import sys; from tests.benchmarks.bench_ggn import "
                 "torch_worker; torch_worker(sys.argv[1])", tmp],
                cwd=ROOT, check=True,
            )
            anchor = json.loads((Path(tmp) / "out.json").read_text())
    ms = 1e3
    rows = [
        ["JAX GGN matvec (jvp, H_ℓ, vjp)", costs["ggn_s"] * ms, costs["ggn_over_hvp"],
         costs["ggn_over_grad"]],
        ["JAX GGN, linearized once (Lanczos)", costs["ggn_linearized_s"] * ms,
         costs["ggn_linearized_over_hvp_linearized"], costs["ggn_linearized_over_grad"]],
        ["JAX HVP jvp(grad)", costs["hvp_s"] * ms, 1.0, costs["hvp_s"] / costs["grad_s"]],
        ["JAX HVP, linearized once", costs["hvp_linearized_s"] * ms, 1.0,
         costs["hvp_linearized_s"] / costs["grad_s"]],
    ]
    if anchor:
        rows.append([f"curvlinops {anchor['curvlinops']} GGN matvec", anchor["ggn_s"] * ms,
                     anchor["ggn_over_hvp"], anchor["ggn_over_grad"]])
        rows.append(["torch double-backward HVP", anchor["hvp_s"] * ms, 1.0,
                     anchor["hvp_s"] / anchor["grad_s"]])
        print(f"curvlinops vs hesscli GGN matvec: relative difference "
              f"{anchor['matvec_rel_difference_vs_hesscli']:.2e}", flush=True)
    print_table(f"GGN-vector product on mlp width={width} (n = {obj.n}); ratios within "
                "each framework", ["matvec", "ms", "/ HVP (same kind)", "/ gradient"], rows)
    return {"n": obj.n, "width": width, "jax": costs, "curvlinops": anchor}


def main() -> dict[str, Any]:
    widths = [int(w) for w in os.environ.get("BENCH_GGN_WIDTHS", "2048,20480").split(",")]
    with_torch = have_curvlinops()
    if not with_torch:
        print("torch / curvlinops-for-pytorch not installed: JAX rows only")
    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "sizes": []}
    for width in widths:
        results["sizes"].append(one_size(width, with_torch))
    results["load_average_end"] = os.getloadavg()
    return results
