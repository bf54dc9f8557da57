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
either way hesscli checks that ``output_loss`` is one, by its gradient and
Hessian in the outputs at the point and at perturbed outputs (a value at one
point cannot tell ``|r|`` from ``r²`` at residuals ±1), and refuses any other
loss (its Fisher has no closed form here: ``--curvature ggn`` still applies).

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
from hesscli.curvature.split import flat_model
from hesscli.errors import InputError, ObjectiveError, user_code
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import Objective, split_tolerance
from hesscli.objective.files import ModelSplit

LIKELIHOODS = ("squared_error", "softmax_cross_entropy")


@dataclass(frozen=True)
class Likelihood:
    """The likelihood behind the output loss.

    ``scale``: c for squared error (``ℓ = c Σ‖m − y‖²``), 1/M for softmax
    cross-entropy (M predictions averaged), 1 for one summed over its predictions
    (``reduction="sum"``, only from :mod:`hesscli.losses`).
    """

    name: str
    scale: float
    reduction: str = "mean"

    def describe(self) -> str:
        if self.name == "squared_error":
            return f"squared error (Gaussian; ℓ = {self.scale:.4g}·Σ‖m − y‖²)"
        if self.reduction == "sum":
            return "softmax cross-entropy (categorical; sum over its predictions)"
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
    with user_code(f"{name}: output_loss on one sample at a time",
                   "; the empirical Fisher needs model and output_loss to accept a batch of one"):
        each = np.asarray(jax.jit(losses)(obj.x), dtype=np.float64)
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
    """The likelihood the output loss is (the one the file declares, or either one).

    Recognized by its derivatives in the outputs, not by its value: ``output_loss``'s
    gradient and Hessian-vector product at the actual outputs and at
    :data:`PERTURBATIONS` random perturbations of them (residuals of different sizes)
    must be the candidate's closed forms (:func:`_mismatch`). A value check at one
    point is fooled by any even loss at residuals ±1 (``|r| = r²`` there); a
    Hessian check is not (the L1 loss's is 0, not ``2c·I``).

    An ``output_loss`` that is a :mod:`hesscli.losses` loss says what it is: no
    probes (:func:`_closed_form_likelihood`).

    A declared ``likelihood`` that ``output_loss`` does not compute is an
    :class:`ObjectiveError` (exit 3); an output loss that is neither likelihood is
    an :class:`InputError` (exit 2: the request cannot be met).
    """
    module, name = obj.file.module, obj.file.path.name
    declared = getattr(module, "likelihood", None)
    if declared is not None and declared not in LIKELIHOODS:
        raise ObjectiveError(
            f"{name}: likelihood = {declared!r}; expected one of {', '.join(LIKELIHOODS)}"
        )
    known = _closed_form_likelihood(obj, split, declared)
    if known is not None:
        return known
    with user_code(f"{name}: model(params, inputs)"):
        raw = split.model(obj.unravel(obj.x), split.inputs)
    # a non-finite loss is the objective's failure (exit 3), whatever its likelihood
    with user_code(f"{name}: the objective"):
        value = np.asarray(obj.flat_fn(obj.x))
    from hesscli.curvature.base import ensure_finite

    ensure_finite(value, "value")
    if not hasattr(raw, "shape"):
        raise InputError(
            f"--curvature fisher: {name}'s model returns {type(raw).__name__}, not one array "
            "of outputs; the closed-form Fisher needs one (use --curvature ggn)"
        )
    outputs = np.asarray(raw, dtype=np.float64)
    targets = np.asarray(split.targets)
    derivatives = _output_derivatives(split, obj.dtype, name)
    rtol = split_tolerance(obj.dtype)
    why = {}
    for candidate in [declared] if declared else LIKELIHOODS:
        fit = _mismatch(candidate, outputs, targets, derivatives, rtol)
        if isinstance(fit, Likelihood):
            return fit
        why[candidate] = fit
    if declared:
        raise ObjectiveError(
            f"{name}: likelihood = {declared!r}, but output_loss is not that likelihood's "
            f"negative log: {why[declared]}; fix likelihood or output_loss"
        )
    raise InputError(
        f"--curvature fisher accepts an output_loss that is a squared error c·Σ‖m − y‖² "
        "(c > 0: a Gaussian likelihood) or the mean softmax cross-entropy of its outputs (a "
        f"categorical one); {name}'s output_loss is neither a squared error "
        f"({why['squared_error']}) nor a softmax cross-entropy "
        f"({why['softmax_cross_entropy']}): use --curvature ggn (or empirical-fisher)"
    )


def _closed_form_likelihood(obj: Objective, split: ModelSplit,
                            declared: str | None) -> Likelihood | None:
    """The likelihood of a :mod:`hesscli.losses` output loss (its ``likelihood``
    attribute, the scale from its reduction and the outputs' shape), or None
    for any other loss. A file that declares another likelihood is an
    :class:`ObjectiveError`."""
    from hesscli.losses import closed_form

    known = closed_form(split.output_loss)
    if known is None:
        return None
    name = obj.file.path.name
    if declared is not None and declared != known.likelihood:
        raise ObjectiveError(
            f"{name}: likelihood = {declared!r}, but output_loss is {known!r}, the negative "
            f"log of a {known.likelihood!r} likelihood; fix likelihood or output_loss"
        )
    jax = jax_module()
    # the user's model failing, or its outputs not fitting the loss
    with user_code(f"{name}: output_loss = {known!r} on model(params, inputs)"):
        shape = jax.eval_shape(lambda t: split.model(obj.unravel(t), split.inputs),
                               jax.ShapeDtypeStruct(np.shape(obj.x), jax.numpy.dtype(obj.dtype)))
        known.integer_labels(shape, split.targets)
    return Likelihood(known.likelihood, known.scale(shape), known.reduction)


