"""What the model-split operators share: the model as a function of the flat vector,
and what is known about the output loss's Hessian.

The GGN (:mod:`hesscli.curvature.ggn`) and the Fisher matrices
(:mod:`hesscli.curvature.fisher`) both linearize ``θ_flat -> model(θ, inputs)``;
the GGN's probes and the closed forms (:mod:`hesscli.curvature.closed_form`) both
describe ``H_ℓ`` as an :class:`OutputHessian`. They live here so that none of
those modules imports another for them (``ggn`` chooses among the operators and
imports ``fisher`` and ``closed_form``; they import only this).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hesscli.objective.files import ModelSplit


def flat_model(split: ModelSplit, unravel: Any) -> Any:
    """``θ_flat -> model(params, inputs)`` for the whole data set."""
    return lambda x: split.model(unravel(x), split.inputs)


@dataclass(frozen=True)
class OutputHessian:
    """The output loss's Hessian ``H_ℓ = ∇²ℓ`` in the outputs at one point.

    ``lambda_min``/``lambda_max``: its extreme eigenvalues (every eigenvalue
    computed when ``exact``; else the extreme Ritz values of ``how``'s Krylov
    space, so ``lambda_min`` is an upper bound on the true one; in closed form,
    ``lambda_max`` may be an upper bound, see ``how``). ``tolerance``:
    eigenvalues above −tolerance are rounding of a zero. ``how`` says how it was
    computed, ``outputs`` how many outputs there are in all.
    """

    lambda_min: float
    lambda_max: float
    tolerance: float
    exact: bool
    how: str
    outputs: int

    @property
    def psd(self) -> bool | None:
        """True: PSD here (the GGN is PSD); False: not; None: not decided (probes only)."""
        if not self.lambda_min >= -self.tolerance:
            return False
        return True if self.exact else None
