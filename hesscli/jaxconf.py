"""One place that imports JAX and configures it (x64 on, CPU-friendly defaults).

Everything that needs JAX imports it through :func:`jax_module` so that
``hesscli --help`` and ``hesscli problems`` never pay for the import.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

DTYPES = ("float64", "float32")


@cache
def jax_module() -> Any:
    """Import JAX with float64 enabled and return the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def eps(dtype: str) -> float:
    """Machine epsilon of a dtype name (``float64`` or ``float32``)."""
    import numpy as np

    return float(np.finfo(dtype).eps)
