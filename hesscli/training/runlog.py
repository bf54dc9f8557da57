"""The ``--out FILE.jsonl`` run log: one JSON object per line, enough to resume exactly.

Records (field ``record``):

- ``header``: schema ``hesscli.train-log/1``, objective, n, names of the
  trajectory-shaping options (:meth:`TrainConfig.trajectory_fields`), the point;
- ``step``: one history entry (step, value, gradient_norm, λmin, λmax, ...);
- ``event``: one event (step, kind, message, ...);
- ``state``: the point, the optimizer state (every leaf with dtype and shape,
  which includes the noise's PRNG key) and the start value, written after the
  step it belongs to, every ``--checkpoint-every`` steps and at the end (or on
  an interrupt); ``--resume`` continues from the last one, dropping the
  records logged after it (the resumed run logs them again, identically);
- ``end``: why the run stopped (``completed``, ``diverged``, ``interrupted``).

Floats are written with Python's shortest round-trip ``repr``, so a state read
back is bit-identical and a resumed run repeats the uninterrupted trajectory.
Every line is written whole and flushed, so a run killed at any moment leaves
a file whose lines are each valid JSON (a torn last line is skipped on resume).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from hesscli.errors import InputError
from hesscli.training.events import Event
from hesscli.training.loop import TrainConfig, TrainState
from hesscli.training.monitor import Record
from hesscli.vocab import RecordKind

LOG_SCHEMA = "hesscli.train-log/1"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def record_line(record: Record, variant: str | None = None) -> dict[str, Any]:
    line = {"record": RecordKind.STEP, **asdict(record)}
    if variant is not None:
        line["variant"] = variant
    return line


def event_line(event: Event, variant: str | None = None) -> dict[str, Any]:
    line = {"record": RecordKind.EVENT, "step": event.step, "kind": event.kind,
            "message": event.message, **event.data}
    if variant is not None:
        line["variant"] = variant
    return line


def state_line(state: TrainState) -> dict[str, Any]:
    leaves = jax.tree_util.tree_leaves(state.opt_state)
    return {
        "record": RecordKind.STATE,
        "step": state.step,
        "start_value": state.start_value,
        "x": np.asarray(state.x, dtype=np.float64).tolist(),
        "x_dtype": str(np.asarray(state.x).dtype),
        "opt_state": [
            {"dtype": str(np.asarray(leaf).dtype), "shape": list(np.shape(leaf)),
             "data": np.asarray(leaf).reshape(-1).tolist()}
            for leaf in leaves
        ],
    }


def header_line(objective: str, n: int, config: TrainConfig, extra: dict[str, Any]) -> dict:
    return {"record": RecordKind.HEADER, "schema": LOG_SCHEMA, "objective": objective, "n": n,
            "config": config.trajectory_fields(), **extra}


class RunLog:
    """Appends records to a JSONL file, one whole line per write (see :class:`LineLog`).

    ``mode`` is ``"x"`` (create; an existing file is refused), ``"w"`` (overwrite,
    for ``--force``) or ``"a"`` (append, for ``--resume``). The file is locked for
    the whole run, so a second ``train --out`` on it is refused instead of
    interleaving lines; a full disk stops the run with the complete lines kept.
    """

    def __init__(self, path: Path, mode: str = "x") -> None:
        from hesscli.files import LineLog

        self.path = Path(path)
        self._log = LineLog(self.path, {"x": "new", "w": "overwrite", "a": "append"}[mode],
                            option="--out")

    @property
    def lines(self) -> int:
        return self._log.lines

    def write(self, line: dict[str, Any]) -> None:
        self._log.write(json.dumps(_clean(line), allow_nan=False))

    def close(self) -> None:
        self._log.close()


@dataclass
class ResumePoint:
    """What a log says about where to continue."""

    header: dict[str, Any]
    state_line: dict[str, Any]
    records: list[Record] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    kept_lines: list[str] = field(default_factory=list)  # up to and including the state
    skipped: int = 0  # torn or later lines dropped


def read_log(path: Path) -> ResumePoint:
    """Parse a run log and find the last state record (for ``--resume``)."""
    from hesscli.files import read_regular

    path = Path(path)
    if not path.exists():
        raise InputError(f"--resume {str(path)!r}: no such file")
    data = read_regular(path, "--resume", None)  # a FIFO or device is refused, not read
    lines = data.decode("utf-8", errors="replace").splitlines()
    parsed: list[tuple[str, dict[str, Any]]] = []
    numbers: list[int] = []  # each parsed line's number in the file
    torn = 0
    for i, text in enumerate(lines):
        if not text.strip():
            continue
        try:
            parsed.append((text, json.loads(text)))
            numbers.append(i + 1)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                torn = 1  # killed mid-write: skip it
                continue
            raise InputError(f"--resume {str(path)!r}: line {i + 1} is not JSON") from None
    if not parsed or parsed[0][1].get("record") != RecordKind.HEADER or \
            parsed[0][1].get("schema") != LOG_SCHEMA:
        raise InputError(f"--resume {str(path)!r}: not a hesscli train log (no header line "
                         f"with schema {LOG_SCHEMA})")
    header = parsed[0][1]
    where = f"--resume {str(path)!r}"
    from hesscli.training.logcheck import check_header, check_records, check_state

    check_header(header, where)
    if header.get("variants"):
        raise InputError(f"--resume {str(path)!r}: a --compare log cannot be resumed")
    last = max((i for i, (_, d) in enumerate(parsed) if d.get("record") == RecordKind.STATE),
               default=None)
    if last is None:
        raise InputError(f"--resume {str(path)!r}: the log has no state record to resume from "
                         "(states are logged every --checkpoint-every steps and at the end; "
                         "this run stopped before the first)")
    kept = parsed[: last + 1]
    check_records([(numbers[i], d) for i, (_, d) in enumerate(kept) if i], where)
    steps = [d["step"] for _, d in kept if d.get("record") == RecordKind.STEP]
    check_state(kept[-1][1], header, steps[-1] if steps else None, where, numbers[last])
    point = ResumePoint(header, kept[-1][1], kept_lines=[t for t, _ in kept],
                        skipped=len(parsed) - len(kept) + torn)
    names = set(Record.__dataclass_fields__)
    for _, d in kept:
        if d.get("record") == RecordKind.STEP:
            point.records.append(Record(**{k: v for k, v in d.items() if k in names}))
        elif d.get("record") == RecordKind.EVENT:
            point.events.append(d)
    return point


def restore_state(line: dict[str, Any], template: Any) -> TrainState:
    """Rebuild a :class:`TrainState` with ``template``'s optimizer-state structure."""
    import jax.numpy as jnp

    leaves, treedef = jax.tree_util.tree_flatten(template)
    stored = line["opt_state"]
    if len(stored) != len(leaves):
        raise InputError("--resume: the logged optimizer state does not match this optimizer "
                         f"({len(stored)} arrays logged, {len(leaves)} expected)")
    new = []
    for leaf, entry in zip(leaves, stored, strict=True):
        arr = np.asarray(entry["data"], dtype=entry["dtype"]).reshape(entry["shape"])
        if arr.shape != np.shape(leaf) or arr.dtype != np.asarray(leaf).dtype:
            raise InputError("--resume: the logged optimizer state does not match this "
                             f"optimizer (array {arr.dtype}{list(arr.shape)} vs "
                             f"{np.asarray(leaf).dtype}{list(np.shape(leaf))})")
        new.append(jnp.asarray(arr))
    x = np.asarray(line["x"], dtype=line.get("x_dtype", "float64"))
    return TrainState(x=x, opt_state=jax.tree_util.tree_unflatten(treedef, new),
                      step=int(line["step"]), start_value=float(line["start_value"]))
