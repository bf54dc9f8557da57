"""Curvature products that leave the eigensolvers' compiled loops (convolutions on CPU).

XLA's CPU backend runs a convolution (``conv_general_dilated``) inside a compiled
loop (``lax.fori_loop``, ``while_loop``, ``scan``) with a generic kernel far slower
than the one it uses for the same convolution outside a loop (jax-ml/jax#12868):
on ``examples/cnn.py`` (Flax ``nn.Conv``, 256 images) one HVP took 8–9× longer
inside a 1-step ``fori_loop`` at 16 channels and 14–34× at 64 (float64–float32;
``tests/benchmarks/bench_conv_loop.py``; 74× at 64 channels on all 1797 images);
an MLP of the same cost runs at the same speed in and out of a loop. Lanczos,
thick restart, SLQ, Hutchinson/Hutch++ and the block reports all run the product
inside their compiled loops.

:func:`host_products` inspects the backend's product once (its jaxpr, every
sub-jaxpr included: ``pjit``, ``scan``, ``remat``, ``custom_vjp``/``custom_jvp``,
``cond``...) and, when it holds a convolution and the default backend is the CPU,
replaces ``hvp_fn`` by a ``jax.pure_callback`` to :class:`HostProducts`: the
product as its own compiled program, outside any loop, called from the solver's
loop (``vmap_method="expand_dims"``: a batch of vectors in one call, as the
streamed backend's callback does). For the Hessian the callback linearizes ∇f
once per point on the host (:func:`~hesscli.curvature.exact.linearized_hvp`) and
reuses it for every product, as the solvers do inside their loops. Dtypes and
shapes are the backend's. The solvers then say so in a note
(:attr:`~hesscli.curvature.base.Curvature.host_products` is the reason).

Left alone: backends whose ``hvp_fn`` is a :class:`jax.tree_util.Partial` (the
sharded backend: its operands are sharded arrays a host callback would gather;
the preconditioned operator wraps its base's ``hvp_fn`` and inherits the callback),
backends without ``hvp_fn`` (finite differences), other platforms (GPU/TPU), and
``HESSCLI_HOST_PRODUCTS=0`` in the environment (the loops as before; for
measurements).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from hesscli.curvature.base import Curvature
from hesscli.jaxconf import jax_module

#: Primitives that XLA:CPU runs slowly inside a compiled loop.
SLOW_IN_LOOPS = frozenset({"conv_general_dilated"})

#: ``HESSCLI_HOST_PRODUCTS=0`` keeps every product inside the loops (benchmarks).
SWITCH = "HESSCLI_HOST_PRODUCTS"


def _subjaxprs(value: Any) -> Iterator[Any]:
    """The jaxprs inside one equation parameter (a Jaxpr, a ClosedJaxpr, or a tuple,
    list or dict of them, such as ``cond``'s branches)."""
    if hasattr(value, "eqns"):
        yield value
    elif hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
        yield value.jaxpr
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _subjaxprs(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _subjaxprs(item)


def primitives_in(jaxpr: Any, names: frozenset[str] = SLOW_IN_LOOPS) -> set[str]:
    """Which of ``names`` occur in ``jaxpr`` (a Jaxpr or ClosedJaxpr) at any depth."""
    if not hasattr(jaxpr, "eqns"):
        jaxpr = jaxpr.jaxpr
    found: set[str] = set()
    seen: set[int] = set()
    stack = [jaxpr]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for eqn in current.eqns:
            if eqn.primitive.name in names:
                found.add(eqn.primitive.name)
            for param in eqn.params.values():
                stack.extend(_subjaxprs(param))
    return found


def slow_in_loops(fn: Any, *examples: Any) -> set[str]:
    """The primitives of :data:`SLOW_IN_LOOPS` in ``fn(*examples)``'s jaxpr (traced
    abstractly: ``examples`` may be ``jax.ShapeDtypeStruct``)."""
    return primitives_in(jax_module().make_jaxpr(fn)(*examples))


def loop_reason(curvature: Curvature) -> str | None:
    """Why ``curvature``'s products must leave compiled loops, or None when they need not
    (or cannot: see the module docstring for what is left alone)."""
    jax = jax_module()
    hvp_fn = curvature.hvp_fn
    if hvp_fn is None or isinstance(hvp_fn, jax.tree_util.Partial):
        return None
    if curvature.parallel.sharded or curvature.vector_sharding is not None:
        return None
    if usable_cpus() < 2:  # a callback from a loop would wait for the loop's own thread
        return None
    example = jax.ShapeDtypeStruct((curvature.n,), jax.numpy.dtype(curvature.dtype))
    return reason_for(hvp_fn, example, example)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: ``taskset``, a cpuset).

    On one CPU XLA's CPU client has one thread to run programs on: a product called
    back from inside a compiled loop, itself a compiled program, waits for the thread
    the loop holds, and the run hangs (measured: ``taskset -c 0`` with an ``nn.Conv``
    CNN never finished, the same run on two CPUs took 30 s). There the products stay
    in the loops: slower, never stuck."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux: no affinity to read
        return os.cpu_count() or 1


def reason_for(fn: Any, *examples: Any) -> str | None:
    """Why a product ``fn(*examples)`` must leave compiled loops (the primitives that are
    slow there, comma-separated), or None: none found, not the CPU, or switched off."""
    jax = jax_module()
    if os.environ.get(SWITCH, "1").strip() == "0" or jax.default_backend() != "cpu":
        return None
    try:
        found = slow_in_loops(fn, *examples)
    except Exception:  # noqa: BLE001 - a product that does not trace fails later, as before
        return None
    return ", ".join(sorted(found)) if found else None


class HostProducts:
    """The product as separately compiled programs, called from compiled loops.

    ``matmat(x, vs)``: ``[M(x) v for v in vs]`` in one program (vmapped). With
    ``op.hessian_of`` (the Hessian of a flat objective) ∇f is linearized once per
    point and kept until the next point; another :class:`OperatorAt` (GGN, Fisher)
    is applied as the loops apply it; without one, ``hvp_fn`` itself. ``calls``
    counts callbacks, ``products`` the vectors they applied.
    """

    def __init__(self, hvp_fn: Any, op: Any, n: int, dtype: str) -> None:
        jax = jax_module()
        self.n, self.dtype = n, dtype
        self.calls = 0
        self.products = 0
        self._point: tuple[bytes, Any] | None = None
        self._hessian_of = op.hessian_of if op is not None else None
        if self._hessian_of is not None:
            self._rows = jax.jit(lambda lin, x, vs: jax.vmap(lambda v: lin(x, v))(vs))
        elif op is not None:
            self._rows = jax.jit(lambda x, vs: jax.vmap(op(x))(vs))
        else:
            self._rows = jax.jit(lambda x, vs: jax.vmap(lambda v: hvp_fn(x, v))(vs))
        shape = jax.ShapeDtypeStruct((n,), jax.numpy.dtype(dtype))

        def callback(x: Any, v: Any) -> Any:
            return jax.pure_callback(self._host, shape, x, v, vmap_method="expand_dims")

        self.hvp_fn = jax.jit(callback)

    def matmat(self, x: Any, vs: Any) -> np.ndarray:
        """``M(x) v`` for every row v of ``vs`` (rows × n), as the backend's dtype."""
        x = np.asarray(x, dtype=self.dtype).reshape(self.n)
        vs = np.asarray(vs, dtype=self.dtype).reshape(-1, self.n)
        self.products += vs.shape[0]
        if self._hessian_of is None:
            return np.asarray(self._rows(x, vs))
        from hesscli.curvature.exact import linearized_hvp

        key = x.tobytes()
        if self._point is None or self._point[0] != key:
            self._point = None  # the previous point's linearization goes first
            self._point = (key, linearized_hvp(self._hessian_of, x))
        return np.asarray(self._rows(self._point[1], x, vs))

    def dense(self, x: Any, chunk: int) -> np.ndarray:
        """The dense matrix from n products on the basis, ``chunk`` rows per program
        (a host loop: the compiled ``lax.map`` of the dense path is a loop too)."""
        n = self.n
        chunk = max(1, min(int(chunk), n))
        rows = []
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            basis = np.zeros((chunk, n), self.dtype)  # one shape: one compilation
            basis[np.arange(stop - start), np.arange(start, stop)] = 1
            rows.append(np.asarray(self.matmat(x, basis), dtype=np.float64)[: stop - start])
        return np.concatenate(rows)

    def release(self) -> None:
        """Drop the kept linearization (its residuals are a forward pass's memory)."""
        self._point = None

    def _host(self, x: Any, v: Any) -> np.ndarray:
        """The callback: x and v with any leading (vmapped) axes."""
        self.calls += 1
        return callback_rows(self.matmat, x, v, self.n, self.dtype)


def callback_rows(matmat: Any, x: Any, v: Any, n: int, dtype: Any) -> np.ndarray:
    """A ``pure_callback``'s products ``M(x) v`` for x and v with any leading (vmapped)
    axes, as ``matmat(x, V)`` (rows of V) calls: one call when every x is the same point
    (the usual case: a solver's vectors at one point), else one per row."""
    x, v = np.asarray(x), np.asarray(v)
    lead = np.broadcast_shapes(x.shape[:-1], v.shape[:-1])
    xs = np.broadcast_to(x, lead + (n,)).reshape(-1, n)
    vs = np.broadcast_to(v, lead + (n,)).reshape(-1, n)
    if xs.shape[0] == 0:
        return np.zeros(lead + (n,), dtype=dtype)
    if np.all(xs == xs[0]):
        out = matmat(xs[0], vs)
    else:
        out = np.stack([matmat(xi, vi[None])[0] for xi, vi in zip(xs, vs, strict=True)])
    return np.asarray(out).reshape(lead + (n,)).astype(dtype)


def host_products(curvature: Curvature) -> Curvature:
    """``curvature`` with its products moved out of compiled loops when
    :func:`loop_reason` says they must be (module docstring); otherwise unchanged.

    Sets ``hvp_fn`` to the callback, ``linearizable`` to None (the callback
    linearizes on the host), keeps the compiled product as ``direct_hvp_fn`` and the
    reason as ``host_products``. Returns the same object.
    """
    if curvature.host_products is not None:
        return curvature
    reason = loop_reason(curvature)
    if reason is None:
        return curvature
    host = HostProducts(curvature.hvp_fn, curvature.linearizable, curvature.n,
                        curvature.dtype)
    curvature.direct_hvp_fn = curvature.hvp_fn
    curvature.hvp_fn = host.hvp_fn
    curvature.linearizable = None
    curvature.host = host
    curvature.host_products = reason
    return curvature


def host_note(reason: str) -> str:
    """The note of a run whose products left the compiled loops."""
    return (f"products ran outside the solver's compiled loop, each as its own compiled "
            f"program called back from it: the product contains {reason}, which XLA runs "
            "with a slow generic kernel inside a compiled loop on the CPU (an HVP of a small "
            "CNN measured 8–34× slower there than on its own)")
