"""Exact curvature over a device mesh: data parallel, optionally parameter sharded.

For an objective file that defines ``data`` and ``loss`` with
``objective(params) == loss(params, data)`` and ``loss`` a mean over samples,
the objective is the masked mean of per-sample losses,

    f(x) = Σᵢ mᵢ ℓ(x, sᵢ) / Σᵢ mᵢ,   ℓ(x, s) = loss(params(x), s[None]),

with the samples sᵢ split along the batch axis over the mesh
(:mod:`hesscli.devices`), the parameters replicated, and each of value,
gradient, HVP and dense Hessian one jitted program whose ``in_shardings`` say
where the operands live. XLA's SPMD partitioner inserts the collectives: an
all-reduce of the n-vector per gradient or HVP, one of a scalar per value. A
batch that does not divide over the devices is padded with copies of its last
sample (finite wherever the data are) and masked out (mᵢ = 0); nothing is
dropped. The mean assumption is checked at load (:func:`check_mean`).

When the file also defines ``param_sharding`` (a pytree of
``jax.sharding.PartitionSpec`` matching the parameters, naming the mesh axis
``"devices"``), the parameter leaves are constrained to those shardings inside
every program, and the flat vectors (x, v, Hv) are split in contiguous blocks
over the mesh when n divides by the device count, so no device keeps a full
copy of x, v or Hv between HVPs (nor of the Lanczos basis that an outer
compiled loop builds from them). Limits, honestly: XLA gathers each sharded
weight for the matrix products that use it (the usual FSDP trade), the
re-layout from flat blocks to leaf shardings costs an all-to-all-sized
exchange per HVP, the dense Hessian (n × n) is replicated, and numbers handed
back to NumPy are gathered to the host.

``hvp_fn`` (and ``f``, ``value_fn``, ``grad_fn``...) is a
:class:`jax.tree_util.Partial` over the jitted, sharding-annotated kernel whose
leaves are the sharded data. Called eagerly, or passed as an argument into
other compiled code, the data stay sharded. Closed over by another ``jit``
(Lanczos, Hutchinson) it still works and the work is still partitioned (the
kernel's shardings propagate: a Krylov basis built from parameter-sharded
vectors comes out sharded along n), but JAX then embeds the data in that
program as a constant, replicated: pass the Partial as an argument to avoid it,
as the Lanczos kernels do (:func:`hesscli.spectra.lanczos.split_operator`).
``f`` is the jitted value program, so ``jax.linearize(jax.grad(f), x)`` keeps
the shardings too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hesscli.curvature.exact import DEFAULT_CHUNK, ExactCurvature, dense_from_hvp, hessian_at
from hesscli.devices import AXIS, Parallel
from hesscli.errors import InputError
from hesscli.jaxconf import eps, jax_module
from hesscli.objective.bind import Objective
from hesscli.objective.streaming import sample_arrays
from hesscli.vocab import HvpMode


def padded_size(samples: int, devices: int) -> int:
    """The batch size rounded up to a multiple of the device count."""
    return devices * math.ceil(samples / devices)


def put_global(array: np.ndarray, sharding: Any) -> Any:
    """A global jax.Array from a host array every process holds in full."""
    jax = jax_module()
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def to_host(array: Any) -> np.ndarray:
    """A global jax.Array as one float64 NumPy array on this host (gathered if needed)."""
    if getattr(array, "is_fully_addressable", True) or array.is_fully_replicated:
        return np.asarray(array, dtype=np.float64)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(array, tiled=True), dtype=np.float64)


def leaf_shardings(objective: Objective, mesh: Any) -> list[Any] | None:
    """The file's ``param_sharding`` as one NamedSharding per parameter leaf, or None."""
    jax = jax_module()
    spec_tree = getattr(objective.file.module, "param_sharding", None)
    if spec_tree is None:
        return None
    P = jax.sharding.PartitionSpec
    label = objective.file.path.name
    try:
        specs = objective.treedef.flatten_up_to(spec_tree)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{label}: param_sharding does not match the parameters' structure "
            f"({str(exc).splitlines()[0][:160]}); give one PartitionSpec per parameter leaf"
        ) from exc
    out = []
    for leaf, spec in zip(objective.layout.leaves, specs, strict=True):
        if spec is None:
            spec = P()
        if not isinstance(spec, P):
            raise InputError(
                f"{label}: param_sharding for {leaf.path} must be a "
                f"jax.sharding.PartitionSpec; got {type(spec).__name__}"
            )
        if len(spec) > len(leaf.shape):
            raise InputError(
                f"{label}: param_sharding for {leaf.path} is {spec}, with more entries than "
                f"the leaf's {len(leaf.shape)} axes (shape {leaf.shape})"
            )
        for entry in spec:
            names = entry if isinstance(entry, tuple) else (entry,)
            for name in names:
                if name is not None and name != AXIS:
                    raise InputError(
                        f"{label}: param_sharding for {leaf.path} names mesh axis {name!r}; "
                        f"hesscli's mesh has one axis, {AXIS!r}"
                    )
        out.append(jax.sharding.NamedSharding(mesh, spec))
    return out


