"""hesscli: debug optimization with second-order information."""

__version__ = "0.1.0"

from hesscli.errors import InputError  # noqa: E402  (for objective files: bad -p values)
from hesscli.objective.params import params  # noqa: E402  (the objective-file helper; no JAX import)

__all__ = ["InputError", "__version__", "params"]
