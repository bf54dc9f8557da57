"""Training: optax optimizers, Ge et al.'s sphere noise, a compiled loop watched by curvature.

Pure numerics: nothing here prints. The loop reports progress through a
callback; the CLI turns that into a progress bar, a JSONL log and a summary.
"""

from hesscli.jaxconf import jax_module

jax_module()  # x64 on before any module here builds an array
