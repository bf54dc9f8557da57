"""A small decoder-only transformer language model on bytes of real English text.

A GPT-style network in Flax linen: token and position embeddings, ``layers``
pre-LayerNorm blocks (causal multi-head self-attention, then a GELU MLP of
width 4·d_model, each added to the residual stream), a final LayerNorm and an
unembedding tied to the token embedding. The dense layers have no biases, as
in many current language models. Tokens are bytes (vocabulary 256), so any
text works.

The data is ``data/python_docs.txt`` (204 KB of the Python Language Reference,
from CPython's ``pydoc_data/topics.py``, PSF License; see ``data/README.md``),
cut into non-overlapping windows of ``context + 1`` bytes: the inputs are a
window's first ``context`` bytes, the targets the same window shifted by one.
``sequences`` of the windows, spread evenly over the text, form ``data``
(``sequences=0``: all of them, 3139 windows at the default context).

The file is a model split, what Gauss–Newton and Fisher curvature need:
``model(params, inputs)`` returns logits (sequences, context, 256),
``output_loss(logits, targets)`` is the mean softmax cross-entropy over every
predicted token, ``data = (inputs, targets)`` with a leading sample axis (one
sample = one window). hesscli derives the objective (the loss over all of
``data``) and the minibatch ``loss(params, batch)`` for ``train --batch-size``
from them. ``init(key)`` is the default point (GPT-2's initialization: normal,
std 0.02; residual projections scaled by 1/√(2·layers)).

Parameters are the Flax ``params`` collection (a plain nested dict), so flat
entries and ``--blocks`` read as layers: ``block_2.attn.qkv.kernel``,
``block_0.mlp.fc.kernel``, ``tok_embed.embedding``; ``--blocks 1`` groups
them per block (``block_2``), ``--blocks 2`` per sublayer (``block_2.attn``).
There are 12·d²·layers + 4·d·layers + 256·d + context·d + 2·d parameters
(d = d_model): 1,026,816 by default, 9,943,680 with ``-p d_model=320 -p layers=8``::

    hesscli analyze examples/transformer_lm.py --blocks 1   # the sharpest block
    hesscli analyze examples/transformer_lm.py --curvature ggn --blocks 1
    hesscli spectrum examples/transformer_lm.py --curvature hessian,ggn
    hesscli spectrum examples/transformer_lm.py --density --trace
    hesscli train examples/transformer_lm.py --optimizer adam --lr 3e-3 --steps 200 \\
        --monitor-every 50
    hesscli train examples/transformer_lm.py --optimizer adam --lr 3e-3 --batch-size 16 \\
        -p sequences=0                                 # minibatches over the whole text
    hesscli analyze examples/transformer_lm.py -p d_model=320 -p layers=8 --dtype float32
    hesscli analyze examples/transformer_lm.py -p d_model=8 -p layers=1 -p heads=2 \\
        -p context=8 -p sequences=4                    # 2,928 parameters: dense

``-p`` parameters: ``d_model`` (128), ``layers`` (5), ``heads`` (4, dividing
d_model), ``context`` (64 tokens), ``sequences`` (32; 0 = every window). At
the default size one Hessian-vector product costs a few forward passes over
32·64 tokens; ``--blocks`` (one block per leaf) runs an eigensolver per leaf,
so start with ``--blocks 1`` or ``--blocks 2`` and a small ``-p``.
Copy this file to start from your own network: keep ``model``,
``output_loss``, ``data`` and ``init``, and change what they compute.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

import hesscli
from hesscli.losses import softmax_cross_entropy

P = hesscli.params({
    "d_model": (128, "width of the residual stream", {"min": 1}),
    "layers": (5, "transformer blocks", {"min": 1}),
    "heads": (4, "attention heads per block (must divide d_model)", {"min": 1}),
    "context": (64, "tokens per sequence", {"min": 1}),
    "sequences": (32, "windows of the text in data (0: all of them)", {"min": 0}),
})
if P.d_model % P.heads:
    raise hesscli.InputError(f"parameter heads={P.heads} must divide d_model={P.d_model}")

VOCAB = 256  # byte-level tokens
TEXT = Path(__file__).resolve().parent / "data" / "python_docs.txt"


def windows(text: bytes, context: int, count: int) -> np.ndarray:
    """``count`` non-overlapping windows of ``context + 1`` bytes, spread evenly over the
    text (all of them when ``count`` is 0), as int32 (count, context + 1)."""
    tokens = np.frombuffer(text, dtype=np.uint8)
    total = tokens.size // (context + 1)
    if total == 0:
        raise hesscli.InputError(f"parameter context={context}: longer than the text "
                                 f"({tokens.size} bytes)")
    all_windows = tokens[: total * (context + 1)].reshape(total, context + 1)
    if count == 0 or count >= total:
        return all_windows.astype(np.int32)
    pick = np.linspace(0, total - 1, count).round().astype(int)
    return all_windows[pick].astype(np.int32)


_windows = windows(TEXT.read_bytes(), P.context, P.sequences)
inputs = jnp.asarray(_windows[:, :-1])  # (sequences, context) bytes
targets = jnp.asarray(_windows[:, 1:])  # the next byte at every position
data = (inputs, targets)


INIT = nn.initializers.normal(stddev=0.02)
RESIDUAL_INIT = nn.initializers.normal(stddev=0.02 / np.sqrt(2 * P.layers))


class Attention(nn.Module):
    """Causal multi-head self-attention: one ``qkv`` projection, one ``out`` projection."""

    heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, d = x.shape
        qkv = nn.Dense(3 * d, use_bias=False, kernel_init=INIT, name="qkv")(x)
        q, k, v = jnp.moveaxis(qkv.reshape(b, t, 3, self.heads, d // self.heads), 2, 0)
        # a Python float: a NumPy float64 scalar would promote float32 scores to float64
        scores = jnp.einsum("bqhc,bkhc->bhqk", q, k) / float(np.sqrt(d // self.heads))
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))  # position q sees k <= q only
        scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
        mixed = jnp.einsum("bhqk,bkhc->bqhc", jax.nn.softmax(scores, axis=-1), v)
        return nn.Dense(d, use_bias=False, kernel_init=RESIDUAL_INIT, name="out")(
            mixed.reshape(b, t, d))


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        d = x.shape[-1]
        h = nn.gelu(nn.Dense(4 * d, use_bias=False, kernel_init=INIT, name="fc")(x))
        return nn.Dense(d, use_bias=False, kernel_init=RESIDUAL_INIT, name="proj")(h)


class Block(nn.Module):
    """Pre-LayerNorm residual block: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + Attention(self.heads, name="attn")(nn.LayerNorm(name="ln1")(x))
        return x + MLP(name="mlp")(nn.LayerNorm(name="ln2")(x))


class TransformerLM(nn.Module):
    d_model: int
    layers: int
    heads: int
    context: int

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        tok_embed = nn.Embed(VOCAB, self.d_model, embedding_init=INIT, name="tok_embed")
        pos_embed = nn.Embed(self.context, self.d_model, embedding_init=INIT, name="pos_embed")
        x = tok_embed(tokens) + pos_embed(jnp.arange(tokens.shape[-1]))
        for i in range(self.layers):
            x = Block(self.heads, name=f"block_{i}")(x)
        return tok_embed.attend(nn.LayerNorm(name="ln_f")(x))  # tied unembedding


network = TransformerLM(P.d_model, P.layers, P.heads, P.context)


def model(params, inputs):
    """Logits (sequences, context, 256) for a batch of byte sequences."""
    return network.apply({"params": params}, inputs)


# mean softmax cross-entropy (nats); hesscli applies its Hessian diag(p) − ppᵀ in
# closed form for the GGN and the Fisher (memory: a few times the logits)
output_loss = softmax_cross_entropy


def init(key):
    """The parameters (the ``params`` collection: a nested dict named by layer)."""
    return jax.jit(network.init)(key, inputs[:1])["params"]  # one compile, not one per op
