"""HVP throughput of the sharded backend on 1, 2 and 4 host devices, and its traffic.

Each device count runs in its own subprocess (``XLA_FLAGS=
--xla_force_host_platform_device_count=D`` must precede JAX's start) on the
built-in ``mlp`` (width 256, 4096 samples: n = 12 560 parameters) in float64:

- ``hvp/s``: HVPs per second through ``curvature.hvp_fn`` on device-resident
  vectors (median of repeats, after a warm-up call);
- all-reduce traffic per HVP: the model (one all-reduce of the n-vector:
  n × 8 bytes; a ring moves 2(D−1)/D of that per device) next to what XLA's
  compiled HLO shows (``all-reduce`` instructions and the bytes of their
  operands, counted in ``jitted.lower(...).compile().as_text()``);
- bytes XLA allots per device for the HVP program (arguments, temporaries,
  outputs: ``compiled.memory_analysis()``);
- the same on 4 devices with a ``param_sharding`` (FSDP style), counting
  all-gathers and the other collectives that parameter sharding adds.

Host "devices" are slices of one CPU (this machine has 2 cores shared by
everything else running), so no speed-up is expected: the numbers measure the
overhead of partitioning and collectives, not multi-accelerator scaling.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.benchmarks.common import print_table

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ("width=256", "samples=4096")
FSDP_SUFFIX = '''
from jax.sharding import PartitionSpec as _P
param_sharding = {"hidden": {"w": _P(None, "devices"), "b": _P("devices")},
                  "head": {"w": _P("devices", None), "b": _P()}}
'''
SHAPE = re.compile(r"(f64|f32|bf16|f16)\[([0-9,]*)\]")
SIZES = {"f64": 8, "f32": 4, "bf16": 2, "f16": 2}
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")


def collective_bytes(hlo: str) -> dict[str, dict[str, int]]:
    """Count collective instructions in compiled HLO text and the bytes of their results."""
    out: dict[str, dict[str, int]] = {}
    for line in hlo.splitlines():
        line = line.strip()
        if "=" not in line:
            continue
        rhs = line.split("=", 1)[1]
        for name in COLLECTIVES:
            if re.search(rf"\s{name}(-start)?\(", rhs):
                head = rhs.split(name, 1)[0]
                nbytes = 0
                for dtype, dims in SHAPE.findall(head):
                    count = 1
                    for d in filter(None, dims.split(",")):
                        count *= int(d)
                    nbytes += count * SIZES[dtype]
                entry = out.setdefault(name, {"count": 0, "bytes": 0})
                entry["count"] += 1
                entry["bytes"] += nbytes
    return out


def worker(devices: int, fsdp: bool) -> dict[str, Any]:
    """Measure in this process (XLA_FLAGS already set by the parent)."""
    import tempfile

    import numpy as np

    from hesscli.jaxconf import jax_module

    jax_module()  # x64 on before the objective file builds its data
    from hesscli.api import load
    from hesscli.curvature.exact import ExactCurvature
    from hesscli.curvature.sharded import ShardedCurvature
    from hesscli.devices import select
    from tests.benchmarks.common import block, timeit

    spec = "mlp"
    if fsdp:
        source = (ROOT / "problems" / "mlp.py").read_text() + FSDP_SUFFIX
        tmp = Path(tempfile.mkdtemp()) / "mlp_fsdp.py"
        tmp.write_text(source)
        spec = str(tmp)
    obj = load(spec, None, PARAMS, seed=0, dtype="float64", method="auto")
    parallel = select(devices)
    curv = ShardedCurvature(obj, parallel) if parallel.sharded else ExactCurvature(obj)
    v_host = np.random.default_rng(0).standard_normal(obj.n)
    x, v = curv._x(obj.x), curv._x(v_host)
    block(curv.hvp_fn(x, v))  # compile
    seconds = timeit(lambda: block(curv.hvp_fn(x, v)), repeat=5, min_time=0.3)
    if parallel.sharded:
        compiled = curv._hvp.lower(curv.operands, x, v).compile()
    else:
        compiled = curv.hvp_fn.lower(x, v).compile()
    mem = compiled.memory_analysis()
    per_device = None
    if mem is not None:
        per_device = int(mem.argument_size_in_bytes + mem.temp_size_in_bytes
                         + mem.output_size_in_bytes)
    return {
        "devices": devices,
        "fsdp": fsdp,
        "n": obj.n,
        "samples": 4096,
        "seconds_per_hvp": seconds,
        "hvp_per_second": 1.0 / seconds,
        "collectives": collective_bytes(compiled.as_text()),
        "bytes_per_device": per_device,
    }


def run(devices: int, fsdp: bool = False) -> dict[str, Any]:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu")
    code = (f"import json; from tests.benchmarks.bench_sharding import worker; "
            f"print(json.dumps(worker({devices}, {fsdp})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> dict[str, Any]:
    runs = [run(1), run(2), run(4), run(4, fsdp=True)]
    base = runs[0]["seconds_per_hvp"]
    rows = []
    for r in runs:
        n, d = r["n"], r["devices"]
        model = n * 8 if d > 1 else 0
        ar = r["collectives"].get("all-reduce", {"count": 0, "bytes": 0})
        others = ", ".join(f"{k.split('-')[-1]} {v['count']}×"
                           for k, v in r["collectives"].items() if k != "all-reduce")
        r["model_all_reduce_bytes"] = model
        r["ring_bytes_per_device"] = int(2 * (d - 1) / d * model)
        rows.append([
            f"{d}{' fsdp' if r['fsdp'] else ''}", r["hvp_per_second"],
            base / r["seconds_per_hvp"], model, ar["count"], ar["bytes"],
            others or "-", r["bytes_per_device"] or "?",
        ])
    print_table(
        f"HVP throughput, mlp n={runs[0]['n']} (width 256, 4096 samples, float64, host "
        "devices)",
        ["devices", "hvp/s", "speed-up", "model AR B", "HLO ARs", "HLO AR B", "other",
         "B/device"],
        rows,
    )
    for r in runs:
        if r["fsdp"]:
            print("fsdp collectives per HVP:", ", ".join(
                f"{k} {v['count']}× ({v['bytes']} B)" for k, v in r["collectives"].items()))
    return {"runs": runs}


if __name__ == "__main__":
    main()
