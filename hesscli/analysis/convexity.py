"""Is the objective convex over a region? A sampled test with a witness.

Two tests, both on seeded random samples of a convex region (a box or a ball):

- **Jensen's midpoint inequality** ``f((x+y)/2) ≤ (f(x)+f(y))/2`` on random
  pairs. It needs only function values, so it also sees non-convexity that the
  Hessian cannot (``−|x|`` has Hessian 0 wherever it exists). Half the pairs
  span the region, half are short (a tenth of its size) to probe local
  curvature. The values are computed in batches (``jax.vmap`` of the flat
  objective, compiled once).
- **the smallest Hessian eigenvalue** at random points, from the spectrum at
  each point by the one spectrum policy (:func:`hesscli.spectra.policy.spectrum_at`:
  dense within the dense budget, else λmin by Lanczos, whose residuals widen
  the tolerance).

A violation beyond the rounding tolerance at any sample proves ``not_convex``
and is returned as a :class:`Witness`; none found is ``no_violation_found``:
evidence, not proof.

Rounding. Sample points are snapped to a dyadic grid (spacing a power of two,
``2^(mantissa−3)`` steps across the region's largest coordinate) so that
``x + y`` and ``(x + y)/2`` are exact: the midpoint is exactly the midpoint, and
the only rounding is in evaluating ``f``. A value computed in floating point
carries a relative error of a few ε per operation and about ``log₂ K`` ε for a
sum of K terms, so the midpoint test allows
``rtol · ((|f(x)| + |f(y)|)/2 + |f(m)|)`` with ``rtol = 256 ε`` by default: far
below any curvature that matters, far above the rounding of sums of up to 2²⁰⁰
terms. An objective that cancels large terms (``(x² + 10⁸) − 10⁸``) has larger
rounding than its value suggests: pass ``rtol``/``atol``. The eigenvalue test
uses :func:`hesscli.analysis.verdicts.eigen_tolerance`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hesscli.analysis.verdicts import curvature_scale, eigen_tolerance, length_scale
from hesscli.curvature.base import Curvature, ensure_finite
from hesscli.errors import InputError
from hesscli.jaxconf import eps, jax_module
from hesscli.objective.bind import Objective
from hesscli.objective.layout import Layout, top_entries
from hesscli.spectra.policy import SpectrumPolicy, choose, spectrum_at
from hesscli.spectra.route import PathChoice
from hesscli.spectra.spectrum import Spectrum
from hesscli.vocab import ConvexityVerdict, SpectrumPath, WitnessKind

RTOL_FACTOR = 256.0  # rtol = RTOL_FACTOR · ε (see the module docstring)
SHORT_FRACTION = 0.1  # short pairs: y within this fraction of the region's size of x
BATCH = 256  # points per vmapped evaluation

NOT_CONVEX = ConvexityVerdict.NOT_CONVEX
NO_VIOLATION = ConvexityVerdict.NO_VIOLATION_FOUND
EVIDENCE = (
    "No violation found in the samples. Sampling is evidence, not proof: a violation "
    "in a part of the region the samples missed is still possible."
)


@dataclass(frozen=True)
class Box:
    """The box ``lo ≤ x ≤ hi`` (per coordinate)."""

    lo: np.ndarray
    hi: np.ndarray

    kind = "box"

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        return rng.uniform(self.lo, self.hi, size=(m, self.lo.size))

    def near(self, rng: np.random.Generator, x: np.ndarray, fraction: float) -> np.ndarray:
        step = rng.uniform(-1.0, 1.0, size=x.shape) * fraction * (self.hi - self.lo)
        return np.clip(x + step, self.lo, self.hi)

    @property
    def magnitude(self) -> float:
        return float(max(np.max(np.abs(self.lo)), np.max(np.abs(self.hi))))


@dataclass(frozen=True)
class Ball:
    """The Euclidean ball ``‖x − center‖ ≤ radius``."""

    center: np.ndarray
    radius: float

    kind = "ball"

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        n = self.center.size
        d = rng.standard_normal((m, n))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        r = self.radius * rng.uniform(size=(m, 1)) ** (1.0 / n)
        return self.center + r * d

    def near(self, rng: np.random.Generator, x: np.ndarray, fraction: float) -> np.ndarray:
        d = rng.standard_normal(x.shape)
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        y = x + d * (fraction * self.radius * rng.uniform(size=(x.shape[0], 1)))
        off = y - self.center
        norm = np.linalg.norm(off, axis=1, keepdims=True)
        scale = np.minimum(1.0, self.radius / np.maximum(norm, np.finfo(float).tiny))
        return self.center + off * scale

    @property
    def magnitude(self) -> float:
        return float(np.max(np.abs(self.center)) + self.radius)


Region = Box | Ball
SpectrumFn = Callable[[Curvature, np.ndarray, Layout], Spectrum]


def box(bounds: list[tuple[float, float]], n: int) -> Box:
    """One ``(lo, hi)`` for every coordinate, or exactly one per coordinate."""
    if len(bounds) not in (1, n):
        raise InputError(
            f"--box given {len(bounds)} times; give it once (the same bounds for all {n} "
            f"coordinates) or exactly {n} times (one per coordinate, in flat order)"
        )
    for lo, hi in bounds:
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise InputError(f"--box {lo},{hi}: need finite bounds with lo < hi")
    arr = np.asarray(bounds, dtype=np.float64)
    if len(bounds) == 1:
        arr = np.repeat(arr, n, axis=0)
    return Box(arr[:, 0].copy(), arr[:, 1].copy())


def ball(center: np.ndarray, radius: float) -> Ball:
    if not (np.isfinite(radius) and radius > 0):
        raise InputError(f"--radius must be a positive number; got {radius}")
    return Ball(np.asarray(center, dtype=np.float64).reshape(-1), float(radius))


def dyadic(points: np.ndarray, magnitude: float, dtype: str) -> np.ndarray:
    """Snap to a grid of spacing ``h = 2^(e − (mantissa − 3))`` with ``2^e ≥ magnitude``.

    Every coordinate is then ``k·h`` with ``|k| < 2^(mantissa−3)``, so sums of two
    points and their halves are exact in ``dtype``.
    """
    bits = np.finfo(dtype).nmant + 1  # 53 for float64, 24 for float32
    e = int(np.ceil(np.log2(max(magnitude, np.finfo(np.float64).tiny))))
    h = 2.0 ** (e - (bits - 3))
    return (np.round(points / h) * h).astype(dtype)


@dataclass(frozen=True)
class Witness:
    """Evidence of non-convexity; which fields are set depends on ``kind``.

    ``midpoint``: ``f(m) = lhs > rhs = (f(x)+f(y))/2`` with ``m = (x+y)/2``
    exactly; ``margin = lhs − rhs > tolerance``. ``eigenvalue``: the Hessian
    at ``point`` has ``eigenvalue < −tolerance`` along unit ``direction``.
    """

    kind: WitnessKind
    tolerance: float
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    midpoint: np.ndarray | None = None
    f_x: float | None = None
    f_y: float | None = None
    f_mid: float | None = None
    lhs: float | None = None
    rhs: float | None = None
    margin: float | None = None
    point: np.ndarray | None = None
    eigenvalue: float | None = None
    direction: np.ndarray | None = None
    top_parameters: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class MidpointTest:
    pairs: int
    violations: int
    rtol: float
    atol: float
    worst_margin: float | None  # max over pairs of f(m) − (f(x)+f(y))/2 (≤ 0 if convex)
    witness: Witness | None


@dataclass(frozen=True)
class HessianTest:
    points: int
    violations: int
    smallest_eigenvalue: float | None
    tolerance: float | None  # at the point of the smallest eigenvalue
    witness: Witness | None
    skipped: str | None = None  # why the test did not run
    unconverged: int = 0  # points whose matrix-free λmin did not converge: there the
    #                       computed λmin is only an upper bound (a Ritz value), so a
    #                       violation still proves non-convexity but its absence proves less


@dataclass(frozen=True)
class Convexity:
    objective: str
    n: int
    method: str  # a Method, or "values" when no curvature backend ran
    dtype: str
    region: Region
    seed: int
    verdict: ConvexityVerdict
    midpoint: MidpointTest
    hessian: HessianTest
    witness: Witness | None
    statement: str
    notes: tuple[str, ...] = field(default_factory=tuple)


_BATCHED: dict[Any, tuple[Any, Any]] = {}  # (file id, structure) -> (file, compiled fn)


def batch_values(objective: Objective) -> Callable[[np.ndarray], np.ndarray]:
    """``points (m, n) -> f`` per row: jitted ``vmap``, or a loop for NumPy code.

    Batches are padded to :data:`BATCH` rows so one compiled shape serves every
    call, and the compiled function is cached per objective file and structure
    (repeated tests of one objective, as in ``check``, compile once).
    """
    if not objective.traceable:
        def loop(points: np.ndarray) -> np.ndarray:
            return np.array([float(objective.flat_fn(p.copy())) for p in points])

        return loop
    key = (id(objective.file), objective.treedef, objective.layout, objective.dtype)
    if key not in _BATCHED or _BATCHED[key][0] is not objective.file:
        if len(_BATCHED) >= 8:
            _BATCHED.pop(next(iter(_BATCHED)))
        jax = jax_module()
        _BATCHED[key] = (objective.file, jax.jit(jax.vmap(objective.flat_fn)))
    fn = _BATCHED[key][1]

    def batched(points: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, points.shape[0], BATCH):
            chunk = points[i : i + BATCH]
            m = chunk.shape[0]
            if m < BATCH:
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], BATCH - m, axis=0)])
            out.append(np.asarray(fn(chunk), dtype=np.float64)[:m])
        return np.concatenate(out) if out else np.zeros(0)

    return batched


def midpoint_test(
    objective: Objective, region: Region, pairs: int, rng: np.random.Generator,
    *, rtol: float | None = None, atol: float = 0.0,
) -> MidpointTest:
    """Jensen's midpoint inequality on ``pairs`` random pairs (half long, half short)."""
    dtype = objective.dtype
    rtol = RTOL_FACTOR * eps(dtype) if rtol is None else rtol
    if pairs == 0:
        return MidpointTest(0, 0, rtol, atol, None, None)
    x = region.sample(rng, pairs)
    n_long = (pairs + 1) // 2
    y = np.concatenate([region.sample(rng, n_long),
                        region.near(rng, x[n_long:], SHORT_FRACTION)])
    mag = region.magnitude
    x, y = dyadic(x, mag, dtype), dyadic(y, mag, dtype)
    mid = (x + y) / 2  # exact on the dyadic grid
    values = batch_values(objective)(np.concatenate([x, y, mid]))
    ensure_finite(values, "value on the sampled region")
    fx, fy, fm = values[:pairs], values[pairs : 2 * pairs], values[2 * pairs :]
    rhs = 0.5 * (fx + fy)
    margin = fm - rhs
    tol = rtol * (0.5 * (np.abs(fx) + np.abs(fy)) + np.abs(fm)) + atol
    bad = margin > tol
    witness = None
    if bad.any():
        i = int(np.argmax(np.where(bad, margin - tol, -np.inf)))
        witness = Witness(
            kind=WitnessKind.MIDPOINT, tolerance=float(tol[i]),
            x=x[i].astype(np.float64), y=y[i].astype(np.float64),
            midpoint=mid[i].astype(np.float64),
            f_x=float(fx[i]), f_y=float(fy[i]), f_mid=float(fm[i]),
            lhs=float(fm[i]), rhs=float(rhs[i]), margin=float(margin[i]),
        )
    return MidpointTest(pairs, int(bad.sum()), rtol, atol, float(margin.max()), witness)


