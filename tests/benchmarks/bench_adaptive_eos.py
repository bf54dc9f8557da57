"""Adam at the adaptive edge of stability (Cohen et al. 2022), reproduced with ``hesscli train``.

Cohen et al. (2022, "Adaptive gradient methods at the edge of stability") observe that
full-batch Adam at a learning rate that trains drives the preconditioned sharpness
λmax(P⁻¹H) up to (2 + 2β₁)/((1 − β₁)·η) (38/η at β₁ = 0.9) and holds it there while the
loss keeps falling, whereas λmax(H) itself does not sit at 2/η. Each case runs
``hesscli train OBJ --optimizer adam --monitor-every K --format json`` as a whole process and
prints, per logged step, f, lr·λmax(P⁻¹H) against its bound 38, and lr·λmax(H)/2 (1 would be
the plain-GD edge), plus the summary of the second half of the run (median and range of
lr·λmax(P⁻¹H)/38, the fall of f) and the events.

Cases: a 2-D problem (a quadratic valley plus a slowly falling term), the built-in tanh MLP
(n = 408), and the byte-level transformer of ``examples/transformer_lm.py`` at a tiny size
when that file is present (``HESSCLI_TRANSFORMER`` may point at it). Not run in the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.benchmarks.common import print_table

ROOT = Path(__file__).resolve().parents[2]
EDGE = """
import jax.numpy as jnp
def objective(p):
    x, y = p[0], p[1]
    return 0.5 * x**2 + 1.0 / (1.0 + y**2)
x0 = jnp.array([0.05, 0.5])
"""


def cases(tmp: Path) -> list[tuple[str, list[str]]]:
    edge = tmp / "edge2d.py"
    edge.write_text(EDGE)
    out = [
        ("2-D valley, lr 0.1, b2 0.99", [str(edge), "--lr", "0.1", "--b2", "0.99",
                                         "--steps", "1500", "--monitor-every", "25"]),
        ("mlp (n = 408), lr 0.02", ["mlp", "-p", "width=8", "--lr", "0.02", "--steps", "1500",
                                    "--monitor-every", "50"]),
    ]
    transformer = Path(os.environ.get("HESSCLI_TRANSFORMER",
                                      ROOT / "examples" / "transformer_lm.py"))
    if transformer.is_file():
        out.append(("transformer_lm (tiny), lr 3e-3", [
            str(transformer), "-p", "d_model=16", "-p", "layers=1", "-p", "heads=2",
            "-p", "context=16", "-p", "sequences=8", "--lr", "3e-3", "--steps", "600",
            "--monitor-every", "30"]))
    return out


def run_case(args: list[str]) -> tuple[dict[str, Any], float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hesscli", "train", *args, "--optimizer",
                           "adam", "--format", "json"], capture_output=True, text=True,
                          env=env, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"train {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout), wall


def summarize(name: str, doc: dict[str, Any], wall: float) -> dict[str, Any]:
    hist = [h for h in doc["history"] if h.get("preconditioned_lambda_max") is not None]
    bound = hist[0]["preconditioned_bound"]
    lr = doc["meta"]["options"].get("lr") or hist[0]["lr_times_lambda_max"] / hist[0]["lambda_max"]
    rows = []
    for h in doc["history"][:: max(1, len(doc["history"]) // 12)]:
        ratio = h.get("lr_times_preconditioned_lambda_max")
        rows.append([h["step"], h["value"],
                     float("nan") if ratio is None else ratio,
                     float("nan") if ratio is None else ratio / bound,
                     h["lr_times_lambda_max"] / 2 if h.get("lr_times_lambda_max")
                     else float("nan")])
    print_table(f"{name}: lr·λmax(P⁻¹H) against {bound:.3g}; lr·λmax(H)/2 against 1",
                ["step", "f", "lr·λmax(P⁻¹H)", "/ bound", "lr·λmax(H)/2"], rows)
    half = [h for h in hist if h["step"] >= doc["history"][-1]["step"] / 2]
    ratios = np.array([h["lr_times_preconditioned_lambda_max"] / bound for h in half])
    gd = np.array([h["lr_times_lambda_max"] / 2 for h in half])
    events = [(e["step"], e["kind"]) for e in doc["events"]]
    summary = {
        "name": name, "lr": lr, "bound": bound, "threshold": bound / lr if lr else None,
        "second_half_ratio_median": float(np.median(ratios)),
        "second_half_ratio_min": float(ratios.min()), "second_half_ratio_max": float(ratios.max()),
        "second_half_gd_ratio_median": float(np.median(gd)),
        "second_half_gd_ratio_max": float(gd.max()),
        "f_start_second_half": half[0]["value"], "f_end": half[-1]["value"],
        "events": events, "wall_seconds": wall,
        "history": [{k: h.get(k) for k in ("step", "value", "lambda_max",
                                           "preconditioned_lambda_max",
                                           "lr_times_preconditioned_lambda_max")}
                    for h in doc["history"]],
    }
    median = summary["second_half_ratio_median"]
    print(f"second half: lr·λmax(P⁻¹H)/{bound:.3g} median {median:.3f} "
          f"(range {ratios.min():.3f}–{ratios.max():.3f}); lr·λmax(H)/2 median "
          f"{np.median(gd):.3g} (max {gd.max():.3g}); f {half[0]['value']:.6g} → "
          f"{half[-1]['value']:.6g}; {wall:.0f} s")
    print("events: " + ", ".join(f"{k}@{s}" for s, k in events))
    return summary


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in cases(Path(tmp)):
            doc, wall = run_case(args)
            results[name] = summarize(name, doc, wall)
    return results


if __name__ == "__main__":
    main()
