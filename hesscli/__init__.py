"""hesscli: debug optimization with second-order information.

``import hesscli`` is light (no JAX): the Python API (:mod:`hesscli.api`) loads
on first use of one of its names::

    import hesscli
    res = hesscli.analyze(loss_fn, params)   # JAX loads here
    res.classification, res.to_json()
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from hesscli.errors import InputError  # noqa: E402  (for objective files: bad -p values)
from hesscli.objective.params import params  # noqa: E402  (the objective-file helper; no JAX import)

#: Names served lazily from :mod:`hesscli.api` (importing it pulls in nothing heavy
#: either, but its functions import JAX when called).
API = ("Result", "analyze", "check", "convexity", "gradcheck", "landscape", "load", "spectrum",
       "train")

__all__ = ["InputError", "__version__", "params", *API]


def __getattr__(name: str) -> Any:
    if name == "losses":  # hesscli.losses.softmax_cross_entropy (imports no JAX itself)
        import importlib

        return importlib.import_module("hesscli.losses")
    if name in API:
        from hesscli import api

        return getattr(api, name)
    raise AttributeError(f"module 'hesscli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API) | {"losses"})
