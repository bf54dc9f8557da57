"""Adam's preconditioned curvature: ``P^{-1/2} H P^{-1/2}`` from an optax optimizer state.

An Adam-type optimizer steps ``x ← x − η·m̂ / P`` with a diagonal
preconditioner ``P`` that it keeps in its state. With ``P`` frozen, the
dynamics on a quadratic with Hessian ``H`` are those of EMA momentum on
``P⁻¹H``; Cohen et al. (2022, "Adaptive gradient methods at the edge of
stability") show that it is ``λmax(P⁻¹H)`` that equilibrates at the stability
threshold (:mod:`hesscli.analysis.preconditioned`), not ``λmax(H)`` at 2/η.

``P⁻¹H`` is not symmetric, but it is similar to the symmetric
``D H D`` with ``D = P^{-1/2}`` (``P⁻¹H = D (D H D) D⁻¹``), so both have the
same eigenvalues; :class:`PreconditionedCurvature` puts ``D H D`` behind the
backend interface, so the dense path, Lanczos and the certified bounds of
:mod:`hesscli.spectra.bounds` apply to it unchanged. ``D`` travels into the
compiled solvers as the leaf of a :class:`jax.tree_util.Partial` (one
compilation for every preconditioner of the same size: the monitor builds a
new ``P`` at every log step).

The preconditioner follows optax's ``update`` exactly (optax 0.2, read in
``optax/_src/transform.py``). For the state after ``t`` steps (``count = t``):

- ``adam``, ``adamw``, ``nadam`` (``scale_by_adam``): ``P = sqrt(ν/(1 − β₂ᵗ) +
  eps_root) + eps`` — the bias-corrected second moment, ``eps_root`` inside the
  root, ``eps`` outside;
- ``amsgrad`` (``scale_by_amsgrad``): ``P = sqrt(ν_max + eps_root) + eps``, where
  ``ν_max`` is already the running maximum of the (by default bias-corrected) ν.

That is the preconditioner the *last* step used; the next step's differs by one
EMA update of ν (weight 1 − β₂). Before the first step (``count = 0``) there is
no preconditioner (the bias correction divides by 1 − β₂⁰ = 0).

Optimizers without a fixed diagonal preconditioner get no number: see
:data:`UNSUPPORTED` (their reason is what the output says instead).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.curvature.base import Curvature, DenseHessian, DerivedMatrix, symmetrize
from hesscli.errors import InputError
from hesscli.jaxconf import jax_module
from hesscli.vocab import Method, Optimizer

#: the optimizers whose state gives a diagonal preconditioner, and their optax state
SUPPORTED = {Optimizer.ADAM: "scale_by_adam", Optimizer.ADAMW: "scale_by_adam",
             Optimizer.NADAM: "scale_by_adam", Optimizer.AMSGRAD: "scale_by_amsgrad"}

#: why the others have no λmax(P⁻¹H) here (said instead of a number)
UNSUPPORTED = {
    Optimizer.SGD: "plain gradient descent has no preconditioner (P = I): its quantity is "
                   "λmax(H) against 2/lr",
    Optimizer.MOMENTUM: "heavy-ball momentum has no preconditioner (P = I): its quantity is "
                        "λmax(H) against its own bound 2(1 + β)/lr",
    Optimizer.NESTEROV: "Nesterov momentum has no preconditioner (P = I): its quantity is "
                        "λmax(H) against 2(1 + β)/((1 + 2β)·lr)",
    "rmsprop": "not supported yet: RMSProp's preconditioner (eps inside the root, optional "
               "centring and heavy-ball momentum) is not read here",
    "adamax": "Adamax divides by a running maximum of |g| (P = u + eps, not a square root of "
              "a second moment); not read here",
    "adabelief": "AdaBelief's preconditioner is the EMA of (g − m)², not read here",
    "radam": "RAdam switches between an unpreconditioned and a rectified step with a "
             "time-varying factor: no single frozen P",
    "yogi": "Yogi's additive second-moment update is not read here",
    "adagrad": "Adagrad (P = sqrt(Σg²)) is not read here",
    "adadelta": "Adadelta's step is a ratio of two running averages: no fixed P times a "
                "learning rate",
    "lion": "Lion steps by a sign: a nonlinear update with no linear preconditioner",
    "sign_sgd": "signSGD steps by a sign: a nonlinear update with no linear preconditioner",
    "lamb": "LAMB rescales Adam's step by a per-layer trust ratio that depends on the "
            "update: no frozen P",
    "novograd": "NovoGrad normalizes per layer: not read here",
}


@dataclass(frozen=True)
class Preconditioner:
    """The diagonal ``P`` of an Adam-type state and the hyperparameters that shape the threshold.

    ``diagonal``: P (float64, positive); ``count``: steps taken (t); ``formula``: how
    P was formed from the state (the output says it).
    """

    optimizer: str
    diagonal: np.ndarray
    count: int
    b1: float
    b2: float
    eps: float
    eps_root: float
    nesterov: bool = False
    weight_decay: float = 0.0
    formula: str = ""

    @property
    def inverse_root(self) -> np.ndarray:
        """``D = P^{-1/2}``."""
        return 1.0 / np.sqrt(self.diagonal)

    def summary(self) -> dict[str, Any]:
        """P's extent and the hyperparameters (for JSON and the notes)."""
        p = self.diagonal
        return {"optimizer": self.optimizer, "count": self.count, "b1": self.b1, "b2": self.b2,
                "eps": self.eps, "eps_root": self.eps_root, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay, "formula": self.formula,
                "p_min": float(p.min()), "p_max": float(p.max()),
                "p_median": float(np.median(p))}


