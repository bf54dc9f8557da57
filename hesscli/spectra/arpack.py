"""The matrix-free extremes by ARPACK (``scipy.sparse.linalg.eigsh``).

Implicitly restarted Lanczos, the two ends run separately on a LinearOperator over
the same jitted HVP as :mod:`hesscli.spectra.lanczos`: it keeps a small basis
(memory O(ncv·n)) but crosses the host/device boundary each HVP. Its pairs are
certified as every solver's are (:mod:`hesscli.spectra.certify`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hesscli.curvature.base import OperatorAt
from hesscli.progress import OnProgress, Progress, sink
from hesscli.spectra.certify import (
    DEFAULT_SOLVE,
    Extremes,
    Solve,
    certify,
    rayleigh_pairs,
)
from hesscli.spectra.lanczos import MAX_STEPS, at_point, start_vector
from hesscli.vocab import Eigensolver

ARPACK_REPORT_EVERY = 10  # HVPs between progress reports of ARPACK (it says nothing else)


def arpack_extremes(
    hvp_fn: Any, x: np.ndarray, solve: Solve = DEFAULT_SOLVE, *, dtype: str = "float64",
    f: OperatorAt | None = None, progress: OnProgress | None = None,
) -> Extremes:
    """The same as :func:`lanczos_extremes` by ARPACK, each end separately.

    ``eigsh(which="LA")`` then ``which="SA"``, ``tol=rtol`` (ARPACK's own
    criterion is relative to each Ritz value, so residuals are recomputed
    here against ``rtol·max|λ|`` like Lanczos'), same seeded start vector.
    ``hvp_fn`` may be any callable ``(x, v) -> Hv`` (NumPy or JAX); with ``f`` the
    Hessian's operator, the gradient is linearized once at x and every product reuses it.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    k, seed, max_steps, ends = solve.k, solve.seed, solve.max_steps, solve.ends
    n = int(np.size(x))
    target = solve.target_for(dtype)
    xj = np.asarray(x, dtype=dtype)
    hvp_fn, _ = at_point(hvp_fn, f, xj)  # a Hessian: ∇f linearized here, once
    count = [0]
    listener = sink(progress)

    def matvec(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        if listener is not None and count[0] % ARPACK_REPORT_EVERY == 0:
            listener(Progress(solver=Eigensolver.ARPACK, hvps=count[0]))
        return np.asarray(hvp_fn(xj, np.asarray(v, dtype=dtype).reshape(-1)), dtype=np.float64)

    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    v0 = start_vector(n, seed)
    # ncv Lanczos steps from v0 before ARPACK's first restart: scipy's default, raised to
    # the Krylov floor that the random-start bound needs (hesscli.spectra.bounds)
    ncv = min(n, max(2 * k + 1, 20, target.krylov_floor(n)))
    if n <= 2 * k + 1:  # ARPACK needs k < n: form the small matrix instead
        mat = np.column_stack([matvec(e) for e in np.eye(n)])
        theta, vecs = np.linalg.eigh(0.5 * (mat + mat.T))
        runs = [(theta, vecs, n, n)]
    else:
        runs = []
        maxiter = max_steps or max(MAX_STEPS, 10 * n)
        for which in ("SA", "LA"):
            before = count[0]
            try:
                theta, vecs = eigsh(op, k=k, which=which, tol=target.rtol, v0=v0,
                                    maxiter=maxiter, ncv=ncv)
                done = count[0] - before
            except ArpackNoConvergence as exc:
                theta, vecs = exc.eigenvalues, exc.eigenvectors
                done = None
            if np.size(theta) == 0:
                # no pair returned for this end: the start vector is the one vector formed
                # that it can be certified from (its Rayleigh quotient bounds the end)
                theta, vecs = np.zeros(1), v0.reshape(-1, 1)
            runs.append((theta, vecs, count[0] - before, done))
    theta = np.concatenate([e[0] for e in runs])
    vecs = np.concatenate([e[1] for e in runs], axis=1)
    order = np.argsort(theta)
    theta, vecs = theta[order], vecs[:, order]
    vecs_t, res, theta = rayleigh_pairs(matvec, vecs.T, dtype)
    vecs = vecs_t.T
    fields = certify(values=theta, residuals=res, ritz=theta, index=np.arange(theta.size),
                     vectors=vecs.T, target=target, n=n, k=k, dtype=dtype, ends=ends,
                     complete=theta.size >= n)
    if len(runs) == 2:  # an end whose run did not converge is not converged, whatever its
        half = fields["converged"].size // 2  # residual says
        if runs[0][3] is None:
            fields["converged"][: max(half, 1)] = False
        if runs[1][3] is None:
            fields["converged"][-max(half, 1):] = False
    # implicitly restarted with exact shifts: its first factorization is ncv Lanczos steps
    # from v0 and the wanted Ritz values only move outward after it; an end that did not
    # converge returned no Ritz value of that space, so then no random-start bound
    converged_runs = all(e[3] is not None for e in runs) if len(runs) == 2 else True
    return Extremes(
        **fields, k=k, solver=Eigensolver.ARPACK, steps=sum(e[2] for e in runs), hvps=count[0],
        hvps_max=runs[-1][3], hvps_min=runs[0][3], seed=seed, n=n,
        krylov_steps=ncv if converged_runs else 0,
    )
