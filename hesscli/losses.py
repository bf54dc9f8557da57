"""Output losses that carry their curvature in closed form, for objective files.

An objective file with a model split (``model``, ``output_loss``, ``data``)
may set ``output_loss`` to one of these instead of writing the loss out; the
value is the same (it is computed with optax), and hesscli then knows, rather
than guesses, what the loss is:

- the Gauss–Newton product ``Jᵀ H_ℓ J v`` applies the output Hessian ``H_ℓ``
  in closed form instead of differentiating the loss twice, which holds only
  the probabilities ``p`` (one array the size of the logits) for the whole
  point, where second-order autodiff of ``log_softmax`` holds several;
- the GGN is positive semidefinite by construction (``H_ℓ`` is, whatever the
  logits), so no output-space probes are run, and ``--curvature fisher`` knows
  the likelihood (categorical) without probing the loss's derivatives.

::

    from hesscli.losses import softmax_cross_entropy

    def model(params, tokens):          # (B, T) token ids -> (B, T, V) logits
        ...

    output_loss = softmax_cross_entropy  # mean over the B·T positions
    data = (tokens, next_tokens)         # next_tokens: (B, T) integer labels

Assign the helper itself (``output_loss = softmax_cross_entropy``): a function
of your own that calls it is an ordinary loss to hesscli (differentiated by
autodiff, correct but without the savings), since hesscli cannot know what else
that function computes. ``SoftmaxCrossEntropy(reduction="sum")`` sums over the
positions instead of averaging.

Importing this module does not import JAX (``import hesscli`` stays light);
calling a loss does.
"""

from __future__ import annotations

from typing import Any

REDUCTIONS = ("mean", "sum")


