"""Which dense-Hessian formulation should hesscli use? (issue: analyze)

Times ``jax.hessian``, ``jacfwd(grad)``, ``jacrev(grad)``, HVPs over the basis
with ``vmap`` and with ``lax.map`` in chunks (hesscli's choice,
``hesscli.curvature.exact.dense_from_hvp``) on a dense quadratic and a tanh
MLP at n ≈ 500, 1000, 2000. Each time is reported as a ratio to one gradient
evaluation measured in the same run, with XLA's compiled peak memory. Then
the eigen-decomposition: eigenvalues only, full ``eigh``, and hesscli's
eigenvalues + two end eigenvectors.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from hesscli.jaxconf import jax_module
from tests.benchmarks.common import block, compiled_memory, print_table, timeit

SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "500,1000,2000").split(",")]


def quadratic(n: int) -> tuple[Any, np.ndarray]:
    jnp = jax_module().numpy
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)) / np.sqrt(n)
    A = jnp.asarray(a @ a.T)
    return (lambda x: 0.5 * x @ A @ x), rng.standard_normal(n)


def mlp(n: int) -> tuple[Any, np.ndarray]:
    """tanh MLP 32 -> w -> 16 with 49·w + 16 ≈ n parameters, on 256 samples."""
    jnp = jax_module().numpy
    width = max(1, round((n - 16) / 49))
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((256, 32)))
    Y = jnp.asarray(rng.standard_normal((256, 16)))
    sizes = [(32, width), (width,), (width, 16), (16,)]
    offsets = np.cumsum([0] + [int(np.prod(s)) for s in sizes])

    def f(x):
        w1, b1, w2, b2 = (x[offsets[i]:offsets[i + 1]].reshape(s) for i, s in enumerate(sizes))
        h = jnp.tanh(X @ w1 + b1)
        return jnp.mean(jnp.sum((h @ w2 + b2 - Y) ** 2, axis=-1))

    return f, rng.standard_normal(int(offsets[-1])) * 0.2


def formulations(f: Any, n: int) -> dict[str, Any]:
    jax = jax_module()
    jnp = jax.numpy
    from hesscli.curvature.exact import dense_from_hvp, hvp_batch_size

    def hvp(x, v):
        return jax.jvp(jax.grad(f), (x,), (v,))[1]

    out = {
        "jax.hessian": jax.hessian(f),
        "jacfwd(grad)": jax.jacfwd(jax.grad(f)),
        "jacrev(grad)": jax.jacrev(jax.grad(f)),
        "vmap(hvp)": lambda x: jax.vmap(lambda v: hvp(x, v))(jnp.eye(n, dtype=x.dtype)),
    }
    for chunk in (32, 64, 128, 512):
        out[f"lax.map chunk {chunk}"] = dense_from_hvp(hvp, n, jnp.float64, chunk)
    example = jax.ShapeDtypeStruct((n,), jnp.float64)
    chosen = hvp_batch_size(jax.jit(hvp), example, n)
    out[f"hesscli (batch {chosen})"] = dense_from_hvp(hvp, n, jnp.float64, chosen)
    return out


def bench_hessians() -> list[dict[str, Any]]:
    jax = jax_module()
    rows = []
    for problem, make in (("quadratic", quadratic), ("mlp", mlp)):
        for n_target in SIZES:
            f, x0 = make(n_target)
            x = jax.numpy.asarray(x0)
            n = x.size
            grad = jax.jit(jax.grad(f))
            block(grad(x))
            t_grad = timeit(lambda grad=grad, x=x: block(grad(x)))
            reference = None
            for name, fn in formulations(f, n).items():
                jitted = jax.jit(fn)
                H = block(jitted(x))
                if reference is None:
                    reference = np.asarray(H)
                err = float(np.max(np.abs(np.asarray(H) - reference)))
                t = timeit(lambda jitted=jitted, x=x: block(jitted(x)), repeat=3, min_time=0.0)
                rows.append({
                    "problem": problem, "n": n, "formulation": name, "seconds": t,
                    "ratio_to_gradient": t / t_grad, "memory_bytes": compiled_memory(jitted, x),
                    "max_abs_diff": err,
                })
                del H
    return rows


def bench_eigen() -> list[dict[str, Any]]:
    import scipy.linalg

    from hesscli.spectra.spectrum import eigvals_and_end_vectors

    rows = []
    rng = np.random.default_rng(1)
    for n in [s * 2 for s in SIZES]:
        a = rng.standard_normal((n, n))
        a = a + a.T
        cases = {
            "eigvalsh": lambda a=a: scipy.linalg.eigh(a, eigvals_only=True),
            "eigh (all vectors)": lambda a=a: scipy.linalg.eigh(a),
            "hesscli: values + 2 end vectors": lambda a=a: eigvals_and_end_vectors(a),
        }
        for name, fn in cases.items():
            rows.append({"n": n, "method": name, "seconds": timeit(fn, repeat=3, min_time=0.0)})
    return rows


def main() -> dict[str, Any]:
    hess = bench_hessians()
    print_table(
        "Dense Hessian formulations (time as a multiple of one gradient; XLA peak memory)",
        ["problem", "n", "formulation", "× gradient", "seconds", "MB", "max |ΔH|"],
        [[r["problem"], r["n"], r["formulation"], r["ratio_to_gradient"], r["seconds"],
          (r["memory_bytes"] or 0) / 2**20, r["max_abs_diff"]] for r in hess],
    )
    verdicts = []
    for problem in ("quadratic", "mlp"):
        for n in sorted({r["n"] for r in hess if r["problem"] == problem}):
            group = [r for r in hess if r["problem"] == problem and r["n"] == n]
            best = min(group, key=lambda r: r["seconds"])
            ours = next(r for r in group if r["formulation"].startswith("hesscli"))
            verdicts.append({
                "problem": problem, "n": n, "fastest": best["formulation"],
                "hesscli": ours["formulation"],
                "hesscli_over_fastest": ours["seconds"] / best["seconds"],
                "hesscli_memory_over_min": (ours["memory_bytes"] or 0)
                / max(1, min(r["memory_bytes"] or 1 for r in group)),
            })
    print_table("hesscli's choice (lax.map, batch from the HVP's memory) against the fastest",
                ["problem", "n", "fastest", "hesscli", "time / fastest", "mem / least"],
                [[v["problem"], v["n"], v["fastest"], v["hesscli"], v["hesscli_over_fastest"],
                  v["hesscli_memory_over_min"]] for v in verdicts])
    eig = bench_eigen()
    print_table("Symmetric eigensolvers (seconds)", ["n", "method", "seconds"],
                [[r["n"], r["method"], r["seconds"]] for r in eig])
    return {"hessians": hess, "verdicts": verdicts, "eigen": eig}
