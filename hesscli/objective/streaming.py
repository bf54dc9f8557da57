"""Data that does not fit one batch: the objective as a stream of batches.

An objective file declares its data as batches in one of two ways::

    data = (X, y)                     # arrays with a leading sample axis, and
    def loss(params, batch): ...      # --batch-size B (the last batch may be ragged)

    def batches():                    # or a generator function yielding batches
        for i in range(0, len(X), 256):   # (tuples of arrays, leading axis =
            yield X[i:i + 256], y[i:i + 256]  # samples) in a fixed order

(or ``batches = [...]``, a list of batches; a generator object is refused: it
would be used up after one pass), with ``loss(params, batch)`` (the mean loss
over a batch) or a model split
(``model``, ``output_loss``; a batch is then ``(inputs, targets)``). The
objective "over the data set" is the sample-weighted mean of the per-batch
losses, ``f = Σ_b (n_b/N)·loss(params, batch_b)``, and so are its gradient,
Hessian, GGN and Fisher; :mod:`hesscli.curvature.streamed` computes them one
batch at a time.

``--batches N`` uses the first N batches; an N larger than the data has uses
all of them (said in a note, as ``head -n`` would). The generator is called
again for every pass over the data (each value, gradient or HVP), so it must
yield the same batches in the same order every time; a pass that yields a
different sequence of batch sizes is an :class:`ObjectiveError` (exit 3), and
so is a batch whose structure, trailing shapes or dtypes differ from the
first one's. Bad options (B < 1, N < 1, ``--batch-size`` with ``batches()``,
no loss) are :class:`InputError` (exit 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.errors import HesscliError, InputError, ObjectiveError, user_code
from hesscli.jaxconf import eps, jax_module
from hesscli.objective.files import ObjectiveFile
from hesscli.vocab import MethodRequest, StreamSource

_END = object()  # next(iterator, _END): the user's iterator is exhausted


def declares_batches(file: ObjectiveFile) -> bool:
    """Whether the file defines ``batches``: a generator function (or a list of batches)."""
    return getattr(file.module, "batches", None) is not None


def _fetch_of(file: ObjectiveFile) -> Callable[[], Iterator[Any]]:
    """``batches`` as a function returning a fresh iterator: a generator function as it
    is, a list or tuple of batches iterated again on every pass. A generator object (or
    any other one-shot iterator) is refused: it would be used up after the first pass."""
    batches = file.module.batches
    if callable(batches):
        return batches  # type: ignore[no-any-return]
    if isinstance(batches, (list, tuple)):
        return lambda: iter(batches)
    kind = type(batches).__name__
    raise InputError(
        f"{file.path.name}: batches is a {kind}; make it a generator function "
        "(def batches(): ... yield ...), which hesscli calls again for every pass over the "
        "data, or a list of batches" + (" (a generator object is used up after one pass)"
                                        if hasattr(batches, "__next__") else ""))


def streaming_requested(file: ObjectiveFile, batch_size: int | None,
                        batches: int | str | None) -> bool:
    """Streaming is in force with ``--batch-size``, ``--batches`` or a ``batches()``."""
    return batch_size is not None or batches is not None or declares_batches(file)


def parse_batches(batches: int | str | None) -> int | None:
    """``--batches N|all`` -> N, or None for all; anything else is an :class:`InputError`."""
    if batches is None or (isinstance(batches, str) and batches.strip().lower() == "all"):
        return None
    try:
        count = int(batches)
        if isinstance(batches, float) and count != batches:
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(f"--batches must be a positive integer or 'all'; got {batches!r}") \
            from None
    if count < 1:
        raise InputError(f"--batches must be at least 1 (or 'all'); got {count}")
    return count


@dataclass(frozen=True)
class Layout:
    """What every batch must look like: the first batch's tree and trailing shapes."""

    treedef: Any
    trailing: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]


