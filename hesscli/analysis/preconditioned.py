"""The adaptive edge of stability: λmax(P⁻¹H) against Adam's threshold.

Cohen et al. (2022), *Adaptive Gradient Methods at the Edge of Stability*
(arXiv:2207.14484): with its preconditioner P frozen, Adam on a quadratic with
Hessian H is EMA momentum on P⁻¹H,

    m ← β₁·m + (1 − β₁)·P⁻¹H x,   x ← x − η·m

(bias correction of m → 1 as β₁ᵗ → 0). Along an eigenvector of P⁻¹H with
eigenvalue a this is ``x₊ = (1 + β₁ − c)·x − β₁·x₋`` with ``c = η(1 − β₁)a``,
whose characteristic polynomial ``z² − (1 + β₁ − c)z + β₁`` has both roots
inside the unit circle iff ``0 < c < 2 + 2β₁`` (Jury; the boundary is the root
z = −1). So Adam is stable iff

    η·λmax(P⁻¹H) < (2 + 2β₁)/(1 − β₁)      (38 at β₁ = 0.9).

The variants, derived the same way:

- Nesterov (``nadam``: the step is β₁m + (1 − β₁)g): ``z² + (c(1 + β₁) − 1 − β₁)z
  + β₁(1 − c)``, stable iff ``c < 2(1 + β₁)/(1 + 2β₁)``, i.e.
  η·λmax < 2(1 + β₁)/((1 − β₁)(1 + 2β₁)) (13.6 at β₁ = 0.9);
- decoupled weight decay w (``adamw``: x ← x − η(m/P + w·x)): with q = 1 − ηw the
  recurrence is ``x₊ = (q + β₁ − c)x − β₁q·x₋``, stable iff
  ``c < (1 + q)(1 + β₁)``, i.e. η·λmax < (2 − ηw)(1 + β₁)/(1 − β₁);
- β₁ = 0 (RMSProp-like): 2, plain gradient descent on P⁻¹H.

These are the thresholds on ``lr·λmax(P⁻¹H)``; plain gradient descent keeps
``lr·λmax(H)`` against 2 and heavy-ball momentum its own bound
(:func:`hesscli.training.dynamics.stability_bound`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.analysis.step import Stability, stability
from hesscli.curvature.base import Curvature
from hesscli.curvature.preconditioned import PreconditionedCurvature, Preconditioner
from hesscli.spectra.policy import SpectrumPolicy, spectrum_at
from hesscli.vocab import SpectrumPath


def adam_bound(b1: float, *, nesterov: bool = False, lr: float = 0.0,
               weight_decay: float = 0.0) -> float:
    """The bound on ``lr·λmax(P⁻¹H)`` (see the module docstring): (2 + 2β₁)/(1 − β₁) for
    Adam, 2(1 + β₁)/((1 − β₁)(1 + 2β₁)) with Nesterov, times (2 − lr·w)/2 with decoupled
    weight decay w (``lr`` only matters then)."""
    if not 0.0 <= b1 < 1.0:
        raise ValueError(f"b1 must be in [0, 1); got {b1}")
    if nesterov:
        if weight_decay:
            raise ValueError("no threshold derived for Nesterov with weight decay")
        return 2.0 * (1.0 + b1) / ((1.0 - b1) * (1.0 + 2.0 * b1))
    return (2.0 - lr * weight_decay) * (1.0 + b1) / (1.0 - b1)


def adam_threshold(lr: float, b1: float, **kwargs: Any) -> float:
    """The threshold on λmax(P⁻¹H) itself: ``adam_bound(b1, …)/lr`` (38/lr at β₁ = 0.9)."""
    return adam_bound(b1, lr=lr, **kwargs) / lr


def gd_threshold(lr: float) -> float:
    """Plain gradient descent: λmax(H) against 2/lr."""
    return 2.0 / lr


def bound_of(pre: Preconditioner, lr: float) -> float:
    """:func:`adam_bound` for the preconditioner's optimizer and hyperparameters."""
    return adam_bound(pre.b1, nesterov=pre.nesterov, lr=lr, weight_decay=pre.weight_decay)


def bound_formula(pre: Preconditioner) -> str:
    if pre.nesterov:
        return "2(1 + β₁)/((1 − β₁)(1 + 2β₁))"
    if pre.weight_decay:
        return "(2 − lr·w)(1 + β₁)/(1 − β₁)"
    return "(2 + 2β₁)/(1 − β₁)"


@dataclass(frozen=True)
class PreconditionedSharpness:
    """λmax(P⁻¹H) at a point, its evidence, and the stability verdict against the threshold.

    ``lambda_max``: the computed value; ``interval``: [proven lower, upper if the run found
    the top eigenvalue] (dense: a point); ``lambda_max_at_most``: the random start's upper
    bound (matrix-free); ``bound``: the threshold on lr·λmax; ``threshold`` = bound/lr;
    ``stability``: :func:`hesscli.analysis.step.stability` with that bound (same certainty
    rules as gradient descent's).
    """

    lambda_max: float
    lambda_min: float
    interval: tuple[float, float]
    path: SpectrumPath
    lr: float | None
    bound: float
    threshold: float | None
    formula: str
    stability: Stability | None
    preconditioner: Preconditioner
    hvps: int | None = None
    notes: tuple[str, ...] = ()
    lambda_max_at_most: float | None = None  # matrix-free: the random start's upper bound
    probability: float | None = None  # of that bound

    @property
    def ratio(self) -> float | None:
        """λmax(P⁻¹H)/threshold = lr·λmax/bound (None without a learning rate)."""
        return None if self.threshold is None else self.lambda_max / self.threshold

    @property
    def max_stable_lr(self) -> float | None:
        """bound/λmax: the largest learning rate this P and β₁ allow (None when λmax ≤ 0;
        with decoupled weight decay, for the bound at ``lr``, or at lr·w → 0 without one)."""
        return self.bound / self.lambda_max if self.lambda_max > 0 else None