PERTURBATIONS = (0.3, 3.0)  # sizes of the random residuals (perturbations) checked


def _output_derivatives(split: ModelSplit, dtype: str, name: str) -> Any:
    """``(m, u) -> (∇ℓ(m), ∇²ℓ(m) u)`` in float64 NumPy, ℓ = output_loss(·, targets);
    the user's loss failing is an :class:`ObjectiveError`."""
    jax = jax_module()

    def loss(out: Any) -> Any:
        return split.output_loss(out, split.targets)

    both = jax.jit(lambda m, u: jax.jvp(jax.grad(loss), (m,), (u,)))

    def at(m: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with user_code(f"{name}: differentiating output_loss in the outputs"):
            g, hu = both(m.astype(dtype), u.astype(dtype))
        return np.asarray(g, np.float64), np.asarray(hu, np.float64)

    return at


def _mismatch(
    name: str, outputs: np.ndarray, targets: np.ndarray, derivatives: Any, rtol: float
) -> Likelihood | str:
    """The likelihood ``name`` when the output loss's gradient and Hessian match its
    closed forms at the outputs and at perturbed outputs; else why not (a phrase).

    Squared error: ``∇ℓ = 2c(m − y)``, ``∇²ℓ = 2c·I`` with c > 0 read from one
    Hessian-vector product. Softmax cross-entropy over M predictions of C classes,
    with t the one-hot labels (or probability rows): ``∇ℓ = (p − t)/M``,
    ``∇²ℓ u = (p⊙u − p·(pᵀu))/M`` per prediction, ``p = softmax(m)``.
    """
    rng = np.random.default_rng(0)

    def far(actual: np.ndarray, expected: np.ndarray, scale: float) -> float:
        """Relative distance of ``actual`` from ``expected`` (NaN counts as far)."""
        gap = float(np.linalg.norm(actual - expected))
        size = max(float(np.linalg.norm(actual)), float(np.linalg.norm(expected)), scale)
        return gap / size if size > 0 else 0.0 if gap == 0 else np.inf

    def where(i: int) -> str:
        return "at the outputs" if i == 0 else (
            f"at outputs perturbed by random residuals of size {PERTURBATIONS[i - 1]:g}")

    if name == "squared_error":
        if targets.shape != outputs.shape or targets.dtype.kind != "f":
            return "its targets are not real numbers shaped like the outputs"
        y = targets.astype(np.float64)
        u = rng.standard_normal(outputs.shape)
        _, hu = derivatives(outputs, u)
        c = float(np.vdot(u, hu)) / (2.0 * float(np.vdot(u, u)))
        if not c > 0:
            return f"its curvature in the outputs uᵀ∇²ℓu/‖u‖² is {2 * c:.4g}, not positive"
        points = [outputs] + [y + s * rng.standard_normal(y.shape) for s in PERTURBATIONS]
        for i, m in enumerate(points):
            u = rng.standard_normal(m.shape)
            g, hu = derivatives(m, u)
            scale = 2 * c * (float(np.linalg.norm(m)) + float(np.linalg.norm(y)))
            if not far(g, 2 * c * (m - y), scale) <= rtol:
                return f"its gradient {where(i)} is not 2c·(m − y) (c = {c:.4g})"
            if not far(hu, 2 * c * u, 0.0) <= rtol:
                return f"its Hessian {where(i)} is not 2c·I (c = {c:.4g})"
        return Likelihood(name, c)
    if outputs.ndim < 1 or outputs.shape[-1] < 2:
        return "its outputs have no class axis (the last axis, of 2 or more logits)"
    classes = outputs.shape[-1]
    if targets.dtype.kind in "iu" and targets.shape == outputs.shape[:-1]:
        if targets.size and (targets.min() < 0 or targets.max() >= classes):
            return f"its labels are not classes 0…{classes - 1}"
        # one-hot rows (not np.eye(classes)[labels]: a V×V identity at a 50k vocabulary)
        t = (targets[..., None] == np.arange(classes)).astype(np.float64)
    elif targets.dtype.kind == "f" and targets.shape == outputs.shape:
        t = targets.astype(np.float64)
        if not (np.all(t >= 0) and np.allclose(t.sum(axis=-1), 1.0, rtol=0, atol=rtol)):
            return "its targets are not probability rows over the last axis"
    else:
        return "its targets are neither class labels nor probability rows for these outputs"
    m_count = outputs.size // classes
    points = [outputs] + [outputs + s * rng.standard_normal(outputs.shape)
                          for s in PERTURBATIONS]
    for i, z in enumerate(points):
        u = rng.standard_normal(z.shape)
        g, hu = derivatives(z, u)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        if not far(g, (p - t) / m_count, 1.0 / m_count) <= rtol:
            return f"its gradient {where(i)} is not (softmax(m) − t)/M (M = {m_count})"
        expected = (p * u - p * np.sum(p * u, axis=-1, keepdims=True)) / m_count
        if not far(hu, expected, 0.0) <= rtol:
            return f"its Hessian {where(i)} is not (diag p − ppᵀ)/M (M = {m_count})"
    return Likelihood("softmax_cross_entropy", 1.0 / m_count)
