"""hesscli: debug optimization with second-order information.

``import hesscli`` is light (no JAX): the Python API (:mod:`hesscli.api`) loads
on first use of one of its names::

    import hesscli
    res = hesscli.analyze(loss_fn, params)   # JAX loads here
    res.classification, res.to_json()
"""

from __future__ import annotations

import sys as _sys

if _sys.argv and (_sys.argv[0] == "-m"
                  or _sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1].split(".")[0]
                  == "hesscli"):
    # the `hesscli` command (or `python -m hesscli`): from here on Ctrl-C ends it with one
    # line and 130. The first handler needs nothing but os (already loaded) and signal;
    # hesscli.sigint then takes over (see there).
    import os as _os
    import signal as _signal

    def _early(signum: int, frame: object) -> None:
        try:
            _os.write(2, b"error: interrupted\n")
        finally:
            _os._exit(130)

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _early)
    from hesscli import sigint as _sigint

    _sigint.install(_early)

from typing import Any  # noqa: E402

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
