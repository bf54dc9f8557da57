"""The ``meta`` block every JSON document carries (for reproducing a CI log)."""

from __future__ import annotations

import sys
from typing import Any

from hesscli.devices import Parallel
from hesscli.version import __version__


def meta(
    seed: int | None, dtype: str, *, parallel: Parallel | None = None,
    path_choice: Any = None, **options: Any,
) -> dict[str, Any]:
    """Versions, dtype, seed, argv, the options that shaped the result, and who computed.

    ``parallel`` records how many devices and processes took part (one of each
    when not given); ``path_choice`` (a :class:`hesscli.spectra.route.PathChoice`)
    the dense or matrix-free path, the dense budget it was chosen by, and why.
    """
    import jax
    import numpy

    return {
        "hesscli": __version__,
        "jax": jax.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
        "dtype": dtype,
        "seed": seed,
        "argv": sys.argv[1:],
        "options": options,
        "parallel": (parallel or Parallel()).as_dict(),
        **({"path_choice": path_choice.as_meta()} if path_choice is not None else {}),
    }
