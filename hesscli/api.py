"""hesscli as a Python library: the same analyses as the commands, for notebooks and scripts.

Every function takes an objective and a point and returns a frozen
:class:`Result` whose ``to_json()`` is exactly the document the matching
command prints with ``--format json`` (the ``meta.argv`` entry aside)::

    import jax.numpy as jnp
    import hesscli

    def loss(p):
        return jnp.sum((p["w"] @ p["x"] - 1.0) ** 2) + 0.1 * jnp.sum(p["w"] ** 2)

    params = {"w": jnp.ones((2, 3)), "x": jnp.ones(3)}
    res = hesscli.analyze(loss, params)
    res.classification, res.spectrum.lambda_min, res.to_json()["inertia"]

The objective is a Python callable (taking the point's pytree, returning a
scalar), an objective file (``"my_loss.py"``, ``"my_loss.py:name"``) or a
built-in problem (``"rosenbrock"``), or an :class:`~hesscli.objective.bind.Objective`
already loaded with :func:`load`. The point is a pytree of arrays, a POINT
string as ``--at`` takes it (``"1,1"``, ``"zeros"``, ``"w.npz"``), or None for
the file's default point. Options have the names and defaults of the
command-line options. Errors are :class:`~hesscli.errors.HesscliError`
subclasses carrying the CLI's exit code. Nothing here prints, and nothing
imports click or Rich: the CLI calls these functions, then renders.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from hesscli.api_args import validated
from hesscli.budget import (
    convexity_bytes,
    gradcheck_bytes,
    landscape_bytes,
    require,
    require_train,
)
from hesscli.devices import Parallel, parse_devices
from hesscli.documents.meta import meta
from hesscli.errors import InputError
from hesscli.spectra.route import check_fits
from hesscli.spectra.route import dense_budget as budget_of
from hesscli.validate import nonnegative, positive
from hesscli.vocab import (
    CurvatureKind,
    Estimator,
    MethodRequest,
    PlaneDirection,
    SpectrumPath,
    StopRule,
    words,
)

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from hesscli.curvature.base import Curvature
    from hesscli.objective.bind import Objective

__all__ = [
    "Result", "analyze", "check", "convexity", "gradcheck", "landscape", "load", "spectrum",
    "train",
]


@dataclass(frozen=True)
class Result:
    """What one analysis returned, and how to write it as the command's JSON document.

    ``output`` is the analysis's own frozen result (:class:`~hesscli.analysis.analyze.Analysis`,
    :class:`~hesscli.analysis.spectrum_report.SpectrumReport`, ...); its attributes
    are readable on the result itself (``res.classification``, ``res.value``).
    ``objective`` is the bound :class:`Objective` (its name is ``.label``; pass it
    as the objective of a later call to skip loading), ``curvature`` the backend
    (pass it as ``curvature=`` to skip compiling again), ``parallel`` who computed.
    """

    command: str
    output: Any
    objective: Objective | None  # None for check (one objective per check)
    curvature: Curvature | None
    parallel: Parallel
    meta: dict[str, Any] = field(repr=False)
    _document: Callable[[Any, dict[str, Any]], dict[str, Any]] = field(repr=False)
    #: further reports asked for alongside ``value`` (analyze: ``blocks``, ``null_space``)
    parts: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The command's JSON document (plain JSON types, ``None`` for non-finite numbers)."""
        from hesscli.documents.jsonable import jsonable

        return jsonable(self._document(self.output, self.meta))

    def document(self) -> dict[str, Any]:
        """The document before conversion to plain JSON types (NumPy arrays kept)."""
        return self._document(self.output, self.meta)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("output", "command"):
            raise AttributeError(name)
        return getattr(self.output, name)

    # ---- in a notebook: the command's report and its figure (Rich and matplotlib load
    # here, on first display; :mod:`hesscli.render.views` draws for the CLI as well)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        """The command's ``--format table`` report, for a Rich console (``rich.print(res)``,
        ``%load_ext rich`` in IPython), at the console's width."""
        from rich.text import Text

        from hesscli.render.views import text

        yield Text.from_ansi(text(self, width=options.max_width, styles=True))

    def _repr_html_(self) -> str:
        """Jupyter shows the command's report (an HTML fragment with inline styles)."""
        from hesscli.render.views import html

        return html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's terminal shows the command's report as plain text."""
        if cycle:
            printer.text(f"<hesscli {self.command} result>")
            return
        from hesscli.render.views import text

        printer.text(text(self).rstrip("\n"))

    def plot(self) -> Any:
        """The matplotlib ``Figure`` the command's ``--plot`` saves (spectrum, landscape,
        train); it displays in a notebook, and ``.savefig(path)`` writes it."""
        from hesscli.render.views import figure

        return figure(self)


# ---- loading ---------------------------------------------------------------------------


def _assignments(params: Mapping[str, Any] | Iterable[str] | None) -> tuple[str, ...]:
    """``-p`` parameters as KEY=VALUE strings (from a mapping or strings)."""
    if params is None:
        return ()
    if isinstance(params, Mapping):
        return tuple(f"{k}={v}" for k, v in params.items())
    if isinstance(params, str):
        return (params,)
    return tuple(params)


@validated("load")
def load(
    objective: Any, at: Any = None, params: Mapping[str, Any] | Iterable[str] | None = None, *,
    seed: int = 0, dtype: str = "float64", method: str = "auto",
) -> Objective:
    """An objective bound to a point and checked (what every command starts from).

    ``objective``: a callable, a file, a built-in problem name or a loaded
    :class:`Objective` (then ``at`` moves it to another point). ``params`` are
    the file's ``-p`` parameters (a mapping or KEY=VALUE strings).
    """
    from hesscli.objective.bind import Objective, bind
    from hesscli.objective.files import from_callable, load_file
    from hesscli.objective.params import parse_assignments

    if isinstance(objective, Objective):
        if params:
            raise InputError("params apply when loading a file, not to a loaded objective")
        return objective if at is None else bind(objective.file, at, seed=seed,
                                                 dtype=dtype, method=method)
    if isinstance(objective, str):
        file = load_file(objective, parse_assignments(_assignments(params)))
        return bind(file, at, seed=seed, dtype=dtype, method=method)
    if params:
        raise InputError("params are an objective file's -p parameters; a Python function "
                         "takes its own arguments")
    if at is None:
        raise InputError("a Python objective needs its point: hesscli.analyze(fn, params)")
    if isinstance(at, str):
        return bind(from_callable(objective), at, seed=seed, dtype=dtype, method=method)
    return bind(from_callable(objective, at), None, seed=seed, dtype=dtype, method=method)


def _point_text(at: Any) -> str | None:
    """``at`` as ``meta.options.at`` records it."""
    return at if at is None or isinstance(at, str) else "<python object>"


NOT_OPTIONS = ("objective", "seed", "dtype", "curvature")  # recorded elsewhere, or not data


def _meta(call: dict[str, Any], parallel: Parallel | None = None, path_choice: Any = None,
          **resolved: Any) -> dict[str, Any]:
    """The ``meta`` block from a call's arguments (``call``: the function's ``locals()``
    on entry), as JSON-able values; ``resolved`` replaces values worked out later (the
    dense budget in bytes); ``path_choice`` is the dense/matrix-free choice made."""
    options: dict[str, Any] = {}
    for name, value in call.items():
        if name in NOT_OPTIONS:
            continue
        if name in ("at", "around"):
            value = _point_text(value)
        elif name == "params":
            value = list(_assignments(value))
        elif name == "devices":
            value = str(value)
        elif name == "path":
            value = value or "auto"
        elif name == "plot":
            value = str(value) if value else None
        elif name == "boxes":
            value = [b if isinstance(b, str) else f"{b[0]!r},{b[1]!r}" for b in value]
        elif name == "options":
            value = dict(value or {})
        options[name] = value
    options.update(resolved)
    return meta(call.get("seed"), call.get("dtype", "float64"), parallel=parallel,
                path_choice=path_choice, **options)


def _backend(
    obj: Objective, method: str, accuracy: str = "normal", devices: int | str = 1,
    curvature: Curvature | None = None, kind: str = "hessian",
) -> tuple[Curvature, tuple[str, ...]]:
    """The backend for ``obj``: ``curvature`` when given (with ``kind``'s operator on
    top of it), else the one :func:`~hesscli.curvature.choose.curvature_for` chooses."""
    from hesscli.curvature.choose import curvature_for

    if isinstance(curvature, (str, list, tuple)):
        # the CLI's --curvature names a matrix; here that is curvature_kind, and
        # curvature= is a backend object (a Result's .curvature) to reuse
        named = curvature if isinstance(curvature, str) else ",".join(map(str, curvature))
        raise InputError(
            f"curvature={curvature!r}: curvature= takes a backend (a result's .curvature); "
            f"name the matrix as --curvature does with curvature_kind={named!r}")
    if curvature is not None:
        _check_built_for(curvature, obj)
        if kind == CurvatureKind.HESSIAN:
            return curvature, ()
        from hesscli.curvature.host_products import host_products
        from hesscli.curvature.operators import operator_curvature

        return host_products(operator_curvature(obj, curvature, kind)), ()
    wanted = parse_devices(devices)
    key = _reuse_key(obj, method, accuracy, wanted, kind)
    if key is not None:
        hit = _BACKENDS.get(key)
        if hit is not None and hit[0] is obj.file.fn and _still_same(hit[1], obj):
            _BACKENDS[key] = _BACKENDS.pop(key)  # most recently used last
            return hit[1], hit[2]
        _BACKENDS.pop(key, None)
    backend, notes = curvature_for(obj, method, accuracy, devices=wanted, kind=kind)
    if key is not None:
        while len(_BACKENDS) >= _REUSED:
            _BACKENDS.pop(next(iter(_BACKENDS)))
        _BACKENDS[key] = (obj.file.fn, backend, notes)
    return backend, notes


#: Backends kept for reuse (a loop of API calls on one function compiles once): at most
#: this many, least recently used dropped. Each entry holds compiled programs.
_REUSED = 8
_BACKENDS: dict[Any, tuple[Any, Curvature, tuple[str, ...]]] = {}


def _reuse_key(obj: Objective, method: str, accuracy: str, devices: int | None,
               kind: str) -> Any:
    """What decides a backend's compiled programs, or None when it must not be reused.

    An exact backend depends on the flat function only (never on the point), and
    the flat function on the user's function, the pytree structure, the entry
    shapes and the dtype. Model points (held parts put back from the point) are
    not reused; an objective file loaded anew is a new function (a new module).
    """
    from hesscli.curvature.choose import multi_process

    if (obj.split is not None or devices != 1 or multi_process() or not obj.traceable
            or method == MethodRequest.FD):
        return None  # finite differences size their steps from the point: not reused
    shapes = tuple((leaf.path, leaf.shape) for leaf in obj.layout.leaves)
    return (id(obj.file.fn), obj.treedef, shapes, obj.dtype, str(method), accuracy, kind,
            obj.values_traceable)


def _still_same(backend: Curvature, obj: Objective) -> bool:
    """The reused backend's compiled value at the point equals the function's own value
    now: a function reading globals the user has since changed (new data) is rebuilt."""
    import numpy as np

    from hesscli.objective.bind import split_tolerance

    try:
        direct = float(np.asarray(obj.flat_fn(obj.x)))
        compiled = backend.value(obj.x)
    except Exception:  # noqa: BLE001 - let a fresh backend report the failure
        return False
    rtol = split_tolerance(obj.dtype)
    return abs(direct - compiled) <= rtol * max(abs(direct), abs(compiled), 1e-300)


def _base_of(backend: Any) -> Any:
    while getattr(backend, "base", None) is not None:
        backend = backend.base
    return backend


def _check_built_for(curvature: Any, obj: Objective) -> None:
    """Refuse a backend built for another function (``curvature=res.curvature`` of an
    earlier call on a different objective): it would analyze that function instead."""
    from hesscli.curvature.base import Curvature as Backend

    if not isinstance(curvature, Backend):
        raise InputError(f"curvature= takes a backend (a result's .curvature); got "
                         f"{type(curvature).__name__}")
    built = getattr(_base_of(curvature), "objective", None)
    if built is None:
        return  # a user's own backend: it declares no objective to compare
    same_fn = built.file.fn is obj.file.fn
    if not same_fn:
        other = (f"the objective {built.label!r}, not for {obj.label!r}"
                 if built.label != obj.label else
                 f"another function (also named {obj.label!r})")
        raise InputError(
            f"curvature=: this backend was built for {other}; it would analyze that "
            "function instead. Drop curvature= (or pass the result's .objective as the "
            "objective)")
    if (curvature.n, curvature.dtype) != (obj.n, obj.dtype) or built.treedef != obj.treedef:
        raise InputError(
            f"curvature=: this backend was built for {built.n} parameters in {built.dtype} "
            f"with another structure; the point has {obj.n} in {obj.dtype}. Drop curvature=")


# ---- the analyses ----------------------------------------------------------------------


STEP_LR = 0.01  # analyze's --lr when none is given (the step prediction, 2/λmax)


@validated("analyze")
def analyze(
    objective: Any, at: Any = None, *, params: Mapping[str, Any] | Iterable[str] | None = None,
    method: str = "auto", dtype: str = "float64", seed: int = 0, lr: float | None = None,
    gtol: float | None = None, tol: float | None = None, escape_step: float = 0.1,
    fd_accuracy: str = "normal", verify: bool = False, devices: int | str = 1,
    path: str | None = None, k: int = 1, eigensolver: str = "auto",
    rtol: float | None = None, max_steps: int | None = None, chunk_size: int | None = None,
    curvature: Curvature | None = None, dense_budget: str | int | None = None,
    ends: str = "both",
    blocks: str | None = None, null_space: bool = False,
    curvature_kind: str = "hessian",
    preconditioner: str | os.PathLike[str] | Any = None, b1: float | None = None,
    b2: float | None = None, eps: float | None = None, weight_decay: float | None = None,
    nesterov: bool | None = None,
    batch_size: int | None = None, batches: int | str | None = None,
) -> Result:
    """``hesscli analyze``: value, gradient, spectrum, verdict, step prediction, escape.

    ``lr`` (default 0.01 for the step prediction and the 2/λmax check) is also the
    learning rate of ``preconditioner``'s threshold. ``preconditioner`` (a ``train --out``
    run log of an Adam-type run, or an optax state a script saved: an orbax directory,
    ``.msgpack``, ``.npz``, ``.safetensors``, ``FILE::sub.tree``; or, from Python, the
    optax state object itself, e.g. ``opt.init(params)`` after some updates) adds Adam's
    preconditioned sharpness λmax(P⁻¹H), P from that optimizer state, against
    (2 + 2β₁)/((1 − β₁)·lr) with its stable/unstable verdict (``res.parts["preconditioned"]``,
    JSON ``preconditioned``); ``b1`` overrides the logged β₁. A saved state holds no
    hyperparameters (unless injected): ``b1``, ``b2``, ``eps``, ``weight_decay`` (AdamW),
    ``nesterov`` (NAdam) say them, optax.adam's defaults otherwise (noted); without ``lr``
    there is no threshold (:mod:`hesscli.analysis.saved_state`).

    The spectrum is dense when it fits the dense budget (``dense_budget``, e.g.
    ``"1GiB"``; default ``$HESSCLI_DENSE_BUDGET`` or 512 MiB, never the free
    memory), else the ``k`` extremes from Hessian-vector products (``path``
    forces dense|matrix-free), computed until each meets ``rtol``·max|λ|
    (default 1e-3) by the Kato–Temple estimate and the sign of λmin is
    decided, for the ``ends`` asked for. ``blocks`` (leaf, a depth, or prefixes:
    :func:`hesscli.spectra.blocks.group_blocks`) adds the per-block report,
    ``null_space`` the zero eigenspace and its sources; both are in ``res.parts``
    and the document. ``curvature_kind`` (``--curvature``): hessian, or for a
    model split ggn, fisher or empirical-fisher, whose spectrum then replaces the
    Hessian's (no classification and no escape direction: they are not the
    Hessian; the notes say whether the GGN is PSD at the point).

    ``batch_size`` (arrays in the file's ``data`` cut into batches of that many
    samples, the last one ragged) or a ``batches()`` generator in the file
    streams the data set (:mod:`hesscli.curvature.streamed`): value, gradient
    and curvature are sample-weighted means of per-batch ones, computed with
    the memory of one batch; ``batches`` = N uses the first N (default all;
    more than there are means all). ``res.parts["stream"]`` then holds the
    batches used and their variability (per-batch λmax and trace).

    >>> res = hesscli.analyze("problems/mlp.py", batch_size=64)  # doctest: +SKIP
    >>> res.parts["stream"].spread.lambda_max.stderr  # doctest: +SKIP
    """
    call = dict(locals())
    from hesscli.analysis.analyze import analyze as run_analysis
    from hesscli.curvature.choose import fd_reason
    from hesscli.curvature.operators import parse_kinds
    from hesscli.documents.analyze import analysis_document, curvatures_document
    from hesscli.spectra.policy import HessianOnce, SpectrumPolicy, choose

    step_lr = STEP_LR if lr is None else lr
    positive("--lr", step_lr)
    stray = [f for f, v in (("--b1", b1), ("--b2", b2), ("--eps", eps), ("--weight-decay",
             weight_decay), ("--nesterov", nesterov)) if v is not None]
    if stray and preconditioner is None:
        raise InputError(f"{stray[0]} describes the optimizer of --preconditioner; give one")
    positive("--escape-step", escape_step)
    policy = SpectrumPolicy(path=path or "auto", k=k, solver=eigensolver, rtol=rtol,
                            max_steps=max_steps, seed=seed, dense_budget=dense_budget,
                            ends=ends, stop=StopRule.VERDICT).resolved()
    nonnegative("--gtol", gtol)
    nonnegative("--tol", tol)
    kinds = parse_kinds(curvature_kind)
    kind = kinds[0]
    bound = _bind(objective, at, DataOptions.of(call), kinds)
    obj, backend, notes, streamed = bound.obj, bound.backend, bound.notes, bound.stream
    parallel = backend.parallel
    choice = choose(obj.n, policy)  # the path, decided once for the whole command
    verification = None
    if verify:
        from hesscli.analysis.verify import verify_derivatives

        verification = verify_derivatives(obj, seed)
    # the spectrum, --blocks, --null-space and --preconditioner share one dense Hessian
    once = HessianOnce(backend)
    shared = dict(lr=step_lr, gtol=gtol, tol=tol, escape_distance=escape_step, policy=policy,
                  choice=choice)
    try:
        result = run_analysis(obj, backend, notes=notes, verification=verification,
                              fd_why=fd_reason(obj, method), **shared)
    except Exception as exc:
        once.release()
        _reraise(streamed, backend, exc)
        raise
    _reraise(streamed, backend)
    info = _meta(call, parallel, path_choice=choice,
                 dense_budget=policy.budget.bytes, eigensolver_used=result.spectrum.solver,
                 curvature=",".join(kinds))
    with_direction = obj.n <= 1000
    extra: dict[str, Any] = {"devices": parallel.devices, "processes": parallel.processes}
    if blocks is True or blocks is False:  # the bare --blocks flag: one block per leaf
        blocks = "leaf" if blocks else None
    try:
        parts = _structure(obj, backend, result, blocks, null_space, seed, policy)
    except Exception as exc:
        once.release()
        _reraise(streamed, backend, exc)
        raise
    _reraise(streamed, backend)
    if len(kinds) > 1:
        parts["curvatures"] = _more_curvatures(obj, method, backend, kinds, result, parts,
                                               blocks, seed, policy, shared)
        extra["curvatures"] = curvatures_document(parts["curvatures"], with_direction)
    if streamed is not None:
        parts["stream"] = _stream_report(streamed, backend, obj, seed)
        extra["stream"] = parts["stream"].document()
    if preconditioner is not None:
        from hesscli.analysis.saved_state import is_state
        from hesscli.analysis.saved_state import preconditioned_part as from_state
        from hesscli.training.logged_state import preconditioned_part

        hyper = {"b2": b2, "eps": eps, "weight_decay": weight_decay, "nesterov": nesterov}
        with once:
            parts["preconditioned"], extra["preconditioned"] = (
                from_state(obj, backend, preconditioner, policy, lr=lr, b1=b1, **hyper)
                if is_state(preconditioner) else
                preconditioned_part(obj, backend, str(preconditioner), lr, b1, policy,
                                    **hyper))
    once.release()
    if parts:
        from hesscli.documents.structure import blocks_document, null_space_document

        if "blocks" in parts:
            extra["blocks"] = blocks_document(parts["blocks"])
        if "null_space" in parts:
            extra["null_space"] = null_space_document(parts["null_space"])

    def document(a: Any, m: dict[str, Any]) -> dict[str, Any]:
        return analysis_document(a, m, with_direction=with_direction, extra=extra)

    return Result("analyze", result, obj, backend, parallel, info, document, parts)


@dataclass(frozen=True)
class StreamReport:
    """A streamed data set: its batches (``stream``), how many products over the data the
    run took (``hvps``) and the batch-to-batch variability (``spread``; None for one
    batch)."""

    stream: Any
    spread: Any
    hvps: int

    def document(self) -> dict[str, Any]:
        from hesscli.documents.stream import stream_document

        return stream_document(self.stream, self.spread, self.hvps)


@dataclass(frozen=True)
class DataOptions:
    """Where a command's objective, point and data come from and how its backend is built:
    the keyword arguments of these names that ``analyze`` and ``spectrum`` share
    (:meth:`of` picks them from the call)."""

    params: Mapping[str, Any] | Iterable[str] | None = None
    seed: int = 0
    dtype: str = "float64"
    method: str = "auto"
    fd_accuracy: str = "normal"
    devices: int | str = 1
    chunk_size: int | None = None
    batch_size: int | None = None
    batches: int | str | None = None
    curvature: Curvature | None = None  # a backend to reuse (a result's .curvature)

    @classmethod
    def of(cls, call: Mapping[str, Any]) -> DataOptions:
        """The options among a call's arguments (``locals()`` on entry); absent ones default."""
        return cls(**{f.name: call[f.name] for f in fields(cls) if f.name in call})


