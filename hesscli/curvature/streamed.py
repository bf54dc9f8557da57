"""Curvature over a data set, streamed one batch at a time.

With the data as batches b = 1..K of n_b samples (N in all) and ``loss`` a
mean over a batch, the objective over the data set and every curvature matrix
of it are sample-weighted means of per-batch ones:

    f = Σ_b w_b f_b,   ∇f = Σ_b w_b ∇f_b,   M v = Σ_b w_b M_b v,   w_b = n_b / N,

for M the Hessian, the GGN, the Fisher or the empirical Fisher (each is
linear in the per-sample losses). :class:`StreamedCurvature` computes each
product as a host loop over the batches (:class:`~hesscli.objective.streaming.BatchStream`),
one jitted per-batch program reused for every batch of the same shape (a
ragged last batch is one more compilation, nothing more), accumulating in
float64 on the host. Nothing of a batch survives its step: each product
re-runs the batch's forward pass (rematerialized, as ``--chunk-size`` does
inside one program), so the working memory is one batch's, whatever K is
(:meth:`StreamedCurvature.step_memory`: XLA's memory analysis of the step).

The eigensolvers need a JAX-callable ``hvp_fn`` they can run inside their own
compiled loops: here it is a ``jax.pure_callback`` to the host loop
(``vmap_method="expand_dims"``: a batch of vectors arrives at once and each
data batch is applied to all of them in one call), so Lanczos, thick restart,
ARPACK, Hutchinson/Hutch++, SLQ, the dense matrix and the block reports run
on the data-set operator unchanged. ``linearizable`` is None: a linearization
per batch would have to be kept for all batches at once.

:meth:`StreamedCurvature.spread` is the batch-to-batch variability: per batch a
few Lanczos steps (λmax's Ritz value, a lower bound on that batch's λmax) and
a Hutchinson trace estimate, from one compiled program per batch shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.curvature.base import Curvature, DenseHessian, symmetrize
from hesscli.curvature.host_products import callback_rows, reason_for
from hesscli.errors import HesscliError, InputError, ObjectiveError, user_code
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import Objective
from hesscli.objective.files import ModelSplit
from hesscli.objective.streaming import BatchStream
from hesscli.vocab import CurvatureKind, Method

DENSE_CHUNK = 64  # basis vectors per lax.map step when forming a batch's dense matrix


def batch_operator(kind: str, obj: Objective, stream: BatchStream,
                   likelihood: Any = None) -> Any:
    """``(x, batch) -> (v -> M_b(x) v)``, traceable, for the matrix ``kind`` on one batch."""
    jax = jax_module()
    unravel, loss = obj.unravel, stream.loss
    if kind == CurvatureKind.HESSIAN:
        def hessian(x: Any, batch: Any) -> Any:
            return jax.linearize(jax.grad(lambda y: loss(unravel(y), batch)), x)[1]

        return hessian
    split = obj.file.split
    if split is None:
        from hesscli.curvature.operators import require_split

        require_split(obj, kind)

    def split_of(batch: Any) -> ModelSplit:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise ObjectiveError(f"--curvature {kind}: a batch must be (inputs, targets) for "
                                 f"the model split; got {type(batch).__name__}")
        return ModelSplit(split.model, split.output_loss, batch[0], batch[1])

    def samples(batch: Any) -> int:
        return int(jax.tree_util.tree_leaves(batch)[0].shape[0])

    if kind == CurvatureKind.GGN:
        from hesscli.curvature.ggn import ggn_at

        return lambda x, batch: ggn_at(split_of(batch), unravel)(x)
    if kind == CurvatureKind.FISHER:
        from hesscli.curvature.fisher import Likelihood, fisher_at

        first = samples(stream.first())

        def fisher(x: Any, batch: Any) -> Any:
            # the output loss is a mean: its scale goes as 1/(samples in the batch)
            lik = Likelihood(likelihood.name, likelihood.scale * first / samples(batch))
            return fisher_at(split_of(batch), unravel, lik)(x)

        return fisher
    if kind == CurvatureKind.EMPIRICAL_FISHER:
        from hesscli.curvature.fisher import per_sample_losses

        def empirical(x: Any, batch: Any) -> Any:
            _, jvp = jax.linearize(per_sample_losses(split_of(batch), unravel), x)
            vjp = jax.linear_transpose(jvp, x)
            m = samples(batch)
            return lambda v: vjp(jvp(v))[0] / m

        return empirical
    raise InputError(f"--curvature {kind} is not available when streaming batches; choose "
                     "hessian, ggn, fisher or empirical-fisher")


class StreamedCurvature(Curvature):
    """Value, gradient and curvature products over a stream of batches (module docstring).

    ``stream`` must have made its first pass (its ``sizes`` fixed). ``kind``:
    hessian, ggn, fisher or empirical-fisher; ``likelihood`` the Fisher's.
    ``hvps`` counts products over the data set, ``batch_steps`` per-batch calls.
    """

    method = Method.EXACT

    def __init__(self, obj: Objective, stream: BatchStream, kind: str = CurvatureKind.HESSIAN, *,
                 likelihood: Any = None, notes: tuple[str, ...] = (),
                 output_hessian: Any = None) -> None:
        from hesscli.progress import sink

        jax = jax_module()
        jnp = jax.numpy
        self.objective = obj
        self.stream = stream
        self.kind = CurvatureKind(kind)
        self.n = obj.n
        self.dtype = obj.dtype
        self.notes = notes
        self.output_hessian = output_hessian
        self.hvps = 0
        self.batch_steps = 0
        self._sink = sink(None)  # the progress sink of the caller (callbacks run elsewhere)
        self._cache: tuple[bytes, float, np.ndarray] | None = None
        unravel, loss = obj.unravel, stream.loss
        op = batch_operator(kind, obj, stream, likelihood)
        self._op = op
        n, dt = self.n, jnp.dtype(self.dtype)

        def batch_first(batch: Any, x: Any) -> Any:  # for a Partial holding the batch
            return loss(unravel(x), batch)

        def f_b(x: Any, batch: Any) -> Any:
            return batch_first(batch, x)

        self._value = jax.jit(f_b)
        self._batch_loss = batch_first
        self._lin_rows = jax.jit(lambda lin, x, vs: jax.vmap(lambda v: lin(x, v))(vs))
        self._value_grad = jax.jit(jax.value_and_grad(f_b))
        self._matmat = jax.jit(lambda x, vs, batch: jax.vmap(op(x, batch))(vs))

        def dense(x: Any, batch: Any) -> Any:
            mv = op(x, batch)
            return jax.lax.map(lambda i: mv(jax.nn.one_hot(i, n, dtype=dt)), jnp.arange(n),
                               batch_size=min(DENSE_CHUNK, n))

        self._dense = jax.jit(dense)
        self.hvp_mode = f"{kind} over {stream.count} streamed batches"
        self.linearizable = None
        shape = jax.ShapeDtypeStruct((n,), dt)

        def callback(x: Any, v: Any) -> Any:
            return jax.pure_callback(self._host_matvec, shape, x, v, vmap_method="expand_dims")

        self.hvp_fn = jax.jit(callback)
        self._spread_fns: dict[tuple[int, int], Any] = {}
        self._spread_host: str | None | bool = False  # False: not yet asked
        self.failure: HesscliError | None = None  # an error raised inside hvp_fn's callback

    # ---- the host loop ---------------------------------------------------------------

    def _report(self, index: int) -> None:
        if self._sink is None:
            return
        from hesscli.progress import Progress

        self._sink(Progress(solver="streamed", hvps=self.hvps, batch=index + 1,
                            batches=self.stream.count))

    def _loop(self, step: Any, what: str) -> Any:
        """Σ_b w_b step(batch_b), accumulated in float64 (``step`` returns a tuple)."""
        total: list[np.ndarray] | None = None
        samples = 0
        for index, batch in enumerate(self.stream):
            size = int(jax_module().tree_util.tree_leaves(batch)[0].shape[0])
            with user_code(f"{self.objective.file.path.name}: {what} on batch {index}"):
                parts = [np.asarray(p, dtype=np.float64) for p in step(batch)]
            # Σ n_b·p_b / Σ n_b: the weights w_b = n_b/N, known after the first pass
            total = [size * p for p in parts] if total is None else [
                t + size * p for t, p in zip(total, parts, strict=True)]
            samples += size
            self.batch_steps += 1
            self._report(index)
        assert total is not None
        return [t / samples for t in total]

    def _x(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=self.dtype).reshape(-1)

    def value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        xd = self._x(x)
        key = xd.tobytes()
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2].copy()
        value, grad = self._loop(lambda b: self._value_grad(xd, b), "value and gradient")
        self._cache = (key, float(value), grad)
        return float(value), grad.copy()

    def value(self, x: np.ndarray) -> float:
        xd = self._x(x)
        if self._cache is not None and self._cache[0] == xd.tobytes():
            return self._cache[1]
        return float(self._loop(lambda b: (self._value(xd, b),), "value")[0])

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.value_and_gradient(x)[1]

    def matmat(self, x: np.ndarray, vs: np.ndarray) -> np.ndarray:
        """``[M v for v in vs]`` (rows), one pass over the data for all of them."""
        xd = self._x(x)
        vs = np.asarray(vs, dtype=self.dtype).reshape(-1, self.n)
        out = self._loop(lambda b: (self._matmat(xd, vs, b),), f"the {self.kind} product")[0]
        self.hvps += vs.shape[0]
        return out

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.matmat(x, np.asarray(v).reshape(1, -1))[0]

    def _host_matvec(self, x: Any, v: Any) -> np.ndarray:
        """The callback behind ``hvp_fn``: x and v with any leading (vmapped) axes.

        An error raised here would reach the caller wrapped in JAX's runtime error (and
        logged with a traceback by JAX): it is kept in ``failure`` instead, NaNs are
        returned (and every later call returns them at once), and :func:`reraise`
        raises the original with its exit code when the solver returns or fails.
        """
        if self.failure is None:
            try:
                return self._matvec_rows(x, v)
            except HesscliError as exc:
                self.failure = exc
        lead = np.broadcast_shapes(np.shape(x)[:-1], np.shape(v)[:-1])
        return np.full(lead + (self.n,), np.nan, dtype=self.dtype)

    def _matvec_rows(self, x: Any, v: Any) -> np.ndarray:
        return callback_rows(self.matmat, x, v, self.n, self.dtype)

    def hessian(self, x: np.ndarray) -> DenseHessian:
        """The dense matrix Σ_b w_b M_b (n basis products per batch), symmetrized."""
        xd = self._x(x)
        matrix = self._loop(lambda b: (self._dense(xd, b),), f"the dense {self.kind}")[0]
        self.hvps += self.n
        sym, _ = symmetrize(matrix)
        return DenseHessian(sym, symmetry_error=0.0)

    # ---- memory and variability ------------------------------------------------------

    def step_memory(self, vectors: int = 1) -> Any:
        """XLA's memory analysis of one per-batch product step (``vectors`` at once), for
        a batch shaped like batch 0: what one step of every streamed product holds."""
        jax = jax_module()
        batch = self.stream.first()
        x = jax.ShapeDtypeStruct((self.n,), jax.numpy.dtype(self.dtype))
        vs = jax.ShapeDtypeStruct((vectors, self.n), jax.numpy.dtype(self.dtype))
        return self._matmat.lower(x, vs, batch).compile().memory_analysis()

    def _spread_fn(self, steps: int, probes: int) -> Any:
        key = (steps, probes)
        if key not in self._spread_fns:
            jax = jax_module()
            jnp = jax.numpy
            op, n = self._op, self.n

            def run(x: Any, batch: Any, v0: Any, probe_vs: Any) -> Any:
                mv = op(x, batch)
                basis = jnp.zeros((steps + 1, n), v0.dtype).at[0].set(v0 / jnp.linalg.norm(v0))

                def body(j: Any, carry: Any) -> Any:
                    q, alpha, beta = carry
                    w = mv(q[j])
                    a = jnp.vdot(q[j], w)
                    w = w - q.T @ (q @ w)
                    w = w - q.T @ (q @ w)  # twice is enough (Kahan–Parlett)
                    b = jnp.linalg.norm(w)
                    q = q.at[j + 1].set(jnp.where(b > 0, w / jnp.where(b > 0, b, 1), 0))
                    return q, alpha.at[j].set(a), beta.at[j].set(b)

                zeros = jnp.zeros(steps, v0.dtype)
                _, alpha, beta = jax.lax.fori_loop(0, steps, body, (basis, zeros, zeros))
                quad = jnp.einsum("pn,pn->p", probe_vs, jax.vmap(mv)(probe_vs))
                return alpha, beta, quad

            self._spread_fns[key] = jax.jit(run)
        return self._spread_fns[key]

    def spread_on_host(self) -> str | None:
        """Why the per-batch Lanczos runs on the host, or None (a compiled loop).

        A product holding a convolution runs through a slow generic kernel inside a
        compiled loop on the CPU (:mod:`hesscli.curvature.host_products`): the spread's
        steps then call the compiled per-batch product from a host loop instead."""
        if self._spread_host is False:
            jax = jax_module()
            example = jax.ShapeDtypeStruct((self.n,), jax.numpy.dtype(self.dtype))
            op = self._op
            self._spread_host = reason_for(lambda xx, v, b: op(xx, b)(v), example, example,
                                           self.stream.first())
        return self._spread_host  # type: ignore[return-value]

    def _batch_products(self, xd: np.ndarray, batch: Any) -> Any:
        """``V -> [M_b v for v in V]`` on one batch from the host: the Hessian's ∇f_b
        linearized once for the batch (the tangent map per product, as inside the
        solvers' loops; one compiled program for every batch of the same shape), other
        kinds through the per-batch product program."""
        if self.kind != CurvatureKind.HESSIAN:
            return lambda vs: self._matmat(xd, vs, batch)
        from hesscli.curvature.exact import linearized_hvp

        lin = linearized_hvp(jax_module().tree_util.Partial(self._batch_loss, batch), xd)
        return lambda vs: self._lin_rows(lin, xd, vs)

    def _host_spread(self, xd: np.ndarray, batch: Any, v0: np.ndarray, z: np.ndarray,
                     steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The compiled loop of :meth:`_spread_fn` as a host loop over compiled products
        (basis and reorthogonalization in float64): (alpha, beta, zᵀM z per probe)."""
        apply = self._batch_products(xd, batch)
        q = np.zeros((steps + 1, self.n))
        q[0] = v0 / np.linalg.norm(v0)
        alpha, beta = np.zeros(steps), np.zeros(steps)
        for j in range(steps):
            w = np.array(apply(q[j:j + 1].astype(self.dtype)), np.float64)[0]
            alpha[j] = q[j] @ w
            w -= q.T @ (q @ w)
            w -= q.T @ (q @ w)  # twice is enough (Kahan–Parlett)
            beta[j] = np.linalg.norm(w)
            if beta[j] > 0:
                q[j + 1] = w / beta[j]
        mz = np.asarray(apply(z), np.float64)
        return alpha, beta, np.einsum("pn,pn->p", z.astype(np.float64), mz)

    def spread(self, x: np.ndarray, *, steps: int = 20, probes: int = 10,
               seed: int = 0) -> BatchSpread:
        """Per-batch λmax (Ritz value after ``steps`` Lanczos steps) and Hutchinson trace
        (``probes`` Rademacher vectors, the same for every batch), see :class:`BatchSpread`.
        With a convolution in the product (CPU) the steps run from a host loop
        (:meth:`spread_on_host`)."""
        xd = self._x(x)
        steps = max(1, min(int(steps), self.n))
        rng = np.random.default_rng(seed)
        v0 = rng.standard_normal(self.n).astype(self.dtype)
        z = rng.choice(np.array([-1.0, 1.0]), size=(probes, self.n)).astype(self.dtype)
        if self.spread_on_host() is not None:
            def run(xx: Any, batch: Any, v: Any, zz: Any) -> Any:
                return self._host_spread(xx, batch, v, zz, steps)
        else:
            run = self._spread_fn(steps, probes)
        lam, tr = [], []
        for index, batch in enumerate(self.stream):
            with user_code(f"{self.objective.file.path.name}: the per-batch {self.kind} on "
                           f"batch {index}"):
                alpha, beta, quad = (np.asarray(a, np.float64) for a in run(xd, batch, v0, z))
            lam.append(ritz_max(alpha, beta))
            tr.append(float(quad.mean()))
            self.batch_steps += 1
            self._report(index)
        return BatchSpread(
            kind=self.kind, sizes=np.asarray(self.stream.sizes), lanczos_steps=steps,
            probes=probes, seed=seed, lambda_max=Spread.of(np.asarray(lam), self.stream.weights),
            trace=Spread.of(np.asarray(tr), self.stream.weights))


def ritz_max(alpha: np.ndarray, beta: np.ndarray) -> float:
    """The largest eigenvalue of the Lanczos tridiagonal, cut where the Krylov space closed."""
    steps = alpha.size
    scale = max(float(np.max(np.abs(alpha))), float(np.max(np.abs(beta))), 1e-300)
    m = steps
    for j in range(steps - 1):
        if beta[j] <= 1e-12 * scale:
            m = j + 1
            break
    t = np.diag(alpha[:m]) + np.diag(beta[: m - 1], 1) + np.diag(beta[: m - 1], -1)
    return float(np.linalg.eigvalsh(t)[-1])


@dataclass(frozen=True)
class Spread:
    """One per-batch quantity across K batches: the values, their mean, the sample
    standard deviation (ddof 1; None for one batch), the standard error of the mean
    std/√K, and the sample-weighted mean Σ w_b value_b."""

    per_batch: np.ndarray
    mean: float
    std: float | None
    stderr: float | None
    weighted_mean: float

    @staticmethod
    def of(values: np.ndarray, weights: np.ndarray) -> Spread:
        k = values.size
        std = float(np.std(values, ddof=1)) if k > 1 else None
        return Spread(values, float(values.mean()), std,
                      std / float(np.sqrt(k)) if std is not None else None,
                      float(np.dot(weights, values)))


@dataclass(frozen=True)
class BatchSpread:
    """Batch-to-batch variability of the curvature ``kind`` (estimates, not bounds).

    ``lambda_max``: per batch the largest Ritz value after ``lanczos_steps``
    Lanczos steps on that batch's matrix (a lower bound on the batch's λmax,
    close to it when the top of its spectrum separates). ``trace``: per batch a
    Hutchinson estimate from ``probes`` Rademacher vectors (the same ones for
    every batch, so the spread across batches is mostly the batches' own; the
    probes' noise is in it too). Their sample-weighted means are estimates of the
    data set's trace (unbiased) and of an upper bound on its λmax (λmax is convex:
    λmax(Σ w_b H_b) ≤ Σ w_b λmax(H_b), for exact per-batch values).
    """

    kind: str
    sizes: np.ndarray
    lanczos_steps: int
    probes: int
    seed: int
    lambda_max: Spread
    trace: Spread


def streamed_curvature(obj: Objective, stream: BatchStream,
                       kind: str = CurvatureKind.HESSIAN,
                       ) -> tuple[StreamedCurvature, tuple[str, ...]]:
    """The streamed backend for the matrix ``kind``, after one pass over the data (which
    fixes the batches' sizes and checks every batch), with the notes the output carries."""
    split = obj.file.split
    likelihood = None
    notes: list[str] = []
    batch0 = stream.first()
    if kind != CurvatureKind.HESSIAN:
        from hesscli.curvature.operators import require_split

        split = require_split(obj, kind)
        split0 = ModelSplit(split.model, split.output_loss, batch0[0], batch0[1])
    if kind == CurvatureKind.FISHER:
        from hesscli.curvature.fisher import likelihood_of

        likelihood = likelihood_of(obj, split0)
        notes.append(f"Fisher of the {likelihood.describe()} on batch 0, rescaled to each "
                     "batch's size: Jᵀ F_out J v per batch")
    elif kind == CurvatureKind.GGN:
        from hesscli.curvature.ggn import output_hessian

        facts = output_hessian(split0, obj.unravel, obj.x, obj.dtype)
        convex = ("convex in the outputs on batch 0" if facts.psd
                  else "not shown convex in the outputs on batch 0")
        notes.append("GGN: Jᵀ(∇²ℓ)J v per batch (one jvp, one output-loss HVP, one vjp); the "
                     f"output loss is {convex} (λmin(H_ℓ) = {facts.lambda_min:.4g}); the other "
                     "batches were not checked, so the data-set GGN is not proven positive "
                     "semidefinite here")
    elif kind == CurvatureKind.EMPIRICAL_FISHER:
        notes.append("empirical Fisher (1/N)Σ gᵢgᵢᵀ over the streamed samples, per batch one "
                     "jvp and one vjp of the per-sample losses")
    elif kind != CurvatureKind.HESSIAN:
        raise InputError(f"--curvature {kind} is not available when streaming batches")
    backend = StreamedCurvature(obj, stream, kind, likelihood=likelihood, notes=tuple(notes))
    if kind != CurvatureKind.HESSIAN:
        with user_code(f"{obj.file.path.name}: building the {kind} matvec on a batch"):
            backend._matmat.lower(np.asarray(obj.x), np.zeros((1, obj.n), obj.dtype), batch0)
    backend.value_and_gradient(obj.x)  # the first pass: sizes fixed, every batch checked
    return backend, stream_notes(stream)


def stream_notes(stream: BatchStream) -> tuple[str, ...]:
    """What the output says about the batches used."""
    sizes = stream.sizes
    shape = (f"{sizes[0]} samples each" if len(set(sizes)) == 1
             else f"{min(sizes)}–{max(sizes)} samples (last {sizes[-1]})")
    notes = [f"data set streamed from {stream.how}: {stream.count} batch"
             f"{'es' if stream.count != 1 else ''} of {shape}, {stream.samples} samples; value, "
             "gradient and curvature are sample-weighted means of per-batch ones, computed "
             "one batch at a time (each product re-runs every batch's forward pass)"]
    if stream.limit is not None and stream.available is not None \
            and stream.limit > stream.available:
        notes.append(f"--batches {stream.limit}: the data have {stream.available} batches; "
                     "all of them were used")
    elif stream.limit is not None and stream.count < stream.limit:
        notes.append(f"--batches {stream.limit}: batches() yielded {stream.count}; all of "
                     "them were used")
    elif stream.limit is not None:
        notes.append(f"--batches {stream.limit}: the first {stream.limit} batches"
                     + (f" of {stream.available}" if stream.available else "")
                     + " (the objective is the mean over these, not over all the data)")
    return tuple(notes)


def reraise(backend: Any, exc: BaseException | None = None) -> None:
    """Raise the error a streamed product met inside compiled code (the generator
    failing on a later pass: exit 3) in place of ``exc`` (what the solver made of the
    NaNs it got instead, None when it returned); otherwise return."""
    failure = getattr(backend, "failure", None)
    if failure is not None:
        raise failure from exc
