"""The training loop: compiled multi-step scans between monitoring points.

Between two logged steps the optimizer runs inside one ``jax.lax.scan`` (a
single compiled program per chunk length), so the Python loop only runs once
per ``monitor_every`` steps. Every step inside the scan checks for divergence:
a non-finite value, gradient or new point, a loss more than ``EXPLODE`` times
its start's scale above its start (exploding) or below it (unbounded below: the
loss runs off to −∞, e.g. ``−b²``); the step that would diverge is not taken, the carry freezes, and
the loop stops there with everything up to it kept.

Randomness is a pure function of the seed: the noise key lives in the
optimizer state (:mod:`.noise`), and minibatches are the ``i``-th slice of a
permutation drawn from ``fold_in(data_key, epoch)``. So the state to resume a
run is the point, the optimizer state and the step count (:class:`TrainState`).

Progress is reported through ``callback(ChunkProgress)``; nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hesscli.curvature.base import Curvature, ensure_finite
from hesscli.errors import InputError
from hesscli.objective.bind import Objective
from hesscli.spectra.policy import SpectrumPolicy, choose
from hesscli.training.dynamics import STABILITY_BOUND, stability_bound
from hesscli.training.events import Event, EventTracker
from hesscli.training.monitor import MATRIX_FREE_NOTE, MONITOR_POLICY, Record, monitor
from hesscli.vocab import CurvatureKind, EventKind, Optimizer, SpectrumPath

EXPLODE = 1e8  # a loss 10⁸·max(1, |f₀|) above (or below) its start is no longer training

# divergence reasons, as coded inside the compiled loop
REASONS = {1: "non-finite value", 2: "non-finite gradient", 3: "non-finite parameters",
           4: "exploding loss", 5: "unbounded below"}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes the trajectory (compared on ``--resume``), plus ``steps``."""

    optimizer: str = Optimizer.SGD
    options: dict[str, Any] = field(default_factory=dict)
    lr: float = 0.01
    noise: float | None = None  # radius of the sphere noise, None: no noise
    noise_steps: int | None = None
    seed: int = 0
    batch_size: int | None = None
    monitor_every: int = 10
    steps: int = 1000

    def trajectory_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "steps"}


@dataclass
class TrainState:
    """The resumable state: point, optimizer state, step; and the start value (for EXPLODE)."""

    x: np.ndarray
    opt_state: Any
    step: int
    start_value: float


@dataclass(frozen=True)
class ChunkProgress:
    """What the callback receives after each chunk."""

    record: Record
    events: tuple[Event, ...]
    state: TrainState
    total_steps: int


@dataclass(frozen=True)
class TrainResult:
    config: TrainConfig
    steps: int
    x: np.ndarray
    history: tuple[Record, ...]
    events: tuple[Event, ...]
    diverged: bool
    train_seconds: float
    monitor_seconds: float
    notes: tuple[str, ...] = ()
    state: TrainState | None = None

    @property
    def final(self) -> Record:
        return self.history[-1]

    @property
    def monitor_share(self) -> float:
        total = self.train_seconds + self.monitor_seconds
        return self.monitor_seconds / total if total > 0 else 0.0


@dataclass(frozen=True)
class Minibatch:
    """Minibatch SGD on ``loss(params, batch)`` over ``data`` (leading axis = samples)."""

    loss: Callable[..., Any]
    data: Any
    batch_size: int

    @property
    def samples(self) -> int:
        return int(jax.tree_util.tree_leaves(self.data)[0].shape[0])

    @property
    def per_epoch(self) -> int:
        return self.samples // self.batch_size


