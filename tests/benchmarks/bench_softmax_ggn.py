"""Memory and time of GGN and Fisher matvecs on softmax cross-entropy at vocabularies 8k–50k.

The network is ``softmax_lm.py`` beside this file (embedding -> tanh dense ->
logits over the vocabulary, 512 positions, width 32), once with
``output_loss = hesscli.losses.softmax_cross_entropy`` (``helper``: the output
Hessian applied in closed form, diag p − ppᵀ per position) and once with the
same loss written with ``log_softmax`` (``written``: hesscli's generic path,
second-order autodiff of the loss), in float32 and float64. Per row:

- memory: XLA's memory analysis (temporaries + outputs, the arguments x and v
  not counted) of the compiled product, as a multiple of the logits' bytes:
  ``one`` is one matvec from scratch (forward pass, linearization, matvec: what
  ``hvp`` runs), ``resident`` the point linearized once and kept across three
  matvecs in a loop (what Lanczos, SLQ and the dense path run);
- time per matvec, from scratch and amortized over a linearization (``lax.map``
  over 4 vectors), and the seconds to build the GGN and Fisher operators (their
  checks included: the generic path probes the loss, the helper does not);
- ``rel_diff``: the written loss's GGN matvec against the helper's, relative.

``BENCH_SOFTMAX_VOCABS=8192,32768`` (comma list) picks the vocabularies and
``BENCH_SOFTMAX_DTYPES=float64`` the dtypes. The machine is shared: the load
average is recorded with the results.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.benchmarks.common import block, print_table, timeit

HERE = Path(__file__).resolve().parent
MODEL = str(HERE / "softmax_lm.py")
VOCABS = (8192, 16384, 32768, 50257)
DTYPES = ("float32", "float64")
POSITIONS, DIM, BATCH = 512, 32, 4


def memory(fn: Any, *args: Any) -> int | None:
    """Temporaries + outputs of the compiled ``fn`` (bytes), None if not reported."""
    from hesscli.jaxconf import jax_module

    analysis = jax_module().jit(fn).lower(*args).compile().memory_analysis()
    if analysis is None:
        return None
    return int(analysis.temp_size_in_bytes + analysis.output_size_in_bytes)


def row(vocab: int, dtype: str, loss: str, reference: Any) -> tuple[dict[str, Any], Any]:
    from hesscli.api import load
    from hesscli.curvature.choose import curvature_for
    from hesscli.jaxconf import jax_module

    jax = jax_module()
    jnp = jax.numpy
    obj = load(MODEL, None, params=[f"vocab={vocab}", f"dim={DIM}", f"positions={POSITIONS}",
                                    f"loss={loss}"], dtype=dtype)
    logits = POSITIONS * vocab * np.dtype(dtype).itemsize
    start = time.perf_counter()
    ggn, _ = curvature_for(obj, "auto", kind="ggn")
    ggn_setup = time.perf_counter() - start
    start = time.perf_counter()
    fisher, _ = curvature_for(obj, "auto", kind="fisher")
    fisher_setup = time.perf_counter() - start

    spec = jax.ShapeDtypeStruct((obj.n,), jnp.dtype(dtype))

    def resident(at: Any) -> Any:
        def three(x: Any, v: Any) -> Any:
            mv = at(x)
            return jax.lax.fori_loop(0, 3, lambda i, w: mv(w / jnp.linalg.norm(w)), v)
        return three

    def ratio(nbytes: int | None) -> float | None:
        return None if nbytes is None else nbytes / logits

    out: dict[str, Any] = {
        "vocab": vocab, "dtype": dtype, "loss": loss, "n": obj.n,
        "logits_mib": logits / 2**20,
        "ggn_memory_one": ratio(memory(lambda x, v: ggn.operator_at(x)(v), spec, spec)),
        "ggn_memory_resident": ratio(memory(resident(ggn.operator_at), spec, spec)),
        "fisher_memory_resident": ratio(memory(resident(fisher.operator_at), spec, spec)),
        "ggn_setup_s": ggn_setup, "fisher_setup_s": fisher_setup,
    }
    x = jnp.asarray(obj.x, dtype)
    vs = jnp.asarray(np.random.default_rng(1).standard_normal((BATCH, obj.n)), dtype)
    many = jax.jit(lambda x, vs: jax.lax.map(ggn.operator_at(x), vs))
    product = block(ggn.hvp_fn(x, vs[0]))
    block(many(x, vs))
    out["ggn_one_ms"] = 1e3 * timeit(lambda: block(ggn.hvp_fn(x, vs[0])), repeat=3)
    out["ggn_resident_ms"] = 1e3 * timeit(lambda: block(many(x, vs)), repeat=3) / BATCH
    result = np.asarray(product, np.float64)
    if reference is not None:
        out["rel_diff"] = float(np.linalg.norm(result - reference) / np.linalg.norm(reference))
    return out, result


def release() -> None:
    """Drop the compiled programs of the last row (a 50k row holds gigabytes)."""
    from hesscli.jaxconf import jax_module

    jax_module().clear_caches()
    gc.collect()


def main() -> dict[str, Any]:
    vocabs = tuple(int(v) for v in os.environ.get("BENCH_SOFTMAX_VOCABS", "").split(",")
                   if v) or VOCABS
    dtypes = tuple(d for d in os.environ.get("BENCH_SOFTMAX_DTYPES", "").split(",")
                   if d) or DTYPES
    rows = []
    for dtype in dtypes:
        for vocab in vocabs:
            helper, product = row(vocab, dtype, "helper", None)
            release()
            written, _ = row(vocab, dtype, "written", product)
            release()
            rows += [helper, written]
            print(f"  {dtype} vocab {vocab}: GGN memory {helper['ggn_memory_resident']:.2f}× "
                  f"(helper) vs {written['ggn_memory_resident']:.2f}× (written) the logits",
                  flush=True)

    def fmt(value: Any) -> Any:
        return "—" if value is None else value

    print_table(
        f"GGN (G) and Fisher (F) matvecs on softmax cross-entropy ({POSITIONS} positions, "
        f"width {DIM}): memory (XLA) as a multiple of the logits' bytes, one matvec (1) or "
        "linearized once and resident (res); time per matvec",
        ["dtype", "V", "loss", "logits MiB", "mem 1", "mem res", "F mem res", "ms 1",
         "ms res", "G setup s", "F setup s", "rel diff"],
        [[r["dtype"], r["vocab"], r["loss"], r["logits_mib"], fmt(r["ggn_memory_one"]),
          fmt(r["ggn_memory_resident"]), fmt(r["fisher_memory_resident"]), r["ggn_one_ms"],
          r["ggn_resident_ms"], r["ggn_setup_s"], r["fisher_setup_s"],
          fmt(r.get("rel_diff"))] for r in rows],
    )
    return {"positions": POSITIONS, "dim": DIM, "load_average": os.getloadavg(), "rows": rows}