class ShardedCurvature(ExactCurvature):
    """:class:`ExactCurvature` whose programs run over a device mesh (module docstring).

    Same attributes and methods (``value``, ``gradient``, ``value_and_gradient``,
    ``hvp``, ``hessian``, the jitted ``*_fn``), so every analysis built on the
    curvature interface runs unchanged; ``parallel`` says who took part.
    """

    def __init__(
        self, objective: Objective, parallel: Parallel, chunk: int = DEFAULT_CHUNK
    ) -> None:
        jax = jax_module()
        jnp = jax.numpy
        if parallel.mesh is None:
            raise ValueError("ShardedCurvature needs a mesh (Parallel.mesh)")
        file = objective.file
        label = file.path.name
        data, loss = file.data, file.loss
        if (data is None or loss is None) and not hasattr(file.module, "param_sharding"):
            raise InputError(
                f"--devices {parallel.local_devices}: {label} defines neither data and loss "
                "nor param_sharding, so there is nothing to shard; use --devices 1"
            )
        self.objective = objective
        self.parallel = parallel
        self.n = objective.n
        self.dtype = objective.dtype
        mesh = parallel.mesh
        named = jax.sharding.NamedSharding
        P = jax.sharding.PartitionSpec
        rep = named(mesh, P())
        by_batch = named(mesh, P(AXIS))

        self.leaf_shardings = leaf_shardings(objective, mesh)
        blocks = self.leaf_shardings is not None and self.n % parallel.devices == 0
        self.vector_sharding = by_batch if blocks else rep
        self.notes: tuple[str, ...] = ()
        if self.leaf_shardings is not None and not blocks:
            self.notes = (
                f"param_sharding: n = {self.n} is not a multiple of {parallel.devices} "
                "devices, so flat vectors are replicated between programs (leaves are "
                "still sharded inside them)",
            )

        def params_of(x: Any) -> Any:
            params = objective.unravel(x)
            if self.leaf_shardings is None:
                return params
            leaves = jax.tree_util.tree_leaves(params)
            leaves = [jax.lax.with_sharding_constraint(leaf, s)
                      for leaf, s in zip(leaves, self.leaf_shardings, strict=True)]
            return jax.tree_util.tree_unflatten(objective.treedef, leaves)

        if data is not None and loss is not None:
            operands, samples = self.shard_batch(data, label)
            operand_shardings: Any = (by_batch, by_batch, rep)
            self.samples = samples
            self.padded_samples = padded_size(samples, parallel.devices)

            def f(ops: Any, x: Any) -> Any:
                batch, mask, count = ops
                params = params_of(x)

                def one(sample: Any) -> Any:
                    return loss(params, jax.tree_util.tree_map(lambda a: a[None], sample))

                per_sample = jax.vmap(one)(batch)
                return jnp.sum(jnp.where(mask, per_sample, 0.0)) / count

        else:  # param_sharding alone: the file's objective with sharded parameters
            operands, operand_shardings = (), ()
            self.samples = self.padded_samples = None

            def f(ops: Any, x: Any) -> Any:
                return file.fn(params_of(x))

        self.operands = operands
        vec = self.vector_sharding
        ops_in = (operand_shardings, vec)
        dt = jnp.dtype(self.dtype)
        example = jax.ShapeDtypeStruct((self.n,), dt)
        self.hvp_mode = hvp_mode(f, operands, example)

        def hvp(ops: Any, x: Any, v: Any) -> Any:
            return _hvp(lambda y: f(ops, y), x, v, self.hvp_mode)

        def hessian(ops: Any, x: Any) -> Any:
            return dense_from_hvp(lambda y, v: hvp(ops, y, v), self.n, dt, chunk)(x)

        partial = jax.tree_util.Partial
        self._value = jax.jit(f, in_shardings=ops_in, out_shardings=rep)
        self._value_and_grad = jax.jit(jax.value_and_grad(f, argnums=1), in_shardings=ops_in,
                                       out_shardings=(rep, vec))
        self._grad = jax.jit(jax.grad(f, argnums=1), in_shardings=ops_in, out_shardings=vec)
        self._hvp = jax.jit(hvp, in_shardings=(operand_shardings, vec, vec), out_shardings=vec)
        self._hessian = jax.jit(hessian, in_shardings=ops_in, out_shardings=rep)
        self.f = partial(self._value, operands)  # jitted: keeps the shardings under grad
        self.linearizable = (hessian_at(self.f) if self.hvp_mode == HvpMode.FORWARD_OVER_REVERSE
                             else None)
        self.value_fn = partial(self._value, operands)
        self.value_and_grad_fn = partial(self._value_and_grad, operands)
        self.grad_fn = partial(self._grad, operands)
        self.hvp_fn = partial(self._hvp, operands)
        self.hessian_fn = partial(self._hessian, operands)

    def shard_batch(self, batch: Any, label: str = "batch") -> tuple[Any, int]:
        """(batch, mask, count) as global arrays over the mesh, and the true sample count.

        The batch axis is padded to a multiple of the device count with copies
        of the last sample, which the mask (False there) keeps out of the mean.
        """
        jax = jax_module()
        named = jax.sharding.NamedSharding(self.parallel.mesh, jax.sharding.PartitionSpec(AXIS))
        arrays, treedef, samples = sample_arrays(batch, f"{label}: data", InputError)
        widths = padded_size(samples, self.parallel.devices) - samples
        arrays = [np.concatenate([a, np.repeat(a[-1:], widths, axis=0)]) if widths else a
                  for a in arrays]
        mask = np.arange(samples + widths) < samples
        tree = jax.tree_util.tree_unflatten(treedef, [put_global(a, named) for a in arrays])
        replicated = jax.sharding.NamedSharding(self.parallel.mesh, jax.sharding.PartitionSpec())
        # the sample count travels as a replicated scalar: summing the mask
        # would cost an all-reduce per program
        count = put_global(np.asarray(samples, dtype=self.dtype), replicated)
        return (tree, put_global(mask, named), count), samples

    def batch_value_and_gradient(self, x: np.ndarray, batch: Any) -> tuple[float, np.ndarray]:
        """Mean loss over ``batch`` (a minibatch of ``data``) and its gradient, sharded.

        For minibatch steps: the batch is split over the devices like ``data``
        (padded and masked); one compiled program per padded batch size.
        """
        if self.samples is None:
            raise InputError(f"{self.objective.file.path.name} defines no data and loss")
        ops, _ = self.shard_batch(batch)
        value, grad = self._value_and_grad(ops, self._x(x))
        return float(to_host(value)), to_host(grad)

    def _x(self, x: Any) -> Any:
        return put_global(np.asarray(x, dtype=self.dtype).reshape(-1), self.vector_sharding)

    _host = staticmethod(to_host)  # value, gradient, HVP, Hessian: ExactCurvature's, gathered

    def gradient(self, x: np.ndarray) -> np.ndarray:
        # the value-and-gradient program serves both (one compile fewer; same cost to run)
        return self.value_and_gradient(x)[1]


