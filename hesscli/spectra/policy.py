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

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hesscli.curvature.base import Curvature, ensure_finite
from hesscli.objective.layout import Layout
from hesscli.spectra.certify import Extremes, Solve, Target
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
    and the sign of λmin decided; :meth:`~hesscli.spectra.certify.Target.verdict`)
    or ``"residual"`` (the certified residual ‖Hv − θv‖ ≤ rtol·max|λ|, default
    1e-6, for callers that use the eigenvectors or track the values closely:
    landscape, the training monitor, convexity).
    ``dense_budget`` is ``--dense-budget``, parsed once when the policy is built
    (a size such as ``1GiB``, or bytes, becomes a :class:`~hesscli.spectra.route.Budget`;
    a malformed size is :class:`~hesscli.errors.InputError` here, before any work);
    None: ``$HESSCLI_DENSE_BUDGET`` or the default, read when the path is chosen
    (see :mod:`hesscli.spectra.route`). A command's API function builds one policy
    from its arguments and passes it down: the path is chosen from it once
    (:func:`choose`) and the solvers read their settings from it.
    """

    path: str = PathRequest.AUTO
    k: int = 1
    solver: str = EigensolverRequest.AUTO
    rtol: float | None = None
    max_steps: int | None = None
    seed: int = 0
    dense_budget: Budget | str | int | None = None
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
        if self.dense_budget is not None and not isinstance(self.dense_budget, Budget):
            object.__setattr__(self, "dense_budget", dense_budget(self.dense_budget))

    def target(self, dtype: str) -> Target:
        """The eigensolver's stopping rule for ``dtype``."""
        if self.stop == StopRule.VERDICT:
            return Target.verdict(dtype, self.rtol)
        return Target.residual(dtype, self.rtol)

    def solve(self, dtype: str) -> Solve:
        """What the matrix-free eigensolver is asked for, in ``dtype``."""
        return Solve(k=self.k, seed=self.seed, target=self.target(dtype),
                     max_steps=self.max_steps, ends=self.ends)

    def resolved(self) -> SpectrumPolicy:
        """This policy with its dense budget fixed now (None: the environment's or the
        default), so that every later choice of path reads the same bytes."""
        if isinstance(self.dense_budget, Budget):
            return self
        return replace(self, dense_budget=self.budget)

    @property
    def budget(self) -> Budget:
        """The dense budget: the one parsed when the policy was built, else (None) the
        environment's or the default, read now."""
        if isinstance(self.dense_budget, Budget):
            return self.dense_budget
        return dense_budget()

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


class HessianOnce:
    """While in force, ``curvature.hessian(x)`` forms the dense Hessian once per point.

    A command that needs the dense Hessian at one point several times (``analyze``:
    the spectrum, then ``--blocks``, ``--null-space`` and ``--preconditioner``; ``train``:
    the monitor's last record, then the final verdict at the same point) reuses the one
    it formed: the last point's :class:`~hesscli.curvature.base.DenseHessian` is kept
    (one at a time, so memory stays one matrix) and handed back while ``x`` is equal
    to it. :meth:`release` (or leaving the ``with`` block) restores the backend's
    own method and drops the matrix, so a backend kept in a result holds none.
    """

    def __init__(self, curvature: Curvature) -> None:
        self.curvature = curvature
        own = getattr(curvature, "__dict__", {})
        self._own = "hessian" in own  # already shadowed (nested): keep it
        self._formed = curvature.hessian
        self._last: tuple[np.ndarray, Any] | None = None
        try:
            curvature.hessian = self._hessian  # type: ignore[method-assign]
        except AttributeError:  # a backend without an instance dict: it forms each time
            pass

    def _hessian(self, x: np.ndarray) -> Any:
        x = np.asarray(x)
        last = self._last
        if last is not None and last[0].shape == x.shape and np.array_equal(last[0], x):
            return last[1]
        hess = self._formed(x)
        self._last = (x.copy(), hess)
        return hess

    def release(self) -> None:
        """The backend's own ``hessian`` back, the kept matrix dropped (idempotent)."""
        self._last = None
        if getattr(self.curvature, "__dict__", {}).get("hessian") == self._hessian:
            if self._own:
                self.curvature.hessian = self._formed  # type: ignore[method-assign]
            else:
                del self.curvature.hessian

    def __enter__(self) -> HessianOnce:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


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

    ex = extremes_of(curvature, x, policy.solve(curvature.dtype), solver=policy.solver,
                     progress=progress)
    differenced = curvature.method == Method.FD
    return PointSpectrum(matrix_free_spectrum(ex, curvature.dtype, differenced), choice, ex)