@dataclass(frozen=True)
class Bound:
    """The objective at its point and the backend a command computes with; ``stream``
    is the :class:`~hesscli.objective.streaming.BatchStream` when the data are
    streamed, else None."""

    obj: Objective
    backend: Curvature
    notes: tuple[str, ...]  # the backend's, the chunking's or the stream's
    stream: Any = None


def _bind(objective: Any, at: Any, data: DataOptions, kinds: tuple[str, ...], *,
          hessian_base: bool = False) -> Bound:
    """The objective loaded (a file imported once), bound at ``at``, and its backend.

    Streamed over batches (:func:`_streamed`) when asked, for ``kinds[0]``;
    otherwise loaded, split by ``chunk_size``, with the backend
    :func:`_backend` gives for ``kinds[0]``, or for the Hessian with
    ``hessian_base`` (``spectrum`` puts each kind's operator on it).
    """
    from hesscli.curvature.choose import chunked

    objective = _imported(objective, data.params)
    streamed = _streamed(objective, at, data, kinds)
    if streamed is not None:
        return streamed
    obj = _load_imported(objective, at, data)
    obj, chunk_notes = chunked(obj, data.chunk_size)
    kind = CurvatureKind.HESSIAN if hessian_base else kinds[0]
    backend, notes = _backend(obj, data.method, data.fd_accuracy, data.devices, data.curvature,
                              kind)
    return Bound(obj, backend, notes + chunk_notes)


