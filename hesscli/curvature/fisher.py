"""Fisher information as matrix-free operators: the true Fisher and the empirical one.

**True Fisher.** When the output loss is a negative log-likelihood,
``ℓ = −(1/M) Σᵢ log p(yᵢ | mᵢ)``, the Fisher is

    F = Jᵀ F_out J,   F_out = E_{y ~ p(·|m)} [∇_m ℓ ∇_m ℓᵀ]  (per prediction),

which depends on the outputs only, not on the targets. Closed forms, per
prediction, for the two likelihoods the output loss can be recognized as:

- squared error, ``ℓ = c Σ ‖m − y‖²`` (a Gaussian with variance 1/(2cM)):
  ``F_out = 2c I``;
- softmax cross-entropy on logits z, ``ℓ = −(1/M) Σ log softmax(zᵢ)[yᵢ]`` (a
  categorical distribution): ``F_out = (diag p − ppᵀ)/M`` with ``p = softmax(z)``.

For both, F equals the GGN (they are exponential families in their natural
parameters; Martens 2020, §9.2): here it is computed from its definition's
closed form instead of the loss's second derivatives. A file names its
likelihood with ``likelihood = "squared_error" | "softmax_cross_entropy"``;
without one hesscli recognizes it by evaluating ``output_loss`` at the point.

**Empirical Fisher.** ``(1/N) Σᵢ gᵢ gᵢᵀ`` with ``gᵢ`` the gradient of sample
i's loss. With ``L(θ) = (ℓ₁, …, ℓ_N)`` the per-sample losses (``vmap`` of the
output loss on batches of one), its Jacobian has the ``gᵢ`` as rows, so
``EF v = (1/N) ∂Lᵀ(∂L v)``: one jvp and one vjp of the linearized per-sample
losses, never the N×n matrix of per-sample gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.curvature.base import OperatorAt
from hesscli.curvature.ggn import flat_model
from hesscli.errors import HesscliError, InputError, ObjectiveError
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import Objective, split_tolerance
from hesscli.objective.files import ModelSplit, describe_exception

LIKELIHOODS = ("squared_error", "softmax_cross_entropy")


@dataclass(frozen=True)
class Likelihood:
    """The likelihood behind the output loss.

    ``scale``: c for squared error (``ℓ = c Σ‖m − y‖²``), 1/M for softmax
    cross-entropy (M predictions averaged).
    """

    name: str
    scale: float

    def describe(self) -> str:
        if self.name == "squared_error":
            return f"squared error (Gaussian; ℓ = {self.scale:.4g}·Σ‖m − y‖²)"
        return f"softmax cross-entropy (categorical; mean over {round(1 / self.scale)} " \
               "predictions)"

    def output_fisher(self, outputs: Any) -> Any:
        """``u -> F_out u`` at these outputs (closed form, see module docstring)."""
        jnp = jax_module().numpy
        if self.name == "squared_error":
            c = 2.0 * self.scale
            return lambda u: c * u
        p = jax_module().nn.softmax(outputs, axis=-1)
        scale = self.scale
        return lambda u: scale * (p * u - p * jnp.sum(p * u, axis=-1, keepdims=True))


def fisher_at(split: ModelSplit, unravel: Any, likelihood: Likelihood) -> OperatorAt:
    """``x -> (v -> F(x) v)``, ``F = Jᵀ F_out J`` (model linearized once per point)."""
    jax = jax_module()
    model = flat_model(split, unravel)

    def at(x: Any) -> Any:
        out, jvp = jax.linearize(model, x)
        vjp = jax.linear_transpose(jvp, x)
        f_out = likelihood.output_fisher(out)
        return lambda v: vjp(f_out(jvp(v)))[0]

    return OperatorAt(at)


def per_sample_losses(split: ModelSplit, unravel: Any) -> Any:
    """``θ_flat -> (ℓ₁, …, ℓ_N)``: the output loss of each sample as a batch of one."""
    jax = jax_module()

    def losses(x: Any) -> Any:
        params = unravel(x)

        def one(inputs: Any, targets: Any) -> Any:
            batch = jax.tree_util.tree_map(lambda a: a[None], (inputs, targets))
            return split.output_loss(split.model(params, batch[0]), batch[1])

        return jax.vmap(one)(split.inputs, split.targets)

    return losses


def empirical_fisher_at(obj: Objective, split: ModelSplit) -> OperatorAt:
    """``x -> (v -> (1/N) Σ gᵢ gᵢᵀ v)`` (see module docstring).

    Checks first that the per-sample losses average to the objective at the
    point: an ``output_loss`` that sums instead of averaging (or mixes samples)
    has no per-sample gradients to speak of (:class:`ObjectiveError`).
    """
    jax = jax_module()
    losses = per_sample_losses(split, obj.unravel)
    name = obj.file.path.name
    try:
        each = np.asarray(jax.jit(losses)(obj.x), dtype=np.float64)
    except HesscliError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model or loss failed per sample
        raise ObjectiveError(
            f"{name}: output_loss on one sample at a time raised {describe_exception(exc)}; "
            "the empirical Fisher needs model and output_loss to accept a batch of one"
        ) from exc
    total = float(np.asarray(split.objective(obj.unravel(obj.x))))
    rtol = split_tolerance(obj.dtype)
    if not abs(each.mean() - total) <= rtol * max(abs(total), abs(each.mean()), 1e-300):
        raise ObjectiveError(
            f"{name}: the per-sample losses average to {each.mean():.10g} but the loss over "
            f"the batch is {total:.10g}; output_loss must be the mean over the batch for "
            "the empirical Fisher (1/N)Σgᵢgᵢᵀ"
        )
    n_samples = each.size

    def at(x: Any) -> Any:
        _, jvp = jax.linearize(losses, x)
        vjp = jax.linear_transpose(jvp, x)
        return lambda v: vjp(jvp(v))[0] / n_samples

    return OperatorAt(at)


def likelihood_of(obj: Objective, split: ModelSplit) -> Likelihood:
    """The likelihood the file declares (checked) or the one its output loss matches.

    A declared ``likelihood`` that ``output_loss`` does not compute is an
    :class:`ObjectiveError` (exit 3); an output loss that matches neither
    closed form is an :class:`InputError` (exit 2: the request cannot be met).
    """
    module, name = obj.file.module, obj.file.path.name
    declared = getattr(module, "likelihood", None)
    if declared is not None and declared not in LIKELIHOODS:
        raise ObjectiveError(
            f"{name}: likelihood = {declared!r}; expected one of {', '.join(LIKELIHOODS)}"
        )
    try:
        raw = split.model(obj.unravel(obj.x), split.inputs)
    except HesscliError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model failed
        raise ObjectiveError(f"{name}: model(params, inputs) raised "
                             f"{describe_exception(exc)}") from exc
    if not hasattr(raw, "shape"):
        raise InputError(
            f"--curvature fisher: {name}'s model returns {type(raw).__name__}, not one array "
            "of outputs; the closed-form Fisher needs one (use --curvature ggn)"
        )
    outputs = np.asarray(raw, dtype=np.float64)
    targets = np.asarray(split.targets)
    rtol = split_tolerance(obj.dtype)

    def loss(out: np.ndarray) -> float:
        return float(np.asarray(split.output_loss(out.astype(obj.dtype), split.targets)))

    value = loss(outputs)
    found = {}
    for candidate in [declared] if declared else LIKELIHOODS:
        fit = _fit(candidate, outputs, targets, loss)
        if fit is not None:
            predicted, scale = fit
            if abs(predicted - value) <= rtol * max(abs(value), abs(predicted), 1e-300):
                return Likelihood(candidate, scale)
            found[candidate] = predicted
    if declared:
        got = (f"the closed form gives {found[declared]:.10g}" if declared in found
               else "the outputs and targets do not have its shapes")
        raise ObjectiveError(
            f"{name}: likelihood = {declared!r}, but output_loss = {value:.10g} at this point "
            f"and {got}; fix likelihood or output_loss"
        )
    raise InputError(
        f"--curvature fisher: {name}'s output_loss ({value:.10g} here) is neither a squared "
        "error c·Σ‖m − y‖² nor the mean softmax cross-entropy of its outputs; declare "
        "likelihood = 'squared_error' or 'softmax_cross_entropy' if it is one, or use "
        "--curvature ggn or empirical-fisher"
    )


def _fit(
    name: str, outputs: np.ndarray, targets: np.ndarray, loss: Any
) -> tuple[float, float] | None:
    """(the closed form's value at ``outputs``, its scale), None when shapes rule it out."""
    if name == "squared_error":
        if targets.shape != outputs.shape or targets.dtype.kind != "f":
            return None
        # c from one evaluation at m = y + 1 (ℓ = c·size), then the value at the point
        c = loss(targets.astype(np.float64) + 1.0) / max(outputs.size, 1)
        if not c > 0:
            return None
        return c * float(np.sum((outputs - targets) ** 2)), c
    if outputs.ndim < 1 or outputs.shape[-1] < 2:
        return None
    z = outputs - outputs.max(axis=-1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    m = outputs.size // outputs.shape[-1]
    if targets.dtype.kind in "iu" and targets.shape == outputs.shape[:-1]:
        if targets.min() < 0 or targets.max() >= outputs.shape[-1]:
            return None
        picked = np.take_along_axis(logp, targets[..., None].astype(np.int64), axis=-1)
        return -float(np.sum(picked)) / m, 1.0 / m
    if targets.dtype.kind == "f" and targets.shape == outputs.shape:
        return -float(np.sum(targets * logp)) / m, 1.0 / m
    return None
