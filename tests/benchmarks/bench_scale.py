"""Matrix-free curvature at scale: whole processes against PyHessian on the same network.

The issue's table (``make bench BENCH=scale``): per network and size, one fresh
``hesscli analyze NET -p width=W --format json`` process (default settings, both
ends; and ``--ends max --rtol 1e-4`` when the option exists) and one fresh
process running PyHessian's default top eigenvalue (``eigenvalues()``: power
iteration, maxIter 100, tol 1e-3) on the identical float64 PyTorch network
(same weights, same data), each with wall and CPU time, peak resident memory
(the child's own ``ru_maxrss``), HVPs per end (from the analyze notes), and the
*achieved* error of each end against ARPACK at tol 1e-12 (cached in
``bench-results/``: the networks and the point are seeded). Also the HVP cost as
a ratio to one gradient (``jvp(grad)`` and the linearized HVP the solvers use).

Networks: the built-in ``mlp`` (tanh, 32 inputs, 16 outputs, 256 samples, summed
squared error, mean over samples; n = 49·width + 16: width 2048 ≈ 10⁵, 20480 ≈
10⁶) and ``softmax_mlp.py`` beside this file (tanh, 32 inputs, 10 classes, mean
cross-entropy; n = 43·width + 10: 2325 ≈ 10⁵, 23255 ≈ 10⁶). ``BENCH_SCALE_ROWS``
picks rows (``mlp:2048,softmax:2325``); each row is saved on its own
(``bench-results/scale_row_*.json``) so sizes can run one at a time, and the
final table shows every row measured so far. Compare ratios (÷ PyHessian, the
two processes run back to back), not seconds: the machine is shared.

A row may name a dtype and a target, ``network:width[:dtype[:rtol]]``
(``mlpf32:20480:float32``): hesscli then runs with ``--dtype`` (and ``--rtol``), and
PyHessian in that dtype on the same weights and data rounded once (torch's default
dtype set to it). The float32 rows use ``mlpf32`` (``mlp_f32data.py``: the built-in
``mlp`` with float32 data, so that a float32 run computes its HVPs in float32; on the
built-in, float64 data promotes them to float64), and so do the float64 rows they are
compared with. The table gives per run the dtype, wall, peak RSS, HVPs per end and in
all, the achieved error of each end against the float64 reference of the same
network, whether each end met its target, and the verdicts (classification,
definiteness, stability at the default lr); then the float32 ÷ float64 HVP ratio per
size. Above 3·10⁶ parameters the reference is ARPACK at tol 1e-8 with 20 vectors,
each end limited to ``BENCH_SCALE_REF_SECONDS`` (default 1200; an end not done is
None, kept in ``…_partial.json``); the reference is computed after the timed runs, and
``BENCH_SCALE_REFERENCE=network:width`` computes it alone and rescores that size's
saved rows. Each child is stopped after ``BENCH_SCALE_TIMEOUT`` seconds (default 900;
the row then keeps its last progress lines). ``BENCH_SCALE_COSTS=0`` skips the
in-process HVP/gradient timing, ``BENCH_SCALE_TORCH=0`` PyHessian,
``BENCH_SCALE_ENDS_MAX=0`` the ``--ends max`` run.

``BENCH_SCALE_DETAIL=1`` runs the older in-process comparison instead (Lanczos
at several rtol, ARPACK, PyHessian and hessian-eigenthings at several
tolerances; sizes from ``BENCH_SCALE_WIDTHS``). Torch, pyhessian and
hessian-eigenthings are benchmark-only (``pip install torch==2.13.0``, ``pip
install --no-deps pyhessian hessian-eigenthings``; the table needs only torch and
pyhessian); without them those columns are skipped.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.benchmarks.common import RESULTS, block, print_table, timeit

ROOT = Path(__file__).resolve().parents[2]
HESSCLI = Path(sys.executable).parent / "hesscli"


def load_mlp(width: int) -> tuple[Any, Any]:
    from hesscli.api import load
    from hesscli.curvature.choose import curvature_for

    obj = load("mlp", None, (f"width={width}",), seed=0, dtype="float64", method="auto")
    cur, _ = curvature_for(obj, "auto")
    return obj, cur


# ------------------------------------------------------------------ JAX side


def jax_costs(obj: Any, cur: Any) -> dict[str, float]:
    """Seconds per gradient, per HVP (jvp of grad) and per linearized HVP."""
    from hesscli.jaxconf import jax_module

    jax = jax_module()
    x = jax.numpy.asarray(obj.x)
    v = jax.numpy.asarray(np.random.default_rng(1).standard_normal(obj.n), dtype=x.dtype)
    block(cur.grad_fn(x))
    block(cur.hvp_fn(x, v))
    lin = jax.jit(lambda x, v: jax.linearize(jax.grad(cur.f), x)[1](v))
    # the linearized HVP amortizes the primal over many v: time 10 of them in one call
    many = jax.jit(lambda x, vs: jax.lax.map(jax.linearize(jax.grad(cur.f), x)[1], vs))
    vs = jax.numpy.stack([v] * 10)
    block(many(x, vs))
    del lin
    grad = timeit(lambda: block(cur.grad_fn(x)), repeat=5)
    hvp = timeit(lambda: block(cur.hvp_fn(x, v)), repeat=5)
    linear = timeit(lambda: block(many(x, vs)), repeat=3) / 10
    return {"grad_s": grad, "hvp_s": hvp, "hvp_linearized_s": linear,
            "hvp_over_grad": hvp / grad, "linearized_hvp_over_grad": linear / grad}


def reference(cur: Any, x: np.ndarray, tol: float = 1e-10, ncv: int = 40,
              seconds: float | None = None) -> dict[str, Any]:
    """λmax and λmin by ARPACK at ``tol`` with ``ncv`` basis vectors (the yardstick for
    achieved errors), over the HVP linearized once at x (the same products, faster).
    An end not done within ``seconds`` (each end) is None."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    from hesscli.curvature.exact import linearized_hvp

    n = x.size
    count = [0]
    xj = np.asarray(x, dtype=cur.dtype)
    hvp = linearized_hvp(cur.f, xj) if cur.hvp_mode == "forward-over-reverse" else cur.hvp_fn

    deadline = [float("inf")]

    def mv(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        if time.perf_counter() > deadline[0]:
            raise TimeoutError
        return np.asarray(hvp(xj, np.asarray(v, dtype=cur.dtype)), dtype=np.float64)

    op = LinearOperator((n, n), matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(123).standard_normal(n)
    out: dict[str, Any] = {}
    for which, name in (("LA", "lambda_max"), ("SA", "lambda_min")):
        start, before = time.perf_counter(), count[0]
        deadline[0] = start + seconds if seconds else float("inf")
        try:
            val = eigsh(op, k=1, which=which, tol=tol, v0=v0, ncv=ncv, maxiter=5000,
                        return_eigenvectors=False)
            out[name] = float(val[0])
        except TimeoutError:
            out[name] = None
        out[f"{name}_hvps"] = count[0] - before
        out[f"{name}_s"] = time.perf_counter() - start
    return out


def hesscli_runs(cur: Any, x: np.ndarray, ref: dict[str, float]) -> list[dict[str, Any]]:
    """Lanczos per end at several rtol, and ARPACK (hesscli's other solver)."""
    from hesscli.spectra.arpack import arpack_extremes
    from hesscli.spectra.certify import Solve
    from hesscli.spectra.lanczos import lanczos_extremes

    f = cur.linearizable
    scale = abs(ref["lambda_max"])
    rows = []
    # compile once (same basis size as the timed runs)
    start = time.perf_counter()
    lanczos_extremes(cur.hvp_fn, x, Solve(1, seed=0, rtol=1e-1, ends="max"), f=f)
    compile_s = time.perf_counter() - start
    for end in ("max", "min"):
        for rtol in ((1e-2, 1e-3, 1e-4, 1e-6) if end == "max" else (1e-4, 1e-6)):
            start = time.perf_counter()
            ex = lanczos_extremes(cur.hvp_fn, x, Solve(1, seed=0, rtol=rtol, ends=end), f=f)
            secs = time.perf_counter() - start
            lam = ex.eigenvalues[-1] if end == "max" else ex.eigenvalues[0]
            want = ref["lambda_max" if end == "max" else "lambda_min"]
            rows.append({
                "tool": "hesscli lanczos", "end": end, "setting": f"rtol {rtol:g}",
                "seconds": secs, "hvps": ex.steps + 2, "lambda": float(lam),
                "abs_error": abs(float(lam) - want),
                "rel_error": abs(float(lam) - want) / scale,
                "converged": bool(ex.hvps_max if end == "max" else ex.hvps_min),
            })
    start = time.perf_counter()
    ex = arpack_extremes(cur.hvp_fn, x, Solve(1, seed=0, rtol=1e-6))
    secs = time.perf_counter() - start
    for end in ("max", "min"):
        lam = ex.eigenvalues[-1] if end == "max" else ex.eigenvalues[0]
        want = ref["lambda_max" if end == "max" else "lambda_min"]
        rows.append({
            "tool": "hesscli arpack (both ends)", "end": end, "setting": "rtol 1e-6",
            "seconds": secs, "hvps": ex.hvps, "lambda": float(lam),
            "abs_error": abs(float(lam) - want), "rel_error": abs(float(lam) - want) / scale,
            "converged": ex.all_converged,
        })
    for r in rows:
        r["compile_s"] = compile_s if r["tool"] == "hesscli lanczos" else 0.0
    return rows


# ------------------------------------------------------------------ torch side


def save_network(obj: Any, path: Path, kind: str = "mse") -> None:
    """Weights and data for the torch worker (a separate process: JAX's and torch's
    thread pools in one process slowed torch by an order of magnitude).

    ``kind``: "mse" (the built-in mlp: summed squared error, mean over samples) or
    "ce" (softmax cross-entropy over integer labels, mean over samples)."""
    params = obj.unravel(obj.x)
    params = {k: {j: np.asarray(a, dtype=np.float64) for j, a in v.items()}
              for k, v in params.items()}
    # the problem's data arrays may be float32: the same values, widened
    X = np.array(obj.file.data[0], dtype=np.float64)
    Y = np.array(obj.file.data[1], dtype=np.float64 if kind == "mse" else np.int64)
    np.savez(path, kind=kind, X=X, Y=Y, w1=np.asarray(params["hidden"]["w"]),
             b1=np.asarray(params["hidden"]["b"]), w2=np.asarray(params["head"]["w"]),
             b2=np.asarray(params["head"]["b"]))


def torch_model(path: Path, dtype: str = "float64") -> tuple[Any, Any, Any]:
    """The same network, weights and data in PyTorch, in ``dtype`` (float64 or float32:
    the saved float64 values rounded once, as hesscli's ``--dtype float32`` rounds them)."""
    import torch

    torch.set_default_dtype(getattr(torch, dtype))
    z = np.load(path)
    X, Y, w1, b1, w2, b2 = (z[k] for k in ("X", "Y", "w1", "b1", "w2", "b2"))
    X, w1, b1, w2, b2 = (a.astype(dtype) for a in (X, w1, b1, w2, b2))
    if Y.dtype.kind == "f":
        Y = Y.astype(dtype)
    model = torch.nn.Sequential(
        torch.nn.Linear(w1.shape[0], w1.shape[1]), torch.nn.Tanh(),
        torch.nn.Linear(w2.shape[0], w2.shape[1]),
    )
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(w1.T.copy()))
        model[0].bias.copy_(torch.from_numpy(b1))
        model[2].weight.copy_(torch.from_numpy(w2.T.copy()))
        model[2].bias.copy_(torch.from_numpy(b2))

    def mse(out: Any, y: Any) -> Any:
        return ((out - y) ** 2).sum(-1).mean()

    criterion = mse if str(z["kind"]) == "mse" else torch.nn.CrossEntropyLoss()

    return model, criterion, (torch.from_numpy(X), torch.from_numpy(Y))


def torch_costs(model: Any, criterion: Any, data: Any) -> dict[str, float]:
    import torch

    params = list(model.parameters())

    def grad() -> Any:
        return torch.autograd.grad(criterion(model(data[0]), data[1]), params)

    loss = criterion(model(data[0]), data[1])
    g = torch.autograd.grad(loss, params, create_graph=True)
    v = [torch.randn_like(p) for p in params]

    def hvp() -> Any:
        return torch.autograd.grad(g, params, grad_outputs=v, retain_graph=True)

    grad_s = timeit(grad, repeat=5)
    hvp_s = timeit(hvp, repeat=5)
    return {"grad_s": grad_s, "hvp_s": hvp_s, "hvp_over_grad": hvp_s / grad_s}


def pyhessian_runs(model: Any, criterion: Any, data: Any, ref: dict[str, float],
                   tols: tuple[float, ...]) -> list[dict[str, Any]]:
    import pyhessian.hessian  # noqa: F401
    import torch

    ph = sys.modules["pyhessian.hessian"]  # the package re-exports the class as `hessian`

    count = [0]
    original = ph.hessian_vector_product

    def counted(*args: Any) -> Any:
        count[0] += 1
        return original(*args)

    ph.hessian_vector_product = counted
    rows = []
    scale = abs(ref["lambda_max"])
    try:
        # warm-up (torch's first autograd calls are slow): not timed
        ph.hessian(model, criterion, data=data, cuda=False).eigenvalues(maxIter=3)
        for tol, max_iter in tols:
            torch.manual_seed(0)
            count[0] = 0
            start = time.perf_counter()
            h = ph.hessian(model, criterion, data=data, cuda=False)
            vals, _ = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
            secs = time.perf_counter() - start
            lam = float(vals[0])
            rows.append({
                "tool": "pyhessian eigenvalues()", "end": "max (|λ|)",
                "setting": f"tol {tol:g}, maxIter {max_iter}"
                + (" (default)" if (tol, max_iter) == (1e-3, 100) else ""),
                "seconds": secs, "hvps": count[0], "lambda": lam,
                "abs_error": abs(lam - ref["lambda_max"]),
                "rel_error": abs(lam - ref["lambda_max"]) / scale,
                "converged": count[0] < max_iter, "compile_s": 0.0,
            })
    finally:
        ph.hessian_vector_product = original
    return rows


def eigenthings_runs(model: Any, criterion: Any, data: Any,
                     ref: dict[str, float]) -> list[dict[str, Any]]:
    import hessian_eigenthings as he

    op = he.HessianOperator(model, [data], he.supervised_loss(criterion))
    count = [0]
    matvec = op.matvec

    def counted(v: Any) -> Any:
        count[0] += 1
        return matvec(v)

    op.matvec = counted  # type: ignore[method-assign]
    scale = abs(ref["lambda_max"])
    rows = []
    he.power_iteration_one(op, seed=0, max_iter=3)  # warm-up, not timed
    runs = [
        ("power_iteration_one (default tol 1e-4)",
         lambda: he.power_iteration_one(op, seed=0)[0]),
        ("lanczos which=LA, 60 steps",
         lambda: float(he.lanczos(op, k=1, max_iter=60, which="LA", seed=0,
                                  reorthogonalize=True).eigenvalues[0])),
    ]
    for name, run in runs:
        count[0] = 0
        start = time.perf_counter()
        lam = float(run())
        secs = time.perf_counter() - start
        rows.append({
            "tool": "hessian-eigenthings", "end": "max", "setting": name, "seconds": secs,
            "hvps": count[0], "lambda": lam, "abs_error": abs(lam - ref["lambda_max"]),
            "rel_error": abs(lam - ref["lambda_max"]) / scale, "converged": True,
            "compile_s": 0.0,
        })
    count[0] = 0
    start = time.perf_counter()
    lam = float(he.lanczos(op, k=1, max_iter=60, which="SA", seed=0,
                           reorthogonalize=True).eigenvalues[0])
    secs = time.perf_counter() - start
    rows.append({
        "tool": "hessian-eigenthings", "end": "min", "setting": "lanczos which=SA, 60 steps",
        "seconds": secs, "hvps": count[0], "lambda": lam,
        "abs_error": abs(lam - ref["lambda_min"]),
        "rel_error": abs(lam - ref["lambda_min"]) / scale, "converged": True,
        "compile_s": 0.0,
    })
    return rows


def torch_worker(folder: str) -> None:
    """Run the torch side in a fresh process; writes costs and rows to out.json."""
    tmp = Path(folder)
    ref = json.loads((tmp / "ref.json").read_text())
    model, criterion, data = torch_model(tmp / "net.npz")
    n = sum(p.numel() for p in model.parameters())
    costs = torch_costs(model, criterion, data)
    tols = ((1e-3, 100), (1e-4, 300), (1e-6, 300 if n > 500_000 else 1000))
    rows = pyhessian_runs(model, criterion, data, ref, tols)
    rows += eigenthings_runs(model, criterion, data, ref)
    (tmp / "out.json").write_text(json.dumps({"costs": costs, "rows": rows}))


# ------------------------------------------------------------------ whole process

PYHESSIAN_SCRIPT = """
import numpy as np, torch
from pyhessian import hessian
torch.set_default_dtype(torch.float64)
width, inputs, outputs, samples = {width}, 32, 16, 256
rng = np.random.default_rng(0)
X = rng.standard_normal((samples, inputs))
T = rng.standard_normal((inputs, outputs)) / np.sqrt(inputs)
Y = np.tanh(X @ T) + 0.1 * rng.standard_normal((samples, outputs))
model = torch.nn.Sequential(torch.nn.Linear(inputs, width), torch.nn.Tanh(),
                            torch.nn.Linear(width, outputs))
crit = lambda out, y: ((out - y) ** 2).sum(-1).mean()
h = hessian(model, crit, data=(torch.from_numpy(X), torch.from_numpy(Y)), cuda=False)
print(h.eigenvalues()[0])
"""


def run_process(argv: list[str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed: {proc.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def whole_process(width: int, with_torch: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "hesscli analyze": run_process(
            [str(HESSCLI), "analyze", "mlp", "-p", f"width={width}", "--format", "json"]
        )
    }
    if with_torch:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
            fh.write(PYHESSIAN_SCRIPT.format(width=width))
        out["pyhessian script"] = run_process([sys.executable, fh.name])
        os.unlink(fh.name)
    return out


# ------------------------------------------------------------------ driver


def have_torch() -> bool:
    try:
        import hessian_eigenthings  # noqa: F401
        import pyhessian  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def goals(rows: list[dict[str, Any]], ref: dict[str, float]) -> dict[str, Any]:
    """The issue's goals, computed from the rows (None when not measurable)."""
    ours = [r for r in rows if r["tool"] == "hesscli lanczos" and r["end"] == "max"]
    mins = [r for r in rows if r["tool"] == "hesscli lanczos" and r["end"] == "min"]
    ph = [r for r in rows if r["tool"].startswith("pyhessian")]
    out: dict[str, Any] = {}
    default = next((r for r in ph if "(default)" in r["setting"]), None)
    if default is not None:
        err = default["rel_error"]
        same = [r for r in ours if r["rel_error"] <= err]
        best = min(same, key=lambda r: r["seconds"]) if same else None
        out["pyhessian_default_rel_error"] = err
        out["speedup_at_pyhessian_default_accuracy"] = (
            default["seconds"] / best["seconds"] if best else None
        )
        tight = [r for r in ph if r["rel_error"] <= 1e-4]
        fast_tight = min(tight, key=lambda r: r["seconds"]) if tight else None
        mine = [r for r in ours if r["rel_error"] <= 1e-4]
        mine_best = min(mine, key=lambda r: r["seconds"]) if mine else None
        out["speedup_vs_pyhessian_at_1e-4"] = (
            fast_tight["seconds"] / mine_best["seconds"] if fast_tight and mine_best else None
        )
        out["time_1e-4_over_pyhessian_default"] = (
            mine_best["seconds"] / default["seconds"] if mine_best else None
        )
    tight_max = next((r for r in ours if r["setting"] == "rtol 1e-06"), None)
    tight_min = next((r for r in mins if r["setting"] == "rtol 1e-06"), None)
    if tight_max and tight_min:
        out["lambda_min_time_over_lambda_max_time"] = tight_min["seconds"] / tight_max["seconds"]
    return out


def one_size(width: int, with_torch: bool) -> dict[str, Any]:
    obj, cur = load_mlp(width)
    x = np.asarray(obj.x)
    print(f"\n-- mlp width={width}: n = {obj.n} parameters", flush=True)
    costs = jax_costs(obj, cur)
    cache = RESULTS / f"scale_reference_width{width}.json"
    if cache.exists():  # ARPACK at 1e-10 takes minutes; the point and network are seeded
        ref = json.loads(cache.read_text())
    else:
        ref = reference(cur, x)
        RESULTS.mkdir(exist_ok=True)
        cache.write_text(json.dumps(ref))
    print(f"reference (ARPACK tol 1e-10): λmax = {ref['lambda_max']:.12g} "
          f"({ref['lambda_max_hvps']} HVPs), λmin = {ref['lambda_min']:.12g} "
          f"({ref['lambda_min_hvps']} HVPs)", flush=True)
    rows = hesscli_runs(cur, x, ref)
    tcosts = None
    if with_torch:
        with tempfile.TemporaryDirectory() as tmp:
            net, out = Path(tmp) / "net.npz", Path(tmp) / "out.json"
            save_network(obj, net)
            (Path(tmp) / "ref.json").write_text(json.dumps(ref))
            subprocess.run(
                [sys.executable, "-c", "import sys; from tests.benchmarks.bench_scale import "
                 "torch_worker; torch_worker(sys.argv[1])", tmp],
                cwd=ROOT, check=True,
            )
            got = json.loads(out.read_text())
        tcosts = got["costs"]
        rows += got["rows"]
    print_table(
        f"λmax / λmin on mlp width={width} (n = {obj.n}); error = |λ − λ_ref| / |λmax|",
        ["tool", "end", "setting", "seconds", "HVPs", "rel. error"],
        [[r["tool"], r["end"], r["setting"], r["seconds"], r["hvps"], r["rel_error"]]
         for r in rows],
    )
    cost_rows = [["JAX jvp(grad)", costs["hvp_s"] * 1e3, costs["grad_s"] * 1e3,
                  costs["hvp_over_grad"]],
                 ["JAX linearized (hesscli Lanczos)", costs["hvp_linearized_s"] * 1e3,
                  costs["grad_s"] * 1e3, costs["linearized_hvp_over_grad"]]]
    if tcosts:
        cost_rows.append(["torch double backward", tcosts["hvp_s"] * 1e3,
                          tcosts["grad_s"] * 1e3, tcosts["hvp_over_grad"]])
    print_table("HVP cost", ["HVP", "ms per HVP", "ms per gradient", "HVP / gradient"],
                cost_rows)
    g = goals(rows, ref)
    print("goals:", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in g.items()},
          flush=True)
    return {"n": obj.n, "width": width, "costs": costs, "torch_costs": tcosts,
            "reference": ref, "runs": rows, "goals": g}


def detail_main() -> dict[str, Any]:
    """The per-rtol comparison with PyHessian and hessian-eigenthings, in process
    (``BENCH_SCALE_DETAIL=1``; sizes from ``BENCH_SCALE_WIDTHS``)."""
    widths = [int(w) for w in os.environ.get("BENCH_SCALE_WIDTHS", "2048").split(",")]
    with_torch = have_torch()
    if not with_torch:
        print("torch / pyhessian / hessian-eigenthings not installed: hesscli columns only")
    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "sizes": []}
    for width in widths:
        results["sizes"].append(one_size(width, with_torch))
    pw = int(os.environ.get("BENCH_SCALE_PROCESS_WIDTH", "2048"))
    if pw:
        proc = whole_process(pw, with_torch)
        print_table(f"whole process, mlp width={pw} (fresh processes)",
                    ["command", "wall s", "cpu s"],
                    [[k, v["wall_s"], v["cpu_s"]] for k, v in proc.items()])
        results[f"whole_process_width_{pw}"] = proc
    results["load_average_end"] = os.getloadavg()
    return results


# ------------------------------------------------------------------ the table


HERE = Path(__file__).resolve().parent
SOFTMAX = HERE / "softmax_mlp.py"
MLP_F32DATA = HERE / "mlp_f32data.py"
# name: (objective argument, loss kind for torch)
NETWORKS = {"mlp": ("mlp", "mse"), "softmax": (str(SOFTMAX), "ce"),
            "mlpf32": (str(MLP_F32DATA), "mse")}
# network:width[:dtype[:rtol]]; the float32 rows (and the float64 rows they are
# compared with) use mlpf32, whose data is float32 (see mlp_f32data.py)
DEFAULT_ROWS = ("mlp:2048,softmax:2325,mlp:20480,softmax:23255,"
                "mlpf32:2048:float64,mlpf32:2048:float32,"
                "mlpf32:20480:float64,mlpf32:20480:float32,mlpf32:204800:float32")
# above this many parameters the float64 reference is ARPACK at tol LOOSE_TOL with a
# basis of LOOSE_NCV vectors (tol 1e-12 with 40 vectors would take hours at 10^7)
LOOSE_N = 3_000_000
LOOSE_TOL = 1e-8
LOOSE_NCV = 20
UNFINISHED: dict[tuple[str, int], dict[str, Any]] = {}
REF_SECONDS = float(os.environ.get("BENCH_SCALE_REF_SECONDS", "1200"))  # per end, loose only
TIMEOUT = float(os.environ.get("BENCH_SCALE_TIMEOUT", "900"))  # seconds per child

PYHESSIAN_PROCESS = """
import sys, time, numpy as np, torch
import pyhessian.hessian  # noqa
from tests.benchmarks.bench_scale import torch_model
ph = sys.modules["pyhessian.hessian"]
count = [0]
original = ph.hessian_vector_product
def counted(*args):
    count[0] += 1
    return original(*args)
ph.hessian_vector_product = counted
torch.manual_seed(0)
model, criterion, data = torch_model(sys.argv[1], sys.argv[2])
start = time.perf_counter()
h = ph.hessian(model, criterion, data=data, cuda=False)
vals, _ = h.eigenvalues()  # the defaults: maxIter=100, tol=1e-3, top_n=1
print(float(vals[0]), count[0], time.perf_counter() - start)
"""


def session_peak_mib(sid: int) -> float | None:
    """The largest VmHWM (peak resident set) among the live processes of session ``sid``."""
    peaks = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != sid:  # fields after the name: state ppid pgrp session
                continue
            for line in (status.parent / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except (OSError, IndexError, ValueError):
            continue
    return max(peaks) if peaks else None


def run_child(argv: list[str], env: dict[str, str] | None = None,
              timeout: float | None = None) -> dict[str, Any]:
    """Run ``argv`` as a fresh process: wall and CPU seconds, peak resident memory,
    stdout and stderr.

    A small parent waits for it with ``os.wait4``, which gives this child's own
    rusage (``RUSAGE_CHILDREN`` would be the largest of every child so far). After
    ``timeout`` seconds the child's session is killed and the result says
    ``timed_out`` (with the peak memory read from /proc just before, and whatever
    the child had written to stderr).
    """
    wrapper = (
        "import json, os, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.Popen(sys.argv[1:])\n"
        "_, status, ru = os.wait4(p.pid, 0)\n"
        "sys.stderr.write('\\n@@' + json.dumps({'wall_s': time.perf_counter() - t,"
        " 'cpu_s': ru.ru_utime + ru.ru_stime, 'peak_mib': ru.ru_maxrss / 1024,"
        " 'rc': os.waitstatus_to_exitcode(status)}) + '\\n')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", wrapper, *argv], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    start = time.perf_counter()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak = session_peak_mib(proc.pid)
        os.killpg(proc.pid, 9)  # the session started above: the wrapper and its child
        out, err = proc.communicate()
        return {"timed_out": True, "wall_s": time.perf_counter() - start, "cpu_s": None,
                "peak_mib": peak, "rc": None, "stdout": out, "stderr": err}
    head, _, tail = err.rpartition("\n@@")
    stats = json.loads(tail)
    if stats["rc"] not in (0, 1):  # 1: a check failed, still a full run
        raise RuntimeError(f"{argv} failed ({stats['rc']}): {head[-800:]}")
    return {**stats, "timed_out": False, "stdout": out, "stderr": head}


def hvps_per_end(doc: dict[str, Any]) -> dict[str, Any]:
    """HVPs in all and per end, from the analyze document's notes (None when the end
    did not converge or the note is absent), and the relative target."""
    import re

    text = " ".join(doc.get("notes", []))
    out: dict[str, Any] = {}
    for key, pattern in (("hvps", r"(\d+) HVPs in all"), ("hvps_max", r"λmax end: (\d+) HVPs"),
                         ("hvps_min", r"λmin end: (\d+) HVPs"),
                         ("target_rtol", r"target:[^;]*?\(rtol ([0-9.e+-]+)")):
        m = re.search(pattern, text)
        out[key] = (float(m.group(1)) if key == "target_rtol" else int(m.group(1))) if m else None
    return out


def progress_tail(stderr: str, lines: int = 3) -> list[str]:
    """The last progress lines a child wrote (``--progress``: HVPs, restarts, Ritz values)."""
    got = [line.strip() for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    return got[-lines:]


def analyze_row(target: str, width: int, extra: list[str], label: str,
                dtype: str = "float64") -> dict[str, Any]:
    """One whole ``hesscli analyze`` process and what its JSON says against the reference."""
    argv = [str(HESSCLI), "analyze", target, "-p", f"width={width}", "--format", "json",
            "--dtype", dtype, "--progress", *extra]
    got = run_child(argv, timeout=TIMEOUT)
    row: dict[str, Any] = {"tool": label, "argv": argv[1:], "wall_s": got["wall_s"],
                           "cpu_s": got["cpu_s"], "peak_mib": got["peak_mib"],
                           "timed_out": got["timed_out"],
                           "progress": progress_tail(got["stderr"])}
    if got["timed_out"]:
        print(f"{label}: stopped after {got['wall_s']:.0f} s; last progress: "
              f"{row['progress']}", flush=True)
        return row
    doc = json.loads(got["stdout"])
    lam = doc["eigenvalues"]
    stability = doc.get("stability") or {}
    row.update({
        "lambda_max": lam[-1], "lambda_min": lam[0],
        "eigenvalue_errors": doc.get("eigenvalue_errors"),
        "residuals": doc.get("residuals"), "converged": doc.get("converged"),
        "classification": doc.get("classification"),
        "definiteness": doc.get("definiteness"), "stable": stability.get("stable"),
        "bounds": doc.get("bounds"), "certainty": doc.get("certainty"),
        "notes": doc.get("notes"),
        **hvps_per_end(doc)})
    return row


def pyhessian_row(net: Path, dtype: str = "float64") -> dict[str, Any]:
    """PyHessian's default top eigenvalue on the same network, as a whole process."""
    got = run_child([sys.executable, "-c", PYHESSIAN_PROCESS, str(net), dtype],
                    timeout=TIMEOUT)
    row: dict[str, Any] = {"tool": f"pyhessian eigenvalues() default, {dtype}",
                           "wall_s": got["wall_s"], "cpu_s": got["cpu_s"],
                           "peak_mib": got["peak_mib"], "timed_out": got["timed_out"]}
    if got["timed_out"]:
        return row
    lam, hvps, inner = got["stdout"].split()
    lam = float(lam)
    row.update({"lambda_max": lam, "hvps": int(hvps), "hvps_max": int(hvps),
                "solver_s": float(inner)})
    return row


def has_option(option: str) -> bool:
    proc = subprocess.run([str(HESSCLI), "analyze", "--help"], capture_output=True, text=True)
    return option in proc.stdout


def have_pyhessian() -> bool:
    try:
        import pyhessian  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def reference_for(name: str, width: int) -> dict[str, Any]:
    """The float64 truth of the network at its seeded point, cached in ``bench-results/``:
    ARPACK at tol 1e-12 (40 vectors), or above :data:`LOOSE_N` parameters at
    :data:`LOOSE_TOL` with :data:`LOOSE_NCV` vectors (ARPACK's test is
    ‖r‖ ≤ tol·|θ|, so either is far below the float32 target of 1e-3·|λmax|)."""
    from hesscli.api import load
    from hesscli.curvature.choose import curvature_for

    target, _ = NETWORKS[name]
    n = 49 * width + 16 if name != "softmax" else 43 * width + 10
    loose = n > LOOSE_N
    label = f"tol{LOOSE_TOL:g}_ncv{LOOSE_NCV}" if loose else "tol1e-12"
    cache = RESULTS / f"scale_reference_{name}_{width}_{label}.json"
    if cache.exists():  # minutes at 10^6; the network and the point are seeded
        return json.loads(cache.read_text())
    if (name, width) in UNFINISHED:  # not tried twice in one invocation
        return UNFINISHED[(name, width)]
    partial = cache.with_name(cache.stem + "_partial.json")
    if partial.exists() and not os.environ.get("BENCH_SCALE_REF_RETRY"):
        return json.loads(partial.read_text())  # an end not done in time: kept as None
    obj = load(target, None, (f"width={width}",), seed=0, dtype="float64", method="auto")
    cur, _ = curvature_for(obj, "auto")
    start = time.perf_counter()
    limited = loose or "BENCH_SCALE_REF_SECONDS" in os.environ
    seconds = REF_SECONDS if limited else None
    if loose:
        ref = reference(cur, np.asarray(obj.x), tol=LOOSE_TOL, ncv=LOOSE_NCV, seconds=seconds)
    else:
        ref = reference(cur, np.asarray(obj.x), tol=1e-12, seconds=seconds)
    ref["method"] = (f"ARPACK float64, tol {LOOSE_TOL:g}, ncv {LOOSE_NCV}" if loose
                     else "ARPACK float64, tol 1e-12, ncv 40")
    ref["seconds"] = time.perf_counter() - start
    if None in (ref["lambda_max"], ref["lambda_min"]):
        ref["method"] += f" (an end not done in {REF_SECONDS:g} s: None)"
        UNFINISHED[(name, width)] = ref
        RESULTS.mkdir(exist_ok=True)
        partial.write_text(json.dumps(ref))  # BENCH_SCALE_REF_RETRY=1 tries again
        return ref
    RESULTS.mkdir(exist_ok=True)
    cache.write_text(json.dumps(ref))
    return ref


def score(row: dict[str, Any], ref: dict[str, Any]) -> None:
    """Each end's achieved error |λ − λ_ref| / |λ_ref max| (None where either is unknown)."""
    scale = abs(ref["lambda_max"]) if ref["lambda_max"] is not None else None
    for key, end in (("err_max", "lambda_max"), ("err_min", "lambda_min")):
        got, want = row.get(end), ref.get(end)
        if end not in row:
            continue
        row[key] = (abs(got - want) / scale if None not in (got, want, scale) else None)


def one_row(name: str, width: int, with_torch: bool, dtype: str = "float64",
            rtol: str | None = None) -> dict[str, Any]:
    """Everything the issue's table asks for, for one network at one width and dtype
    (``rtol``: the target of the default run instead of the dtype's default)."""
    from hesscli.api import load
    from hesscli.curvature.choose import curvature_for

    target, kind = NETWORKS[name]
    obj = load(target, None, (f"width={width}",), seed=0, dtype=dtype, method="auto")
    cur, _ = curvature_for(obj, "auto")
    n = obj.n
    print(f"\n-- {name} width={width} {dtype}{f' rtol {rtol}' if rtol else ''}: n = {n}",
          flush=True)
    # BENCH_SCALE_COSTS=0 skips the in-process HVP/gradient timing (a minute at 10^7)
    costs = jax_costs(obj, cur) if os.environ.get("BENCH_SCALE_COSTS", "1") != "0" else None
    if costs:
        print("HVP / gradient:", {k: round(v, 4) for k, v in costs.items()}, flush=True)
    # the torch side's network, saved now (the row's weights, widened: torch casts them
    # back to the row's dtype exactly) rather than loading the objective a second time
    tmp = tempfile.TemporaryDirectory()
    net = Path(tmp.name) / "net.npz"
    with_torch = with_torch and os.environ.get("BENCH_SCALE_TORCH", "1") != "0"
    if with_torch and not rtol:
        save_network(obj, net, kind)
    del cur, obj
    extra = ["--rtol", rtol] if rtol else []
    runs = [analyze_row(target, width, extra,
                        f"hesscli analyze {'--rtol ' + rtol if rtol else '(default)'}", dtype)]
    if (dtype == "float64" and not rtol and os.environ.get("BENCH_SCALE_ENDS_MAX", "1") != "0"
            and has_option("--ends")):
        runs.append(analyze_row(target, width, ["--ends", "max", "--rtol", "1e-4"],
                                "hesscli analyze --ends max --rtol 1e-4", dtype))
    if with_torch and not rtol:
        runs.append(pyhessian_row(net, dtype))
    tmp.cleanup()
    # the reference after the timed runs (at 10^7 it may take longer than all of them)
    ref = reference_for(name, width)
    method = ref.get("method", "ARPACK float64, tol 1e-12")
    print(f"reference ({method}): λmax = {fmt(ref['lambda_max'], '.12g')} "
          f"({ref['lambda_max_hvps']} HVPs), λmin = {fmt(ref['lambda_min'], '.12g')} "
          f"({ref['lambda_min_hvps']} HVPs)", flush=True)
    for r in runs:
        score(r, ref)
    base = next((r for r in runs if r["tool"].startswith("pyhessian")), None)
    for r in runs:
        r["wall_over_pyhessian"] = r["wall_s"] / base["wall_s"] if base else None
    return {"network": name, "width": width, "n": n, "dtype": dtype, "rtol": rtol,
            "costs": costs, "reference": ref, "runs": runs, "load_average": os.getloadavg()}


def fmt(v: Any, spec: str = ".3g") -> str:
    return "—" if v is None else format(v, spec)


def verdict(r: dict[str, Any]) -> str:
    if r.get("timed_out"):
        return "stopped at the time limit"
    if "classification" not in r:
        return ""
    stable = {True: "stable", False: "unstable", None: "—"}[r.get("stable")]
    return f"{r['classification']}, {r['definiteness']}, {stable}"


def met(r: dict[str, Any]) -> str:
    conv = r.get("converged")
    if not conv:
        return "—"
    return "/".join("yes" if c else "no" for c in conv)


def print_rows(rows: list[dict[str, Any]]) -> None:
    table = []
    for row in rows:
        label = f"{row['network']} n={row['n']:.3g}"
        if row.get("solver_note"):
            label += f" ({row['solver_note']})"
        dtype = row.get("dtype", "float64") + (f" rtol {row['rtol']}" if row.get("rtol") else "")
        for r in row["runs"]:
            table.append([
                label, dtype, r["tool"], fmt(r["wall_s"]),
                fmt(r.get("wall_over_pyhessian")), fmt(r["peak_mib"], ".0f"),
                f"{fmt(r.get('hvps_max'), 'd')} / {fmt(r.get('hvps_min'), 'd')}",
                fmt(r.get("hvps"), "d"), fmt(r.get("err_max"), ".1e"),
                fmt(r.get("err_min"), ".1e"), met(r), verdict(r),
            ])
        c = row["costs"]
        ref = row["reference"]
        ratio = (f"HVP/gradient: jvp(grad) {c['hvp_over_grad']:.2f}, linearized "
                 f"{c['linearized_hvp_over_grad']:.2f}; " if c else "")
        table.append([label, dtype, f"{ratio}reference: "
                      f"{ref.get('method', 'ARPACK float64, tol 1e-12, ncv 40')}",
                      "", "", "", "", "", "", "", "", ""])
    from rich.console import Console
    from rich.table import Table

    out = Table(title="whole processes; errors |λ − λ_ref| / |λmax| against the float64 "
                "reference of the same network; met: each end's target (max/min)",
                title_justify="left")
    for col in ["network", "dtype", "run", "wall s", "÷ PyHessian", "peak MiB",
                "HVPs max/min", "HVPs all", "err λmax", "err λmin", "met", "verdict"]:
        out.add_column(col, justify="left" if col in ("network", "dtype", "run", "verdict")
                       else "right")
    for r in table:
        out.add_row(*r)
    Console(width=220).print(out)


def hvp_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """float32 ÷ float64 HVPs (both ends, default runs) per network and size, against the
    float64 default and, when measured, float64 at the float32 run's target."""
    def default(row: dict[str, Any]) -> dict[str, Any] | None:
        return next((r for r in row["runs"] if r["tool"].startswith("hesscli analyze")
                     and "--ends" not in r["tool"]), None)

    out = []
    for row in rows:
        if row.get("dtype") != "float32" or row.get("rtol"):
            continue
        mine = default(row)
        if not mine or not mine.get("hvps"):
            continue
        same = [r for r in rows if r["network"] == row["network"] and r["n"] == row["n"]
                and r.get("dtype", "float64") == "float64"]
        item: dict[str, Any] = {"network": row["network"], "n": row["n"],
                                "float32_hvps": mine["hvps"],
                                "float32_target_rtol": mine.get("target_rtol")}
        for other in same:
            theirs = default(other)
            if not theirs or not theirs.get("hvps"):
                continue
            key = f"float64 rtol {other['rtol']}" if other.get("rtol") else "float64 default"
            item[key] = {"hvps": theirs["hvps"], "ratio": mine["hvps"] / theirs["hvps"]}
        out.append(item)
    for item in out:
        print(f"HVPs float32 ÷ float64, {item['network']} n={item['n']:.3g}: " + (", ".join(
            f"{k}: {item['float32_hvps']}/{v['hvps']} = {v['ratio']:.2f}"
            for k, v in item.items() if isinstance(v, dict))
            or f"no float64 row (float32: {item['float32_hvps']} HVPs)"), flush=True)
    return out


def rescore(spec: str) -> None:
    """``BENCH_SCALE_REFERENCE=name:width``: compute that reference alone (after its rows
    were measured without one) and score the saved rows of that network and width
    against it, an unfinished end staying None."""
    name, width = spec.split(":")
    ref = reference_for(name, int(width))
    print(f"reference ({ref['method']}): λmax = {fmt(ref['lambda_max'], '.12g')} "
          f"({ref['lambda_max_hvps']} HVPs), λmin = {fmt(ref['lambda_min'], '.12g')} "
          f"({ref['lambda_min_hvps']} HVPs)", flush=True)
    for path in sorted(RESULTS.glob(f"scale_row_{name}_{width}*.json")):
        row = json.loads(path.read_text())
        row["reference"] = ref
        for r in row["runs"]:
            score(r, ref)
        path.write_text(json.dumps(row, indent=2))


def main() -> dict[str, Any]:
    if os.environ.get("BENCH_SCALE_DETAIL"):
        return detail_main()
    if os.environ.get("BENCH_SCALE_REFERENCE"):
        rescore(os.environ["BENCH_SCALE_REFERENCE"])
        os.environ["BENCH_SCALE_ROWS"] = ""
    spec = os.environ.get("BENCH_SCALE_ROWS", DEFAULT_ROWS)
    with_torch = have_pyhessian()
    if not with_torch:
        print("torch / pyhessian not installed: hesscli columns only")
    rows = []
    for item in filter(None, spec.split(",")):
        name, width, *rest = item.split(":")
        dtype = rest[0] if rest else "float64"
        rtol = rest[1] if len(rest) > 1 else None
        row = one_row(name, int(width), with_torch, dtype, rtol)
        tag = os.environ.get("BENCH_SCALE_TAG", "")
        if tag:  # e.g. which solver was on the branch when the row was measured
            row["solver_note"] = tag
        RESULTS.mkdir(exist_ok=True)
        suffix = (f"_{dtype}" if dtype != "float64" or rest else "")
        suffix += f"_rtol{rtol}" if rtol else ""
        suffix += f"_{tag.split()[0]}" if tag else ""
        (RESULTS / f"scale_row_{name}_{width}{suffix}.json").write_text(json.dumps(row, indent=2))
        rows.append(row)
        print_rows([row])
    # every row measured so far (one heavy run at a time, in separate invocations)
    saved = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("scale_row_*.json"))]
    saved.sort(key=lambda r: (r["n"], r["network"], r.get("dtype", "float64"),
                              r.get("rtol") or ""))
    print_rows(saved)
    return {"rows_measured_now": spec, "rows": saved, "hvp_ratios": hvp_ratios(saved)}