def minibatch_for(obj: Objective, batch_size: int) -> Minibatch:
    """Check the file's ``data``/``loss`` and the batch size."""
    file = obj.file
    if file.data is None or file.loss is None:
        missing = " and ".join(k for k in ("data", "loss") if getattr(file, k) is None)
        raise InputError(
            f"--batch-size needs an objective file that defines data and loss(params, batch); "
            f"{file.path.name} lacks {missing} (leave out --batch-size for full-batch training)"
        )
    data = jax.tree_util.tree_map(jnp.asarray, file.data)
    leaves = jax.tree_util.tree_leaves(data)
    sizes = {int(leaf.shape[0]) if leaf.ndim else -1 for leaf in leaves}
    if not leaves or len(sizes) != 1 or -1 in sizes:
        raise InputError(f"{file.path.name}: data must be arrays sharing a leading sample axis")
    mb = Minibatch(file.loss, data, int(batch_size))
    if not 1 <= mb.batch_size <= mb.samples:
        raise InputError(f"--batch-size {batch_size}: must be between 1 and the "
                         f"{mb.samples} samples in {file.path.name}")
    return mb


def keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(noise key, data-order key), both derived from the seed."""
    root = jax.random.PRNGKey(seed)
    return jax.random.fold_in(root, 1), jax.random.fold_in(root, 2)


def build_chunk(
    obj: Objective, optimizer: optax.GradientTransformation, minibatch: Minibatch | None
) -> Callable[..., Any]:
    """Jitted ``chunk(carry, data, data_key, bounds, length) -> (carry, (values, gnorms, ok))``.

    ``bounds`` is ``(floor, ceiling)``: a value outside it stops the run (see
    :func:`value_bounds`).
    """
    per_epoch = minibatch.per_epoch if minibatch else 1
    batch = minibatch.batch_size if minibatch else 0
    samples = minibatch.samples if minibatch else 0

    def loss_at(x: Any, step: Any, data: Any, data_key: Any) -> Any:
        if minibatch is None:
            return obj.flat_fn(x)
        epoch, i = step // per_epoch, step % per_epoch
        perm = jax.random.permutation(jax.random.fold_in(data_key, epoch), samples)
        idx = jax.lax.dynamic_slice(perm, (i * batch,), (batch,))
        part = jax.tree_util.tree_map(lambda a: a[idx], data)
        return minibatch.loss(obj.unravel(x), part)

    def body(carry: Any, _: Any, data: Any, data_key: Any, bounds: Any) -> Any:
        floor, ceiling = bounds
        x, opt_state, step, alive, reason, bad = carry
        value, grad = jax.value_and_grad(loss_at)(x, step, data, data_key)
        updates, new_state = optimizer.update(grad, opt_state, x)
        x_new = x + updates
        fin_v, fin_g, fin_x = (jnp.isfinite(value), jnp.all(jnp.isfinite(grad)),
                               jnp.all(jnp.isfinite(x_new)))
        explode, sink = value > ceiling, value < floor
        ok = alive & fin_v & fin_g & fin_x & ~explode & ~sink
        code = jnp.where(~fin_v, 1, jnp.where(~fin_g, 2, jnp.where(~fin_x, 3,
                                                                     jnp.where(explode, 4, 5))))
        where_bad = jnp.where(
            ~fin_x, jnp.argmax(~jnp.isfinite(x_new)),
            jnp.where(~fin_g, jnp.argmax(~jnp.isfinite(grad)),
                      jnp.argmax(jnp.where(jnp.isfinite(updates), jnp.abs(updates), jnp.inf))))
        newly = alive & ~ok
        reason = jnp.where(newly, code, reason).astype(reason.dtype)
        bad = jnp.where(newly, where_bad.astype(bad.dtype), bad)
        x = jnp.where(ok, x_new, x)
        opt_state = jax.tree_util.tree_map(lambda n, o: jnp.where(ok, n, o), new_state, opt_state)
        out = (value, jnp.linalg.norm(grad), alive)
        return (x, opt_state, step + ok.astype(step.dtype), ok, reason, bad), out

    def chunk(carry: Any, data: Any, data_key: Any, bounds: Any, length: int) -> Any:
        return jax.lax.scan(lambda c, s: body(c, s, data, data_key, bounds), carry, None,
                            length=length)

    return jax.jit(chunk, static_argnames="length")


def batch_indices(data_key: Any, step: int, samples: int, batch: int, per_epoch: int) -> Any:
    """The samples of minibatch ``step``: as :func:`build_chunk` draws them, eagerly."""
    epoch, i = divmod(step, per_epoch)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(data_key, epoch), samples))
    return perm[i * batch:(i + 1) * batch]


def stepped_chunk(
    obj: Objective, curvature: Any, optimizer: optax.GradientTransformation,
    minibatch: Minibatch | None,
) -> Callable[..., Any]:
    """:func:`build_chunk`'s contract, one step at a time from Python, for a sharded backend.

    Each step's value and gradient come from the sharded programs
    (``curvature.batch_value_and_gradient`` on the step's minibatch, drawn as
    the compiled chunk draws it, or ``value_and_gradient`` for full batch), so
    the data stay split over the devices; the optimizer update is one jitted
    call. Same divergence checks, same outputs, so the trajectory equals the
    single-device one up to summation order.
    """
    per_epoch = minibatch.per_epoch if minibatch else 1
    batch = minibatch.batch_size if minibatch else 0
    samples = minibatch.samples if minibatch else 0
    host_data = jax.tree_util.tree_map(np.asarray, minibatch.data) if minibatch else None
    update = jax.jit(optimizer.update)

    def chunk(carry: Any, data: Any, data_key: Any, bounds: Any, length: int) -> Any:
        del data
        floor, ceiling = (float(b) for b in bounds)
        x, opt_state, step, alive, reason, bad = carry
        x, step, alive = np.asarray(x, dtype=obj.dtype), int(step), bool(alive)
        reason, bad = int(reason), int(bad)
        values, gnorms, valid = [], [], []
        for _ in range(length):
            if minibatch is None:
                value, grad = curvature.value_and_gradient(x)
            else:
                idx = batch_indices(data_key, step, samples, batch, per_epoch)
                part = jax.tree_util.tree_map(lambda a, idx=idx: a[idx], host_data)
                value, grad = curvature.batch_value_and_gradient(x, part)
            grad = np.asarray(grad, dtype=obj.dtype)
            updates, new_state = update(jnp.asarray(grad), opt_state, jnp.asarray(x))
            updates = np.asarray(updates)
            x_new = x + updates
            fin_v, fin_g = bool(np.isfinite(value)), bool(np.all(np.isfinite(grad)))
            fin_x = bool(np.all(np.isfinite(x_new)))
            explode, sink = bool(value > ceiling), bool(value < floor)
            ok = alive and fin_v and fin_g and fin_x and not explode and not sink
            if alive and not ok:  # the same codes as the compiled body (REASONS)
                reason = (1 if not fin_v else 2 if not fin_g else 3 if not fin_x
                          else 4 if explode else 5)
                bad = int(np.argmax(~np.isfinite(x_new)) if not fin_x else
                          np.argmax(~np.isfinite(grad)) if not fin_g else
                          np.argmax(np.where(np.isfinite(updates), np.abs(updates), np.inf)))
            values.append(value)
            gnorms.append(float(np.linalg.norm(grad)))
            valid.append(alive)
            if ok:
                x, opt_state, step = x_new, new_state, step + 1
            alive = ok
        out = (np.asarray(values), np.asarray(gnorms), np.asarray(valid, dtype=bool))
        return (x, opt_state, step, alive, reason, bad), out

    return chunk


def sharded(curvature: Curvature) -> bool:
    """True when ``curvature`` runs over several devices (``--devices``)."""
    return curvature.parallel.sharded


_CHUNKS: dict[tuple[Any, ...], tuple[Any, Callable[..., Any]]] = {}
_CHUNK_CACHE_SIZE = 8


def cached_chunk(obj: Objective, optimizer: optax.GradientTransformation, config: TrainConfig,
                 minibatch: Minibatch | None) -> Callable[..., Any]:
    """:func:`build_chunk`, reused across seeds of the same objective and optimizer.

    The seed only enters through the initial optimizer state (the noise key)
    and ``data_key``, both arguments of the compiled chunk, so runs that differ
    only in the seed (``--compare``-style sweeps, tests) compile once.
    """
    fields = config.trajectory_fields()
    fields.pop("seed")
    fields.pop("monitor_every")
    key = (id(obj.file.fn), id(minibatch.loss) if minibatch else None,
           minibatch.batch_size if minibatch else None, obj.dtype, obj.n, repr(sorted(
               (k, repr(v)) for k, v in fields.items())))
    hit = _CHUNKS.get(key)
    if hit is not None and hit[0][0] is obj.file.fn:
        return hit[1]
    chunk = build_chunk(obj, optimizer, minibatch)
    if len(_CHUNKS) >= _CHUNK_CACHE_SIZE:
        _CHUNKS.pop(next(iter(_CHUNKS)))
    _CHUNKS[key] = ((obj.file.fn, minibatch), chunk)
    return chunk


def value_bounds(start_value: float) -> tuple[float, float]:
    """``(floor, ceiling)``: the start value ∓ ``EXPLODE``·max(1, |f₀|).

    Training moves the loss by amounts of the order of its start's scale; a
    loss 10⁸ such scales above the start is exploding, 10⁸ below it is running
    off to −∞ (a loss unbounded below: ``−b²`` grows geometrically under
    gradient descent and would reach −1e47 in 300 steps without a non-finite
    number ever showing up). Both bounds are symmetric so neither direction of
    runaway goes unreported.
    """
    scale = EXPLODE * max(1.0, abs(start_value))
    return start_value - scale, start_value + scale


def initial_state(obj: Objective, optimizer: optax.GradientTransformation,
                  start_value: float) -> TrainState:
    x = np.asarray(obj.x, dtype=obj.dtype)
    return TrainState(x=x, opt_state=optimizer.init(jnp.asarray(x)), step=0,
                      start_value=start_value)


def train(
    obj: Objective,
    curvature: Any,
    optimizer: optax.GradientTransformation,
    config: TrainConfig,
    *,
    minibatch: Minibatch | None = None,
    state: TrainState | None = None,
    tracker: EventTracker | None = None,
    history: list[Record] | None = None,
    curvature_on: bool = True,
    callback: Callable[[ChunkProgress], None] | None = None,
    policy: SpectrumPolicy = MONITOR_POLICY,
    blocks: list | None = None,
) -> TrainResult:
    """Run ``config.steps`` optimizer steps from ``state`` (or the objective's point).

    ``curvature`` is an :class:`~hesscli.curvature.exact.ExactCurvature` of
    ``obj``; it computes the monitored quantities. A sharded one
    (:class:`~hesscli.curvature.sharded.ShardedCurvature`) also computes the
    steps' gradients (:func:`stepped_chunk`). Pass ``state``, ``tracker``
    and ``history`` (from a log) to resume: the step at ``state.step`` is then
    already logged and is not logged again. ``policy`` (the monitor's k and seed,
    the path request auto|dense|matrix-free and the parsed ``--dense-budget``) chooses
    the path once for the run (:func:`hesscli.spectra.policy.choose`), and every log
    step takes that path; on the matrix-free path the monitored eigenvalues are the
    Lanczos extremes.
    ``blocks`` (from :func:`hesscli.spectra.blocks.group_blocks`) adds each diagonal
    block's λmax to every record.
    """
    from hesscli.training.optimizers import GD_ONLY_NOTE, plain_gd

    notes: list[str] = []
    kind = curvature.kind
    if curvature_on and kind != CurvatureKind.HESSIAN:
        from hesscli.curvature.operators import TITLES, psd_reason

        notes.append(f"curvature monitored: the {TITLES.get(kind, kind)} (λmin, λmax, "
                     "lr·λmax and the step model's error are its own); the final verdict "
                     "is the Hessian's")
        facts = curvature.output_hessian  # the GGN's H_ℓ at the start
        notes.append(("at the start point: " if kind == CurvatureKind.GGN else "")
                     + psd_reason(kind, facts))
    choice = choose(obj.n, policy)
    if curvature_on and choice.path == SpectrumPath.MATRIX_FREE:
        notes.append(MATRIX_FREE_NOTE.format(reason=choice.reason))
    adaptive = adaptive_monitor(config, curvature, curvature_on, notes)
    if curvature_on and not plain_gd(config.optimizer) and adaptive is None:
        notes.append(GD_ONLY_NOTE.format(name=config.optimizer))
    bound = stability_bound(config.optimizer, config.options)
    if adaptive is not None:
        bound = adaptive
    elif curvature_on and bound != STABILITY_BOUND:
        notes.append(f"the span events (progressive sharpening, edge of stability, unstable) "
                     f"judge lr·λmax against {config.optimizer}'s own stability bound "
                     f"{bound:.4g} (momentum β: 2(1 + β), Nesterov 2(1 + β)/(1 + 2β)), not 2")
    tracker = tracker or EventTracker(obj.n, obj.dtype, config.lr, optimizer=config.optimizer,
                                      bound=bound, hessian=curvature.kind == CurvatureKind.HESSIAN,
                                      preconditioned=adaptive is not None)
    history = list(history or [])
    t0 = time.perf_counter()
    monitor_seconds = 0.0

    def observe(x: np.ndarray, step: int, mean_loss: float | None,
                opt_state: Any = None) -> tuple[Record, list[Event]]:
        nonlocal monitor_seconds
        tm = time.perf_counter()
        pre = (state_preconditioner(config, opt_state, obj.n)
               if adaptive is not None and curvature_on else None)
        record, _, _ = monitor(curvature, x, step, config.lr, curvature_on=curvature_on,
                               mean_step_loss=mean_loss, elapsed=tm - t0,
                               policy=policy, choice=choice, blocks=blocks,
                               preconditioner=pre)
        events = tracker.feed(record)
        history.append(record)
        monitor_seconds += time.perf_counter() - tm
        return record, events

    fresh = state is None
    if state is None:
        start_value = float(curvature.value(obj.x))
        # a start where f is NaN/inf is no run that diverged: the objective failed there
        ensure_finite(start_value, "value at the starting point")
        state = initial_state(obj, optimizer, start_value)
    if fresh or not history:
        record, events = observe(state.x, state.step, None, state.opt_state)
        if state.step >= config.steps:  # nothing to run: the spans end here
            events = events + tracker.finish()
        if callback:
            callback(ChunkProgress(record, tuple(events), state, config.steps))

    if sharded(curvature):
        chunk = stepped_chunk(obj, curvature, optimizer, minibatch)
    else:
        chunk = cached_chunk(obj, optimizer, config, minibatch)
    data = minibatch.data if minibatch else None
    _, data_key = keys(config.seed)
    bounds = value_bounds(state.start_value)
    carry = (jnp.asarray(state.x), state.opt_state, jnp.asarray(state.step, jnp.int32),
             jnp.asarray(True), jnp.asarray(0, jnp.int32), jnp.asarray(0, jnp.int32))
    diverged = False
    every = config.monitor_every
    while state.step < config.steps and not diverged:
        length = min(every - state.step % every, config.steps - state.step)
        carry, (values, gnorms, valid) = chunk(carry, data, data_key, bounds, length=length)
        x, opt_state, step, alive, reason, bad = carry
        valid_np = np.asarray(valid)
        values_np = np.asarray(values)[valid_np]
        new_step = int(step)
        state = TrainState(np.asarray(x), opt_state, new_step, state.start_value)
        mean_loss = float(np.mean(values_np)) if values_np.size else None
        new_events: list[Event] = []
        if not bool(alive):
            diverged = True
            code, index = int(reason), int(bad)
            name = obj.layout.name(index)
            what = REASONS.get(code, "diverged")
            last = float(np.asarray(values)[valid_np.sum() - 1]) if valid_np.any() else None
            event = Event(new_step, EventKind.DIVERGED,
                          f"diverged at step {new_step}: {what}; {name} blew up first",
                          {"reason": what, "parameter": name, "index": index,
                           "value": last})
            tracker.add(event)
            new_events.append(event)
        record, events = observe(state.x, state.step, mean_loss, state.opt_state)
        new_events.extend(events)
        if state.step >= config.steps or diverged:  # the last record: close the open spans
            new_events.extend(tracker.finish())
        if callback:
            callback(ChunkProgress(record, tuple(new_events), state, config.steps))

    elapsed = time.perf_counter() - t0
    return TrainResult(
        config=config, steps=state.step, x=state.x, history=tuple(history),
        events=tuple(sorted(tracker.events, key=lambda e: e.step)), diverged=diverged,
        train_seconds=elapsed - monitor_seconds, monitor_seconds=monitor_seconds,
        notes=tuple(notes), state=state,
    )


ADAPTIVE_NOTE = (
    "{name}: lr·λmax(H) against 2 is not the stability criterion of an adaptive optimizer; "
    "with its preconditioner P (from the optimizer state at each log step, bias-corrected: "
    "{formula}) {name} is stable on a quadratic while lr·λmax(P⁻¹H) < {bound_formula} = "
    "{bound:.4g} (Cohen et al. 2022, 'Adaptive gradient methods at the edge of stability'), "
    "and the span events (adaptive_progressive_sharpening, adaptive_edge_of_stability, "
    "adaptive_above_edge, adaptive_unstable) judge that; λmax(H), lr·λmax(H) and the model "
    "error are shown for reference (the latter two describe a plain gradient step)"
)


def tracker_options(config: TrainConfig, curvature: Any, curvature_on: bool = True
                    ) -> dict[str, Any]:
    """The :class:`EventTracker` options of a run: the span bound, and for Adam-type
    optimizers (:func:`adaptive_monitor`) the preconditioned spans."""
    adaptive = adaptive_monitor(config, curvature, curvature_on, [])
    if adaptive is not None:
        return {"bound": adaptive, "preconditioned": True}
    return {"bound": stability_bound(config.optimizer, config.options)}


def adaptive_monitor(config: TrainConfig, curvature: Any, curvature_on: bool,
                     notes: list[str]) -> float | None:
    """The bound on lr·λmax(P⁻¹H) when the run monitors Adam's preconditioned sharpness
    (a supported optimizer, curvature on, one device), else None; says why in ``notes``."""
    from hesscli.curvature.preconditioned import supported, why_unsupported

    if not curvature_on:
        return None
    if not supported(config.optimizer):
        if config.optimizer not in (Optimizer.SGD, Optimizer.MOMENTUM, Optimizer.NESTEROV):
            notes.append(f"no preconditioned sharpness λmax(P⁻¹H) for {config.optimizer}: "
                         f"{why_unsupported(config.optimizer)}")
        return None
    if sharded(curvature):
        notes.append("λmax(P⁻¹H) is not monitored over several devices (--devices 1 for it)")
        return None
    from hesscli.analysis.preconditioned import optimizer_bound
    from hesscli.curvature.preconditioned import hyperparameters

    bound = optimizer_bound(config.optimizer, config.options, config.lr)
    hp = hyperparameters(config.optimizer, config.options)
    formula = ("P = sqrt(ν_max + eps_root) + eps" if config.optimizer == "amsgrad"
               else "P = sqrt(ν/(1 − β₂ᵗ) + eps_root) + eps")
    wd = config.optimizer == Optimizer.ADAMW and hp.get("weight_decay")
    bound_formula = ("2(1 + β₁)/((1 − β₁)(1 + 2β₁))" if hp.get("nesterov") else
                     "(2 − lr·w)(1 + β₁)/(1 − β₁)" if wd else "(2 + 2β₁)/(1 − β₁)")
    notes.append(ADAPTIVE_NOTE.format(name=config.optimizer, formula=formula,
                                      bound_formula=bound_formula, bound=bound)
                 + f" (β₁ = {float(hp['b1']):g}: threshold {bound:.4g}/lr = "
                 f"{bound / config.lr:.4g}); before the first step there is no P")
    return bound


def state_preconditioner(config: TrainConfig, opt_state: Any, n: int) -> Any:
    """The preconditioner of ``opt_state`` (None before the first step: count 0)."""
    from hesscli.curvature.preconditioned import preconditioner_of

    if opt_state is None:
        return None
    try:
        return preconditioner_of(config.optimizer, config.options, opt_state, n)
    except InputError:
        return None


def optimizer_for(config: TrainConfig) -> optax.GradientTransformation:
    """The optax optimizer of ``config`` (sphere noise first when ``config.noise``)."""
    from hesscli.training.optimizers import make_optimizer

    noise_key, _ = keys(config.seed)
    return make_optimizer(config.optimizer, config.lr, config.options, noise=config.noise,
                          noise_key=noise_key, noise_steps=config.noise_steps)
