"""``--chunk-size``: the full-data objective evaluated in chunks of the data.

When an objective file defines ``data`` (arrays sharing a leading sample axis)
and ``loss(params, batch)``, the full-data objective can be computed as a
``lax.map`` over chunks of ``chunk_size`` samples (and one remainder chunk), so
no single call (nor its HVP's intermediates) sees all the data at once.

The assumption, checked numerically at load: ``objective(params)`` equals the
loss over all the data, i.e. ``loss`` is a *mean* over the batch (the chunk
losses are combined weighted by their sizes) or, failing that, a *sum* (chunk
losses added). If neither matches ``objective`` at the point to within
rounding, the option is refused with both numbers, since chunking a different
function would analyze the wrong objective.

Each chunk's loss is rematerialized (``jax.checkpoint``): without it the
reverse pass through ``lax.map`` keeps every chunk's activations, all of them
at once, and a gradient or HVP over chunks needed as much memory as one over
all the data (measured: 67 MiB vs 65 MiB for the gradient, 135 vs 161 MiB for
the HVP, 8192 samples in chunks of 256). With it, what is kept between chunks
is the chunks' inputs, the rest is recomputed one chunk at a time (2.4 MiB and
5.7 MiB there; a linearization of the gradient keeps only the inputs too), at
the price of one more forward pass per chunk.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from hesscli.errors import InputError, ObjectiveError, describe_exception
from hesscli.jaxconf import eps, jax_module
from hesscli.objective.bind import Objective


def _samples(data: Any) -> int:
    jax = jax_module()
    leaves = jax.tree_util.tree_leaves(data)
    sizes = {int(np.shape(leaf)[0]) for leaf in leaves if np.ndim(leaf) > 0}
    if not leaves or len(sizes) != 1:
        raise InputError(
            "--chunk-size: `data` must be arrays sharing a leading sample axis; got leading "
            f"sizes {sorted(sizes) or 'none'}"
        )
    return sizes.pop()


def split(data: Any, chunk: int) -> tuple[int, int, int, Any, Any]:
    """(samples, full chunks, remainder, data stacked as full chunks, the remainder)."""
    jax = jax_module()
    n = _samples(data)
    full, rest = divmod(n, chunk)
    stacked = jax.tree_util.tree_map(
        lambda a: a[: full * chunk].reshape((full, chunk) + tuple(a.shape[1:])), data
    )
    tail = jax.tree_util.tree_map(lambda a: a[full * chunk :], data)
    return n, full, rest, stacked, tail


def chunked_loss(loss: Any, data: Any, chunk: int, combine: str) -> Any:
    """``params -> loss over all data`` in chunks; ``combine`` is 'mean' or 'sum'."""
    jax = jax_module()
    n, full, rest, stacked, tail = split(data, chunk)

    one = jax.checkpoint(loss)  # recompute a chunk's activations in the reverse pass

    def fn(params: Any) -> Any:
        total = 0.0
        if full:
            parts = jax.lax.map(lambda batch: one(params, batch), stacked)
            total = parts.sum() * (chunk if combine == "mean" else 1)
        if rest:
            total = total + loss(params, tail) * (rest if combine == "mean" else 1)
        return total / n if combine == "mean" else total

    return fn


def chunk_losses(loss: Any, data: Any, chunk: int) -> Any:
    """``params -> [loss of each chunk]`` (full chunks, then the remainder if any)."""
    jax = jax_module()
    _, _, rest, stacked, tail = split(data, chunk)

    def fn(params: Any) -> Any:
        parts = jax.lax.map(lambda batch: loss(params, batch), stacked)
        if rest:
            parts = jax.numpy.concatenate([parts, loss(params, tail)[None]])
        return parts

    return fn


def with_chunks(obj: Objective, chunk: int) -> tuple[Objective, str]:
    """``obj`` with its function replaced by the chunked full-data loss, and a note."""
    jax = jax_module()
    file = obj.file
    if chunk < 1:
        raise InputError(f"--chunk-size must be at least 1; got {chunk}")
    if file.data is None or file.loss is None:
        raise InputError(
            f"--chunk-size: {file.path.name} must define both `data` and `loss(params, batch)` "
            "(the objective-file protocol's stochastic-training pair)"
        )
    if not obj.traceable:
        raise InputError("--chunk-size needs a JAX-traceable loss (it runs inside lax.map)")
    data = jax.tree_util.tree_map(
        lambda a: jax.numpy.asarray(a, dtype=obj.dtype)
        if np.asarray(a).dtype.kind == "f" else jax.numpy.asarray(a),
        file.data,
    )
    n = _samples(data)
    params = obj.unravel(jax.numpy.asarray(obj.x))
    size = min(chunk, n)
    try:
        want = float(file.fn(params))
        # each chunk's loss once (one compilation), combined both ways on the host
        parts = np.asarray(jax.jit(chunk_losses(file.loss, data, size))(params), np.float64)
        sizes = np.full(parts.size, size, dtype=np.float64)
        if n % size:
            sizes[-1] = n % size
        got = {"mean": float(np.dot(parts, sizes) / n), "sum": float(parts.sum())}
    except Exception as exc:  # noqa: BLE001 - the user's loss failed on a chunk
        raise ObjectiveError(
            f"--chunk-size: loss(params, batch) raised {describe_exception(exc)}"
        ) from exc
    tol = math.sqrt(eps(obj.dtype)) * max(1.0, abs(want))
    for combine, value in got.items():
        if abs(value - want) <= tol:
            fn = chunked_loss(file.loss, data, size, combine)
            new_file = dataclasses.replace(file, fn=fn)
            note = (
                f"objective over data in {math.ceil(n / size)} chunk(s) of ≤ {size} samples "
                f"(loss combined as a {combine}; checked at the point: objective "
                f"{want:.10g} vs chunked {value:.10g})"
            )
            return dataclasses.replace(obj, file=new_file), note
    raise InputError(
        f"--chunk-size assumes objective(params) == loss(params, data) over all {n} samples, "
        f"which does not hold here: objective = {want:.10g}, chunked loss as a mean = "
        f"{got['mean']:.10g}, as a sum = {got['sum']:.10g}. Drop --chunk-size, or make "
        "objective the mean (or sum) of loss over data"
    )
