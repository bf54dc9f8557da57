"""Optimizers by name: optax's, with their usual options, plus our sphere noise.

``make_optimizer("momentum", 0.05, {"momentum": 0.95})`` is
``optax.sgd(0.05, momentum=0.95)``. Options are checked against the optax
function's signature, so ``--b1`` given to ``sgd`` is an error naming what
``sgd`` does take instead of being silently ignored. ``noise`` chains
:func:`hesscli.training.noise.sphere_noise` *before* the optimizer, so the
optimizer sees ``g + r·ν`` (Ge et al.'s noisy gradient).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optax

from hesscli.errors import InputError, closest
from hesscli.vocab import Optimizer


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer name: the optax factory and the defaults the name implies."""

    factory: Callable[..., optax.GradientTransformation]
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    Optimizer.SGD: OptimizerSpec(optax.sgd, "plain (stochastic) gradient descent: x ← x − lr·g"),
    Optimizer.MOMENTUM: OptimizerSpec(
        optax.sgd, "heavy-ball momentum (default 0.9)", {"momentum": 0.9}
    ),
    Optimizer.NESTEROV: OptimizerSpec(
        optax.sgd, "Nesterov momentum (default 0.9)", {"momentum": 0.9, "nesterov": True}
    ),
    Optimizer.ADAM: OptimizerSpec(optax.adam, "Adam (b1 0.9, b2 0.999, eps 1e-8)"),
    Optimizer.ADAMW: OptimizerSpec(optax.adamw, "Adam with decoupled weight decay (1e-4)"),
    Optimizer.NADAM: OptimizerSpec(optax.nadam, "Adam with Nesterov momentum"),
    Optimizer.AMSGRAD: OptimizerSpec(optax.amsgrad, "Adam with the running maximum of v"),
    "adamax": OptimizerSpec(optax.adamax, "Adam with the infinity norm"),
    "adabelief": OptimizerSpec(optax.adabelief, "AdaBelief"),
    "radam": OptimizerSpec(optax.radam, "rectified Adam"),
    "yogi": OptimizerSpec(optax.yogi, "Yogi"),
    "rmsprop": OptimizerSpec(optax.rmsprop, "RMSProp (decay 0.9)"),
    "adagrad": OptimizerSpec(optax.adagrad, "Adagrad"),
    "adadelta": OptimizerSpec(optax.adadelta, "Adadelta"),
    "lion": OptimizerSpec(optax.lion, "Lion (sign of an interpolated momentum)"),
    "lamb": OptimizerSpec(optax.lamb, "LAMB (layer-wise trust ratio)"),
    "novograd": OptimizerSpec(optax.novograd, "NovoGrad"),
    "sign_sgd": OptimizerSpec(optax.sign_sgd, "signSGD: x ← x − lr·sign(g)"),
}

PLAIN_GD = (Optimizer.SGD,)  # x ← x − lr·g: what lr·λmax < 2 and the step model describe

GD_ONLY_NOTE = (
    "lr·λmax, the unstable event and the model error describe a plain gradient step "
    "x − lr·g; {name} scales its steps itself (momentum, per-coordinate preconditioning), "
    "so they say what plain gradient descent with this lr would do, not what {name} did"
)


def plain_gd(name: str) -> bool:
    """True when optimizer ``name`` takes the plain step x − lr·g (the GD diagnostics apply)."""
    return name in PLAIN_GD


# Options that are not numbers in the CLI sense, or that would break state logging.
_EXCLUDED = {"learning_rate", "mask", "weight_decay_mask", "trust_ratio_mask", "mu_dtype",
             "accumulator_dtype", "dtype_momentum"}


def accepted_options(name: str) -> list[str]:
    """The keyword options optimizer ``name`` takes (from the optax signature)."""
    spec = optimizer_spec(name)
    params = inspect.signature(spec.factory).parameters
    return [p for p in params if p not in _EXCLUDED]


def optimizer_spec(name: str) -> OptimizerSpec:
    spec = OPTIMIZERS.get(name)
    if spec is None:
        raise InputError(
            f"unknown optimizer {name!r}{closest(name, list(OPTIMIZERS))}; "
            f"choose one of: {', '.join(OPTIMIZERS)}"
        )
    return spec


def resolved_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The name's implied defaults overridden by ``options``, checked against optax."""
    spec = optimizer_spec(name)
    allowed = accepted_options(name)
    for key in options:
        if key not in allowed:
            raise InputError(
                f"optimizer {name!r} has no option {key!r}{closest(key, allowed)}; "
                f"it takes: {', '.join(allowed) or 'only --lr'}"
            )
    merged = dict(spec.defaults)
    merged.update(options)
    return merged


def make_optimizer(
    name: str,
    lr: float,
    options: Mapping[str, Any] | None = None,
    *,
    noise: float | None = None,
    noise_key: Any = None,
    noise_steps: int | None = None,
) -> optax.GradientTransformation:
    """``optax.<name>(lr, **options)``, optionally preceded by sphere noise of radius ``noise``."""
    spec = optimizer_spec(name)
    merged = resolved_options(name, options or {})
    try:
        opt = spec.factory(lr, **merged)
    except (TypeError, ValueError) as exc:
        raise InputError(f"optimizer {name!r} with {merged}: {exc}") from None
    if noise is None:
        return opt
    from hesscli.training.noise import sphere_noise

    if noise_key is None:
        raise ValueError("noise needs noise_key")
    return optax.chain(sphere_noise(noise, noise_key, steps=noise_steps), opt)
