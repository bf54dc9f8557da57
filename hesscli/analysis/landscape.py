"""The objective around a point: 1-D slices and a 2-D grid, with the quadratic model.

Around ``x`` with ``g = ∇f(x)`` and ``H = ∇²f(x)`` the article's Taylor model is
``m(x + s) = f(x) + gᵀs + ½ sᵀHs``. :func:`landscape` evaluates ``f`` and ``m``

- along 1-D slices ``x + t·d``, ``t ∈ [−r, r]``, for ``d`` the descent direction
  ``−g/‖g‖`` (when ``g ≠ 0``; the gradient step ``x − lr·g`` lands on this slice
  at ``t = lr·‖g‖``) and the unit eigenvectors of λmax and λmin; along an
  eigenvector the model is ``f + t·gᵀd + ½λt²``;
- on a grid over the plane of two of those directions (the second one
  orthonormalized against the first), ``x + a·u + b·w``.

Where ``f`` and ``m`` agree the second-order analysis explains the landscape;
where they part, higher-order terms take over (the saddle's quartic walls).

All evaluations of a slice or of the grid are one compiled call: the flat
objective, vmapped over the coefficients and chunked with ``lax.map`` so that
memory stays bounded at large ``n``. The spectrum and the step prediction come
from :func:`hesscli.analysis.analyze.analyze` (no second spectrum code here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hesscli.analysis.analyze import Analysis, analyze
from hesscli.curvature.base import Curvature, ensure_finite
from hesscli.errors import InputError
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import Objective
from hesscli.spectra.policy import SpectrumPolicy
from hesscli.spectra.route import PathChoice
from hesscli.spectra.spectrum import Spectrum
from hesscli.vocab import Classification, Method, PlaneDirection

GRAD, MAX, MIN = PlaneDirection.GRAD, PlaneDirection.MAX, PlaneDirection.MIN
DIRECTIONS = (GRAD, MAX, MIN)
LABELS = {GRAD: "−∇f/‖∇f‖", MAX: "v(λmax)", MIN: "v(λmin)"}
#: Largest number of floats a chunk of evaluation points may hold (≈ 32 MB in float64).
CHUNK_FLOATS = 4_000_000
#: Margin beyond the farthest feature, so that it is not drawn on the frame.
MARGIN = 1.25


@dataclass(frozen=True)
class Slice:
    """``f`` and its quadratic model along ``x + t·direction`` (unit direction)."""

    name: PlaneDirection
    label: str
    direction: np.ndarray
    t: np.ndarray
    values: np.ndarray
    model: np.ndarray
    slope: float  # gᵀd, the model's first-order coefficient
    curvature: float  # dᵀHd (= λ along an eigenvector)
    eigenvalue: float | None
    lowest_t: float  # where f is lowest on the slice
    lowest_value: float


@dataclass(frozen=True)
class StepMark:
    """Where the gradient step ``x − lr·g`` lands on the ``grad`` slice."""

    lr: float
    t: float  # lr·‖g‖
    value: float  # f(x − lr·g)
    model_value: float  # the quadratic model there
    change: float  # value − f(x)
    predicted_change: float
    increases_loss: bool  # actually
    inside: bool  # t ≤ radius (visible on the slice)
    best_t: float | None  # where the model is lowest along −g: ‖g‖³/gᵀHg (gᵀHg > 0)
    max_t: float | None  # where the model is back at f(x): twice that


@dataclass(frozen=True)
class Grid:
    """``f`` and its model on ``x + a·u + b·w`` (rows: b, columns: a)."""

    names: tuple[str, str]
    labels: tuple[str, str]
    u: np.ndarray
    w: np.ndarray
    a: np.ndarray
    b: np.ndarray
    values: np.ndarray  # shape (len(b), len(a))
    model: np.ndarray
    orthogonalized: bool  # w had a component along u that was removed
    step: tuple[float, float] | None  # the gradient step −lr·g projected on (u, w)


@dataclass(frozen=True)
class Landscape:
    objective: str
    n: int
    method: Method
    dtype: str
    value: float
    gradient_norm: float
    classification: Classification | None  # None when the curvature is not the Hessian
    lambda_min: float
    lambda_max: float
    radius: float
    radius_reason: str
    slices: tuple[Slice, ...]
    step: StepMark | None
    grid: Grid | None
    analysis: Analysis
    notes: tuple[str, ...] = field(default_factory=tuple)
    curvature: str = "hessian"  # the matrix of the quadratic model and the eigenvectors

    @property
    def verdict(self) -> str:
        """The classification in words, or the curvature's name when there is none."""
        if self.classification is not None:
            return self.classification.replace("_", " ")
        from hesscli.curvature.operators import TITLES

        return f"{TITLES.get(self.curvature, self.curvature)} curvature"


