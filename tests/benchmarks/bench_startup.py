"""Start-up: whole processes for the smallest answers, as a ratio to importing JAX.

A 2-D built-in should answer in about the time it takes to import JAX (the
goal: ``hesscli analyze rosenbrock --at 1,1`` ≤ 1.5 s whole process, ``hesscli
--help`` ≤ 0.15 s). Each command runs ``BENCH_STARTUP_REPEAT`` times (default
5) as a fresh process; the table gives the median wall and CPU time (user +
system, from ``getrusage`` of the children) and each as a ratio to ``python -c
"import jax"`` measured in the same run. "cold" runs turn hesscli's persistent
compilation cache off (``HESSCLI_NO_CACHE=1``): every compile happens again.
Timings on a shared machine are noisy: the load average is recorded.

**Fixed cost of a network's spectrum** (issue 19): ``hesscli spectrum NET
--matrix-free --k 1 --dtype float32`` on the example networks at small sizes
(``BENCH_STARTUP_PHASES``, comma-separated names of ``bench_networks.NETWORKS``,
default ``tinytransformer,tinycnn``; ``transformer`` is the 10⁶-parameter one of
docs/benchmarks.md; ``0`` skips), one thread (``bench_networks.thread_env``), each
run in a fresh process by :mod:`tests.benchmarks.startup_phases`: first cold (a new,
empty compilation cache), then warm (the same cache again). The table gives wall
seconds for importing JAX, loading the objective, the eigensolver, the trace and
the rest (value, gradient, rendering), and the compilations in the run with their
seconds (a warm run's are cache reads); the JSON lists every compilation by name,
argument shapes, phase and seconds. At these sizes a product costs milliseconds,
so the phases are the fixed cost.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.benchmarks.common import print_table

PHASE_COLUMNS = ("load", "eigensolver", "trace", "other")

ROOT = Path(__file__).resolve().parents[2]
HESSCLI = str(Path(sys.executable).parent / "hesscli")

COMMANDS: list[tuple[str, list[str], dict[str, str]]] = [
    ('python -c "import jax"', [sys.executable, "-c", "import jax"], {}),
    ("hesscli --help", [HESSCLI, "--help"], {}),
    ("hesscli analyze rosenbrock --at 1,1", [HESSCLI, "analyze", "rosenbrock", "--at", "1,1"],
     {}),
    ("… --format json", [HESSCLI, "analyze", "rosenbrock", "--at", "1,1", "--format", "json"],
     {}),
    ("… cold (no compilation cache)", [HESSCLI, "analyze", "rosenbrock", "--at", "1,1"],
     {"HESSCLI_NO_CACHE": "1"}),
    ("hesscli analyze saddle -p n=50", [HESSCLI, "analyze", "saddle", "-p", "n=50"], {}),
]
GOALS = {"hesscli --help": 0.15, "hesscli analyze rosenbrock --at 1,1": 1.5}


def one_run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one fresh process."""
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed: {proc.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> dict[str, Any]:
    repeat = int(os.environ.get("BENCH_STARTUP_REPEAT", "5"))
    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "repeat": repeat,
                               "commands": {}}
    for name, argv, env in COMMANDS:
        one_run(argv, env)  # warm the file cache (and hesscli's compilation cache)
        runs = [one_run(argv, env) for _ in range(repeat)]
        results["commands"][name] = {
            "wall_s": statistics.median(r[0] for r in runs),
            "cpu_s": statistics.median(r[1] for r in runs),
            "wall_runs": [r[0] for r in runs],
        }
    base = results["commands"]['python -c "import jax"']
    rows = []
    for name, got in results["commands"].items():
        got["wall_over_import_jax"] = got["wall_s"] / base["wall_s"]
        got["cpu_over_import_jax"] = got["cpu_s"] / base["cpu_s"]
        goal = GOALS.get(name)
        got["goal_wall_s"] = goal
        got["meets_goal"] = None if goal is None else got["wall_s"] <= goal
        verdict = "" if goal is None else f"≤ {goal:g} s: {'yes' if got['meets_goal'] else 'NO'}"
        rows.append([name, got["wall_s"], got["cpu_s"], got["wall_over_import_jax"],
                     got["cpu_over_import_jax"], verdict])
    results["load_average_end"] = os.getloadavg()
    print_table(
        f"whole process, median of {repeat} (load average {results['load_average_start'][0]:.1f})",
        ["command", "wall s", "cpu s", "wall / import jax", "cpu / import jax", "goal"], rows,
    )
    names = os.environ.get("BENCH_STARTUP_PHASES", "tinytransformer,tinycnn")
    if names != "0":
        results["phases"] = phase_breakdown([n for n in names.split(",") if n])
    return results


def phase_run(name: str, cache: str) -> dict[str, Any]:
    """One fresh process of :mod:`tests.benchmarks.startup_phases` on network ``name``."""
    import json
    import tempfile

    from tests.benchmarks.bench_networks import NETWORKS, pflags, thread_env

    _, path, params, _ = NETWORKS[name]
    argv = ["spectrum", path, *pflags(params), "--matrix-free", "--k", "1",
            "--dtype", "float32", "--format", "json"]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "phases.json")
        env = {**os.environ, **thread_env(), "HESSCLI_CACHE_DIR": cache}
        env.pop("HESSCLI_NO_CACHE", None)
        proc = subprocess.run([sys.executable, "-m", "tests.benchmarks.startup_phases", out,
                               *argv], capture_output=True, text=True, cwd=ROOT, env=env)
        if proc.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(f"{argv} failed: {proc.stderr[-800:]}")
        with open(out) as fh:
            doc = json.load(fh)
    if doc["exit_code"] not in (0, None):
        raise RuntimeError(f"{argv} exited {doc['exit_code']}")
    return doc


def phase_breakdown(names: list[str]) -> dict[str, Any]:
    """Cold, then warm, per network: the fixed cost by phase and by compilation."""
    import tempfile

    results: dict[str, Any] = {}
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory() as cache:
            for run in ("cold", "warm"):
                doc = phase_run(name, cache)
                results[f"{name}:{run}"] = doc
                ph = doc["phases"]
                compiled = sum(c["seconds"] or 0.0 for c in doc["compiles"])
                tracing = doc["totals"].get("/jax/core/compile/jaxpr_trace_duration", 0.0)
                rows.append([f"{name} {run}", *(f"{v:.1f}" for v in (
                    doc["wall_s"], doc["cpu_s"], doc["import_jax_s"],
                    *(ph[p]["wall_s"] for p in PHASE_COLUMNS))), str(len(doc["compiles"])),
                    f"{compiled:.1f}", f"{tracing:.1f}"])
                print(f"{name} {run}: " + ", ".join(
                    f"{c['name']}[{c['phase']}] {c['seconds'] or 0.0:.2f}s"
                    for c in doc["compiles"] if (c["seconds"] or 0.0) >= 0.1), flush=True)
    head = ["run", "wall", "cpu", "jax", "load", "eigs", "trace", "other", "progs", "comp",
            "tracing"]
    print("\nspectrum --matrix-free --k 1 --dtype float32, one thread: fixed cost by phase "
          "(wall s; cpu: the whole process's CPU s)")
    for row in [head, *rows]:
        print(f"{row[0]:<22}" + "".join(f"{v:>9}" for v in row[1:]))
    print("jax: importing JAX; load: the objective; eigs: the eigensolver; other: value, "
          "gradient, rendering; progs: programs built (compiled or read from the cache); "
          "comp: their seconds; tracing: JAX's tracing to jaxprs", flush=True)
    return results