def preconditioned_sharpness(base: Curvature, x: np.ndarray, pre: Preconditioner,
                             lr: float | None,
                             policy: SpectrumPolicy | None = None) -> PreconditionedSharpness:
    """λmax(P⁻¹H) at ``x`` by ``policy`` (dense or matrix-free, as any spectrum), with the
    threshold of ``pre``'s optimizer at ``lr`` and the stability verdict.

    ``lr`` None (a saved optimizer state holds no learning rate): λmax(P⁻¹H) and the bound
    on lr·λmax only, no threshold and no verdict (``stability`` None)."""
    op = PreconditionedCurvature(base, pre)
    policy = policy or SpectrumPolicy(k=1, seed=0)
    point = spectrum_at(op, np.asarray(x), policy=policy, vectors=False)
    sp = point.spectrum
    bound = bound_of(pre, 0.0 if lr is None else lr)
    b = sp.bounds
    stab: Stability | None = None
    at_most, probability = None, None
    if b is None:
        interval = (sp.lambda_max, sp.lambda_max)
        if lr is not None:
            stab = stability(lr, sp.lambda_max, bound=bound)
    else:
        interval = b.max_interval
        if np.isfinite(b.max_at_most):
            at_most, probability = float(b.max_at_most), b.probability
        if lr is not None:
            stab = stability(lr, sp.lambda_max, sp.max_converged, b, bound=bound)
    notes = list(op.notes)
    if pre.nesterov or pre.weight_decay:
        notes.append(f"threshold for {pre.optimizer}: {bound_formula(pre)} = {bound:.4g} on "
                     "lr·λmax(P⁻¹H)"
                     + (" (lr·w left out: no learning rate given)"
                        if lr is None and pre.weight_decay else ""))
    notes.append("the threshold is the asymptotic one (bias correction of m → 1); with P "
                 "frozen it is exact for a quadratic, and Adam's P moves slowly (β₂)")
    return PreconditionedSharpness(
        lambda_max=float(sp.lambda_max), lambda_min=float(sp.lambda_min),
        interval=(float(interval[0]), float(interval[1])), path=sp.path, lr=lr, bound=bound,
        threshold=None if lr is None else bound / lr, formula=bound_formula(pre),
        stability=stab, preconditioner=pre,
        hvps=None if point.extremes is None else point.extremes.hvps, notes=tuple(notes),
        lambda_max_at_most=at_most, probability=probability)


def optimizer_bound(optimizer: str, options: dict[str, Any] | None, lr: float) -> float:
    """The bound on lr·λmax(P⁻¹H) for a supported optimizer (:data:`SUPPORTED`) from its
    options (optax's defaults otherwise), before any state exists."""
    from hesscli.curvature.preconditioned import hyperparameters

    hp = hyperparameters(optimizer, options)
    wd = float(hp.get("weight_decay", 0.0) or 0.0) if optimizer == "adamw" else 0.0
    return adam_bound(float(hp["b1"]), nesterov=bool(hp.get("nesterov", False)), lr=lr,
                      weight_decay=wd)


@dataclass(frozen=True)
class LoadedState:
    """An optimizer state read from a checkpoint: its preconditioner and where it came from."""

    preconditioner: Preconditioner
    source: str
    step: int | None = None  # the training step the state belongs to
    lr: float | None = None  # the learning rate the run trained with (None: unknown)
    x: np.ndarray | None = None  # the point logged with the state (None: not logged)
    assumed: tuple[str, ...] = ()  # hyperparameters taken from optax's defaults


def sharpness_document(ps: PreconditionedSharpness, loaded: LoadedState | None = None
                       ) -> dict[str, Any]:
    """The ``preconditioned`` object of the analyze document."""
    st = ps.stability
    doc: dict[str, Any] = {
        **ps.preconditioner.summary(),
        "lambda_max": ps.lambda_max,
        "lambda_max_interval": list(ps.interval),
        "lambda_max_at_most": ps.lambda_max_at_most if st is None else st.lambda_max_at_most,
        "path": ps.path,
        "lr": ps.lr,
        "bound": ps.bound,
        "bound_formula": ps.formula,
        "threshold": ps.threshold,
        "lr_times_lambda_max": None if ps.lr is None else ps.lr * ps.lambda_max,
        "stable": None if st is None else st.stable,
        "certainty": None if st is None else st.certainty,
        "probability": None if st is None else st.probability,
        "max_stable_lr": ps.max_stable_lr if st is None else st.max_stable_lr,
        "hvps": ps.hvps,
        "notes": list(ps.notes),
    }
    if loaded is not None:
        doc.update(source=loaded.source, step=loaded.step, logged_lr=loaded.lr,
                   assumed=list(loaded.assumed))
    return doc
