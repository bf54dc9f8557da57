"""The spectrum at a point: one policy, one entry point, used by every command.

:class:`SpectrumPolicy` says how to get the Hessian's spectrum (the path
request, and for the matrix-free path how many eigenpairs at each end, which
eigensolver, its residual target, its step budget and its seed);
:func:`spectrum_at` applies it: the path is chosen once by the dense budget
(:func:`hesscli.spectra.route.choose_path`: a fixed dense budget, never the
free memory of the moment), then either the dense Hessian's
eigenvalues (:func:`hesscli.spectra.spectrum.dense_spectrum`) or the
matrix-free extremes (:func:`hesscli.spectra.matrix_free.extremes_of`, whose
residuals become the spectrum's error band).

``analyze``, ``spectrum``, ``check``, ``convexity``'s eigenvalue test,
``landscape`` and ``train``'s curvature monitor all come through here, so an
objective too large for the dense path goes matrix-free in every command alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.curvature.base import Curvature, ensure_finite
from hesscli.objective.layout import Layout
from hesscli.spectra.lanczos import Extremes, Target
from hesscli.spectra.route import Budget, PathChoice, choose_path, dense_budget
from hesscli.spectra.spectrum import Spectrum, dense_spectrum
from hesscli.vocab import (
    EigensolverRequest,
    Ends,
    Method,
    PathRequest,
    SpectrumPath,
    StopRule,
    words,
)


@dataclass(frozen=True)
class SpectrumPolicy:
    """How to compute the spectrum at a point.

    ``path`` is auto|dense|matrix-free (``--dense``/``--matrix-free``; auto: by
    the dense budget). The rest applies to the matrix-free path: ``k``
    eigenpairs at each end, ``solver`` auto|lanczos|restarted|arpack (auto:
    :func:`hesscli.spectra.matrix_free.choose_solver`), at most ``max_steps``
    HVPs per run (None: the solver's budget), start vectors from ``seed``,
    ``ends`` both|min|max that must meet the target, and ``stop``, the target
    itself: ``"verdict"`` (what ``analyze`` and ``spectrum`` need: each
    eigenvalue to ``rtol``·max|λ|, default 1e-3, by the Kato–Temple estimate,
    and the sign of λmin decided; :meth:`~hesscli.spectra.lanczos.Target.verdict`)
    or ``"residual"`` (the certified residual ‖Hv − θv‖ ≤ rtol·max|λ|, default
    1e-6, for callers that use the eigenvectors or track the values closely:
    landscape, the training monitor, convexity).
    ``dense_budget`` is ``--dense-budget`` (a size such as ``1GiB``, or bytes;
    None: ``$HESSCLI_DENSE_BUDGET`` or the default, see :mod:`hesscli.spectra.route`).
    """

    path: str = PathRequest.AUTO
    k: int = 1
    solver: str = EigensolverRequest.AUTO
    rtol: float | None = None
    max_steps: int | None = None
    seed: int = 0
    dense_budget: str | int | None = None
    ends: str = Ends.BOTH
    stop: str = StopRule.RESIDUAL

    def __post_init__(self) -> None:
        # checked here, not only on the matrix-free path: from Python a misspelt ends or
        # eigensolver was otherwise accepted silently whenever the dense path ran
        from hesscli.errors import InputError

        if self.ends not in words(Ends):
            raise InputError(f"--ends must be one of {', '.join(words(Ends))}; "
                             f"got {self.ends!r}")
        if self.solver not in words(EigensolverRequest):
            raise InputError(f"unknown eigensolver {self.solver!r}; choose one of "
                             f"{', '.join(words(EigensolverRequest))}")

    def target(self, dtype: str) -> Target:
        """The eigensolver's stopping rule for ``dtype``."""
        if self.stop == StopRule.VERDICT:
            return Target.verdict(dtype, self.rtol)
        return Target.residual(dtype, self.rtol)

    @property
    def budget(self) -> Budget:
        return dense_budget(self.dense_budget)

    @property
    def dense_limit(self) -> int:
        """The largest n this policy takes the dense path for (auto)."""
        return self.budget.limit


@dataclass(frozen=True)
class PointSpectrum:
    """A spectrum, the path choice behind it, and the matrix-free run (None when dense).

    ``notes`` say why the matrix-free path was taken (empty on the dense path).
    """

    spectrum: Spectrum
    choice: PathChoice
    extremes: Extremes | None = None

    @property
    def notes(self) -> tuple[str, ...]:
        return (self.choice.reason,) if self.choice.path == SpectrumPath.MATRIX_FREE else ()


def choose(n: int, policy: SpectrumPolicy) -> PathChoice:
    """The path ``policy`` takes for n parameters (raises InputError for an impossible --dense)."""
    return choose_path(n, policy.path, budget=policy.budget)


def spectrum_at(
    curvature: Curvature, x: np.ndarray, layout: Layout | None = None,
    policy: SpectrumPolicy = SpectrumPolicy(), *, vectors: bool = True,
    choice: PathChoice | None = None, progress: Any = None,
) -> PointSpectrum:
    """The Hessian's spectrum at ``x`` by ``policy`` (see the module docstring).

    ``vectors=False`` is for callers that only need the eigenvalues (the
    training monitor): the dense path then skips the eigenvectors (one LAPACK
    ``eigvalsh``) and the spectrum's ``vec_min``/``vec_max`` are empty.
    ``choice`` reuses a path already chosen for this objective. ``progress``
    reaches the matrix-free eigensolver (``{hvps, restarts, bound_min,
    bound_max}`` while it runs; see :func:`hesscli.spectra.matrix_free.extremes_of`).
    """
    x = np.asarray(x)
    choice = choice or choose(int(x.size), policy)
    if choice.path == SpectrumPath.DENSE:
        if vectors:
            return PointSpectrum(dense_spectrum(curvature, x, layout), choice)
        hess = curvature.hessian(x)
        ensure_finite(hess.matrix, "Hessian", layout)
        import scipy.linalg

        lam = scipy.linalg.eigh(hess.matrix, eigvals_only=True, check_finite=False)
        empty = np.zeros(0)
        return PointSpectrum(
            Spectrum(np.asarray(lam, dtype=np.float64), True, empty, empty,
                     symmetry_error=hess.symmetry_error, error=hess.error, kinks=hess.kinks,
                     evaluations=hess.evaluations),
            choice,
        )
    from hesscli.spectra.matrix_free import extremes_of, matrix_free_spectrum

    ex = extremes_of(curvature, x, k=policy.k, seed=policy.seed, solver=policy.solver,
                     max_steps=policy.max_steps, ends=policy.ends,
                     target=policy.target(curvature.dtype), progress=progress)
    differenced = curvature.method == Method.FD
    return PointSpectrum(matrix_free_spectrum(ex, curvature.dtype, differenced), choice, ex)