def _imported(objective: Any, params: Mapping[str, Any] | Iterable[str] | None) -> Any:
    """A file or built-in name imported (once: what it defines, ``batches`` among them,
    decides whether the data stream, and the same module is then bound); anything else
    as it is."""
    if not isinstance(objective, str):
        return objective
    from hesscli.objective.files import load_file
    from hesscli.objective.params import parse_assignments

    return load_file(objective, parse_assignments(_assignments(params)))


def _load_imported(objective: Any, at: Any, data: DataOptions) -> Objective:
    """:func:`load`, for an objective :func:`_imported` may have imported already."""
    from hesscli.objective.bind import bind
    from hesscli.objective.files import ObjectiveFile

    if isinstance(objective, ObjectiveFile):  # its -p parameters applied when imported
        return bind(objective, at, seed=data.seed, dtype=data.dtype, method=data.method)
    return load(objective, at, params=data.params, seed=data.seed, dtype=data.dtype,
                method=data.method)


def _streamed(objective: Any, at: Any, data: DataOptions, kinds: tuple[str, ...]) -> Bound | None:
    """The objective and its streamed backend for ``kinds[0]`` when the data are streamed,
    else None.

    Streaming is in force with ``batch_size``, ``batches`` or a file defining
    ``batches``; it takes a file (imported by :func:`_imported`, or an objective
    loaded from one), one curvature at a time, and combines with none of
    ``chunk_size``, several devices or a ``curvature`` backend passed in
    (:class:`InputError`).
    """
    from hesscli.objective.bind import Objective
    from hesscli.objective.files import ObjectiveFile
    from hesscli.objective.streaming import bind_streamed, streaming_requested

    if isinstance(objective, ObjectiveFile):
        file = objective
    elif isinstance(objective, Objective):
        file = objective.file
    else:
        if data.batch_size is not None or data.batches is not None:
            raise InputError("batch_size/batches stream an objective file's data; pass the "
                             "file's path (with data and loss, or batches())")
        return None
    if not streaming_requested(file, data.batch_size, data.batches):
        return None
    if len(kinds) > 1:
        raise InputError(f"--curvature {','.join(kinds)}: several curvatures side by side "
                         "are not available over streamed batches; run one curvature at a time")
    if data.chunk_size is not None:
        raise InputError("--chunk-size and --batch-size/--batches both split the data; "
                         "streamed batches already bound the memory: drop --chunk-size")
    if parse_devices(data.devices) != 1:
        raise InputError("streamed batches run on one device; use --devices 1")
    if data.curvature is not None:
        raise InputError("curvature= reuses a backend; a streamed data set builds its own")
    from hesscli.curvature.streamed import streamed_curvature

    obj, stream = bind_streamed(file, at, seed=data.seed, dtype=data.dtype, method=data.method,
                                batch_size=data.batch_size, batches=data.batches)
    backend, notes = streamed_curvature(obj, stream, kinds[0])
    from hesscli.objective.streaming import check_objective

    checked = check_objective(stream, obj.unravel(obj.x), backend.value(obj.x))
    return Bound(obj, backend, notes + ((checked,) if checked else ()), stream)


