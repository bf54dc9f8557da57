"""Loading objectives: files, ``file.py:name``, built-in problems, default points.

The result is an :class:`ObjectiveFile`: the user's function, the module it came
from, its default point (if any), optional ``data``/``loss`` for stochastic
training, and whether JAX can trace it. Turning it into a flat-vector function
at a concrete point is :mod:`hesscli.objective.bind`'s job.

A file may also split its objective into a model and a loss on the model's
outputs (what Gauss–Newton and Fisher curvature need)::

    data = (inputs, targets)
    def model(params, inputs): ...          # outputs for a batch
    def output_loss(outputs, targets): ...  # mean loss over the batch

With all three, ``objective`` may be omitted: it is
``output_loss(model(params, inputs), targets)`` (:class:`ModelSplit`), and
``loss(params, batch)`` for minibatch training follows the same way.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from hesscli.errors import (
    HesscliError,
    InputError,
    ObjectiveError,
    closest,
    describe_exception,
    user_code,
)
from hesscli.objective.params import overriding
from hesscli.objective.problems_index import problem_names, problem_path

_counter = itertools.count()


@dataclass(frozen=True)
class ModelSplit:
    """``objective(params) = output_loss(model(params, inputs), targets)``.

    ``model(params, inputs)`` maps a batch of inputs (leading axis = samples)
    to outputs; ``output_loss(outputs, targets)`` is the *mean* loss over the
    batch, so that one sample's loss is ``output_loss`` on a batch of one.
    """

    model: Callable[[Any, Any], Any]
    output_loss: Callable[[Any, Any], Any]
    inputs: Any
    targets: Any

    @property
    def samples(self) -> int:
        """N, the leading axis of the inputs."""
        import jax

        leaves = jax.tree_util.tree_leaves(self.inputs)
        return int(leaves[0].shape[0]) if leaves and leaves[0].ndim else 1

    def objective(self, params: Any) -> Any:
        """The mean loss over the whole data set."""
        if self.inputs is None:  # the data come from batches() only
            raise InputError(
                "this file's data come from batches() only (no data = (inputs, targets)); "
                "'hesscli analyze' and 'spectrum' stream them, other commands need data")
        return self.output_loss(self.model(params, self.inputs), self.targets)

    def loss(self, params: Any, batch: Any) -> Any:
        """The mean loss over a minibatch ``(inputs, targets)``."""
        inputs, targets = batch
        return self.output_loss(self.model(params, inputs), targets)


def model_split(module: ModuleType) -> ModelSplit | None:
    """The file's model split when it defines ``model``, ``output_loss`` and a pair
    ``data = (inputs, targets)``; None when it defines no ``output_loss``.

    ``output_loss`` is what declares a split: ``model`` alone is an ordinary name
    in files that keep their network in it (a Flax module, an Equinox model) and
    define ``objective`` themselves. An ``output_loss`` without a callable
    ``model``, or a ``data`` that is not a pair, is an :class:`ObjectiveError`
    naming what is missing.
    """
    model = getattr(module, "model", None)
    output_loss = getattr(module, "output_loss", None)
    if output_loss is None:
        return None
    name = Path(getattr(module, "__file__", "objective.py") or "objective.py").name
    missing = [k for k, v in (("model", model), ("output_loss", output_loss)) if not callable(v)]
    if missing:
        raise ObjectiveError(
            f"{name}: a model split needs both model(params, inputs) and "
            f"output_loss(outputs, targets); {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not a function"
        )
    data = getattr(module, "data", None)
    if data is None and getattr(module, "batches", None) is not None:
        return ModelSplit(model, output_loss, None, None)  # batches() yields (inputs, targets)
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        got = "no data" if data is None else f"data of type {type(data).__name__}"
        if isinstance(data, (tuple, list)):
            got = f"data with {len(data)} entries"
        raise ObjectiveError(
            f"{name}: model and output_loss need data = (inputs, targets) in the same file; "
            f"found {got}"
        )
    return ModelSplit(model, output_loss, data[0], data[1])


@dataclass(frozen=True)
class ObjectiveFile:
    """A loaded objective file (not yet bound to a point)."""

    label: str  # as the user gave it
    path: Path
    function_name: str
    fn: Callable[[Any], Any]
    module: ModuleType
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> Any | None:
        return getattr(self.module, "data", None)

    @property
    def loss(self) -> Callable[..., Any] | None:
        loss = getattr(self.module, "loss", None)
        if callable(loss):
            return loss
        return self.split.loss if self.split is not None else None

    @cached_property
    def split(self) -> ModelSplit | None:
        """The model split (``model``, ``output_loss``, ``data``), None without one."""
        return model_split(self.module)

    @property
    def has_default_point(self) -> bool:
        return hasattr(self.module, "x0") or callable(getattr(self.module, "init", None))

    def default_point(self, seed: int) -> Any:
        """``x0``, or ``init(key)`` with ``key = jax.random.PRNGKey(seed)``; None if neither."""
        if hasattr(self.module, "x0"):
            return self.module.x0
        init = getattr(self.module, "init", None)
        if callable(init):
            from hesscli.jaxconf import jax_module

            jax = jax_module()
            with user_code(f"{self.path.name}: init(key)"):
                return init(jax.random.PRNGKey(seed))
        return None


def from_callable(fn: Callable[[Any], Any], point: Any = None, *,
                  name: str | None = None) -> ObjectiveFile:
    """An :class:`ObjectiveFile` for a Python function (the API's plain-callable objective).

    ``point`` (a pytree of arrays), when given, becomes its default point
    (``x0``), exactly as an objective file's ``x0`` would.
    """
    if not callable(fn):
        raise InputError(f"the objective must be callable; got {type(fn).__name__}")
    label = name or getattr(fn, "__name__", None) or type(fn).__name__
    module = ModuleType(f"hesscli_callable_{next(_counter)}")
    module.objective = fn  # type: ignore[attr-defined]
    if point is not None:
        module.x0 = point  # type: ignore[attr-defined]
    return ObjectiveFile(label, Path("<python>"), label, fn, module)


def missing_hint(exc: BaseException) -> str:
    """For a missing module: which Python the objective ran in and how to install into it.

    An objective file is imported by the interpreter running hesscli (its
    virtual environment, pipx's, ...), not necessarily the ``python`` of the
    shell, so the package must be installed there.
    """
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return ""
    from hesscli.objective.checkpoints import install_hint

    return (f"; objective files run in hesscli's Python ({sys.executable}), which lacks "
            f"{exc.name.split('.')[0]!r}: install it there with: {install_hint(exc.name)}")


def split_spec(spec: str) -> tuple[str, str | None]:
    """``path.py:name`` -> (``path.py``, ``name``); a bare path or name -> (spec, None)."""
    if ":" in spec:
        head, _, tail = spec.rpartition(":")
        if head.endswith(".py") and tail.isidentifier():
            return head, tail
    return spec, None


def resolve_path(spec: str) -> tuple[Path, str | None]:
    """Find the file behind OBJECTIVE: a ``.py`` path or a built-in problem name."""
    target, name = split_spec(spec)
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.exists():
            raise InputError(f"objective file {target!r} does not exist")
        if not path.is_file():
            raise InputError(f"objective {target!r} is not a file")
        return path, name
    builtin = problem_path(target)
    if builtin is None:
        names = problem_names()
        raise InputError(
            f"unknown objective {target!r}: not a .py file and not a built-in problem"
            f"{closest(target, names)}; see 'hesscli problems'"
        )
    return builtin, name


def import_file(path: Path, overrides: Mapping[str, str]) -> tuple[ModuleType, dict[str, Any]]:
    """Execute an objective file as a fresh module, with ``-p`` overrides in force.

    JAX is configured first (x64 on): module-level ``jnp`` arrays created while
    the file runs would otherwise be float32 for the whole session.
    """
    from hesscli.backend import start_backend

    start_backend()  # JAX configured, and JAX_PLATFORMS/XLA_FLAGS mistakes told as such
    module_name = f"hesscli_objective_{next(_counter)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot load {str(path)!r} as a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        with overriding(overrides) as declared:
            spec.loader.exec_module(module)
    except HesscliError:
        raise
    except SyntaxError as exc:
        if exc.lineno is None or "null bytes" in str(exc.msg):
            raise ObjectiveError(
                f"{path.name} is not Python source ({exc.msg}); is it the right file?"
            ) from exc
        raise ObjectiveError(
            f"syntax error in {path.name} line {exc.lineno}: {exc.msg}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ObjectiveError(
            f"{path.name} is not Python source (not UTF-8 text: {exc.reason} at byte "
            f"{exc.start}); is it the right file?"
        ) from exc
    except BaseException as exc:  # noqa: BLE001 - anything the user's file raises
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ObjectiveError(
            f"importing {path.name} raised {describe_exception(exc)}{missing_hint(exc)}"
        ) from exc
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    if overrides and not declared:
        raise InputError(
            f"{path.name} declares no parameters, so -p {', '.join(overrides)} cannot apply"
        )
    return module, (declared[0] if declared else {})


def load_file(spec: str, overrides: Mapping[str, str] | None = None) -> ObjectiveFile:
    """Load OBJECTIVE (``file.py``, ``file.py:name`` or a built-in name)."""
    path, name = resolve_path(spec)
    module, parameters = import_file(path, overrides or {})
    function_name = name or "objective"
    fn = getattr(module, function_name, None)
    if fn is None and name is None:
        split = model_split(module)
        if split is not None:  # objective omitted: output_loss(model(params, inputs), targets)
            return ObjectiveFile(spec, path, "objective", split.objective, module, parameters)
    if fn is None or not callable(fn):
        defined = [
            key
            for key, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module.__name__
        ]
        what = "is not callable" if fn is not None else "is not defined"
        listing = ", ".join(defined) if defined else "none"
        hint = closest(function_name, defined)
        split_hint = (
            " (or, with its model, define output_loss(outputs, targets) and "
            "data = (inputs, targets) for a model split)"
            if name is None and callable(getattr(module, "model", None)) else ""
        )
        raise ObjectiveError(
            f"{path.name}: {function_name!r} {what}{hint}; functions defined there: {listing}. "
            f"Name one with {path.name}:NAME{split_hint}"
        )
    return ObjectiveFile(spec, path, function_name, fn, module, parameters)
