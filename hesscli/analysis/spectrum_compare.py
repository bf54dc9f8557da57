"""Several curvature matrices at one point, side by side, and their difference.

``hesscli spectrum --curvature hessian,ggn`` computes one
:class:`~hesscli.analysis.spectrum_report.SpectrumReport` per matrix (the
same path, seed, k and density settings for each, so they are comparable)
and one for the difference of the first two, ``A − B`` with matvec
``A v − B v``. For the Hessian and the GGN that difference is the residual
term ``Σ_o (∂ℓ/∂m_o) ∇²m_o`` the Gauss–Newton approximation drops: where it
is large, or indefinite, the GGN misrepresents the curvature (the Hessian's
negative eigenvalues all come from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hesscli.analysis.spectrum_report import SpectrumReport, spectrum_report
from hesscli.curvature.base import OperatorAt
from hesscli.objective.bind import Objective
from hesscli.vocab import CurvatureKind


@dataclass(frozen=True)
class Comparison:
    """Per-curvature reports (in the order asked) and the difference of the first two."""

    reports: tuple[SpectrumReport, ...]
    difference: SpectrumReport | None
    difference_of: tuple[str, str] | None
    description: str | None


def difference_description(a: str, b: str) -> str:
    """What ``A − B`` means, in words."""
    if (a, b) == (CurvatureKind.HESSIAN, CurvatureKind.GGN):
        return ("Hessian − GGN: the residual term Σ(∂ℓ/∂m)·∇²m (output-loss gradient times "
                "the model's own curvature) that the Gauss–Newton approximation drops")
    if (a, b) == (CurvatureKind.GGN, CurvatureKind.HESSIAN):
        return "GGN − Hessian: minus the residual term Σ(∂ℓ/∂m)·∇²m"
    return f"{a} − {b}: the difference of the two matrices (matvec A v − B v)"


def linearized_operator(curvature: Any, obj: Objective) -> OperatorAt:
    """The backend's matvec linearized once per point (the Hessian's: ∇f linearized)."""
    if curvature.linearizable is not None:
        return curvature.linearizable
    from hesscli.curvature.exact import hessian_at

    return hessian_at(obj.flat_fn)


def compare_spectra(
    obj: Objective, curvatures: dict[str, Any], **options: Any
) -> Comparison:
    """Reports for each curvature (``kind -> backend``) and for the first two's difference.

    ``options`` are :func:`spectrum_report`'s (path, k, seed, density, ...),
    used alike for every matrix.
    """
    from hesscli.curvature.ggn import residual_at
    from hesscli.curvature.host_products import host_products
    from hesscli.curvature.operators import OperatorCurvature

    kinds = list(curvatures)
    reports = tuple(spectrum_report(obj, curvatures[k], **options) for k in kinds)
    if len(kinds) < 2:
        return Comparison(reports, None, None, None)
    a, b = kinds[0], kinds[1]
    base = curvatures[a].base or curvatures[a]
    description = difference_description(a, b)
    kind = (CurvatureKind.RESIDUAL if (a, b) == (CurvatureKind.HESSIAN, CurvatureKind.GGN)
            else CurvatureKind.DIFFERENCE)
    op = residual_at(linearized_operator(curvatures[a], obj),
                     linearized_operator(curvatures[b], obj))
    # a convolution on the CPU: the difference's products leave the loops too
    diff_op = host_products(OperatorCurvature(base, kind, op, (description,)))
    diff = spectrum_report(obj, diff_op, **options)
    return Comparison(reports, diff, (a, b), description)