def _reraise(streamed: Any, backend: Any, exc: BaseException | None = None) -> None:
    """A streamed product's error met inside a compiled solver, raised as itself."""
    if streamed is not None:
        from hesscli.curvature.streamed import reraise

        reraise(backend, exc)


def _stream_report(stream: Any, backend: Any, obj: Objective, seed: int) -> StreamReport:
    """The batches used and, for two or more, their per-batch λmax and trace."""
    hvps = backend.hvps
    spread = backend.spread(obj.x, seed=seed) if stream.count >= 2 else None
    return StreamReport(stream, spread, hvps)


def _block_report(obj: Objective, backend: Curvature, result: Any, spec: str, seed: int,
                  policy: Any = None) -> Any:
    """``--blocks`` for one matrix: from its dense form on the dense path (formed once:
    the spectrum's, under :class:`~hesscli.spectra.policy.HessianOnce`), else by the
    certified block solver to the policy's target."""
    from hesscli.analysis.blocks import analyze_blocks

    dense = backend.hessian(obj.x).matrix if result.spectrum.complete else None
    return analyze_blocks(
        obj, backend, spec, dense=dense, seed=seed,
        target=policy.target(obj.dtype) if policy is not None else None,
        max_steps=policy.max_steps if policy is not None else None)


def _more_curvatures(obj: Objective, method: str, backend: Curvature, kinds: Any,
                     result: Any, parts: dict[str, Any], blocks: str | None, seed: int,
                     policy: Any, shared: dict[str, Any]) -> Any:
    """``--curvature A,B,…``: the first matrix's analysis (done) beside the others', each
    from an operator on the first's backend (one compiled function), same settings."""
    from hesscli.analysis.analyze_compare import (
        AnalysisComparison,
        CurvatureAnalysis,
        analyze_more,
    )
    from hesscli.spectra.policy import HessianOnce

    first = CurvatureAnalysis(kinds[0], result, parts.get("blocks"))
    base = _base_of(backend)
    block_report = None if blocks is None else (
        lambda b: _block_report(obj, b, result, blocks, seed, policy))
    more = []
    for kind in kinds[1:]:
        other = _backend(obj, method, curvature=base, kind=kind)[0]
        with HessianOnce(other):  # its spectrum and its blocks share one dense matrix
            more.append(analyze_more(obj, kind, other, blocks=block_report, **shared))
    return AnalysisComparison((first, *more))


