"""Where ``hesscli spectrum --matrix-free``'s peak resident memory comes from, phase by phase.

Each row runs one child process (whole-process memory, as the peers are measured in
``bench_networks``) that calls :func:`hesscli.api.spectrum` on the transformer example
(``--k 1``, matrix-free) and records, per phase, the resident set before, its peak
during (``VmHWM``, reset at the phase's start through ``/proc/self/clear_refs``) and
after: loading the objective and building the backend, the thick-restart solver's
compilation and loop, the certification's products (``ritz_pairs``), the trace
estimate. The restarted program's XLA memory analysis (arguments: the basis and the
linearization's residuals; temporaries) is reported beside. Sizes are also given in
parameter-sized vectors of the run's dtype (n-vectors), the unit that tells a basis or
a probe block from activations.

Measured (2026-12-08, CPU, core shared): before the trace fix the trace phase added
1.29 GiB (330 float32 n-vectors) at 10⁶ parameters, its host probes and products in
float64 (about 110 float64 n-vectors for ``auto``'s 30 products); after it, 0.81 GiB, of
which 0.64 GiB are the product program's temporaries (activations of 32 sequences,
not n-vectors). Whole ``spectrum`` CLI process at 10⁶: 2.56 → 1.85 GiB (float32),
3.92 → 3.10 GiB (float64); at 10⁷ (8 sequences, float32) 10.3 → 4.05 GiB, where the
restarted program holds 25 basis rows (994 MB) and 553 MB of linearization residuals.

Rows: ``BENCH_MEMORY_ROWS`` (default ``small:float32,transformer:float32,
transformer:float64``); ``transformer10m_seq8`` is the 10⁷ network on 8 sequences
(about 4 GiB in float32 after the trace fix; check ``free -g`` first). Linux only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.benchmarks.common import print_table

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "transformer_lm.py")
SIZES = {
    "small": ["d_model=64", "layers=2"],
    "transformer": [],
    "transformer10m_seq8": ["d_model=320", "layers=8", "sequences=8"],
}
ROWS = os.environ.get("BENCH_MEMORY_ROWS", "small:float32,transformer:float32,transformer:float64")
TIMEOUT = float(os.environ.get("BENCH_MEMORY_TIMEOUT", "3600"))
GIB = 2.0**30


def _status() -> tuple[int, int]:
    with open("/proc/self/status") as fh:
        fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh
                  if line.startswith(("VmRSS", "VmHWM"))}
    return fields["VmRSS"], fields["VmHWM"]


def child(dtype: str, params: list[str]) -> dict[str, Any]:
    """Run the spectrum in this process and return the phases (see the module docstring)."""
    import hesscli.analysis.spectrum_report as report
    import hesscli.api as api
    import hesscli.spectra.restarted as restarted
    import hesscli.spectra.trace as trace

    phases: list[dict[str, Any]] = []
    xla: list[dict[str, Any]] = []

    @contextmanager
    def phase(name: str) -> Any:
        before, _ = _status()
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
        start = time.perf_counter()
        try:
            yield
        finally:
            after, peak = _status()
            phases.append({"phase": name, "before": before, "peak": peak, "after": after,
                           "seconds": time.perf_counter() - start})
            print(json.dumps(phases[-1]), file=sys.stderr, flush=True)  # as it goes

    def timed(module: Any, name: str, label: str) -> None:
        fn = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with phase(label):
                return fn(*args, **kwargs)

        setattr(module, name, wrapper)

    def aot(jitted: Any, name: str) -> Any:
        """``jitted`` compiled ahead of time on its first call (a phase of its own), with
        XLA's memory analysis recorded; later calls run the compiled program."""
        box: dict[str, Any] = {}

        def run(*call: Any) -> Any:
            if "compiled" not in box:
                with phase(f"{name}: compile"):
                    box["compiled"] = jitted.lower(*call).compile()
                m = box["compiled"].memory_analysis()
                if m is not None:
                    xla.append({"program": name, "arguments": m.argument_size_in_bytes,
                                "temporaries": m.temp_size_in_bytes,
                                "outputs": m.output_size_in_bytes,
                                "aliased": m.alias_size_in_bytes})
            return box["compiled"](*call)

        return run

    build = restarted._program.__wrapped__

    def program(*args: Any) -> Any:
        return aot(build(*args), "restarted")

    class Kernels(dict):  # the trace's product program, as it is stored
        def __setitem__(self, key: Any, jitted: Any) -> None:
            super().__setitem__(key, aot(jitted, "trace products"))

    trace._KERNELS = Kernels()
    restarted._program = program
    timed(api, "_bind", "load, bind, backend")
    timed(report, "spectrum_at", "eigensolver (all)")
    timed(restarted, "_advance", "restarted: loop")
    timed(restarted, "ritz_pairs", "restarted: certification products")
    timed(report, "estimate_trace", "trace")
    with phase("spectrum (whole call)"):
        result = api.spectrum(EXAMPLE, params=params, dtype=dtype, k=1, path="matrix-free")
    value = getattr(result, "value", result)  # the report (a Result wraps it in notebooks)
    extremes = getattr(value, "extremes", None)
    return {"n": int(value.n), "dtype": dtype, "params": params, "phases": phases, "xla": xla,
            "solver": extremes.solver if extremes is not None else None}


def run_row(size: str, dtype: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tests.benchmarks.bench_memory", "--child", dtype,
           *SIZES[size]]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        return {"size": size, "dtype": dtype, "error": out.stderr.strip().splitlines()[-1:]}
    return {"size": size, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> dict[str, Any]:
    import numpy as np

    results, rows = [], []
    for spec in ROWS.split(","):
        size, dtype = spec.split(":")
        res = run_row(size, dtype)
        results.append(res)
        if "error" in res:
            rows.append([f"{size} {dtype}", "error", " ".join(res["error"]), "", "", ""])
            continue
        vec = res["n"] * np.dtype(dtype).itemsize
        for p in res["phases"]:
            rows.append([f"{size} {dtype} (n={res['n']})", p["phase"], p["before"] / GIB,
                         p["peak"] / GIB, (p["peak"] - p["before"]) / vec, p["seconds"]])
        for x in res["xla"]:
            rows.append([f"{size} {dtype}", f"XLA {x['program']}: args / temps",
                         x["arguments"] / GIB, x["temporaries"] / GIB,
                         (x["arguments"] + x["temporaries"]) / vec, ""])
    print_table("spectrum --matrix-free --k 1: resident memory by phase (GiB; growth in "
                "n-vectors of the run's dtype)",
                ["run", "phase", "before", "peak", "peak − before (n-vectors)", "seconds"],
                rows)
    return {"rows": results}


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3:])))
    else:
        main()
