"""A tiny language-model head for the large-vocabulary benchmark (bench_softmax_ggn).

Token ids -> embedding (vocab × dim) -> one tanh dense layer (dim × dim) ->
logits over the vocabulary (dim × vocab), at ``positions`` (B·T) positions
with seeded random next-token labels; 2·vocab·dim + dim² parameters. The output
loss is the mean softmax cross-entropy over the positions, either
``hesscli.losses.softmax_cross_entropy`` (``loss=helper``: the GGN applies its
output Hessian in closed form) or the same loss written with ``log_softmax``
(``loss=written``: hesscli differentiates it).
"""

import jax
import jax.numpy as jnp
import numpy as np

import hesscli
from hesscli.losses import softmax_cross_entropy

P = hesscli.params({
    "vocab": (8192, "vocabulary size (classes of the softmax)", {"min": 2}),
    "dim": (32, "embedding width", {"min": 1}),
    "positions": (512, "positions B·T (rows of the logits)", {"min": 1}),
    "loss": ("helper", "helper (hesscli.losses) or written (log_softmax, autodiff)"),
    "seed": (0, "seed of the data and the point"),
})
if P.loss not in ("helper", "written"):
    raise hesscli.InputError(f"softmax_lm: loss={P.loss!r}; expected helper or written")

_rng = np.random.default_rng(P.seed)
_tokens = _rng.integers(0, P.vocab, P.positions + 1)
data = (jnp.asarray(_tokens[:-1]), jnp.asarray(_tokens[1:]))
x0 = {"embed": jnp.asarray(_rng.standard_normal((P.vocab, P.dim))),
      "dense": jnp.asarray(_rng.standard_normal((P.dim, P.dim)) / np.sqrt(P.dim)),
      "head": jnp.asarray(_rng.standard_normal((P.dim, P.vocab)) / np.sqrt(P.dim))}


def model(params, tokens):
    h = jnp.tanh(params["embed"][tokens] @ params["dense"])
    return h @ params["head"]


def _written(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


output_loss = softmax_cross_entropy if P.loss == "helper" else _written