def _structure(obj: Objective, backend: Curvature, result: Any, blocks: str | None,
               null_space: bool, seed: int, policy: Any = None) -> dict[str, Any]:
    """The ``--blocks`` and ``--null-space`` reports (the dense Hessian formed once for both
    on the dense path)."""
    parts: dict[str, Any] = {}
    if blocks is None and not null_space:
        return parts
    dense = backend.hessian(obj.x).matrix if result.spectrum.complete else None
    if blocks is not None:
        parts["blocks"] = _block_report(obj, backend, result, blocks, seed, policy)
    if null_space:
        from hesscli.analysis.null_space import analyze_null_space

        parts["null_space"] = analyze_null_space(obj, backend, result.tolerance,
                                                 result.spectrum.eigenvalues, dense=dense,
                                                 seed=seed)
    return parts


@validated("spectrum")
def spectrum(
    objective: Any, at: Any = None, *, params: Mapping[str, Any] | Iterable[str] | None = None,
    method: str = "auto", dtype: str = "float64", seed: int = 0, devices: int | str = 1,
    path: str | None = None, k: int = 3, eigensolver: str = "auto",
    rtol: float | None = None, max_steps: int | None = None, chunk_size: int | None = None,
    density: bool = False, probes: int = 8, steps: int = 80, sigma: float | None = None,
    trace_probes: int = 30, bins: int = 12, plot: str | None = None,
    curvature: Curvature | None = None, dense_budget: str | int | None = None,
    ends: str = "both",
    estimator: str = "auto", trace: bool = False,
    curvature_kind: str = "hessian", batch_size: int | None = None,
    batches: int | str | None = None,
) -> Result:
    """``hesscli spectrum``: every eigenvalue when the dense Hessian fits, else the ``k``
    extremes with residuals, a stochastic trace estimate and (``density``) the SLQ density.

    ``estimator`` (hutchinson|hutch++|auto) spends ``trace_probes`` HVPs on the
    trace; ``trace`` also estimates it on the dense path, beside the exact one.

    ``curvature_kind``: one matrix (hessian, ggn, fisher, empirical-fisher), or a
    comma list (``"hessian,ggn"``): then the value is a
    :class:`~hesscli.analysis.spectrum_compare.Comparison`, every matrix with the
    same settings plus the spectrum of the first two's difference.
    ``plot`` is only recorded in ``meta`` (the CLI draws the figure).
    ``batch_size`` / ``batches``: a streamed data set, as for :func:`analyze`
    (one curvature at a time); the document's ``stream`` field then gives the
    batches and their variability.
    """
    call = dict(locals())
    from hesscli.analysis.spectrum_report import spectrum_report
    from hesscli.curvature.operators import parse_kinds
    from hesscli.documents.spectrum import spectrum_document
    from hesscli.spectra.policy import SpectrumPolicy, choose

    if sigma is not None and not sigma > 0:
        raise InputError(f"--sigma must be positive; got {sigma}")
    from hesscli.spectra.trace import ESTIMATORS

    if estimator not in ESTIMATORS:
        raise InputError(f"--estimator must be one of {', '.join(ESTIMATORS)}; "
                         f"got {estimator!r}")
    # a sketch, its basis, one probe
    if estimator == Estimator.HUTCH_PLUS_PLUS and 0 < trace_probes < 3:
        raise InputError(f"--estimator hutch++ needs --trace-probes ≥ 3; got {trace_probes}")
    policy = SpectrumPolicy(path=path or "auto", k=k, solver=eigensolver, rtol=rtol,
                            max_steps=max_steps, seed=seed, dense_budget=dense_budget,
                            ends=ends, stop=StopRule.VERDICT).resolved()
    kinds = parse_kinds(curvature_kind)
    bound = _bind(objective, at, DataOptions.of(call), kinds, hessian_base=True)
    obj, backend, notes, streamed = bound.obj, bound.backend, bound.notes, bound.stream
    choice = choose(obj.n, policy)
    if density and choice.path == SpectrumPath.DENSE:
        notes = notes + ("--density: the dense path has every eigenvalue; the histogram "
                         "shows them exactly",)
    options = dict(policy=policy, choice=choice, density=density, probes=probes, steps=steps,
                   sigma=sigma, trace_probes=trace_probes, bins=bins, notes=notes,
                   trace_estimator=estimator, estimate_trace_dense=trace)
    backends = ({kinds[0]: backend} if streamed is not None else
                {kind: _backend(obj, method, curvature=backend, kind=kind)[0] for kind in kinds})
    if len(kinds) > 1:
        from hesscli.analysis.spectrum_compare import compare_spectra
        from hesscli.documents.spectrum import comparison_document

        comparison = compare_spectra(obj, backends, **options)
        info = _meta(call, backend.parallel, path_choice=choice,
                     dense_budget=policy.budget.bytes,
                     eigensolver_used=comparison.reports[0].spectrum.solver,
                     curvature=",".join(kinds))
        return Result("spectrum", comparison, obj, backend, backend.parallel, info,
                      comparison_document)
    try:
        report = spectrum_report(obj, backends[kinds[0]], **options)
    except Exception as exc:
        _reraise(streamed, backend, exc)
        raise
    _reraise(streamed, backend)
    info = _meta(call, backend.parallel, path_choice=choice, dense_budget=policy.budget.bytes,
                 eigensolver_used=report.spectrum.solver, curvature=kinds[0])
    if streamed is None:
        return Result("spectrum", report, obj, backend, backend.parallel, info,
                      spectrum_document)
    part = _stream_report(streamed, backend, obj, seed)

    def streamed_document(r: Any, m: dict[str, Any]) -> dict[str, Any]:
        doc = spectrum_document(r, m)
        body = {k: v for k, v in doc.items() if k != "meta"}
        return {**body, "stream": part.document(), "meta": doc["meta"]}

    return Result("spectrum", report, obj, backend, backend.parallel, info, streamed_document,
                  {"stream": part})


