"""The built-in ``mlp`` with its data stored in float32: the float32 rows' network.

Identical to ``problems/mlp.py`` (tanh, 32 inputs, 16 outputs, 256 samples, summed
squared error averaged over samples; 49·width + 16 parameters, the same seeded
weights) except that ``data`` holds float32 arrays, the float64 values rounded once.
The built-in's data is float64 (``jnp.asarray`` of a float64 array under x64), and JAX
promotes float32 parameters to float64 where they meet it, so ``--dtype float32``
on the built-in computes every HVP in float64 and only rounds the product; here the
HVP of a float32 run is float32 arithmetic throughout, while a float64 run promotes
the float32 data and computes in float64 on exactly the same values (the float64
reference is the truth of the same network).
"""

import importlib.util
from pathlib import Path

import jax.numpy as jnp

# the built-in itself (its -p parameters, seeded weights and data), loaded from problems/
_spec = importlib.util.spec_from_file_location(
    "_hesscli_builtin_mlp", Path(__file__).resolve().parents[2] / "problems" / "mlp.py")
_mlp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mlp)

P = _mlp.P
data = tuple(jnp.asarray(a, dtype=jnp.float32) for a in _mlp.data)
likelihood = _mlp.likelihood
model = _mlp.model
output_loss = _mlp.output_loss
init = _mlp.init