def sample_arrays(batch: Any, where: str,
                  error: type[HesscliError]) -> tuple[list[np.ndarray], Any, int]:
    """A batch's leaves as NumPy arrays, its treedef and its number of samples (the shared
    leading axis); ``error`` (naming ``where``) when a leaf is not a numeric array with
    that axis, the leaves disagree on it, or there are no samples."""
    jax = jax_module()
    leaves, treedef = jax.tree_util.tree_flatten(batch)
    if not leaves:
        raise error(f"{where} has no arrays")
    arrays = []
    for leaf in leaves:
        arr = np.asarray(leaf)
        if arr.dtype.kind not in "biuf" or arr.ndim == 0:
            raise error(f"{where}: every leaf must be a numeric array with a leading sample "
                        f"axis; got {arr.dtype} with shape {arr.shape}")
        arrays.append(arr)
    sizes = sorted({a.shape[0] for a in arrays})
    if len(sizes) != 1:
        raise error(f"{where}: its arrays must share their leading (sample) axis; got "
                    f"sizes {', '.join(map(str, sizes))}")
    if sizes[0] == 0:
        raise error(f"{where} is empty (0 samples)")
    return arrays, treedef, sizes[0]


@dataclass
class BatchStream:
    """The batches of one objective file, fetched one at a time (module docstring).

    ``sizes`` are the sample counts of the batches used (the first pass fixes
    them), ``available`` how many the source has (None: not counted, the
    generator was stopped at ``--batches``), ``how`` a phrase for the notes.
    """

    file: ObjectiveFile
    loss: Callable[[Any, Any], Any]
    fetch: Callable[[], Iterator[Any]]
    limit: int | None
    dtype: str
    how: str
    batch_size: int | None
    sizes: tuple[int, ...] = ()
    available: int | None = None
    layout: Layout | None = None
    passes: int = 0

    @property
    def source(self) -> StreamSource:
        """The file's ``batches()`` or its ``data`` cut into batches (``stream.source``)."""
        return StreamSource.BATCHES if self.how == StreamSource.BATCHES else StreamSource.DATA

    @property
    def count(self) -> int:
        return len(self.sizes)

    @property
    def samples(self) -> int:
        return int(sum(self.sizes))

    @property
    def weights(self) -> np.ndarray:
        """n_b / N per batch (float64): the weights of the per-batch means."""
        sizes = np.asarray(self.sizes, dtype=np.float64)
        return sizes / sizes.sum()

    def _cast(self, arrays: list[Any]) -> list[Any]:
        dt = np.dtype(self.dtype)
        return [a.astype(dt) if a.dtype.kind == "f" else a for a in arrays]

    def _check(self, index: int, arrays: list[Any], treedef: Any) -> None:
        name = self.file.path.name
        where = f"{name}: {self.how}: batch {index}"
        layout = self.layout
        assert layout is not None
        if treedef != layout.treedef:
            raise ObjectiveError(f"{where} has structure {treedef}; batch 0 had "
                                 f"{layout.treedef} (every batch must look alike)")
        for i, a in enumerate(arrays):
            if a.shape[1:] != layout.trailing[i] or a.dtype.name != layout.dtypes[i]:
                raise ObjectiveError(
                    f"{where}: leaf {i} has shape {a.shape} and dtype {a.dtype}; batch 0's "
                    f"had shape (·, {', '.join(map(str, layout.trailing[i]))}) and dtype "
                    f"{layout.dtypes[i]} (every batch must differ only in its leading axis)")

    def __iter__(self) -> Iterator[Any]:
        """One pass: the batches (float leaves in the run's dtype), checked against batch 0."""
        jax = jax_module()
        first = not self.sizes
        error: type[HesscliError] = (ObjectiveError if self.how == StreamSource.BATCHES
                                     else InputError)
        sizes: list[int] = []
        name = self.file.path.name
        with user_code(f"{name}: batches()"):
            iterator = iter(self.fetch())
        index = 0
        while self.limit is None or index < self.limit:
            with user_code(f"{name}: batches()", f" at batch {index}"):
                batch = next(iterator, _END)
            if batch is _END:
                break
            arrays, treedef, size = sample_arrays(batch, f"{name}: {self.how}: batch {index}",
                                                  error)
            if self.layout is None:
                self.layout = Layout(treedef, tuple(a.shape[1:] for a in arrays),
                                     tuple(a.dtype.name for a in arrays))
            self._check(index, arrays, treedef)
            if not first and (index >= len(self.sizes) or self.sizes[index] != size):
                raise ObjectiveError(
                    f"{name}: {self.how} yielded a different sequence on pass {self.passes + 1} "
                    f"(batch {index} has {size} samples; the first pass had "
                    f"{self.sizes[index] if index < len(self.sizes) else 'no such batch'}): "
                    "batches() must yield the same batches in the same order every time")
            sizes.append(size)
            yield jax.tree_util.tree_unflatten(treedef, self._cast(arrays))
            index += 1
        if first:
            if not sizes:
                raise error(f"{name}: {self.how} yielded no batches")
            self.sizes = tuple(sizes)
        elif len(sizes) != len(self.sizes):
            raise ObjectiveError(
                f"{name}: {self.how} yielded {len(sizes)} batches on pass {self.passes + 1}, "
                f"{len(self.sizes)} on the first: batches() must yield the same batches "
                "every time")
        self.passes += 1

    def first(self) -> Any:
        """Batch 0 (without counting a pass)."""
        for batch in self.fetch():
            arrays, treedef, _ = sample_arrays(batch, f"{self.file.path.name}: {self.how}: batch 0",
                                         ObjectiveError if self.how == StreamSource.BATCHES
                                         else InputError)
            return jax_module().tree_util.tree_unflatten(treedef, self._cast(arrays))
        raise InputError(f"{self.file.path.name}: {self.how} yielded no batches")


