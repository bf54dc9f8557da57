"""A black-box objective: plain NumPy, so JAX cannot trace it.

``hesscli analyze examples/black_box.py`` differentiates it by finite
differences of function values and says so (``method fd`` and why). The
function is Rosenbrock's valley in 4 variables, minimum at (1, 1, 1, 1).
"""

import numpy as np


def objective(x):
    x = np.asarray(x, dtype=float)  # forces a concrete array: untraceable by JAX
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


x0 = np.array([-1.2, 1.0, -1.2, 1.0])