class SoftmaxCrossEntropy:
    """Softmax cross-entropy of logits ``z`` (..., V) against targets, reduced over positions.

    Targets are integer class labels shaped ``z.shape[:-1]`` (``−log softmax(z)[y]``
    per position, as ``optax.softmax_cross_entropy_with_integer_labels``) or
    target weights shaped like ``z`` (``−Σ_c t_c log softmax(z)_c``, as
    ``optax.softmax_cross_entropy``; probability rows for a likelihood). Every
    axis but the last is a position; ``reduction="mean"`` averages over the M
    positions (the default, ``torch.nn.CrossEntropyLoss``'s and the
    ``output_loss`` protocol's "mean over the batch"), ``"sum"`` sums them. A
    label outside ``0…V−1`` makes the loss NaN (hesscli then stops with exit 3):
    there is no ignored label (padding).

    Closed forms, per position with ``p = softmax(z)`` and ``s = Σ_c t_c``
    (1 for labels and probability rows), times ``scale`` = 1/M (mean) or 1 (sum):

    - gradient ``(s·p − t)``;
    - Hessian ``s·(diag p − ppᵀ)``, applied as ``s·(p ⊙ u − p (pᵀu))`` without
      forming it (:meth:`hessian_product`); positive semidefinite when ``s ≥ 0``;
    - the Fisher of the categorical likelihood ``diag p − ppᵀ``, whatever the
      targets (:meth:`fisher_product`); it equals the Hessian for labels and
      probability rows.

    Instances compare by reduction; hesscli recognizes exactly this class (not
    subclasses, which could compute something else).
    """

    likelihood = "softmax_cross_entropy"  # what --curvature fisher takes it for

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"SoftmaxCrossEntropy: reduction={reduction!r}; expected one of "
                             f"{', '.join(map(repr, REDUCTIONS))}")
        self.reduction = reduction

    def __repr__(self) -> str:
        return f"SoftmaxCrossEntropy(reduction={self.reduction!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is SoftmaxCrossEntropy and other.reduction == self.reduction

    def __hash__(self) -> int:
        return hash((SoftmaxCrossEntropy, self.reduction))

    # ---- the loss ------------------------------------------------------------------

    def __call__(self, logits: Any, targets: Any) -> Any:
        """The reduced cross-entropy (a scalar)."""
        import jax.numpy as jnp
        import optax

        logits = jnp.asarray(logits)
        targets = jnp.asarray(targets)
        if self.integer_labels(logits, targets):
            per = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
            # a label outside 0…V−1 is NaN, not another class (−1 would index from the end)
            valid = (targets >= 0) & (targets < logits.shape[-1])
            per = jnp.where(valid, per, jnp.nan)
        else:
            per = optax.softmax_cross_entropy(logits, targets)
        return jnp.mean(per) if self.reduction == "mean" else jnp.sum(per)

    @staticmethod
    def integer_labels(logits: Any, targets: Any) -> bool:
        """True for integer labels shaped ``logits.shape[:-1]``, False for target rows
        shaped like the logits; anything else is a ``ValueError`` saying what was expected."""
        import numpy as np

        shape, tshape = tuple(np.shape(logits)), tuple(np.shape(targets))
        dtype = targets.dtype if hasattr(targets, "dtype") else np.asarray(targets).dtype
        kind = np.dtype(dtype).kind
        if len(shape) < 1 or shape[-1] < 2:
            raise ValueError(f"softmax_cross_entropy: logits of shape {shape} have no class "
                             "axis; expected (..., V) with V >= 2 classes on the last axis")
        if kind in "iu" and tshape == shape[:-1]:
            return True
        if kind == "f" and tshape == shape:
            return False
        raise ValueError(
            f"softmax_cross_entropy: targets of shape {tshape} and dtype kind {kind!r} do not "
            f"fit logits of shape {shape}; expected integer labels of shape {shape[:-1]} or "
            f"floating-point target rows of shape {shape}")

    def scale(self, logits: Any) -> float:
        """The reduction's factor: 1/M for the mean over M positions, 1 for the sum."""
        import numpy as np

        shape = np.shape(logits)
        positions = int(np.prod(shape[:-1], dtype=np.int64))
        return 1.0 / positions if self.reduction == "mean" else 1.0

    # ---- curvature in closed form --------------------------------------------------

    def hessian_product(self, logits: Any, targets: Any) -> Any:
        """``u -> ∇²ℓ(z) u`` at the logits ``z``: ``scale·s·(p ⊙ u − p (pᵀu))`` per position.

        Holds ``p`` (and ``s`` for target rows), nothing else the size of the logits.
        """
        import jax
        import jax.numpy as jnp

        logits = jnp.asarray(logits)
        targets = jnp.asarray(targets)
        labels = self.integer_labels(logits, targets)
        p = jax.nn.softmax(logits, axis=-1)
        scale = self.scale(logits)
        if labels:
            mass = None
        else:
            mass = jnp.sum(targets, axis=-1, keepdims=True).astype(p.dtype)

        def apply(u: Any) -> Any:
            hu = p * u - p * jnp.sum(p * u, axis=-1, keepdims=True)
            if mass is not None:
                hu = mass * hu
            return scale * hu

        return apply

    def fisher_product(self, logits: Any) -> Any:
        """``u -> F_out u``: the categorical likelihood's Fisher in the logits,
        ``scale·(p ⊙ u − p (pᵀu))`` per position (independent of the targets)."""
        import jax
        import jax.numpy as jnp

        p = jax.nn.softmax(jnp.asarray(logits), axis=-1)
        scale = self.scale(logits)
        return lambda u: scale * (p * u - p * jnp.sum(p * u, axis=-1, keepdims=True))


#: The mean softmax cross-entropy over every position: ``output_loss = softmax_cross_entropy``.
softmax_cross_entropy = SoftmaxCrossEntropy("mean")


def closed_form(output_loss: Any) -> SoftmaxCrossEntropy | None:
    """``output_loss`` itself when it is a loss of this module (exactly this class,
    never a subclass or a function that calls one), else None."""
    return output_loss if type(output_loss) is SoftmaxCrossEntropy else None
