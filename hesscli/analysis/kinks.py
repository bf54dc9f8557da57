"""A cheap one-sided probe for kinks that autodiff cannot see.

Automatic differentiation returns *a* derivative at a kink (``relu'(0) = 0``,
``|x|' = sign(x)``), so a point where the objective is not smooth can get a
confident second-order verdict from a Hessian that does not exist there:
``½‖x‖² − Σ relu(−x)`` at 0 has gradient 0 and Hessian I by autodiff ("local
minimum"), yet ``f(−0.1, 0) < f(0)``.

The probe compares function values along a few directions ``d`` (unit: the
gradient, the two extreme eigenvectors, one seeded random direction) with the
quadratic model the verdict rests on. For a step ``s`` on either side,

    r(s) = f(x + s·d) − f(x) − s·gᵀd − ½ s²·dᵀHd

is ``O(s³)`` where ``f`` is smooth, ``O(s)`` across a slope jump (the one-sided
slope is not ``gᵀd``) and ``O(s²)`` across a curvature jump. At three steps
``s, s/4, s/16`` (``s = 10⁻³·max(‖x‖, 1)``) a kink shows as residuals that are

- *significant*: beyond what rounding and the verdict's own tolerances allow,
  ``32ε(|f(x+sd)| + |f(x)| + |s gᵀd|) + |s|·gtol + ½s²·tol``, and beyond 8× the
  evaluation noise measured at a step 4096× smaller still (where a kink's
  residual has all but vanished), at every step;
- *of one sign* on that side; and
- *shrinking like s or s²*: each 4× smaller step divides ``|r|`` by 2 to 32
  (slope jump: 4, curvature jump: 16). Smooth functions divide it by ≥ 64 once
  the steps are in the Taylor regime; rounding noise does not shrink at all.

A kink farther than ``s/16`` from the point does not pass the test (the
residual vanishes at the small steps), so kinks *near* a smooth point (a hinge
margin a little way off) do not count; only those at the point itself.

Cost: 8 values per direction (32 for the usual four) and one HVP, plus, when
a kink is found, 8 values and one HVP per named parameter (at most
:data:`NAMED`) to attribute it to coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hesscli.analysis.verdicts import length_scale
from hesscli.errors import HesscliError
from hesscli.jaxconf import eps
from hesscli.objective.layout import Layout, top_entries
from hesscli.vocab import KinkKind

RELATIVE_STEP = 1e-3  # the largest step, relative to max(‖x‖, 1)
SHRINK = 4.0  # ratio between consecutive steps
STEPS = 3
ROUNDING_FACTOR = 32.0  # rounding of a residual of values, in units of ε·|values|
RATIO_RANGE = (2.0, 32.0)  # |r(s)| / |r(s/4)| for a kink: 4 (slope) or 16 (curvature)
NAMED = 3  # coordinates probed to name the parameters of a kink
NOISE_STEP = SHRINK ** -(STEPS - 1) / 4096.0  # relative step where only noise is left
NOISE_FACTOR = 8.0  # residuals must exceed 8× the largest noise-step residual


@dataclass(frozen=True)
class Direction:
    """A probe direction: a label for the report, a unit vector, ``dᵀHd``."""

    label: str
    vector: np.ndarray
    curvature: float


@dataclass(frozen=True)
class Kink:
    """A kink found along one direction (one side of it).

    ``kind`` is "slope" (the one-sided slope differs from ``gᵀd``) or
    "curvature" (the slope agrees, the one-sided curvature does not).
    ``mismatch`` is the one-sided slope minus ``gᵀd`` (slope kinks) or the
    one-sided curvature minus ``dᵀHd`` (curvature kinks), at the smallest step.
    ``jump`` is the slope jump ``D₊ − D₋`` across the point along ``d``
    (curvature jump for curvature kinks). ``significance``: |r| over its
    allowed band at the smallest step.
    """

    direction: str
    side: str  # "+" | "−"
    kind: str
    mismatch: float
    jump: float
    significance: float
    top_parameters: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Probe:
    """What the probe found: kinks (empty when smooth), named parameters, cost."""

    kinks: tuple[Kink, ...]
    parameters: tuple[str, ...]  # coordinates along which a kink was confirmed
    parameter_jumps: tuple[float, ...]  # slope (or curvature) jump along each
    gradient_band: float  # largest one-sided slope mismatch: how far ∇f may be from a
    #                       one-sided gradient along the probed directions
    evaluations: int
    steps: tuple[float, ...]

    @property
    def smooth(self) -> bool:
        return not self.kinks


def probe_kinks(
    value: Callable[[np.ndarray], float],
    hvp: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x: np.ndarray,
    f0: float,
    gradient: np.ndarray,
    directions: list[Direction],
    *,
    gtol: float,
    tol: float,
    dtype: str,
    layout: Layout,
    seed: int = 0,
) -> Probe:
    """Probe ``directions`` (plus one seeded random direction) for kinks at ``x``.

    ``value``/``hvp`` are the backend's; ``gtol``/``tol`` the verdict's
    tolerances (a mismatch they already allow for is no kink).
    """
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(gradient, dtype=np.float64)
    n = x.size
    steps = tuple(RELATIVE_STEP * length_scale(float(np.linalg.norm(x))) / SHRINK**k
                  for k in range(STEPS)) + (RELATIVE_STEP * length_scale(
                      float(np.linalg.norm(x))) * NOISE_STEP,)
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(n)
    r /= np.linalg.norm(r)
    all_dirs = [d for d in directions if np.linalg.norm(d.vector) > 0]
    all_dirs.append(Direction("a random direction", r, float(r @ hvp(x, r))))
    count = 0
    lines = []
    for d in all_dirs:
        rows, used = _line_residuals(value, x, f0, g, d, steps, gtol, tol, dtype)
        count += used
        if rows is not None:
            lines.append((d, rows))
    floor = _noise_floor([rows for _, rows in lines])
    kinks: list[Kink] = []
    for d, rows in lines:
        kinks.extend(
            Kink(d.label, side, kind, mismatch, jump, sig, tuple(top_entries(d.vector, layout, 3)))
            for side, kind, mismatch, jump, sig in _line_kinks(rows, floor)
        )
    names: list[str] = []
    jumps: list[float] = []
    if kinks:
        worst = max(kinks, key=lambda k: k.significance)
        vector = next(d.vector for d in all_dirs if d.label == worst.direction)
        idx = np.argsort(-np.abs(vector), kind="stable")[: min(NAMED, n)]
        for i in idx:
            unit = np.zeros(n)
            unit[i] = 1.0
            c = float(hvp(x, unit)[i])
            rows, used = _line_residuals(value, x, f0, g, Direction("", unit, c), steps, gtol,
                                         tol, dtype)
            count += used
            found = _line_kinks(rows, max(floor, _noise_floor([rows]))) if rows else []
            if found:
                names.append(layout.name(int(i)))
                jumps.append(max((f[3] for f in found), key=abs))
        if not names:  # the kink is not along one coordinate: name the direction's largest
            names = [name for name, _ in worst.top_parameters]
            jumps = [math.nan] * len(names)
    band = max((abs(k.mismatch) for k in kinks if k.kind == KinkKind.SLOPE), default=0.0)
    return Probe(tuple(kinks), tuple(names), tuple(jumps), band, count, steps[:STEPS])


Rows = dict[str, list[tuple[float, float, float]]]  # side -> [(residual, band, |s|)]


def _line_residuals(
    value: Callable[[np.ndarray], float], x: np.ndarray, f0: float, g: np.ndarray,
    d: Direction, steps: tuple[float, ...], gtol: float, tol: float, dtype: str,
) -> tuple[Rows | None, int]:
    """Residuals from the quadratic model on both sides of one line, at every step
    (the last one is the noise step); None when the objective fails there."""
    e = eps(dtype)
    rows: Rows = {"+": [], "−": []}
    count = 0
    with np.errstate(all="ignore"):
        for side, sign in (("+", 1.0), ("−", -1.0)):
            for h in steps:
                # the point as the objective sees it (rounded to its dtype), and the
                # step actually taken
                point = (x + sign * h * d.vector).astype(dtype).astype(np.float64)
                delta = point - x
                s = float(delta @ d.vector)
                try:
                    fs = float(value(point))
                except HesscliError:  # the objective fails next to x: no evidence here
                    return None, count + 1
                count += 1
                slope = float(g @ delta)
                res = fs - f0 - slope - 0.5 * s * s * d.curvature
                band = (ROUNDING_FACTOR * e * (abs(fs) + abs(f0) + abs(slope))
                        + abs(s) * gtol + 0.5 * s * s * tol)
                rows[side].append((res, band, abs(s)))
    return rows, count


def _noise_floor(lines: list[Rows]) -> float:
    """:data:`NOISE_FACTOR` × the largest residual at the noise step, over all lines.

    At ``s·``:data:`NOISE_STEP` a kink's residual is 4096× (slope) or 4096²×
    (curvature) below its value at the smallest probe step, and a smooth
    function's is far smaller still, so what is left there is the evaluation
    noise of ``f`` itself, which can exceed the ``ε·|f|`` rounding model (sums
    that cancel, ``(10⁸ + x²) − 10⁸``). Residuals below this floor are no evidence.
    """
    noise = [abs(rows[side][-1][0]) for rows in lines for side in rows if rows[side]]
    finite = [v for v in noise if math.isfinite(v)]
    return NOISE_FACTOR * max(finite, default=0.0)


def _line_kinks(rows: Rows, floor: float) -> list[tuple[str, str, float, float, float]]:
    """Both sides of one line: [(side, kind, mismatch, jump, significance)]."""
    probe = {side: [(res, max(band, floor), s) for res, band, s in r[:STEPS]]
             for side, r in rows.items()}
    found = []
    for side, side_rows in probe.items():
        kind = _kink_kind(side_rows)
        if kind is None:
            continue
        res, band, s = side_rows[-1]
        mismatch = res / s if kind == KinkKind.SLOPE else 2.0 * res / (s * s)
        other = probe["−" if side == "+" else "+"][-1]
        if kind == KinkKind.SLOPE:
            jump = (res + other[0]) / s  # D₊ − D₋ along d
        else:
            jump = 2.0 * (res - other[0]) / (s * s)  # c₊ − c₋ along d (sides as on + side)
            jump = jump if side == "+" else -jump
        found.append((side, kind, mismatch, jump, abs(res) / band if band > 0 else math.inf))
    return found


def _kink_kind(rows: list[tuple[float, float, float]]) -> str | None:
    """"slope" / "curvature" when the residuals at shrinking steps look like a kink, else None."""
    values = [res for res, _, _ in rows]
    if not all(math.isfinite(v) for v in values):
        return None
    if not all(abs(res) > band for res, band, _ in rows):
        return None
    if not (all(v > 0 for v in values) or all(v < 0 for v in values)):
        return None
    ratios = [abs(values[k]) / abs(values[k + 1]) for k in range(len(values) - 1)]
    lo, hi = RATIO_RANGE
    if not all(lo <= q <= hi for q in ratios):
        return None
    return (KinkKind.SLOPE if ratios[-1] < math.sqrt(SHRINK * SHRINK**2)
            else KinkKind.CURVATURE)