def hvp_mode(f: Any, operands: Any, example: Any) -> str:
    """Forward-over-reverse unless ``f`` refuses forward mode (``custom_vjp``).

    Like :func:`hesscli.curvature.exact.hvp_function`, by lowering the HVP,
    but with the operands abstract: a global array spanning other processes'
    devices may not be closed over.
    """
    jax = jax_module()
    abstract = jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), operands
    )

    def fwd(ops: Any, x: Any, v: Any) -> Any:
        return _hvp(lambda y: f(ops, y), x, v, HvpMode.FORWARD_OVER_REVERSE)

    batch = jax.ShapeDtypeStruct((2, *example.shape), example.dtype)
    try:
        # batched, as the dense Hessian compiles it (custom_vjp may fail only there)
        jax.jit(jax.vmap(fwd, in_axes=(None, None, 0))).lower(abstract, example, batch)
        return HvpMode.FORWARD_OVER_REVERSE
    except (TypeError, ValueError, NotImplementedError):
        return HvpMode.REVERSE_OVER_REVERSE


def _hvp(f: Any, x: Any, v: Any, mode: str) -> Any:
    """H(x) v of ``f``: forward-over-reverse, or reverse-over-reverse (``custom_vjp``)."""
    jax = jax_module()
    if mode == HvpMode.FORWARD_OVER_REVERSE:
        return jax.jvp(jax.grad(f), (x,), (v,))[1]
    return jax.grad(lambda y: jax.numpy.vdot(jax.grad(f)(y), v))(x)


