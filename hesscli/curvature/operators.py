"""The operator backend for every curvature kind, and the kinds' names.

:class:`OperatorCurvature` puts a curvature matrix given as an
:class:`~hesscli.curvature.base.OperatorAt` (the GGN of :mod:`hesscli.curvature.ggn`,
the Fisher matrices of :mod:`hesscli.curvature.fisher`, the Hessian's residual, the
difference of two matrices) behind the backend interface (value and gradient still
those of the objective), so the dense path (n matvecs), Lanczos, SLQ and Hutchinson
work on it unchanged. :func:`operator_curvature` is the one function that builds
these backends from ``--curvature``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hesscli.curvature.base import Curvature, DenseHessian, DerivedMatrix, OperatorAt, symmetrize
from hesscli.curvature.exact import hessian_at
from hesscli.curvature.ggn import ggn_at, output_hessian, residual_at
from hesscli.curvature.split import OutputHessian
from hesscli.errors import InputError, closest, describe_exception, user_code
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
    CurvatureKind.FISHER: "the Fisher Jᵀ F_out J of a Gaussian or categorical likelihood is "
    "positive semidefinite by construction",
    CurvatureKind.EMPIRICAL_FISHER: "the empirical Fisher (1/N)Σgᵢgᵢᵀ is positive semidefinite by "
    "construction",
}


def psd_reason(kind: CurvatureKind, facts: OutputHessian | None = None) -> str:
    """Whether the matrix ``kind`` is PSD, and why: for the GGN, read from ``facts``."""
    if kind != CurvatureKind.GGN:
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


class OperatorCurvature(DerivedMatrix):
    """A curvature matrix given as an :class:`OperatorAt`, behind the backend interface.

    ``hvp``/``hvp_fn``/``hessian`` are the *operator's* matvec and dense
    matrix, and ``linearizable`` is the operator itself (the eigensolvers
    linearize it once per point); value and gradient are the base backend's
    (``base``), so training and step predictions keep working on the same
    objective. Nothing else is forwarded: what callers read is declared on
    :class:`~hesscli.curvature.base.Curvature`.
    ``kind`` names the matrix (``ggn``, ``fisher``, ``empirical-fisher``,
    ``residual``, ``difference``); ``notes`` say how it was computed.
    ``output_hessian``: for the GGN, the output loss's Hessian at the point
    (:class:`OutputHessian`: is the GGN PSD here?), else None.
    """

    def __init__(self, base: Curvature, kind: CurvatureKind, operator_at: OperatorAt,
                 notes: tuple[str, ...] = (),
                 output_hessian: OutputHessian | None = None) -> None:
        jax = jax_module()
        self.base = base
        self.method = base.method
        self.kind = CurvatureKind(kind)
        self.n = base.n
        self.dtype = base.dtype
        self.parallel = base.parallel
        self.operator_at = operator_at
        self.linearizable = operator_at
        self.notes = notes
        self.output_hessian = output_hessian
        self.hvp_mode = f"{kind} operator (linearized once per point)"
        self.hvp_fn = jax.jit(lambda x, v: operator_at(x)(v))
        self.example = jax.ShapeDtypeStruct((self.n,), jax.numpy.dtype(self.dtype))  # to lower with
        self._hessian_fn: Any = None

    @property
    def hessian_fn(self) -> Any:
        """Jitted ``x -> M(x)``: the operator linearized once, applied to the n basis vectors."""
        if self._hessian_fn is None:
            from hesscli.curvature.exact import hvp_batch_size

            jax = jax_module()
            jnp = jax.numpy
            n, dt = self.n, jnp.dtype(self.dtype)
            chunk = hvp_batch_size(self.hvp_fn, self.example, n)
            operator_at = self.operator_at

            def dense(x: Any) -> Any:
                op = operator_at(x)
                return jax.lax.map(lambda i: op(jax.nn.one_hot(i, n, dtype=dt)),
                                   jnp.arange(n), batch_size=min(chunk, n))

            self._hessian_fn = jax.jit(dense)
        return self._hessian_fn

    def hessian(self, x: np.ndarray) -> DenseHessian:
        """The dense matrix, symmetrized (its asymmetry is rounding only: reported as 0)."""
        if self.host is not None:  # products outside compiled loops (host_products.py)
            from hesscli.curvature.exact import hvp_batch_size

            chunk = hvp_batch_size(self.direct_hvp_fn, self.example, self.n)
            matrix = self.host.dense(np.asarray(x, self.dtype), chunk)
        else:
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
    name = obj.file.path.name
    # a TypeError is JAX refusing forward mode (the InputError passes the outer block);
    # anything else the user's model or loss raised when traced is theirs
    with user_code(f"{name}: building the {TITLES.get(curvature.kind, curvature.kind)} matvec"):
        try:
            curvature.hvp_fn.lower(curvature.example, curvature.example)
        except TypeError as exc:
            raise InputError(
                f"--curvature {curvature.kind}: JAX cannot linearize {name}'s model in forward "
                f"mode ({describe_exception(exc)[:200]}); the GGN and Fisher need "
                "jax.linearize of the model (a jax.custom_vjp rule blocks it): use --curvature "
                "hessian"
            ) from exc
    return curvature


def operator_curvature(obj: Objective, base: Any, kind: CurvatureKind | str) -> Any:
    """The backend for ``--curvature kind`` on top of the exact backend ``base``.

    ``hessian`` returns ``base`` itself. The others need a model split and
    exact derivatives (an :class:`InputError` otherwise); the residual
    (``H − G``, for the side-by-side comparison) is ``kind="residual"``.
    """
    if kind == CurvatureKind.HESSIAN:
        return base
    # "difference" is built by the comparison itself
    if kind not in (*KINDS, CurvatureKind.RESIDUAL):
        raise InputError(f"unknown curvature {kind!r}; choose from {', '.join(KINDS)}")
    kind = CurvatureKind(kind)
    if base.method != Method.EXACT or not obj.traceable:
        why = obj.why_untraceable or "--method fd"
        raise InputError(
            f"--curvature {kind} needs exact JAX derivatives of the model, but {why}; "
            "use --method exact (or auto) with a JAX model"
        )
    if base.parallel.sharded:
        raise InputError(f"--curvature {kind} runs on one device; use --devices 1")
    split = require_split(obj, kind)
    if kind in (CurvatureKind.GGN, CurvatureKind.RESIDUAL):
        op = ggn_at(split, obj.unravel)
        if kind == CurvatureKind.RESIDUAL:
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

    if kind == CurvatureKind.FISHER:
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
    with user_code(f"{obj.file.path.name}: the output loss's Hessian in the outputs (is the "
                   "GGN PSD here?)"):
        return output_hessian(split, obj.unravel, obj.x, obj.dtype)


def parse_kinds(text: str | list[str] | tuple[str, ...]) -> tuple[CurvatureKind, ...]:
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


def single_kind(text: str) -> CurvatureKind:
    """One curvature name (commands that report one spectrum)."""
    kinds = parse_kinds(text)
    if len(kinds) > 1:
        raise InputError(f"--curvature {text!r}: this command takes one curvature; "
                         "'hesscli spectrum' compares several side by side")
    return kinds[0]