def _array_batches(data: Any, size: int) -> Callable[[], Iterator[Any]]:
    jax = jax_module()
    leaves, treedef = jax.tree_util.tree_flatten(data)
    arrays = [np.asarray(a) for a in leaves]
    total = arrays[0].shape[0] if arrays and arrays[0].ndim else 0

    def fetch() -> Iterator[Any]:
        for start in range(0, total, size):
            yield jax.tree_util.tree_unflatten(treedef, [a[start:start + size] for a in arrays])

    return fetch


def stream_of(file: ObjectiveFile, *, batch_size: int | None, batches: int | str | None,
              dtype: str) -> BatchStream:
    """The file's batches as ``--batch-size``/``--batches`` ask (module docstring)."""
    limit = parse_batches(batches)
    name = file.path.name
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) != batch_size
                                   or batch_size < 1):
        raise InputError(f"--batch-size must be a positive integer; got {batch_size!r}")
    loss = file.loss
    if loss is None:
        raise InputError(
            f"streaming over batches needs loss(params, batch) in {name} (the mean loss over "
            "a batch), or a model split (model, output_loss); see the objective-file protocol")
    if declares_batches(file):
        if batch_size is not None:
            raise InputError(f"--batch-size {batch_size}: {name} defines batches(), which "
                             "yields its own batches; drop --batch-size (or --batches N to "
                             "use the first N)")
        return BatchStream(file, loss, _fetch_of(file), limit, dtype, StreamSource.BATCHES, None)
    data = file.data
    if data is None:
        raise InputError(f"--batch-size/--batches: {name} defines neither batches() nor "
                         "data (arrays with a leading sample axis)")
    if batch_size is None:
        raise InputError(f"--batches: {name} has its data as arrays; give --batch-size B to "
                         "cut them into batches")
    arrays, _, total = sample_arrays(data, f"{name}: data", InputError)
    return BatchStream(file, loss, _array_batches(data, int(batch_size)), limit, dtype,
                       f"data in batches of {int(batch_size)}", int(batch_size),
                       available=math.ceil(total / int(batch_size)))


