"""A ReLU classifier with dead units and an unused input: a Hessian with a planted null space.

One hidden ReLU layer, softmax cross-entropy over ``classes`` classes. The first
``dead`` hidden units are dead at the default point (zero incoming weights,
bias −1: the pre-activation is −1 on every sample) and input ``unused`` is zero
in every sample. The loss then does not depend on a dead unit's incoming
weights, bias and outgoing weights, nor on the live weights reading the unused
input; and the softmax does not change when a constant is added to every logit
(the head bias, and each live row of the head kernel, can do that). So the
Hessian has exactly dead·(inputs + 1 + classes) + (width − dead)·[unused ≥ 0]
+ (width − dead + 1) zero eigenvalues; ``hesscli analyze relunet --null-space``
counts and attributes them. Parameters {"hidden": {"w", "b"}, "head": {"w", "b"}}.
"""

import jax
import jax.numpy as jnp
import numpy as np

import hesscli

P = hesscli.params({
    "inputs": (5, "input features"),
    "width": (6, "hidden ReLU units"),
    "classes": (3, "classes of the softmax"),
    "samples": (40, "number of training samples"),
    "dead": (2, "hidden units made dead at the default point"),
    "unused": (2, "index of the input that is zero in every sample (-1: none)"),
    "seed": (0, "seed of the data and the point"),
})
if not 0 <= P.dead <= P.width:
    raise hesscli.InputError(f"relunet needs 0 <= dead <= width; got dead={P.dead}")
if not -1 <= P.unused < P.inputs:
    raise hesscli.InputError(f"relunet needs -1 <= unused < inputs; got unused={P.unused}")

_rng = np.random.default_rng(P.seed)
X = _rng.standard_normal((P.samples, P.inputs))
if P.unused >= 0:
    X[:, P.unused] = 0.0
Y = _rng.integers(0, P.classes, P.samples)
data = (jnp.asarray(X), jnp.asarray(Y))


def loss(params, batch):
    Xb, Yb = batch
    h = jax.nn.relu(Xb @ params["hidden"]["w"] + params["hidden"]["b"])
    logits = h @ params["head"]["w"] + params["head"]["b"]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), Yb[:, None], axis=1))


def objective(params):
    return loss(params, data)


def _point():
    r = np.random.default_rng(P.seed + 1)
    w = r.standard_normal((P.inputs, P.width))
    b = 0.1 * r.standard_normal(P.width)
    w[:, : P.dead] = 0.0
    b[: P.dead] = -1.0
    return {"hidden": {"w": jnp.asarray(w), "b": jnp.asarray(b)},
            "head": {"w": jnp.asarray(r.standard_normal((P.width, P.classes))),
                     "b": jnp.asarray(r.standard_normal(P.classes))}}


x0 = _point()
