"""hesscli: debug optimization with second-order information.

``import hesscli`` is light (no JAX): the Python API (:mod:`hesscli.api`) loads
on first use of one of its names::

    import hesscli
    res = hesscli.analyze(loss_fn, params)   # JAX loads here
    res.classification, res.to_json()
"""

from __future__ import annotations

from typing import Any

from hesscli.errors import InputError  # (for objective files: bad -p values)
from hesscli.objective.params import params  # (the objective-file helper; no JAX import)
from hesscli.version import __version__

#: Names served lazily from :mod:`hesscli.api` (importing it pulls in nothing heavy
#: either, but its functions import JAX when called).
API = ("Result", "analyze", "check", "convexity", "gradcheck", "landscape", "load", "spectrum",
       "train")

#: The result types (``res.output``, and ``Result`` itself), served lazily from the module
#: that defines each; importing one loads that module (JAX with the numerics), not before.
TYPES = {
    "Objective": "hesscli.objective.bind",
    "Analysis": "hesscli.analysis.analyze",
    "SpectrumReport": "hesscli.analysis.spectrum_report",
    "Comparison": "hesscli.analysis.spectrum_compare",
    "GradCheck": "hesscli.analysis.gradcheck",
    "Convexity": "hesscli.analysis.convexity",
    "Landscape": "hesscli.analysis.landscape",
    "RunSummary": "hesscli.training.report",
    "TrainComparison": "hesscli.training.report",
    "Report": "hesscli.checks.report",
}

__all__ = ["InputError", "__version__", "params", *API, *TYPES]


def __getattr__(name: str) -> Any:
    if name == "losses":  # hesscli.losses.softmax_cross_entropy (imports no JAX itself)
        import importlib

        return importlib.import_module("hesscli.losses")
    if name in API:
        from hesscli import api

        return getattr(api, name)
    if name in TYPES:
        import importlib

        return getattr(importlib.import_module(TYPES[name]), name)
    raise AttributeError(f"module 'hesscli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API) | set(TYPES) | {"losses"})