def check_mean(stream: BatchStream, params: Any, batch: Any) -> None:
    """``loss`` must be a *mean* over its batch (the per-batch weights assume it).

    Checked on batch 0 (at least two samples): ``loss`` of the batch against
    the sample-weighted mean of ``loss`` on its two halves, to within √ε.
    A loss that sums (or mixes samples) is an :class:`InputError` with the numbers.
    """
    jax = jax_module()
    leaves, treedef = jax.tree_util.tree_flatten(batch)
    size = int(np.shape(leaves[0])[0])
    if size < 2:
        return
    half = size // 2
    parts = [jax.tree_util.tree_unflatten(treedef, [a[s] for a in leaves])
             for s in (slice(0, half), slice(half, size))]
    name = stream.file.path.name
    with user_code(f"{name}: loss(params, batch)", " on batch 0"):
        whole = float(stream.loss(params, batch))
        halves = [float(stream.loss(params, p)) for p in parts]
    mean = (half * halves[0] + (size - half) * halves[1]) / size
    tol = math.sqrt(eps(stream.dtype)) * max(1.0, abs(whole))
    if abs(mean - whole) <= tol:
        return
    total = halves[0] + halves[1]
    kind = " (it is their sum: loss sums over the batch)" if abs(total - whole) <= tol else ""
    raise InputError(
        f"{name}: streaming weights each batch by its size, so loss(params, batch) must be the "
        f"mean over the batch; on batch 0 ({size} samples) it is {whole:.10g}, but the mean "
        f"over its two halves is {mean:.10g}{kind}. Make loss a mean over the batch")


def bind_streamed(file: ObjectiveFile, at: Any, *, seed: int, dtype: str, method: str,
                  batch_size: int | None, batches: int | str | None) -> tuple[Any, BatchStream]:
    """The objective bound to its point, checked on batch 0, and the batch stream.

    The point and the function are checked as :func:`~hesscli.objective.bind.bind`
    checks any objective, with ``loss(params, batch 0)`` standing for the
    function (so nothing touches more than one batch); the streamed backend
    (:mod:`hesscli.curvature.streamed`) then replaces it by the data-set mean.
    Streaming needs JAX derivatives of the loss (:class:`InputError` otherwise).
    """
    import dataclasses

    from hesscli.objective.bind import bind

    if method == MethodRequest.FD:
        raise InputError("--method fd: streaming over batches needs exact JAX derivatives of "
                         "the loss; use --method auto or exact")
    stream = stream_of(file, batch_size=batch_size, batches=batches, dtype=dtype)
    batch0 = stream.first()
    loss = stream.loss
    on_first = dataclasses.replace(file, fn=lambda params: loss(params, batch0),
                                   function_name="loss")
    obj = bind(on_first, at, seed=seed, dtype=dtype, method=method)
    if not obj.traceable:
        raise InputError(f"streaming over batches needs a JAX-differentiable loss; "
                         f"{file.path.name}: {obj.why_untraceable}")
    check_mean(stream, obj.unravel(obj.x), batch0)
    return obj, stream


def check_objective(stream: BatchStream, params: Any, streamed: float) -> str | None:
    """With ``--batch-size`` over all of ``data``, the file's own ``objective`` (when it
    defines one) must be the streamed mean of ``loss``: else streaming would analyze
    another function (a regularizer in ``objective`` but not in ``loss``, say), and
    that is an :class:`InputError` with both numbers, as ``--chunk-size`` refuses it.
    Returns a note when checked, None when there is nothing to check (``batches()``,
    ``--batches N`` short of all, no ``objective``)."""
    module = stream.file.module
    objective = getattr(module, "objective", None)
    if (stream.how == StreamSource.BATCHES or not callable(objective)
            or (stream.available is not None and stream.count < stream.available)):
        return None
    name = stream.file.path.name
    with user_code(f"{name}: objective"):
        want = float(objective(params))
    tol = math.sqrt(eps(stream.dtype)) * max(1.0, abs(want))
    if abs(want - streamed) <= tol:
        return (f"objective(params) = {want:.10g} over all of data agrees with the streamed "
                f"mean of loss ({streamed:.10g})")
    raise InputError(
        f"{name}: streaming analyzes the mean of loss(params, batch) over the batches of "
        f"data, {streamed:.10g} here, but objective(params) = {want:.10g}: they are "
        "different functions (a term in objective that loss lacks?). Make loss the "
        "per-batch objective, or drop --batch-size")
