"""What a matrix-free eigensolver run proves, and when it may stop.

Every solver (full-basis Lanczos, :mod:`hesscli.spectra.lanczos`; ARPACK,
:mod:`hesscli.spectra.arpack`; thick-restart Lanczos, :mod:`hesscli.spectra.restarted`)
is asked for the same thing, a :class:`Solve` (k pairs per end, the seed, a
:class:`Target` that says when to stop, the step budget, the ends), and returns the
same thing, an :class:`Extremes`. What the returned numbers mean is decided here,
the same for all of them: each reported vector is certified as the vector the HVP
actually receives (:func:`rayleigh_pairs`: its Rayleigh quotient and true residual
``‖Hv − θv‖`` in float64, so ``λmin ≤ θ ≤ λmax`` up to the HVP's rounding,
:mod:`hesscli.spectra.bounds`); the Kato–Temple value ``r²/gap`` with the Ritz gap is
an *estimate* (:func:`kato_temple`); an end has met its target when its measure is
within ``rtol·max|θ|`` and, for a verdict, the sign of λmin is decided
(:func:`sign_decided`); :func:`judge` is the host-side stopping test on Ritz
estimates and :func:`certify` the fields of an :class:`Extremes` from the certified
pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hesscli.jaxconf import eps
from hesscli.spectra.bounds import hvp_rounding
from hesscli.vocab import Eigensolver, Ends, ErrorMeasure


def default_rtol(dtype: str) -> float:
    """Relative residual target: 1e-6 (float64) or 1e-3 (float32).

    1e-6·‖H‖ resolves the small eigenvalues at the edge of a network's bulk
    without chasing rounding; float32 cannot orthogonalize much below
    ``√ε ≈ 3e-4``, so it stops at 1e-3.
    """
    return 1e-6 if dtype == "float64" else 1e-3


VERDICT_RTOL = 1e-3  # default target of the verdict-driven stop (relative to max|λ|)

# Lanczos steps from the random start before a verdict-driven stop: the probabilistic far
# sides (Kuczyński–Woźniakowski, hesscli.spectra.bounds) tighten like 1/k², and a verdict
# that needs one (stable, a minimum) is undetermined without it. 40 steps at n = 10⁶ put
# λmax within 3.3% of the spread with probability 0.998 (14 steps: 27%).
KRYLOV_FLOOR = 40


@dataclass(frozen=True)
class Target:
    """When an eigensolver may stop, and what ``converged`` means.

    ``rtol``: the error target relative to ``max|θ|``. ``estimate``: measure
    each eigenvalue's error by the Kato–Temple *estimate* ``min(r, r²/gap)``
    (gap to the nearest other Ritz value) instead of the certified residual
    bound ``r`` (Weyl): an eigenvalue is usually accurate to ``r²/gap`` long
    before ``r`` is small. ``sign``: the λmin end must also have its sign
    decided (see :func:`sign_decided`) — what a verdict needs from it.
    """

    rtol: float
    estimate: bool = False
    sign: bool = False
    krylov: int = 0  # Lanczos steps from the random start before it may stop

    def krylov_floor(self, n: int) -> int:
        """Steps from the random start before a stop, for dimension n: at most n/2, so
        that a small problem's basis does not span the space just for the bound."""
        return min(self.krylov, n // 2)

    @classmethod
    def residual(cls, dtype: str, rtol: float | None = None) -> Target:
        """Residual ‖Hv − θv‖ ≤ rtol·max|θ| (default :func:`default_rtol`): certified."""
        return cls(default_rtol(dtype) if rtol is None else rtol, False, False)

    @classmethod
    def verdict(cls, dtype: str, rtol: float | None = None) -> Target:
        """What a verdict needs: each eigenvalue to rtol·max|λ| (default
        :data:`VERDICT_RTOL`) by the Kato–Temple estimate, and the sign of λmin."""
        del dtype
        return cls(VERDICT_RTOL if rtol is None else rtol, True, True, KRYLOV_FLOOR)

    @property
    def measure(self) -> ErrorMeasure:
        return ErrorMeasure.KATO_TEMPLE if self.estimate else ErrorMeasure.RESIDUAL


@dataclass(frozen=True)
class Solve:
    """What one eigensolver run is asked for, whichever solver runs it.

    ``k`` eigenpairs at each end, start vectors from ``seed``, ``target`` (when to
    stop; None: :meth:`Target.residual` with ``rtol``), at most ``max_steps``
    products (None: the solver's budget), and ``ends`` (both|min|max) that must meet
    the target (the other end is still reported). A command's
    :class:`~hesscli.spectra.policy.SpectrumPolicy` gives it
    (:meth:`~hesscli.spectra.policy.SpectrumPolicy.solve`); the solvers
    (:func:`~hesscli.spectra.lanczos.lanczos_extremes`,
    :func:`~hesscli.spectra.arpack.arpack_extremes`,
    :func:`hesscli.spectra.restarted.restarted_extremes`,
    :func:`hesscli.spectra.matrix_free.extremes_of`) take it in place of loose
    keyword arguments, beside what is about the operator (its HVP, dtype, basis).
    """

    k: int = 3
    seed: int = 0
    target: Target | None = None
    rtol: float | None = None
    max_steps: int | None = None
    ends: str = "both"

    def target_for(self, dtype: str) -> Target:
        """The stopping rule: ``target``, else the certified residual to ``rtol``."""
        return self.target if self.target is not None else Target.residual(dtype, self.rtol)

DEFAULT_SOLVE = Solve()


def sign_decided(theta_min: float, bound: float, goal: float, n: int, dtype: str,
                 scale: float) -> bool:
    """Is the sign of λmin settled by a Ritz value θmin with error ``bound``?

    Negative: θmin < −rounding proves it (λmin ≤ θmin for any Rayleigh
    quotient). Positive: θmin − bound > rounding. Zero: |θmin| + bound ≤ goal
    (zero to the accuracy asked for) or ≤ rounding (zero at this precision: no
    further step can prove a sign inside the band — float32 at 10⁷ parameters
    otherwise spent its whole budget on a λmin of −0.6 inside a band of 32).
    ``rounding`` = 10·√n·ε·scale, the zero band the verdicts use for
    matrix-free extremes.
    """
    rounding = hvp_rounding(n, dtype, scale)
    return bool(theta_min < -rounding or theta_min - bound > rounding
                or abs(theta_min) + bound <= max(goal, rounding))


@dataclass(frozen=True)
class Extremes:
    """The k smallest and k largest eigenpairs found from HVPs.

    ``eigenvalues`` ascending (the k smallest then the k largest, or all of
    them when n ≤ 2k); ``residuals[i] = ‖Hv_i − λ_i v_i‖``, the true residual
    (one HVP each), which is also the certified error: some eigenvalue lies
    within it (Weyl). ``error_estimates[i] = min(r, r²/gap)``, the
    Kato–Temple estimate with the Ritz gap (an *estimate*: the true gap to the
    rest of the spectrum is not known). ``converged[i]`` when the target's
    measure is within ``tolerance`` (= rtol·max|λ|) and, for the smallest
    eigenvalue under a sign target, its sign is decided. ``hvps_max`` /
    ``hvps_min``: HVPs until the top / bottom end met the target (None when it
    never did); ``hvps`` counts all of them (including the residual checks).
    ``complete``: the basis spanned the whole space, so the eigenvalues are
    all n of them.
    """

    eigenvalues: np.ndarray
    residuals: np.ndarray
    converged: np.ndarray
    vec_min: np.ndarray
    vec_max: np.ndarray
    k: int
    solver: Eigensolver
    tolerance: float
    rtol: float
    steps: int
    hvps: int
    hvps_max: int | None
    hvps_min: int | None
    seed: int
    error_estimates: np.ndarray | None = None
    sign_decided: bool | None = None
    complete: bool = False
    measure: ErrorMeasure = ErrorMeasure.RESIDUAL
    ends: str = Ends.BOTH
    basis_rows: int | None = None  # most basis vectors held at once
    restarts: int = 0
    choice: str = ""  # why this solver (set by the policy)
    host_products: str = ""  # why the products left the compiled loops ("": they did not)
    n: int = 0  # the dimension of the operator
    krylov_steps: int = 0  # Lanczos steps from the random start before any restart

    @property
    def all_converged(self) -> bool:
        return bool(np.all(self.converged))

    @property
    def eigenvalue_errors(self) -> np.ndarray:
        """Certified half-widths: the true residuals."""
        return self.residuals


def kato_temple(values: np.ndarray, residuals: np.ndarray, ritz: np.ndarray,
                index: np.ndarray, ritz_residuals: np.ndarray | None = None) -> np.ndarray:
    """``min(r, r²/gap)`` per reported value: the Kato–Temple *estimate*.

    ``ritz``: all Ritz values of the final basis, ascending; ``index[i]``: the
    position of reported value i among them; ``ritz_residuals``: their residual
    estimates ``|β s|``. The gap is to the nearest other Ritz value, shrunk by
    that value's own residual: interlacing puts the true neighbour *beyond* the
    Ritz one (θ₂ ≤ λ₂ at the top end), so an unconverged neighbour (large
    residual) must not make the gap look wide — that is what lets a poorly
    resolved early basis claim an accuracy it does not have.
    """
    ritz = np.asarray(ritz, dtype=np.float64)
    rr = (np.zeros_like(ritz) if ritz_residuals is None
          else np.asarray(ritz_residuals, dtype=np.float64))
    out = np.empty(len(index))
    for i, p in enumerate(index):
        near = [abs(ritz[q] - values[i]) - rr[q] for q in (p - 1, p + 1) if 0 <= q < ritz.size]
        gap = min(near) if near else math.inf
        r = float(residuals[i])
        # no neighbour (a single Ritz value) means no gap is known: Weyl remains
        out[i] = min(r, r * r / gap) if 0 < gap < math.inf else r
    return out


def certify(
    *, values: np.ndarray, residuals: np.ndarray, ritz: np.ndarray, index: np.ndarray,
    vectors: np.ndarray, target: Target, n: int, k: int, dtype: str, ends: str,
    complete: bool, ritz_residuals: np.ndarray | None = None,
) -> dict[str, Any]:
    """The common fields of an :class:`Extremes` from the reported pairs.

    ``values`` ascending with their true ``residuals`` and unit ``vectors``
    (rows); ``ritz``/``index`` as in :func:`kato_temple`. The target's measure
    decides ``converged``; with ``complete`` the values are all n eigenvalues.
    """
    values = np.asarray(values, dtype=np.float64)
    residuals = np.asarray(residuals, dtype=np.float64)
    estimates = kato_temple(values, residuals, ritz, index, ritz_residuals)
    scale = float(np.max(np.abs(values))) if values.size else 0.0
    scale = scale or 1.0
    goal = max(target.rtol, 100 * eps(dtype)) * scale
    measure = estimates if target.estimate else residuals
    converged = measure <= goal
    decided = sign_decided(float(values[0]), float(residuals[0]), goal, n, dtype, scale)
    if target.sign and ends != Ends.MAX:
        converged[0] = converged[0] and decided
    return {
        "eigenvalues": values, "residuals": residuals, "converged": converged,
        "vec_min": np.asarray(vectors[0], dtype=np.float64),
        "vec_max": np.asarray(vectors[-1], dtype=np.float64),
        "tolerance": goal, "rtol": target.rtol, "error_estimates": estimates,
        "sign_decided": decided, "complete": complete, "measure": target.measure,
        "ends": ends,
    }


def judge(theta: np.ndarray, est: np.ndarray, k: int, target: Target, n: int,
          dtype: str, before: np.ndarray | None = None) -> tuple[bool, bool]:
    """(min end done, max end done) from Ritz values and residual estimates |β s|.

    The host-side twin of the test inside :mod:`hesscli.spectra.restarted`.
    Under the Kato–Temple measure an end also has to have *settled*: its k
    values moved by at most the target since ``before`` (the end values 4
    steps earlier, see :func:`end_values`). The Ritz gap can look wide while
    the top Ritz value still mixes two close eigenvalues: on a 10⁵-parameter
    MLP, 12 steps gave θmax with residual 0.28, a Ritz gap of 9 and a
    Kato–Temple estimate of 0.016, while the true error was 0.25; θmax had
    moved by 0.16 in the last 4 steps.
    """
    j = theta.size
    kk = min(k, j)
    scale = float(np.max(np.abs(theta))) or 1.0
    goal = max(target.rtol, 100 * eps(dtype)) * scale
    err = est
    if target.estimate:
        err = kato_temple(theta, est, theta, np.arange(j), est)
    min_ok = bool(np.all(err[:kk] <= goal))
    max_ok = bool(np.all(err[j - kk:] <= goal))
    if target.estimate:
        if before is None or before.size != 2 * kk:
            min_ok = max_ok = False
        else:
            moved = np.abs(end_values(theta, kk) - before) <= goal
            min_ok, max_ok = min_ok and bool(moved[:kk].all()), max_ok and bool(moved[kk:].all())
    if target.sign and min_ok:
        min_ok = sign_decided(float(theta[0]), float(est[0]), goal, n, dtype, scale)
    return min_ok, max_ok


def end_values(theta: np.ndarray, k: int) -> np.ndarray:
    """The k smallest then the k largest of ascending Ritz values (2k entries)."""
    return np.concatenate([theta[:k], theta[theta.size - k:]])


def rayleigh_pairs(apply: Any, vectors: np.ndarray, dtype: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit vectors, residuals, Rayleigh quotients) of the rows of ``vectors``, ascending.

    Each row is normalized, rounded to ``dtype`` — the vector ``u`` the HVP
    ``apply`` actually receives — and certified as that: ``θ = uᵀfl(Hu)/uᵀu`` and
    ``r = ‖fl(Hu) − θu‖/‖u‖`` in float64 (see :func:`hesscli.spectra.lanczos.ritz_pairs`).
    """
    vecs = np.asarray(vectors, dtype=np.float64)
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    formed = vecs.astype(dtype)
    out, quotients, res = [], [], []
    for u_w in formed:
        u = u_w.astype(np.float64)
        norm = float(np.linalg.norm(u))
        hu = np.asarray(apply(u_w), dtype=np.float64).reshape(-1)
        q = float(u @ hu) / norm**2
        quotients.append(q)
        res.append(float(np.linalg.norm(hu - q * u)) / norm)
        out.append(u / norm)
    order = np.argsort(np.asarray(quotients), kind="stable")
    return np.asarray(out)[order], np.asarray(res)[order], np.asarray(quotients)[order]