def confirmed_by_values(curvature: Any, p: np.ndarray, v: np.ndarray, lam: float,
                        dtype: str) -> bool:
    """Does ``f`` itself curve down along ``v``? A second difference of values.

    ``(f(p+tv) − 2f(p) + f(p−tv))/t²`` estimates ``vᵀHv = λ`` with rounding error
    about ``4ε·max|f|/t²`` and truncation ``O(t²)``; ``t = ε^(1/4)·max(‖p‖, 1)``
    balances the two. A negative eigenvalue that the values cannot confirm (the
    second difference is not clearly negative) is rounding in forming ``H`` —
    e.g. ``logsumexp`` far from the origin, whose Hessian terms cancel — and is
    not reported as a violation. Sampling never calls a convex function
    non-convex because of floating point.
    """
    e = float(np.finfo(dtype).eps)
    t = e**0.25 * length_scale(float(np.linalg.norm(p)))
    f0 = curvature.value(p)
    fp = curvature.value(p + t * v)
    fm = curvature.value(p - t * v)
    d2 = (fp - 2.0 * f0 + fm) / t**2
    rounding = 4.0 * e * max(abs(fp), abs(f0), abs(fm)) / t**2
    return bool(d2 < -rounding and d2 < 0.25 * lam)


def policy_spectrum(
    objective: Objective, policy: SpectrumPolicy, choice: PathChoice | None = None
) -> SpectrumFn:
    """``spectrum_fn`` by ``policy``, with the path chosen once for ``objective``."""
    choice = choice or choose(objective.n, policy)

    def spectrum_fn(curvature: Curvature, x: np.ndarray, layout: Layout) -> Spectrum:
        return spectrum_at(curvature, x, layout, policy, choice=choice).spectrum

    return spectrum_fn