def batched_values(objective: Objective) -> Any:
    """``(x, D, C) -> [f(x + Dᵀc) for c in C]`` as one compiled call per shape.

    ``D`` holds ``k`` directions (rows), ``C`` the ``m × k`` coefficients. The
    evaluations are vmapped in chunks of at most :data:`CHUNK_FLOATS` / n points.
    An objective JAX cannot trace is evaluated point by point.
    """
    if not objective.traceable:
        def loop(x: np.ndarray, D: np.ndarray, C: np.ndarray) -> np.ndarray:
            return np.array([float(objective.flat_fn(x + c @ D)) for c in C])

        return loop
    jax = jax_module()
    f = objective.flat_fn
    batch = max(1, CHUNK_FLOATS // max(objective.n, 1))

    @jax.jit
    def run(x: Any, D: Any, C: Any) -> Any:
        return jax.lax.map(lambda c: f(x + c @ D), C, batch_size=min(batch, C.shape[0]))

    def call(x: np.ndarray, D: np.ndarray, C: np.ndarray) -> np.ndarray:
        dt = objective.dtype
        return np.asarray(
            run(np.asarray(x, dt), np.asarray(D, dt), np.asarray(C, dt)), dtype=np.float64
        )

    return call


def default_radius(
    gradient_norm: float, curvature_along_gradient: float | None, lr: float,
    eigen: list[tuple[float, float]], departure: float | None, point_norm: float,
) -> tuple[float, str]:
    """A radius that shows the quadratic model's features, and why it was chosen.

    Away from a critical point the features of the model ``m`` are where it
    turns and where it comes back to ``f(x)``: along the descent direction with
    curvature ``c = gᵀHg/‖g‖² > 0`` it is lowest at ``t = ‖g‖/c`` and back at
    ``f(x)`` at ``2‖g‖/c`` (the largest decreasing step); along an eigenvector
    with slope ``s = gᵀv`` and ``λ > 0`` it comes back at ``2|s|/λ``. The
    gradient step lands at ``lr·‖g‖``. The radius is :data:`MARGIN` times the
    largest of these, so that the bowl and the step (an overshoot beyond the bowl
    included) are in view.

    At a critical point the model is ``½λt²`` along every slice, which has no
    length scale of its own; what is worth seeing is where ``f`` stops following
    it. ``departure`` (see :func:`model_departure`) is the shortest distance at
    which ``f`` differs from the model by more than half the model's own change:
    the radius is that, so the plot shows the model holding and then giving way
    (the saddle's quartic walls). For an exact quadratic there is no departure
    and the radius is ``max(1, ‖x‖∞)``, the scale of the point. ``--radius``
    overrides all of this.
    """
    scales: list[tuple[float, str]] = []
    if gradient_norm > 0:
        scales.append((lr * gradient_norm, f"the gradient step lr·‖g‖ (lr = {lr:g})"))
        if curvature_along_gradient is not None and curvature_along_gradient > 0:
            scales.append((2 * gradient_norm / curvature_along_gradient,
                           "the model's bowl along the gradient, 2‖g‖³/gᵀHg"))
        for slope, lam in eigen:
            if lam > 0 and slope != 0:
                scales.append((2 * abs(slope) / lam,
                               "the model's bowl along an eigenvector, 2|gᵀv|/λ"))
    scales = [(s, why) for s, why in scales if np.isfinite(s) and s > 0]
    if scales:
        s, why = max(scales, key=lambda p: p[0])
        return MARGIN * s, f"{MARGIN:g}× {why}"
    if departure is not None:
        return departure, "critical point: where f leaves the quadratic model by half its change"
    return max(1.0, point_norm), "critical point with f quadratic here: the point's scale"


#: Distances tried by :func:`model_departure`: 2⁻¹⁰ … 2⁶ times the point's scale.
LADDER = 2.0 ** np.arange(-10, 7)


def model_departure(
    evaluate: Any, x: np.ndarray, f0: float, slices: list[tuple[np.ndarray, float, float]],
    scale: float,
) -> float | None:
    """The shortest ``t`` on ``scale·LADDER`` where ``|f − m| > ½|m − f(x)|`` on a slice.

    ``slices`` holds ``(direction, slope, curvature)``; both signs of ``t`` are
    tried. One compiled call per direction. None when ``f`` follows its model all
    the way (a quadratic).
    """
    t = scale * LADDER
    ts = np.concatenate([t, -t])
    first = None
    for d, slope, curv in slices:
        vals = evaluate(x, d[None, :], ts[:, None])
        model = f0 + ts * slope + 0.5 * ts**2 * curv
        off = np.abs(vals - model) > 0.5 * np.abs(model - f0) + 1e-12 * max(1.0, abs(f0))
        off = off[: t.size] | off[t.size :]
        if off.any():
            hit = float(t[int(np.argmax(off))])
            first = hit if first is None else min(first, hit)
    return first


def plane_candidates(
    plane: tuple[str, str] | None, available: dict[str, np.ndarray], lambda_min: float,
    tol: float,
) -> list[tuple[str, str]]:
    """The requested plane, or pairs of directions, most informative first.

    Default: at a critical point (no gradient) the eigenvectors of λmax and λmin
    (the saddle's shape, or a minimum's conditioning); otherwise the gradient and
    λmin's eigenvector when λmin < −tol (the escape direction), else the gradient
    and λmax's (where a too-large step overshoots). The first pair that is not
    (nearly) parallel is drawn.
    """
    if plane is not None:
        for name in plane:
            if name not in available:
                raise InputError(
                    f"--plane {','.join(plane)}: the direction {name!r} is not available here"
                    + (" (the gradient is zero)" if name == GRAD else "")
                    + f"; choose two of {', '.join(available)}"
                )
        return [plane]
    if GRAD not in available:
        return [(MAX, MIN)]
    if lambda_min < -tol:
        return [(GRAD, MIN), (GRAD, MAX), (MAX, MIN)]
    return [(GRAD, MAX), (GRAD, MIN), (MAX, MIN)]


def _plane_basis(
    pairs: list[tuple[str, str]], available: dict[str, np.ndarray]
) -> tuple[tuple[str, str], np.ndarray, np.ndarray, bool] | None:
    """Orthonormal (u, w) for the first pair whose directions are not parallel."""
    for names in pairs:
        u = available[names[0]]
        w = available[names[1]] - (available[names[1]] @ u) * u
        wnorm = float(np.linalg.norm(w))
        if wnorm >= 1e-6:
            return names, u, w / wnorm, wnorm < 1 - 1e-9
    return None


def landscape(
    objective: Objective,
    curvature: Curvature,
    *,
    lr: float = 0.01,
    radius: float | None = None,
    plane: tuple[str, str] | None = None,
    points: int = 101,
    grid: int = 41,
    spectrum: Spectrum | None = None,
    policy: SpectrumPolicy | None = None,
    choice: PathChoice | None = None,
    notes: tuple[str, ...] = (),
) -> Landscape:
    """Slices of ``f`` and its quadratic model around ``objective.x`` (see module doc).

    ``points`` evaluations per slice (odd, so that ``t = 0`` is a sample),
    ``grid × grid`` on the plane; ``radius`` defaults to :func:`default_radius`.
    The spectrum is ``spectrum`` or the one ``policy`` gives (as in ``analyze``), on
    the path ``choice`` when already chosen.
    """
    if points < 3 or grid < 3:
        raise InputError("--points and --grid must be at least 3")
    points += 1 - points % 2
    grid += 1 - grid % 2
    result = analyze(objective, curvature, lr=lr, spectrum=spectrum, policy=policy,
                     choice=choice, notes=notes)
    sp = result.spectrum
    x = objective.x.astype(np.float64)
    f0 = result.value
    g = curvature.gradient(x)
    gnorm = float(np.linalg.norm(g))

    available: dict[str, np.ndarray] = {}
    if gnorm > 0:
        available[GRAD] = -g / gnorm
    available[MAX] = sp.vec_max
    available[MIN] = sp.vec_min
    hd = {name: curvature.hvp(x, d) for name, d in available.items()}
    for v in hd.values():
        ensure_finite(v, "Hessian-vector product", objective.layout)
    curv = {name: float(available[name] @ hd[name]) for name in available}
    slope = {name: float(g @ available[name]) for name in available}
    eig = {MAX: sp.lambda_max, MIN: sp.lambda_min}

    evaluate = batched_values(objective)
    reason = "--radius"
    if radius is None:
        point_scale = max(1.0, float(np.max(np.abs(x))))
        critical = result.critical
        departure = model_departure(
            evaluate, x, f0, [(available[k], slope[k], curv[k]) for k in (MAX, MIN)],
            point_scale,
        ) if critical else None
        radius, reason = default_radius(
            0.0 if critical else gnorm, curv.get(GRAD), lr,
            [(slope[k], eig[k]) for k in (MAX, MIN)], departure, point_scale,
        )
    elif not radius > 0:
        raise InputError(f"--radius must be positive; got {radius}")

    t = np.linspace(-radius, radius, points)
    slices = []
    for name, d in available.items():
        vals = evaluate(x, d[None, :], t[:, None])
        ensure_finite(vals, f"value along the {LABELS[name]} slice")
        slices.append(Slice(
            name=name, label=LABELS[name], direction=d, t=t, values=vals,
            model=f0 + t * slope[name] + 0.5 * t**2 * curv[name],
            slope=slope[name], curvature=curv[name], eigenvalue=eig.get(name),
            lowest_t=float(t[int(np.argmin(vals))]), lowest_value=float(np.min(vals)),
        ))
    step = None
    extra: list[str] = []
    if result.step is not None:  # analyze evaluated f(x − lr·g) already
        s = result.step
        step = StepMark(
            lr=lr, t=lr * gnorm, value=f0 + s.actual_change,
            model_value=f0 + s.predicted_change, change=s.actual_change,
            predicted_change=s.predicted_change, increases_loss=s.actually_increases,
            inside=lr * gnorm <= radius,
            best_t=None if s.optimal_lr is None else s.optimal_lr * gnorm,
            max_t=None if s.max_decreasing_lr is None else s.max_decreasing_lr * gnorm,
        )
        if not step.inside:
            extra.append(f"the gradient step lands at t = {step.t:.4g}, outside the radius "
                         f"{radius:.4g}; widen --radius to see it")

    basis = _plane_basis(
        plane_candidates(plane, available, sp.lambda_min, result.tolerance), available
    )
    plane_grid = None
    if basis is None:
        if plane is not None:
            raise InputError(
                f"--plane {','.join(plane)}: the two directions are (nearly) parallel here; "
                "choose another pair"
            )
        extra.append("no plane: every available direction is parallel (n = 1)")
    else:
        names, u, w, orthogonalized = basis
        plane_grid = _grid(evaluate, curvature, x, f0, g, u, w, radius, grid)
        plane_grid = Grid(
            names=names,
            labels=(LABELS[names[0]], LABELS[names[1]] + (" ⊥" if orthogonalized else "")),
            orthogonalized=orthogonalized,
            # scalars first: −lr·(g·u) overflows to ±inf quietly for a huge lr
            step=(-lr * float(g @ u), -lr * float(g @ w)) if gnorm > 0 else None,
            **plane_grid,
        )
    return Landscape(
        objective=result.objective, n=result.n, method=result.method, dtype=result.dtype,
        value=f0, gradient_norm=gnorm, classification=result.classification,
        lambda_min=sp.lambda_min, lambda_max=sp.lambda_max, radius=float(radius),
        radius_reason=reason, slices=tuple(slices), step=step, grid=plane_grid,
        analysis=result, notes=result.notes + tuple(extra), curvature=result.curvature,
    )


def _grid(
    evaluate: Any, curvature: Curvature, x: np.ndarray, f0: float, g: np.ndarray,
    u: np.ndarray, w: np.ndarray, radius: float, size: int,
) -> dict[str, Any]:
    """f and the model on ``x + a·u + b·w`` over ``[−r, r]²`` (one compiled call for f)."""
    hu, hw = curvature.hvp(x, u), curvature.hvp(x, w)
    ab = np.linspace(-radius, radius, size)
    A, B = np.meshgrid(ab, ab)  # rows: b, columns: a
    coeffs = np.stack([A.ravel(), B.ravel()], axis=1)
    values = evaluate(x, np.stack([u, w]), coeffs).reshape(A.shape)
    ensure_finite(values, "value on the grid")
    huu, hww, huw = float(u @ hu), float(w @ hw), float(0.5 * (u @ hw + w @ hu))
    model = f0 + A * float(g @ u) + B * float(g @ w) + 0.5 * (
        A**2 * huu + 2 * A * B * huw + B**2 * hww
    )
    return {"u": u, "w": w, "a": ab, "b": ab, "values": values, "model": model}
