"""One hesscli command in this process, its fixed cost broken down (issue 19).

``python -m tests.benchmarks.startup_phases OUT.json hesscli-args...`` runs the CLI
as ``hesscli hesscli-args...`` would, and writes to ``OUT.json``:

- ``import_jax_s``, ``import_hesscli_s``: seconds from this process's first line
  (``python -X importtime`` gives the module-by-module detail);
- ``phases``: wall and CPU seconds of loading the objective (``api._bind``:
  importing the file, its default point, the traceability checks), the
  eigensolver (``spectrum_at``: linearization, the Lanczos loop, the residual
  checks), the trace (``estimate_trace``) and ``other`` (the value and gradient,
  rendering), each with the compilations that ran inside it;
- ``compiles``: every XLA program JAX compiled or fetched from the persistent
  cache, in order: its name and argument shapes (JAX's ``jax_log_compiles``
  messages), seconds, whether the persistent cache had it, and the phase;
- ``totals``: JAX's own duration events summed (``jax.monitoring``: tracing to a
  jaxpr, lowering to MLIR, the backend compile, the cache retrieval).

Products (HVPs) run inside the phases: at the small sizes the benchmark uses they
cost milliseconds, so the phases are the fixed cost.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()
C0 = time.process_time()

import json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

PHASES = ("load", "eigensolver", "trace")


class Recorder:
    def __init__(self) -> None:
        self.compiles: list[dict[str, Any]] = []
        self.totals: dict[str, float] = {}
        self.phase = "other"
        self.spent: dict[str, dict[str, float]] = {}
        self._pending: dict[str, Any] | None = None

    def log(self, msg: str) -> None:
        if msg.startswith("Compiling "):
            head = msg[len("Compiling "):]
            name, _, sig = head.partition(" with global shapes and types ")
            self._pending = {"name": name, "args": sig.split(". Argument mapping")[0],
                             "phase": self.phase, "cache_hit": False,
                             "start_s": time.perf_counter() - T0}
        elif self._pending is not None and "persistent compilation cache hit" in msg.lower():
            self._pending["cache_hit"] = True
        elif msg.startswith("Finished XLA compilation") and self._pending is not None:
            got = re.search(r"in ([0-9.eE+-]+) sec", msg)
            self._pending["seconds"] = float(got.group(1)) if got else None
            self.compiles.append(self._pending)
            self._pending = None

    def duration(self, event: str, secs: float, **_: Any) -> None:
        self.totals[event] = self.totals.get(event, 0.0) + float(secs)

    def timed(self, phase: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outer, self.phase = self.phase, phase
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                got = self.spent.setdefault(phase, {"wall_s": 0.0, "cpu_s": 0.0})
                got["wall_s"] += time.perf_counter() - w
                got["cpu_s"] += time.process_time() - c
                self.phase = outer

        return wrapper


def main(out: str, argv: list[str]) -> int:
    rec = Recorder()
    import jax

    import_jax = time.perf_counter() - T0

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            rec.log(record.getMessage())

    jax.config.update("jax_log_compiles", True)
    logger = logging.getLogger("jax")
    logger.addHandler(Handler())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the messages go to the recorder, not to stderr
    jax.monitoring.register_event_duration_secs_listener(rec.duration)

    from hesscli import api
    from hesscli.analysis import spectrum_report
    from hesscli.cli import main as cli_main

    import_hesscli = time.perf_counter() - T0
    import_cpu = time.process_time() - C0
    api._bind = rec.timed("load", api._bind)
    spectrum_report.spectrum_at = rec.timed("eigensolver", spectrum_report.spectrum_at)
    spectrum_report.estimate_trace = rec.timed("trace", spectrum_report.estimate_trace)
    sys.argv = ["hesscli", *argv]
    code: Any = 0
    try:
        cli_main()
    except SystemExit as exc:
        code = exc.code
    wall, cpu = time.perf_counter() - T0, time.process_time() - C0
    inner = sum(p["wall_s"] for p in rec.spent.values())
    phases = {name: rec.spent.get(name, {"wall_s": 0.0, "cpu_s": 0.0}) for name in PHASES}
    phases["other"] = {"wall_s": wall - import_hesscli - inner,
                       "cpu_s": cpu - import_cpu - sum(p["cpu_s"] for p in rec.spent.values())}
    for name, got in phases.items():
        mine = [c for c in rec.compiles if c["phase"] == name]
        got["compiles"] = len(mine)
        got["compile_s"] = sum(c["seconds"] or 0.0 for c in mine)
    doc = {"argv": argv, "exit_code": code, "wall_s": wall, "cpu_s": cpu,
           "import_jax_s": import_jax, "import_hesscli_s": import_hesscli,
           "phases": phases, "compiles": rec.compiles, "totals": rec.totals}
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
