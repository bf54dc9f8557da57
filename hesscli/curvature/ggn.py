"""Gauss–Newton curvature and the Hessian's residual, from a model split, matrix-free.

With ``objective(θ) = ℓ(m(θ))`` (``m = model(·, inputs)``, ``ℓ =
output_loss(·, targets)``) the Hessian splits as

    H = Jᵀ H_ℓ J + Σ_o (∂ℓ/∂m_o) ∇²m_o  =  G + R,

with ``J = ∂m/∂θ`` and ``H_ℓ = ∇²ℓ`` in the outputs. The generalized
Gauss–Newton matrix ``G`` (Schraudolph 2002; Martens 2020) is positive
semidefinite whenever ℓ is convex in the outputs (squared error,
cross-entropy on logits) whatever the model, and only then: with a loss that is
not (−squared error, a cosine loss) ``G`` may be indefinite. The residual ``R``
carries the model's own curvature weighted by the output gradient; when ``H_ℓ``
is PSD it holds all the negative curvature a saddle has.

Whether ``H_ℓ`` is PSD at the point is checked, not assumed
(:func:`output_hessian`): ``H_ℓ`` is small, and for a loss that is a mean of
per-sample terms it is block diagonal (one C×C block per sample, C outputs per
sample), so C HVPs of the output loss give every block, one more random HVP
confirms the block structure, and the blocks' eigenvalues decide. The notes
say "positive semidefinite by construction" only when they do
(:func:`hesscli.curvature.operators.psd_reason`).

``G v`` is one Jacobian-vector product of the model, one HVP of the output
loss (small: the outputs' size) and one vector-Jacobian product — J is never
formed. :func:`ggn_at` linearizes the model once per point
(``jax.linearize``) and transposes that linearization
(``jax.linear_transpose``), so every matvec at the point (a Lanczos run, the
n columns of the dense matrix) reuses the forward pass.

:mod:`hesscli.curvature.operators` puts this operator (and the Fisher's) behind the
backend interface.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hesscli.curvature.base import OperatorAt
from hesscli.curvature.split import OutputHessian, flat_model
from hesscli.jaxconf import jax_module
from hesscli.objective.files import ModelSplit


def ggn_at(split: ModelSplit, unravel: Any) -> OperatorAt:
    """``x -> (v -> G(x) v)`` with ``G = Jᵀ H_ℓ J`` (see module docstring).

    One ``jax.linearize`` of the model and of the output loss's gradient per
    point; per matvec one jvp (the linearized model), one output-space HVP and
    one vjp (its transpose). The output-space HVP is in closed form for a
    :mod:`hesscli.losses` loss (:mod:`hesscli.curvature.closed_form`).
    """
    from hesscli.curvature.closed_form import output_hessian_product

    jax = jax_module()
    model = flat_model(split, unravel)

    def at(x: Any) -> Any:
        out, jvp = jax.linearize(model, x)
        vjp = jax.linear_transpose(jvp, x)
        h_out = output_hessian_product(split.output_loss, out, split.targets)
        return lambda v: vjp(h_out(jvp(v)))[0]

    return OperatorAt(at)


def residual_at(hessian: OperatorAt, ggn: OperatorAt) -> OperatorAt:
    """``x -> (v -> H v − G v)``: the residual term Σ (∂ℓ/∂m_o) ∇²m_o the GGN drops."""

    def at(x: Any) -> Any:
        h, g = hessian(x), ggn(x)
        return lambda v: h(v) - g(v)

    return OperatorAt(at)


# ---- is the GGN PSD here? the output loss's Hessian H_ℓ at the point ----------------

BLOCK_LIMIT = 256  # largest per-sample block C (C HVPs of the output loss)
BLOCK_ENTRIES = 1 << 22  # N·C² entries held for the N blocks
DENSE_OUTPUTS = 512  # without block structure: H_ℓ formed densely up to this many outputs
KRYLOV_STEPS = 40  # else: this many Lanczos steps on H_ℓ, which can only refute PSD
KRYLOV_BYTES = 1 << 30  # ... holding 2·KRYLOV_STEPS float64 vectors of the outputs' size:
# above this (large-vocabulary logits) H_ℓ is not probed at all


def output_hessian(split: ModelSplit, unravel: Any, x: Any,
                   dtype: str) -> OutputHessian | None:
    """``H_ℓ``'s extreme eigenvalues at ``x`` (see module docstring).

    A :mod:`hesscli.losses` loss has it in closed form, no probes
    (:func:`~hesscli.curvature.closed_form.known_output_hessian`). Otherwise
    per-sample blocks when the outputs are one array whose leading axis is the
    samples and a random HVP confirms ``H_ℓ`` is block diagonal (C + 1 HVPs of
    the output loss); else dense up to :data:`DENSE_OUTPUTS` outputs; else
    :data:`KRYLOV_STEPS` Lanczos steps, which can refute PSD but not prove it;
    None (not checked) when those would hold more than :data:`KRYLOV_BYTES`.
    """
    jax = jax_module()
    jnp = jax.numpy
    from jax.flatten_util import ravel_pytree

    from hesscli.curvature.closed_form import known_output_hessian
    from hesscli.jaxconf import eps

    known = known_output_hessian(split, unravel, x, dtype)
    if known is not None:
        return known

    out = split.model(unravel(jnp.asarray(x, dtype)), split.inputs)
    flat, unflatten = ravel_pytree(out)
    size = int(flat.size)
    out_dtype = np.dtype(flat.dtype)  # the outputs' (data in float64 keeps them float64)

    def loss(o: Any) -> Any:
        return split.output_loss(unflatten(o), split.targets)

    grad = jax.grad(loss)
    hvps = jax.jit(jax.vmap(lambda u: jax.jvp(grad, (flat,), (u,))[1]))
    rounding = 100.0 * max(eps(dtype), eps(out_dtype.name))

    def facts(lam: np.ndarray, exact: bool, how: str, width: int) -> OutputHessian:
        top = float(np.max(np.abs(lam))) if lam.size else 0.0
        return OutputHessian(float(lam.min()), float(lam.max()),
                             rounding * max(1.0, np.sqrt(width)) * top, exact, how, size)

    leading = getattr(out, "shape", ())
    samples = int(leading[0]) if len(leading) >= 1 else 0
    width = size // samples if samples else 0
    if samples >= 2 and 0 < width <= BLOCK_LIMIT and samples * width * width <= BLOCK_ENTRIES:
        # comb probes: probe c is 1 at output c of every sample; block-diagonal H_ℓ maps
        # it to column c of every sample's block
        combs = np.tile(np.eye(width, dtype=out_dtype), (1, samples))
        rng = np.random.default_rng(0)
        probe = rng.standard_normal(size).astype(out_dtype)
        both = np.asarray(hvps(jnp.asarray(np.vstack([combs, probe[None]]))), np.float64)
        blocks = both[:width].reshape(width, samples, width).transpose(1, 2, 0)
        blocks = 0.5 * (blocks + blocks.transpose(0, 2, 1))
        predicted = np.einsum("ncd,nd->nc", blocks, probe.reshape(samples, width)).reshape(-1)
        actual = both[width]
        bound = 1e3 * eps(out_dtype.name) * max(float(np.linalg.norm(actual)),
                                        float(np.abs(blocks).max()) * float(np.linalg.norm(probe)))
        if float(np.linalg.norm(actual - predicted)) <= bound:
            lam = np.linalg.eigvalsh(blocks).reshape(-1)
            return facts(lam, True, f"as {samples} per-sample {width}×{width} blocks", width)
    if size <= DENSE_OUTPUTS:
        dense = np.asarray(hvps(jnp.eye(size, dtype=out_dtype)), np.float64)
        lam = np.linalg.eigvalsh(0.5 * (dense + dense.T))
        return facts(lam, True, f"as one dense {size}×{size} matrix", size)
    if 2 * KRYLOV_STEPS * size * 8 > KRYLOV_BYTES:
        return None
    return facts(_krylov_ritz(lambda u: np.asarray(hvps(jnp.asarray(u[None], out_dtype))[0],
                                                    np.float64), size),
                 False, f"by {KRYLOV_STEPS} Lanczos steps", size)


def _krylov_ritz(matvec: Any, size: int) -> np.ndarray:
    """Ritz values of a symmetric operator on a Krylov space (full reorthogonalization)."""
    rng = np.random.default_rng(0)
    q = rng.standard_normal(size)
    basis = [q / np.linalg.norm(q)]
    images = []
    for _ in range(min(KRYLOV_STEPS, size)):
        w = matvec(basis[-1])
        images.append(w)
        q_mat = np.array(basis)
        w = w - q_mat.T @ (q_mat @ w)
        w = w - q_mat.T @ (q_mat @ w)
        norm = float(np.linalg.norm(w))
        if norm <= 1e-12 * max(float(np.linalg.norm(images[-1])), 1e-300):
            break
        basis.append(w / norm)
    q_mat = np.array(basis[: len(images)])
    small = q_mat @ np.array(images).T
    return np.linalg.eigvalsh(0.5 * (small + small.T))
