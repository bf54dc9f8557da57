"""What a ``train`` call asks for, worked out before any step: the runs and how to continue.

The rules :func:`hesscli.api.train` applies to its arguments (the ``train``
command passes its options straight to it): the optimizer's options from the
flags and ``--opt KEY=VALUE``, the ``--compare`` variants, one
:class:`~hesscli.training.loop.TrainConfig` per run, and the check that a
``--resume`` log was written by the same options. Nothing here trains, prints
or touches a file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from hesscli.errors import InputError
from hesscli.training.loop import TrainConfig

#: the optimizer options that have their own flag (``--momentum`` ...); others go by ``--opt``
OPT_FLAGS = ("momentum", "nesterov", "b1", "b2", "eps", "weight_decay", "decay")


@dataclass(frozen=True)
class Plan:
    """The runs of one ``train`` call, as the observers see them before the first step.

    ``runs`` pairs each variant's name (``""`` for a single run) with its config;
    ``start`` is what the run log's header records about the starting point
    (objective, at, params, dtype), ``resume`` the log being continued (a
    :class:`~hesscli.training.runlog.ResumePoint`) or None, ``bound`` the objective.
    """

    objective: str  # the bound objective's label
    n: int
    runs: tuple[tuple[str, TrainConfig], ...]
    start: dict[str, Any]
    resume: Any = None
    #: the bound objective (:class:`~hesscli.objective.bind.Objective`), for observers that
    #: check before the first step what they will write at the end (``--save-point``)
    bound: Any = None

    @property
    def steps(self) -> int:
        return self.runs[0][1].steps


def option_value(text: str) -> Any:
    """``--opt KEY=VALUE``'s value: true/false, an int, or a finite float."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"--opt value {text!r}: expected a number or true/false") from None
    if not math.isfinite(number):  # nan/inf would only show up as a diverged run
        raise InputError(f"--opt value {text!r}: must be a finite number")
    return int(number) if number.is_integer() and "." not in text and "e" not in low else number


def optimizer_options(flags: Mapping[str, Any], opt_extra: Iterable[str] = (),
                      options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The optimizer's options: ``options`` (Python), the flags given, then ``--opt`` pairs."""
    from hesscli.objective.params import parse_assignments

    out = dict(options or {})
    out.update({k: v for k, v in flags.items() if k in OPT_FLAGS and v is not None})
    for key, raw in parse_assignments(tuple(opt_extra), "--opt").items():
        out[key] = option_value(raw)
    return out


def parse_variants(text: str, base: str, noisy: bool) -> list[tuple[str, str, bool]]:
    """``plain,noisy`` / ``sgd,adam`` / ``sgd+noisy`` -> [(label, optimizer, noisy)]."""
    from hesscli.training.optimizers import optimizer_spec

    out = []
    for token in [t.strip() for t in text.split(",") if t.strip()]:
        if token == "plain":
            out.append((token, base, False))
        elif token == "noisy":
            out.append((token, base, True))
        else:
            name, _, suffix = token.partition("+")
            if suffix not in ("", "noisy"):
                raise InputError(f"--compare {token!r}: expected NAME or NAME+noisy")
            optimizer_spec(name)
            out.append((token, name, noisy or suffix == "noisy"))
    if len(out) < 2:
        raise InputError(f"--compare {text!r}: name at least two variants, e.g. plain,noisy")
    labels = [v[0] for v in out]
    if len(set(labels)) != len(labels):
        raise InputError(f"--compare {text!r}: a variant is named twice")
    return out


def options_for(name: str, options: dict[str, Any], strict: bool) -> dict[str, Any]:
    """Options the optimizer takes; with ``strict`` others are an error (checked later)."""
    from hesscli.training.optimizers import accepted_options

    if strict:
        return dict(options)
    allowed = accepted_options(name)
    return {k: v for k, v in options.items() if k in allowed}


def configs_for(base: TrainConfig, options: dict[str, Any], *, noisy: bool,
                noise_scale: float, compare: str | None) -> list[tuple[str, TrainConfig]]:
    """One ``(label, config)`` per run: the single run (label ``""``) or each variant.

    A variant gets the options its optimizer takes; an option no variant takes is
    an error. Every optimizer's option names are checked here, before any work.
    """
    from hesscli.training.optimizers import resolved_options

    if compare:
        configs = []
        used: set[str] = set()
        for label, name, noisy_variant in parse_variants(compare, base.optimizer, noisy):
            opts = options_for(name, options, strict=False)
            used |= set(opts)
            configs.append((label, replace(base, optimizer=name, options=opts,
                                           noise=noise_scale if noisy_variant else None)))
        unused = set(options) - used
        if unused:
            raise InputError(f"option {', '.join(sorted(unused))} applies to none of the "
                             f"variants {compare}")
    else:
        configs = [("", replace(base, options=dict(options),
                                noise=noise_scale if noisy else None))]
    for _, config in configs:
        resolved_options(config.optimizer, config.options)
    return configs


def check_resume(resume: Any, start: dict[str, Any], config: TrainConfig) -> None:
    """The log's options must be the ones given now (else the trajectory would differ)."""
    logged_start = resume.header.get("start", {})
    now = json.loads(json.dumps(config.trajectory_fields()))
    then = resume.header.get("config", {})
    diffs = [f"{k}: logged {then.get(k)!r}, now {now.get(k)!r}"
             for k in sorted(set(now) | set(then)) if now.get(k) != then.get(k)]
    diffs += [f"{k}: logged {logged_start.get(k)!r}, now {start.get(k)!r}"
              for k in start if logged_start.get(k) != start.get(k)]
    if diffs:
        raise InputError("--resume: repeat the logged run's options to continue it exactly ("
                         + "; ".join(diffs) + ")")
