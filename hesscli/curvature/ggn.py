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
(:func:`psd_reason`).

``G v`` is one Jacobian-vector product of the model, one HVP of the output
loss (small: the outputs' size) and one vector-Jacobian product — J is never
formed. :func:`ggn_at` linearizes the model once per point
(``jax.linearize``) and transposes that linearization
(``jax.linear_transpose``), so every matvec at the point (a Lanczos run, the
n columns of the dense matrix) reuses the forward pass.

:class:`OperatorCurvature` puts such an operator behind the backend interface
(value and gradient still those of the objective), so the dense path (n
matvecs), Lanczos, SLQ and Hutchinson work on it unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from hesscli.curvature.base import Curvature, DenseHessian, OperatorAt, symmetrize
from hesscli.curvature.split import OutputHessian, flat_model
from hesscli.errors import HesscliError, InputError, ObjectiveError, closest
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import Objective
from hesscli.objective.files import ModelSplit
from hesscli.vocab import CurvatureKind, Method

KINDS = (CurvatureKind.HESSIAN, CurvatureKind.GGN, CurvatureKind.FISHER,
         CurvatureKind.EMPIRICAL_FISHER)  # what --curvature accepts
TITLES = {
    CurvatureKind.HESSIAN: "Hessian",
    CurvatureKind.GGN: "GGN",
    CurvatureKind.FISHER: "Fisher",
    CurvatureKind.EMPIRICAL_FISHER: "empirical Fisher",
    CurvatureKind.RESIDUAL: "Hessian − GGN",
    CurvatureKind.DIFFERENCE: "difference",
}
PSD_REASON = {  # matrices PSD whatever the point (the GGN's: psd_reason, from H_ℓ)
    "fisher": "the Fisher Jᵀ F_out J of a Gaussian or categorical likelihood is positive "
    "semidefinite by construction",
    "empirical-fisher": "the empirical Fisher (1/N)Σgᵢgᵢᵀ is positive semidefinite by "
    "construction",
}


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


def hessian_at(f: Any) -> OperatorAt:
    """``x -> (v -> H(x) v)`` by linearizing ∇f once per point (forward-over-reverse):
    the exact backend's :func:`~hesscli.curvature.exact.linearized_hvp`, whose
    linearizer compiles once for every point of the same shape."""
    from hesscli.curvature.exact import linearized_hvp

    return OperatorAt(lambda x: functools.partial(linearized_hvp(f, x), x))


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


def psd_reason(kind: str, facts: OutputHessian | None = None) -> str:
    """Whether the matrix ``kind`` is PSD, and why: for the GGN, read from ``facts``."""
    if kind != "ggn":
        return PSD_REASON.get(kind, f"the {TITLES.get(kind, kind)} is not the Hessian")
    if facts is None:
        return ("the GGN JᵀH_ℓJ is positive semidefinite only where the output loss is convex "
                "in the outputs, which was not checked here; it may be indefinite")
    lam = f"λmin(H_ℓ) = {facts.lambda_min:.4g}"
    if facts.psd:
        zero = " (zero up to rounding)" if facts.lambda_min < 0 else ""
        return ("the GGN JᵀH_ℓJ is positive semidefinite by construction (the output loss is "
                f"convex in the outputs here: {lam}{zero}, H_ℓ computed {facts.how})")
    if facts.psd is False:
        return ("the GGN JᵀH_ℓJ is NOT guaranteed positive semidefinite here: the output loss "
                f"is not convex in the outputs ({lam} < 0, H_ℓ computed {facts.how}), so the "
                "GGN may be indefinite; its negative eigenvalues are the output loss's "
                "negative curvature, not evidence of a saddle")
    return ("the GGN JᵀH_ℓJ is not known to be positive semidefinite here: H_ℓ has no "
            f"per-sample block structure and {facts.outputs} outputs, and {facts.how[3:]} "
            f"found no negative curvature (smallest Ritz value {facts.lambda_min:.4g}) but "
            "cannot prove the output loss convex; the GGN may be indefinite")


class OperatorCurvature(Curvature):
    """A curvature matrix given as an :class:`OperatorAt`, behind the backend interface.

    ``hvp``/``hvp_fn``/``hessian`` are the *operator's* matvec and dense
    matrix, and ``linearizable`` is the operator itself (the eigensolvers
    linearize it once per point); value and gradient (and anything else the
    base backend offers, such as its compiled gradient) are the base backend's,
    so training and step predictions keep working on the same objective.
    ``kind`` names the matrix (``ggn``, ``fisher``, ``empirical-fisher``,
    ``residual``, ``difference``); ``notes`` say how it was computed.
    ``output_hessian``: for the GGN, the output loss's Hessian at the point
    (:class:`OutputHessian`: is the GGN PSD here?), else None.
    """

    def __init__(self, base: Curvature, kind: str, operator_at: OperatorAt,
                 notes: tuple[str, ...] = (),
                 output_hessian: OutputHessian | None = None) -> None:
        jax = jax_module()
        self.base = base
        self.method = base.method
        self.kind = kind
        self.n = base.n
        self.dtype = base.dtype
        self.parallel = base.parallel
        self.operator_at = operator_at
        self.linearizable = operator_at
        self.notes = notes
        self.output_hessian = output_hessian
        self.hvp_mode = f"{kind} operator (linearized once per point)"
        self.hvp_fn = jax.jit(lambda x, v: operator_at(x)(v))
        self._example = jax.ShapeDtypeStruct((self.n,), jax.numpy.dtype(self.dtype))
        self._hessian_fn: Any = None

    def __getattr__(self, name: str) -> Any:
        # what only the base backend has (its objective, compiled gradient, ...)
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def value(self, x: np.ndarray) -> float:
        return self.base.value(x)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.base.gradient(x)

    def value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return self.base.value_and_gradient(x)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``M(x) v`` as float64 NumPy."""
        return np.asarray(self.hvp_fn(np.asarray(x, self.dtype), np.asarray(v, self.dtype)),
                          dtype=np.float64)

    @property
    def hessian_fn(self) -> Any:
        """Jitted ``x -> M(x)``: the operator linearized once, applied to the n basis vectors."""
        if self._hessian_fn is None:
            from hesscli.curvature.exact import hvp_batch_size

            jax = jax_module()
            jnp = jax.numpy
            n, dt = self.n, jnp.dtype(self.dtype)
            chunk = hvp_batch_size(self.hvp_fn, self._example, n)
            operator_at = self.operator_at

            def dense(x: Any) -> Any:
                op = operator_at(x)
                return jax.lax.map(lambda i: op(jax.nn.one_hot(i, n, dtype=dt)),
                                   jnp.arange(n), batch_size=min(chunk, n))

            self._hessian_fn = jax.jit(dense)
        return self._hessian_fn

    def hessian(self, x: np.ndarray) -> DenseHessian:
        """The dense matrix, symmetrized (its asymmetry is rounding only: reported as 0)."""
        matrix = np.asarray(self.hessian_fn(np.asarray(x, self.dtype)), dtype=np.float64)
        sym, _ = symmetrize(matrix)
        return DenseHessian(sym, symmetry_error=0.0)


def require_split(obj: Objective, kind: str) -> ModelSplit:
    """The file's model split, or an :class:`InputError` saying how to write one."""
    split = obj.file.split
    if split is None:
        name = obj.file.path.name
        raise InputError(
            f"--curvature {kind} needs a model split in {name}: define model(params, inputs), "
            "output_loss(outputs, targets) (the mean loss over the batch) and "
            "data = (inputs, targets); see problems/classifier.py"
        )
    return split


def checked(curvature: OperatorCurvature, obj: Objective) -> OperatorCurvature:
    """Trace the operator once (``lower``, no compilation) so that a model JAX cannot
    linearize fails here with one clear line instead of deep inside a solver.

    Forward mode refused (``jax.custom_vjp`` in the model) is an
    :class:`InputError` (exit 2: choose another curvature); anything else the
    user's functions raise while traced is an :class:`ObjectiveError` (exit 3).
    """
    from hesscli.objective.files import describe_exception

    name = obj.file.path.name
    try:
        curvature.hvp_fn.lower(curvature._example, curvature._example)
    except HesscliError:
        raise
    except TypeError as exc:
        raise InputError(
            f"--curvature {curvature.kind}: JAX cannot linearize {name}'s model in forward "
            f"mode ({describe_exception(exc)[:200]}); the GGN and Fisher need jax.linearize "
            "of the model (a jax.custom_vjp rule blocks it): use --curvature hessian"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - the user's model or loss failed when traced
        raise ObjectiveError(
            f"{name}: building the {TITLES.get(curvature.kind, curvature.kind)} matvec raised "
            f"{describe_exception(exc)}"
        ) from exc
    return curvature


def operator_curvature(obj: Objective, base: Any, kind: str) -> Any:
    """The backend for ``--curvature kind`` on top of the exact backend ``base``.

    ``hessian`` returns ``base`` itself. The others need a model split and
    exact derivatives (an :class:`InputError` otherwise); the residual
    (``H − G``, for the side-by-side comparison) is ``kind="residual"``.
    """
    if kind == "hessian":
        return base
    if kind not in (*KINDS, "residual"):  # "difference" is built by the comparison itself
        raise InputError(f"unknown curvature {kind!r}; choose from {', '.join(KINDS)}")
    if base.method != Method.EXACT or not obj.traceable:
        why = obj.why_untraceable or "--method fd"
        raise InputError(
            f"--curvature {kind} needs exact JAX derivatives of the model, but {why}; "
            "use --method exact (or auto) with a JAX model"
        )
    if base.parallel.sharded:
        raise InputError(f"--curvature {kind} runs on one device; use --devices 1")
    split = require_split(obj, kind)
    if kind in ("ggn", "residual"):
        op = ggn_at(split, obj.unravel)
        if kind == "residual":
            return checked(OperatorCurvature(
                base, kind, residual_at(hessian_at(obj.flat_fn), op),
                ("Hessian − GGN: the residual Σ(∂ℓ/∂m)·∇²m the GGN drops, matvec H v − G v",),
            ), obj)
        ggn = checked(OperatorCurvature(base, kind, op), obj)
        facts = output_hessian_of(obj, split)
        ggn.output_hessian = facts
        from hesscli.curvature.closed_form import describe_product

        ggn.notes = (
            f"GGN: Jᵀ(∇²ℓ)J v by one jvp of the model, {describe_product(split.output_loss)} "
            "and one vjp per matvec (J never formed)",
            psd_reason(kind, facts),
        )
        return ggn
    from hesscli.curvature.fisher import empirical_fisher_at, fisher_at, likelihood_of

    if kind == "fisher":
        likelihood = likelihood_of(obj, split)
        return checked(OperatorCurvature(base, kind, fisher_at(split, obj.unravel, likelihood), (
            f"Fisher of the {likelihood.describe()}: Jᵀ F_out J v with the closed-form "
            "output-space Fisher per sample", psd_reason(kind))), obj)
    return checked(OperatorCurvature(base, kind, empirical_fisher_at(obj, split), (
        f"empirical Fisher (1/N)Σ gᵢgᵢᵀ over N = {split.samples} per-sample gradients, "
        "as a matvec (one jvp and one vjp of the per-sample losses)", psd_reason(kind))), obj)


def output_hessian_of(obj: Objective, split: ModelSplit) -> OutputHessian | None:
    """:func:`output_hessian` at the objective's point; the user's functions failing
    there is an :class:`ObjectiveError` (exit 3)."""
    from hesscli.objective.files import describe_exception

    try:
        return output_hessian(split, obj.unravel, obj.x, obj.dtype)
    except HesscliError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model or loss failed
        raise ObjectiveError(
            f"{obj.file.path.name}: the output loss's Hessian in the outputs (is the GGN "
            f"PSD here?) raised {describe_exception(exc)}"
        ) from exc


def parse_kinds(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"hessian,ggn"`` (or, from Python, ``["hessian", "ggn"]``) -> ("hessian", "ggn");
    unknown or repeated names are input errors."""
    if isinstance(text, (list, tuple)):
        text = ",".join(str(k) for k in text)
    kinds = tuple(CurvatureKind(k.strip()) if k.strip() in KINDS else k.strip()
                  for k in text.split(",") if k.strip())
    if not kinds:
        raise InputError(f"--curvature {text!r}: name one of {', '.join(KINDS)}")
    for kind in kinds:
        if kind not in KINDS:
            hint = closest(kind, [str(k) for k in KINDS])
            raise InputError(f"--curvature: unknown curvature {kind!r}{hint}; "
                             f"choose from {', '.join(KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise InputError(f"--curvature {text!r}: each curvature at most once")
    return kinds


def single_kind(text: str) -> str:
    """One curvature name (commands that report one spectrum)."""
    kinds = parse_kinds(text)
    if len(kinds) > 1:
        raise InputError(f"--curvature {text!r}: this command takes one curvature; "
                         "'hesscli spectrum' compares several side by side")
    return kinds[0]