@validated("gradcheck")
def gradcheck(
    objective: Any, at: Any = None, *, params: Mapping[str, Any] | Iterable[str] | None = None,
    method: str = "auto", dtype: str = "float64", seed: int = 0, fd_accuracy: str = "normal",
    top: int = 5, dense_budget: str | int | None = None,
) -> Result:
    """``hesscli gradcheck``: the exact derivatives against finite differences.

    ``res.passed`` is False when they disagree (the CLI then exits 1). The
    Hessian comparisons need the dense Hessian: they run within the dense
    budget every command uses (``dense_budget``).
    """
    call = dict(locals())
    from hesscli.analysis.gradcheck import gradcheck as run_gradcheck
    from hesscli.documents.gradcheck import gradcheck_document

    if method == MethodRequest.FD:
        raise InputError("--method fd: gradcheck checks exact (JAX) derivatives against finite "
                         "differences; use --method auto or exact")
    if top < 1:
        raise InputError(f"--top must be at least 1; got {top}")
    budget = budget_of(dense_budget)
    obj = load(objective, at, params=params, seed=seed, dtype=dtype, method=method)

    require(gradcheck_bytes(obj.n), f"gradcheck at n = {obj.n} (its finite-difference gradient "
            "holds 2n points of n entries)", "check a smaller instance of the objective, or "
            "use 'hesscli analyze --verify', which checks Hessian-vector products")
    if obj.n <= budget.limit:  # the Hessian comparison forms it: does it fit this machine?
        check_fits(obj.n, budget, "the dense Hessian comparison")
    result = run_gradcheck(obj, fd_accuracy, top=top, dense_limit=budget.limit)
    info = _meta(call, dense_budget=budget.bytes)

    def document(r: Any, m: dict[str, Any]) -> dict[str, Any]:
        return gradcheck_document(r, m, top)

    return Result("gradcheck", result, obj, None, Parallel(), info, document)


def _box(bound: str | tuple[float, float]) -> tuple[float, float]:
    if not isinstance(bound, str):
        lo, hi = bound
        return float(lo), float(hi)
    parts = bound.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"--box {bound!r}: expected LO,HI, e.g. --box -3,3") from None


@validated("convexity")
def convexity(
    objective: Any, *, boxes: Iterable[str | tuple[float, float]] = (), around: Any = None,
    radius: float = 1.0, samples: int = 1000, hessian_points: int = 20,
    rtol: float | None = None, atol: float = 0.0,
    params: Mapping[str, Any] | Iterable[str] | None = None, method: str = "auto",
    dtype: str = "float64", seed: int = 0, curvature: Curvature | None = None,
    dense_budget: str | int | None = None,
) -> Result:
    """``hesscli convexity``: Jensen's midpoint test and the smallest Hessian eigenvalue
    on seeded samples of a region, with a witness when convexity fails.

    The region is the box ``boxes`` (one LO,HI for all coordinates or one per
    coordinate), or the ball of ``radius`` around ``around`` (default: the
    objective's own point).
    """
    call = dict(locals())
    from hesscli.analysis.convexity import ball, box
    from hesscli.analysis.convexity import convexity as run_convexity
    from hesscli.curvature.choose import curvature_for
    from hesscli.documents.convexity import convexity_document

    boxes = list(boxes)
    if boxes and around is not None:
        raise InputError("give either --box or --around, not both")
    if samples < 0 or hessian_points < 0:
        raise InputError("--samples and --hessian-points must be ≥ 0")
    nonnegative("--rtol", rtol)
    nonnegative("--atol", atol)
    from hesscli.spectra.policy import SpectrumPolicy

    # the eigenvalue test's policy, with the dense budget parsed once (exit 2 before any work)
    policy = SpectrumPolicy(k=1, seed=seed, dense_budget=dense_budget).resolved()
    budget = policy.budget
    bounds = [_box(b) for b in boxes]
    try:
        obj = load(objective, around, params=params, seed=seed, dtype=dtype, method=method)
    except InputError as exc:
        if not bounds or "defines no default point" not in str(exc):
            raise
        if len(bounds) == 1:
            raise InputError(
                f"{objective}: --box given once needs the number of parameters, and the file "
                "defines no default point (x0 or init); give --box once per coordinate or "
                "use --around POINT"
            ) from None
        centers = ",".join(repr(0.5 * (lo + hi)) for lo, hi in bounds)
        obj = load(objective, centers, params=params, seed=seed, dtype=dtype, method=method)

    require(convexity_bytes(obj.n, samples, hessian_points, budget),
            f"convexity at n = {obj.n} with --samples {samples} --hessian-points "
            f"{hessian_points}", "ask for fewer --samples or --hessian-points (0 skips the "
            "eigenvalue test)")
    region = box(bounds, obj.n) if bounds else ball(obj.x, radius)
    notes: tuple[str, ...] = () if bounds else obj.notes  # how the ball's center was read
    if not bounds and around is None:
        notes += (f"region: ball of radius {radius:g} around the default point "
                  "(give --box or --around to choose)",)
    backend_notes: tuple[str, ...] = ()
    backend = curvature
    if backend is None:
        backend, backend_notes = curvature_for(obj, method)
    result = run_convexity(obj, backend, region, pairs=samples, hessian_points=hessian_points,
                           seed=seed, rtol=rtol, atol=atol, notes=notes + backend_notes,
                           policy=policy)
    info = _meta(call, dense_budget=budget.bytes)
    with_points = obj.n <= 1000

    def document(c: Any, m: dict[str, Any]) -> dict[str, Any]:
        return convexity_document(c, m, with_points=with_points)

    return Result("convexity", result, obj, backend, backend.parallel, info, document)


