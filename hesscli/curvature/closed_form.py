"""The output loss's curvature in closed form, where the objective file says what the loss is.

The GGN ``Jᵀ H_ℓ J`` needs ``u -> H_ℓ u`` in the outputs. For an arbitrary
``output_loss`` that is one linearization of its gradient per point (autodiff,
:func:`output_hessian_product`'s fallback), whose residuals stay alive for
every matvec at the point. For softmax cross-entropy over a vocabulary of V
classes at B·T positions, that is several arrays of B·T·V numbers; the closed
form ``H_ℓ u = scale·(p ⊙ u − p (pᵀu))`` per position holds ``p`` only, so a
GGN matvec costs about what the model's own jvp and vjp cost (the logits, their
tangent and cotangent). Measured with XLA's memory analysis on an embedding →
dense → logits model (``tests/benchmarks/bench_softmax_ggn.py``): the compiled
product holds about 2.3× the logits' bytes in the closed form, 3.2× by autodiff
(5.3× when the point's linearization is kept across matvecs, as the
eigensolvers do).

hesscli uses the closed form only for a loss that says what it is: an
``output_loss`` that *is* a :mod:`hesscli.losses` loss (:func:`hesscli.losses.closed_form`),
never one recognized by its values or its name. The same knowledge makes the
GGN positive semidefinite by construction (:func:`known_output_hessian`) and
names the Fisher's likelihood (:mod:`hesscli.curvature.fisher`), both without
probing the loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hesscli.jaxconf import jax_module
from hesscli.losses import SoftmaxCrossEntropy, closed_form
from hesscli.objective.files import ModelSplit


def output_hessian_product(output_loss: Any, outputs: Any, targets: Any) -> Any:
    """``u -> ∇²ℓ(outputs) u`` with ``ℓ = output_loss(·, targets)``: in closed form
    for a :mod:`hesscli.losses` loss, else by linearizing ``∇ℓ`` at ``outputs``."""
    known = closed_form(output_loss)
    if known is not None:
        return known.hessian_product(outputs, targets)
    jax = jax_module()
    _, h_out = jax.linearize(jax.grad(lambda out: output_loss(out, targets)), outputs)
    return h_out


def describe_product(output_loss: Any) -> str:
    """How :func:`output_hessian_product` applies ``H_ℓ`` (for the GGN's notes)."""
    known = closed_form(output_loss)
    if known is None:
        return "one output-loss HVP"
    return (f"one closed-form output-Hessian product (diag p − ppᵀ per position of the "
            f"{known.reduction} softmax cross-entropy, never formed)")


def known_output_hessian(split: ModelSplit, unravel: Any, x: Any, dtype: str) -> Any:
    """The :class:`~hesscli.curvature.split.OutputHessian` facts of a closed-form loss
    (no probes), or None when the loss is not one or its curvature is not known
    to be PSD from its targets alone.

    Softmax cross-entropy: each position's block is ``scale·s·(diag p − ppᵀ)``
    with ``s = Σ_c t_c`` the target mass (1 for integer labels). ``diag p − ppᵀ``
    is PSD (``uᵀ(diag p − ppᵀ)u`` is the variance of u under p), singular
    (``(diag p − ppᵀ)·1 = 0``) and at most ½ in norm (a variance of a unit
    vector's entries), so for ``s ≥ 0`` at every position λmin = 0 exactly and
    ``lambda_max`` is the bound ``scale·max(s)/2``. Target rows with some
    negative mass return None (the generic probes decide).
    """
    known = closed_form(split.output_loss)
    if not isinstance(known, SoftmaxCrossEntropy):
        return None
    from hesscli.curvature.split import OutputHessian

    jax = jax_module()
    shape = jax.eval_shape(lambda t: split.model(unravel(t), split.inputs),
                           jax.ShapeDtypeStruct(np.shape(x), jax.numpy.dtype(dtype)))
    if not hasattr(shape, "shape"):
        return None  # the loss call itself will say what is wrong with these outputs
    targets = split.targets
    labels = known.integer_labels(shape, targets)
    mass = 1.0
    if not labels:
        sums = np.sum(np.asarray(targets, dtype=np.float64), axis=-1)
        if sums.size and not float(sums.min()) >= 0.0:
            return None
        mass = float(sums.max()) if sums.size else 0.0
    size = int(np.prod(shape.shape, dtype=np.int64))
    return OutputHessian(
        lambda_min=0.0, lambda_max=known.scale(shape) * mass / 2.0, tolerance=0.0, exact=True,
        how="in closed form as diag p − ppᵀ per position of hesscli.losses.softmax_cross_entropy",
        outputs=size)