def hessian_test(
    objective: Objective, curvature: Curvature | None, region: Region, points: int,
    rng: np.random.Generator, *, spectrum_fn: SpectrumFn | None = None,
) -> HessianTest:
    """The smallest eigenvalue of the Hessian at ``points`` random points.

    ``spectrum_fn(curvature, x, layout) -> Spectrum`` computes it; the default is
    the spectrum by the default :class:`SpectrumPolicy` (:func:`policy_spectrum`).
    """
    skipped = None
    if curvature is None:
        skipped = "no curvature backend for this objective"
    if skipped is not None or points == 0:
        return HessianTest(0, 0, None, None, None, skipped)
    assert curvature is not None
    spectrum_fn = spectrum_fn or policy_spectrum(objective, SpectrumPolicy())
    samples = dyadic(region.sample(rng, points), region.magnitude, objective.dtype)
    layout = objective.layout
    violations = 0
    worst: tuple[float, float, Any, np.ndarray] | None = None  # (λ/tol, λ, spectrum, x)
    smallest: tuple[float, float] | None = None
    unconverged = 0
    for p in samples:
        p = p.astype(np.float64)
        spectrum = spectrum_fn(curvature, p, layout)
        lam = spectrum.eigenvalues
        scale = curvature_scale(lam, curvature.value(p), 0.0, float(np.linalg.norm(p)))
        tol = eigen_tolerance(scale, objective.n, objective.dtype, spectrum.error)
        lmin = spectrum.lambda_min
        unconverged += not spectrum.min_converged
        if smallest is None or lmin < smallest[0]:
            smallest = (lmin, tol)
        if lmin < -tol and confirmed_by_values(curvature, p, spectrum.vec_min, lmin,
                                               objective.dtype):
            violations += 1
            if worst is None or lmin < worst[1]:
                worst = (tol, lmin, spectrum, p)
    witness = None
    if worst is not None:
        tol, lmin, spectrum, p = worst
        witness = Witness(
            kind=WitnessKind.EIGENVALUE, tolerance=tol, point=p, eigenvalue=lmin,
            direction=spectrum.vec_min,
            top_parameters=tuple(top_entries(spectrum.vec_min, layout, 5)),
        )
    assert smallest is not None
    return HessianTest(points, violations, smallest[0], smallest[1], witness,
                       unconverged=unconverged)