PLANE_CHOICES = words(PlaneDirection)


def _plane(value: str | tuple[str, str] | None) -> tuple[str, str] | None:
    if value is None:
        return None
    parts = tuple(p.strip() for p in (value.split(",") if isinstance(value, str) else value))
    if len(parts) != 2 or any(p not in PLANE_CHOICES for p in parts) or parts[0] == parts[1]:
        raise InputError(
            f"--plane {value!r}: expected two different directions of grad, max, min "
            "separated by a comma, e.g. --plane grad,min"
        )
    return parts[0], parts[1]


@validated("landscape")
def landscape(
    objective: Any, at: Any = None, *, params: Mapping[str, Any] | Iterable[str] | None = None,
    method: str = "auto", dtype: str = "float64", seed: int = 0, lr: float = 0.01,
    radius: float | None = None, plane: str | None = None, points: int = 101,
    grid: int = 41, curvature: Curvature | None = None,
    dense_budget: str | int | None = None, curvature_kind: str = "hessian",
) -> Result:
    """``hesscli landscape``: slices of f along the gradient and the extreme eigenvectors,
    and on a plane of two of them, with the quadratic model and the gradient step.

    ``curvature_kind`` other than hessian: the eigenvectors and the quadratic model
    are that matrix's (the Gauss–Newton model of f)."""
    call = dict(locals())
    from hesscli.analysis.landscape import landscape as run_landscape
    from hesscli.curvature.operators import single_kind
    from hesscli.documents.landscape import landscape_document
    from hesscli.spectra.policy import SpectrumPolicy, choose

    positive("--lr", lr)
    if radius is not None:
        positive("--radius", radius)
    if points < 3 or grid < 3:
        raise InputError("--points and --grid must be at least 3")
    chosen = _plane(plane)
    policy = SpectrumPolicy(k=1, seed=seed, dense_budget=dense_budget).resolved()

    require(landscape_bytes(1, points, grid), f"landscape --points {points} --grid {grid}",
            "ask for fewer points (the default --points 101 --grid 41 resolve a slice well)")
    obj = load(objective, at, params=params, seed=seed, dtype=dtype, method=method)
    require(landscape_bytes(obj.n, points, grid), f"landscape at n = {obj.n}",
            "ask for fewer points")
    kind = single_kind(curvature_kind)
    backend, notes = _backend(obj, method, curvature=curvature, kind=kind)
    choice = choose(obj.n, policy)  # the path, decided once for the whole command
    # the slices need only λmax, λmin and their eigenvectors: k = 1 when matrix-free
    result = run_landscape(obj, backend, lr=lr, radius=radius, plane=chosen, points=points,
                           grid=grid, policy=policy, choice=choice, notes=notes)

    info = _meta(call, path_choice=choice, dense_budget=policy.budget.bytes,
                 curvature=kind)
    with_direction = obj.n <= 1000

    def document(ls: Any, m: dict[str, Any]) -> dict[str, Any]:
        return landscape_document(ls, m, with_direction=with_direction)

    return Result("landscape", result, obj, backend, backend.parallel, info, document)