def basis_sharding_of(parallel: Parallel) -> Any:
    """Rows of n-vectors (a Krylov basis), each row split along n like the flat vectors."""
    jax = jax_module()
    return jax.sharding.NamedSharding(parallel.mesh, jax.sharding.PartitionSpec(None, AXIS))


def check_mean(curvature: ShardedCurvature) -> None:
    """Raise InputError unless the file's objective is the mean of ``loss`` over ``data``.

    Compares objective(x) and its gradient, computed by the single-device
    path (one jitted program, as the file defines it), with the sharded masked mean at the
    bound point. Relative tolerance √ε: summation order differs, nothing else
    may. Catches objectives that add a regularizer, sum instead of average, or
    use a loss that is not a per-sample mean (batch statistics).
    """
    jax = jax_module()
    obj = curvature.objective
    if curvature.samples is None:
        return
    x = obj.x
    reference = jax.jit(jax.value_and_grad(obj.flat_fn))  # the single-device path
    ref_value, ref_grad = reference(np.asarray(x, dtype=obj.dtype))
    ref_value, ref_grad = float(ref_value), np.asarray(ref_grad, dtype=np.float64)
    value, grad = curvature.value_and_gradient(x)
    rtol = math.sqrt(eps(obj.dtype))
    value_ok = abs(value - ref_value) <= rtol * max(abs(value), abs(ref_value), 1e-300)
    scale = max(float(np.linalg.norm(ref_grad)), float(np.linalg.norm(grad)),
                rtol * max(abs(ref_value), 1.0))
    grad_ok = float(np.linalg.norm(grad - ref_grad)) <= rtol * scale
    if value_ok and grad_ok:
        return
    what = (
        f"objective(x) = {ref_value:.10g} but the mean of loss over the {curvature.samples} "
        f"samples of data is {value:.10g}"
        if not value_ok else
        "objective(x) and the mean of loss over data agree in value but not in gradient "
        f"(relative difference {float(np.linalg.norm(grad - ref_grad)) / scale:.2g})"
    )
    raise InputError(
        f"{obj.file.path.name}: the objective is not the mean of loss over data: {what}. "
        "--devices shards data and evaluates mean(loss(params, sample)), which needs "
        "objective(params) == loss(params, data) with loss a mean over samples; "
        "fix the file or use --devices 1"
    )