def convexity(
    objective: Objective,
    curvature: Curvature | None,
    region: Region,
    *,
    pairs: int = 1000,
    hessian_points: int = 20,
    seed: int = 0,
    rtol: float | None = None,
    atol: float = 0.0,
    spectrum_fn: SpectrumFn | None = None,
    notes: tuple[str, ...] = (),
    policy: SpectrumPolicy | None = None,
) -> Convexity:
    """Sampled convexity test of ``objective`` over ``region`` (see the module docstring).

    The two tests draw from independent streams of ``numpy.random.default_rng(seed)``
    so changing one sample count does not move the other's samples. The
    eigenvalue test's spectra come from ``spectrum_fn`` when given, else by the
    spectrum ``policy`` (the command's: k = 1, start vectors from ``seed``, the parsed
    ``--dense-budget``; None: that policy with the environment's or the default
    budget, :mod:`hesscli.spectra.route`); when that goes matrix-free a note says so.
    """
    if pairs < 0 or hessian_points < 0:
        raise InputError("sample counts must be ≥ 0")
    if pairs == 0 and hessian_points == 0:
        raise InputError("nothing to test: both --samples and --hessian-points are 0")
    size = region.lo.size if isinstance(region, Box) else region.center.size
    if size != objective.n:
        raise InputError(f"the region has {size} coordinates; the objective has {objective.n}")
    rng_mid, rng_hess = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    mid = midpoint_test(objective, region, pairs, rng_mid, rtol=rtol, atol=atol)
    if spectrum_fn is None and curvature is not None and hessian_points:
        policy = policy or SpectrumPolicy(k=1, seed=seed)
        choice = choose(objective.n, policy)
        if choice.path == SpectrumPath.MATRIX_FREE:
            notes += (f"eigenvalue test matrix-free ({choice.reason}): λmin at each point by "
                      "Lanczos on Hessian-vector products (residuals widen the tolerance)",)
        spectrum_fn = policy_spectrum(objective, policy, choice)
    hess = hessian_test(objective, curvature, region, hessian_points, rng_hess,
                        spectrum_fn=spectrum_fn)
    witness = mid.witness or hess.witness
    verdict = NOT_CONVEX if witness is not None else NO_VIOLATION
    if witness is None:
        statement = EVIDENCE
    elif witness.kind == WitnessKind.MIDPOINT:
        statement = (
            "Not convex: Jensen's midpoint inequality f((x+y)/2) ≤ (f(x)+f(y))/2 fails "
            "beyond rounding for the witness pair x, y."
        )
    else:
        statement = (
            "Not convex: the Hessian has a negative eigenvalue (beyond rounding) at the "
            "witness point, so f curves down along its eigenvector."
        )
    extra = (hess.skipped,) if hess.skipped else ()
    return Convexity(
        objective=objective.label, n=objective.n,
        method=curvature.method if curvature is not None else "values",
        dtype=objective.dtype, region=region, seed=seed, verdict=verdict,
        midpoint=mid, hessian=hess, witness=witness, statement=statement,
        notes=notes + extra,
    )

