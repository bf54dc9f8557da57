"""Training: optax optimizers, Ge et al.'s sphere noise, a compiled loop watched by curvature.

Pure numerics: nothing here prints. The runs report to observers
(:mod:`.observers`); the ``train`` command's are its progress bar and its JSONL log.
"""

from hesscli.jaxconf import jax_module

jax_module()  # x64 on before any module here builds an array