@validated("train")
def train(
    objective: Any, at: Any = None, *, params: Mapping[str, Any] | Iterable[str] | None = None,
    method: str = "auto", dtype: str = "float64", seed: int = 0, optimizer: str = "sgd",
    lr: float = 0.01, steps: int | None = None, epochs: int | None = None,
    batch_size: int | None = None, options: Mapping[str, Any] | None = None,
    momentum: float | None = None, nesterov: bool | None = None, b1: float | None = None,
    b2: float | None = None, eps: float | None = None, weight_decay: float | None = None,
    decay: float | None = None, opt_extra: Iterable[str] = (), noisy: bool = False,
    noise_scale: float = 1.0, noise: float | None = None, noise_steps: int | None = None,
    monitor_every: int | None = None, curvature_on: bool = True,
    curvature_kind: str = "hessian", monitor_blocks: str | None = None,
    gtol: float | None = None, tol: float | None = None, compare: str | None = None,
    resume: Any = None, devices: int | str = 1, curvature: Curvature | None = None,
    dense_budget: str | int | None = None, observers: Iterable[Any] = (),
) -> Result:
    """``hesscli train``: an optax optimizer from the point, curvature watched.

    The one training pipeline: the command passes its options here and adds only
    its outputs (the run log, the progress bar, the plot, exit codes) as
    ``observers`` (:class:`hesscli.training.observers.Observer`: told the plan,
    every logged record with its events and state, each run's end, Ctrl-C).

    ``steps`` (default 1000) or ``epochs`` (passes over the data, with
    ``batch_size``: minibatch SGD on the file's ``data`` and ``loss``). The
    optimizer's options are ``options`` (``{"momentum": 0.9}``), the flags
    ``momentum`` ... ``decay`` and ``opt_extra`` (``["b1=0.8"]``, as ``--opt``).
    ``noisy`` adds Ge et al.'s sphere noise of radius ``noise_scale`` (``noise=r``
    is short for both), in the first ``noise_steps`` steps when given.
    ``curvature_kind`` picks the monitored matrix (hessian, ggn, fisher,
    empirical-fisher); the final verdict is the Hessian's. ``monitor_blocks``
    (leaf, a depth or prefixes, as ``analyze --blocks``) logs each diagonal
    block's λmax. ``compare`` (``"plain,noisy"``, ``"sgd,adam"``) runs variants
    from the same start and seed: the output is then a
    :class:`~hesscli.training.report.TrainComparison`, else a
    :class:`~hesscli.training.report.RunSummary`. ``resume`` (a run log's path, or
    a :class:`~hesscli.training.runlog.ResumePoint`) continues a logged run from its
    last state, with the same options.
    """
    call = dict(locals())
    from hesscli.documents.train import compare_document, train_document
    from hesscli.training.loop import TrainConfig, minibatch_for
    from hesscli.training.observers import run_plan
    from hesscli.training.plan import Plan, check_resume, configs_for, optimizer_options
    from hesscli.training.report import TrainComparison

    if noise is not None:  # noise=r: noisy with radius r
        noisy, noise_scale = True, noise
    positive("--lr", lr)
    positive("--noise-scale", noise_scale)
    for key, value in (("steps", steps), ("epochs", epochs), ("batch_size", batch_size),
                       ("monitor_every", monitor_every)):
        if value is not None and value < 1:
            raise InputError(f"--{key.replace('_', '-')} must be at least 1; got {value}")
    if noise_steps is not None and noise_steps < 0:
        raise InputError(f"--noise-steps must be 0 or more; got {noise_steps}")
    if epochs is not None and steps is not None:
        raise InputError("give --steps or --epochs, not both")
    if compare and resume is not None:
        raise InputError("--compare runs several variants; --resume and --save-point take one "
                         "run (drop --compare)")
    if method == MethodRequest.FD:
        raise InputError("train needs JAX derivatives of the objective, and --method fd asks "
                         "for finite differences; use --method auto or exact")
    from dataclasses import replace

    from hesscli.training.monitor import MONITOR_POLICY

    # the run's spectrum policy: the monitor's, with the dense budget parsed once (a
    # malformed size is exit 2 before any work); the path is chosen from it once per run
    policy = replace(MONITOR_POLICY, dense_budget=dense_budget).resolved()
    budget = policy.budget
    from hesscli.curvature.operators import single_kind

    kind = single_kind(curvature_kind or "hessian")
    if monitor_blocks is True or monitor_blocks is False:  # the bare flag: one block per leaf
        monitor_blocks = "leaf" if monitor_blocks else None
    logged = None if resume is None else "<log>" if hasattr(resume, "state_line") else str(
        resume)  # the path as meta records it
    if resume is not None and not hasattr(resume, "state_line"):
        import pathlib

        from hesscli.training.runlog import read_log

        resume = read_log(pathlib.Path(resume))
    obj = load(objective, at, params=params, seed=seed, dtype=dtype, method=method)
    if not obj.traceable:  # exit 3 when JAX traces but cannot differentiate it, else 2
        from hesscli.objective.bind import no_derivatives_error

        raise no_derivatives_error(obj)(
            f"train needs JAX derivatives of the objective, and {obj.why_untraceable}; write "
            "it with jax.numpy (lax.scan for loops, no host callbacks)")
    # the final verdict stays the Hessian's: the operator only when curvature is monitored
    backend, _ = _backend(obj, MethodRequest.EXACT, devices=devices, curvature=curvature,
                          kind=kind if curvature_on else "hessian")
    minibatch = minibatch_for(obj, batch_size) if batch_size else None
    if epochs is not None:
        if minibatch is None:
            raise InputError("--epochs needs --batch-size (an epoch is a pass over the data)")
        steps = epochs * minibatch.per_epoch
    if resume is not None and steps is None:
        steps = int(resume.header.get("steps", 1000))
    steps = steps or 1000
    every = monitor_every
    if every is None and resume is not None:
        every = int(resume.header["config"].get("monitor_every", 0)) or None
    every = every or max(1, steps // 100)
    require_train(steps, every, len(compare.split(",")) if compare else 1)
    flags = {"momentum": momentum, "nesterov": nesterov, "b1": b1, "b2": b2, "eps": eps,
             "weight_decay": weight_decay, "decay": decay}
    chosen = optimizer_options(flags, opt_extra, options)
    base = TrainConfig(optimizer=optimizer, options={}, lr=lr, noise=None,
                       noise_steps=noise_steps, seed=seed, batch_size=batch_size,
                       monitor_every=every, steps=steps)
    configs = configs_for(base, chosen, noisy=noisy, noise_scale=noise_scale, compare=compare)
    start = {"objective": objective if isinstance(objective, str) else obj.label,
             "at": _point_text(at), "params": list(_assignments(params)), "dtype": dtype}
    if resume is not None:
        check_resume(resume, start, configs[0][1])
    blocks = None
    if monitor_blocks is not None and curvature_on:
        from hesscli.spectra.blocks import group_blocks

        try:
            _, blocks = group_blocks(obj.layout, monitor_blocks)
        except ValueError as exc:
            raise InputError(str(exc).replace("--blocks", "--monitor-blocks")) from None
    plan = Plan(obj.label, obj.n, tuple(configs), start, resume, bound=obj)
    summaries = run_plan(plan, obj, backend, minibatch=minibatch, gtol=gtol, tol=tol,
                         curvature_on=curvature_on, policy=policy, blocks=blocks,
                         observers=observers)
    del call["observers"], call["noise"]
    call.update(noisy=noisy, noise_scale=noise_scale)
    info = _meta(call, backend.parallel, steps=steps, monitor_every=every,
                 dense_budget=budget.bytes, curvature=kind, curvature_kind=kind,
                 resume=logged, opt_extra=list(opt_extra), options=dict(options or {}))
    if compare:
        def document(c: Any, m: dict[str, Any]) -> dict[str, Any]:
            return compare_document(list(c.runs), m)

        return Result("train", TrainComparison(tuple(summaries)), obj, backend,
                      backend.parallel, info, document)
    return Result("train", summaries[0], obj, backend, backend.parallel, info, train_document)


@validated("check")
def check(spec: str | Mapping[str, Any], *, dense_budget: str | int | None = None) -> Result:
    """``hesscli check``: run the checks of a ``checks.yaml`` and report each expectation.

    ``spec`` is the file's path, or the same content as a mapping (``{"checks":
    [...]}``). ``res.passed`` is False when an expectation fails (the CLI then
    exits 1); an invalid spec raises :class:`~hesscli.errors.InputError` before
    anything runs. ``dense_budget`` is the dense path's budget for every check
    (as ``--dense-budget``).
    """
    from hesscli.checks.report import report_document
    from hesscli.checks.run import Commands, run_spec
    from hesscli.checks.spec import parse_spec, read_spec

    budget = budget_of(dense_budget)
    if isinstance(spec, Mapping):
        parsed = parse_spec(dict(spec), "<python>")
        label = "<python>"
    else:
        parsed, label = read_spec(spec), str(spec)
    report = run_spec(parsed, Commands(load, analyze, convexity, gradcheck),
                      dense_budget=budget.bytes)
    seeds = sorted({c.seed for c in parsed.checks})
    dtypes = sorted({c.dtype for c in parsed.checks})
    info = meta(seeds[0] if len(seeds) == 1 else None,
                dtypes[0] if len(dtypes) == 1 else ",".join(dtypes), spec=label,
                dense_budget=budget.bytes)
    return Result("check", report, None, None, Parallel(), info, report_document)