def supported(optimizer: str) -> bool:
    """True when ``optimizer``'s state gives a diagonal preconditioner (:data:`SUPPORTED`)."""
    return optimizer in SUPPORTED


def why_unsupported(optimizer: str) -> str:
    return UNSUPPORTED.get(optimizer, f"{optimizer} has no diagonal preconditioner read here")


def hyperparameters(optimizer: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """optax's defaults for ``optimizer`` (from its signature) overridden by ``options``."""
    import optax

    factory = getattr(optax, optimizer)
    out = {name: p.default for name, p in inspect.signature(factory).parameters.items()
           if p.default is not inspect.Parameter.empty}
    out.update(options or {})
    return out


def _find(state: Any, fields: tuple[str, ...]) -> Any:
    """The first node of an optax state (tuples, lists, dicts, NamedTuples) with ``fields``."""
    if all(hasattr(state, f) for f in fields):
        return state
    if isinstance(state, Mapping):
        if all(f in state for f in fields):
            return type("State", (), {f: state[f] for f in fields})()
        children = list(state.values())
    elif isinstance(state, (tuple, list)):
        children = list(state)
    else:
        return None
    for child in children:
        found = _find(child, fields)
        if found is not None:
            return found
    return None


def _flat(tree: Any) -> np.ndarray:
    from jax.flatten_util import ravel_pytree

    flat, _ = ravel_pytree(tree)
    return np.asarray(flat, dtype=np.float64)


def preconditioner_of(optimizer: str, options: Mapping[str, Any] | None, state: Any,
                      n: int) -> Preconditioner:
    """The preconditioner of ``optimizer``'s optax ``state`` (see the module docstring).

    ``options`` are the optimizer's keyword options (b1, b2, eps, eps_root,
    weight_decay, nesterov; optax's defaults otherwise). Raises
    :class:`~hesscli.errors.InputError` when the optimizer has no diagonal
    preconditioner (the reason from :data:`UNSUPPORTED`), the state lacks its
    fields, has the wrong size, or has taken no step yet.
    """
    if optimizer not in SUPPORTED:
        raise InputError(f"no preconditioned sharpness for {optimizer!r}: "
                         f"{why_unsupported(optimizer)}")
    hp = hyperparameters(optimizer, options)
    ams = SUPPORTED[optimizer] == "scale_by_amsgrad"
    fields = ("count", "nu_max") if ams else ("count", "nu")
    node = _find(state, fields)
    if node is None:
        raise InputError(f"the optimizer state has no {optax_name(optimizer)} state "
                         f"(fields {', '.join(fields)}): is it a {optimizer} state?")
    count = int(np.asarray(node.count))
    nu = _flat(node.nu_max if ams else node.nu)
    if nu.size != n:
        raise InputError(f"the optimizer state's second moment has {nu.size} entries; the "
                         f"objective has {n} parameters")
    b1, b2 = float(hp["b1"]), float(hp["b2"])
    eps, eps_root = float(hp["eps"]), float(hp["eps_root"])
    if count < 1:
        raise InputError(f"the {optimizer} state has taken no step yet (count 0): there is "
                         "no preconditioner before the first step (the bias correction "
                         "divides by 1 − β₂⁰ = 0)")
    if not np.all(np.isfinite(nu)) or np.any(nu < 0):
        raise InputError(f"the {optimizer} state's second moment has negative or non-finite "
                         "entries")
    if ams:
        p = np.sqrt(nu + eps_root) + eps
        formula = "P = sqrt(ν_max + eps_root) + eps"
    else:
        p = np.sqrt(nu / (1.0 - b2**count) + eps_root) + eps
        formula = "P = sqrt(ν/(1 − β₂ᵗ) + eps_root) + eps"
    if not np.all(p > 0):
        raise InputError(f"the {optimizer} preconditioner has zero entries (ν = 0 with eps = "
                         f"{eps:g} and eps_root = {eps_root:g}): P⁻¹H is not defined")
    wd = hp.get("weight_decay", 0.0) if optimizer == Optimizer.ADAMW else 0.0
    if callable(wd):
        raise InputError("a weight-decay schedule is not supported for the threshold")
    return Preconditioner(optimizer=optimizer, diagonal=p, count=count, b1=b1, b2=b2,
                          eps=eps, eps_root=eps_root, nesterov=bool(hp.get("nesterov", False)),
                          weight_decay=float(wd or 0.0), formula=formula)


def optax_name(optimizer: str) -> str:
    return SUPPORTED.get(optimizer, optimizer)


@functools.lru_cache(maxsize=8)
def _scaled(hvp_fn: Any) -> Any:
    """``(d, x, v) -> d ⊙ H(x)(d ⊙ v)``, jitted once per base HVP."""
    jax = jax_module()
    return jax.jit(lambda d, x, v: d * hvp_fn(x, d * v))


class PreconditionedCurvature(DerivedMatrix):
    """``D H D`` with ``D = P^{-1/2}`` (eigenvalues of ``P⁻¹H``) behind the backend interface.

    Value and gradient are the base backend's; ``hvp``/``hvp_fn``/``hessian`` are
    the preconditioned operator's. ``hvp_fn`` is a :class:`jax.tree_util.Partial`
    whose leaf is ``D``, so the compiled solvers take ``D`` as an operand and
    compile once for every preconditioner. ``linearizable`` is None: each matvec
    is one HVP of the base (forward-over-reverse).
    """

    kind = "preconditioned"

    def __init__(self, base: Curvature, pre: Preconditioner) -> None:
        jax = jax_module()
        if base.hvp_fn is None or base.method != Method.EXACT:
            raise InputError("the preconditioned sharpness needs exact JAX Hessian-vector "
                             "products (--method exact)")
        self.base = base
        self.pre = pre
        self.method = base.method
        self.n = base.n
        self.dtype = base.dtype
        self.parallel = base.parallel
        self.notes = (f"preconditioned: D·H·D with D = P^(-1/2), {pre.formula} from the "
                      f"{pre.optimizer} state after {pre.count} steps (same eigenvalues as "
                      "P⁻¹H)",)
        d = jax.numpy.asarray(pre.inverse_root, dtype=self.dtype)
        self.hvp_fn = jax.tree_util.Partial(_scaled(base.hvp_fn), d)
        self.linearizable = None
        self._d = np.asarray(pre.inverse_root, dtype=np.float64)

    def hessian(self, x: np.ndarray) -> DenseHessian:
        """``D H D`` from the base's dense Hessian (scaled in float64), symmetrized."""
        h = self.base.hessian(x)
        d = self._d
        sym, _ = symmetrize(d[:, None] * h.matrix * d[None, :])
        return DenseHessian(sym, symmetry_error=h.symmetry_error,
                            error=h.error * float(d.max()) ** 2, evaluations=h.evaluations)
