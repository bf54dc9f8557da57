"""What the model-split operators share: the model as a function of the flat vector.

The GGN (:mod:`hesscli.curvature.ggn`) and the Fisher matrices
(:mod:`hesscli.curvature.fisher`) both linearize ``θ_flat -> model(θ, inputs)``;
it lives here so that neither imports the other for it (``ggn`` chooses among
the operators and imports ``fisher``; ``fisher`` imports only this).
"""

from __future__ import annotations

from typing import Any

from hesscli.objective.files import ModelSplit


def flat_model(split: ModelSplit, unravel: Any) -> Any:
    """``θ_flat -> model(params, inputs)`` for the whole data set."""
    return lambda x: split.model(unravel(x), split.inputs)
