"""``analyze --preconditioner RUN.jsonl``: Adam's preconditioner read back from a
``train --out`` run log, and the sharpness λmax(P⁻¹H) it gives at the point.

Reading the log is training's business (its header's optimizer, its ``state``
records: :mod:`hesscli.training.runlog`); what the preconditioner's sharpness
means is the analysis's (:mod:`hesscli.analysis.preconditioned`), which this
module calls, so the analyses never import training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hesscli.analysis.preconditioned import (
    LoadedState,
    PreconditionedSharpness,
    preconditioned_sharpness,
    sharpness_document,
)
from hesscli.curvature.base import Curvature
from hesscli.spectra.policy import SpectrumPolicy
from hesscli.vocab import CurvatureKind, Ends, RecordKind


def load_state(path: str, n: int, *, b1: float | None = None) -> LoadedState:
    """The preconditioner of the last optimizer state in a ``train --out`` run log.

    The log's header names the optimizer and its options (b1, b2, eps, ...); its
    last ``state`` line holds the optimizer state's arrays, rebuilt with that
    optimizer's structure. ``b1`` overrides the logged β₁ (the threshold only).
    Anything else is an :class:`~hesscli.errors.InputError` naming what is wrong.
    """
    import dataclasses
    import json
    from pathlib import Path as FilePath

    from hesscli.curvature.preconditioned import preconditioner_of
    from hesscli.errors import InputError
    from hesscli.files import read_regular

    file = FilePath(path)
    what = f"--preconditioner {str(path)!r}"
    if not file.is_file():
        raise InputError(f"{what}: no such file (give the JSONL run log that "
                         "'hesscli train --out FILE.jsonl' wrote, or a saved optax state: an "
                         "orbax directory, .msgpack, .npz or .safetensors)")
    text = read_regular(file, "--preconditioner", None).decode("utf-8", errors="replace")
    header, state = None, None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if header is None:
                raise InputError(f"{what}: line {number} is not JSON; expected a hesscli "
                                 "train log (train --out FILE.jsonl)") from None
            continue  # a torn last line
        if not isinstance(entry, dict):
            continue
        if entry.get("record") == RecordKind.HEADER:
            header = entry
        elif entry.get("record") == RecordKind.STATE:
            state = entry
    from hesscli.training.runlog import LOG_SCHEMA, restore_state

    if header is None or header.get("schema") != LOG_SCHEMA:
        raise InputError(f"{what}: not a hesscli train log (no header line with schema "
                         f"{LOG_SCHEMA})")
    if header.get("variants"):
        raise InputError(f"{what}: a --compare log holds several runs; log one run")
    if state is None:
        raise InputError(f"{what}: the log has no optimizer state (states are logged every "
                         "--checkpoint-every steps and at the end of a run)")
    config = dict(header.get("config") or {})
    optimizer = str(config.get("optimizer", ""))
    options = dict(config.get("options") or {})
    if b1 is not None:
        options["b1"] = float(b1)
    from hesscli.training.loop import TrainConfig, optimizer_for

    try:
        train_config = TrainConfig(**{k: v for k, v in config.items()
                                      if k in TrainConfig.__dataclass_fields__})
        x = np.asarray(state["x"], dtype=state.get("x_dtype", "float64"))
        if x.size != n:
            raise InputError(f"{what}: the logged point has {x.size} parameters; the "
                             f"objective has {n}")
        template = optimizer_for(train_config).init(x)
        restored = restore_state(state, template)
    except InputError as exc:
        raise InputError(str(exc).replace("--resume", what)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{what}: malformed state record ({exc})") from None
    pre = preconditioner_of(optimizer, options, restored.opt_state, n)
    if b1 is not None:
        pre = dataclasses.replace(pre, b1=float(b1))
    lr = config.get("lr")
    return LoadedState(pre, str(path), step=restored.step,
                       lr=float(lr) if isinstance(lr, (int, float)) else None, x=restored.x)


def preconditioned_part(obj: Any, backend: Curvature, path: str, lr: float | None,
                        b1: float | None,
                        policy: SpectrumPolicy, **state_only: Any,
                        ) -> tuple[PreconditionedSharpness, dict[str, Any]]:
    """``analyze --preconditioner``: the sharpness at ``obj``'s point from the run log at
    ``path`` and its JSON object (with notes when the log's lr or point differ).

    ``lr`` None (no ``--lr``): the run's own, as logged; a threshold for another
    learning rate than the run's would judge a run that did not happen.

    ``state_only`` (b2, eps, weight_decay, nesterov) describe a saved optax state
    (:mod:`hesscli.analysis.saved_state`); a run log records them, so they are refused."""
    import dataclasses

    from hesscli.errors import InputError

    given = [k for k, v in state_only.items() if v is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise InputError(f"{flag}: the run log {path} records the optimizer's options; "
                         f"{flag} is for a saved optimizer state (an orbax directory, "
                         ".msgpack, .npz or .safetensors)")
    if backend.parallel.sharded:
        raise InputError("--preconditioner runs on one device; use --devices 1")
    loaded = load_state(path, obj.n, b1=b1)
    assumed = None
    if lr is None:
        lr = loaded.lr
    if lr is None:  # a log without its lr (hesscli's logs record it): analyze's default
        lr, assumed = 0.01, ("the run log does not record the learning rate: lr = 0.01 "
                             "assumed (pass --lr)")
    ends_policy = dataclasses.replace(policy, k=1, ends=Ends.MAX)
    ps = preconditioned_sharpness(backend, np.asarray(obj.x), loaded.preconditioner, lr,
                                  ends_policy)
    notes = list(ps.notes) + ([assumed] if assumed else [])
    if backend.kind != CurvatureKind.HESSIAN:
        notes.append(f"the operator is P^(-1/2)·M·P^(-1/2) with M the {backend.kind}, not the "
                     "Hessian (--curvature)")
    if loaded.lr is not None and not np.isclose(loaded.lr, lr, rtol=1e-12, atol=0.0):
        notes.append(f"the run trained with lr = {loaded.lr:g}; the threshold here is for "
                     f"--lr {lr:g} (pass --lr {loaded.lr:g} for the run's own)")
    if loaded.x is not None:
        dist = float(np.linalg.norm(np.asarray(obj.x, np.float64) - loaded.x))
        if dist > 0:
            notes.append(f"the point analyzed is not the one logged with the state (step "
                         f"{loaded.step}; ‖Δx‖ = {dist:.3g}): P is that step's")
    ps = dataclasses.replace(ps, notes=tuple(notes))
    return ps, sharpness_document(ps, loaded)
