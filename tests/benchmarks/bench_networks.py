"""The example networks against the peers, whole processes on identical weights and data.

Issue 19 part 5 (``python -m tests.benchmarks networks``). Networks: the
transformer LM (``examples/transformer_lm.py``: 1,026,816 parameters by default,
9,943,680 with ``-p d_model=320 -p layers=8``) and the CNN (``examples/cnn.py``
with ``-p channels=64 -p samples=1792``: 79,626 parameters, 1792 images, so that
batches of 256 divide the data and every peer's mean over batches is the data-set
mean). Each network's torch twin (``torch_twins.py``: same architecture, the weights
of hesscli's point, ``init(key)`` at seed 0, and the same data) is checked first:
the twin's float64 loss and gradient against JAX's (the precondition row).

Per network and dtype, each a fresh process, back to back (``run_child`` from
``bench_scale``: wall, CPU, peak RSS):

- ``hesscli spectrum NET --matrix-free --k 1 --format json``: both ends to the
  default target (rtol 1e-3) and the trace (Hutchinson / Hutch++, 30 HVPs);
- ``hesscli spectrum NET --curvature ggn --ends max --k 1``: the GGN's λmax;
- PyHessian over a data loader (``dataloader=``, batches of 8 sequences / 256
  images): ``eigenvalues()`` then ``trace()``, its defaults;
- PyHessian held to a tight tolerance (``pyhessian_tight``): the same ``eigenvalues()``,
  seed and start vector with ``tol`` ``BENCH_NETWORKS_TIGHT_TOL`` (default 1e-7) and
  ``maxIter`` ``BENCH_NETWORKS_TIGHT_ITERS`` (default 1000), stopped by its own clock
  after ``BENCH_NETWORKS_TIGHT_SECONDS`` (default: the timeout less 60 s). Its default
  stopping test (a relative change of 1e-3 between two Rayleigh quotients) is not an
  error bound, so every quotient is recorded with its second: scored against the
  reference, the trajectory says after how many products and seconds PyHessian came
  (and stayed) within hesscli's error of the same row, or within 1e-3 … 1e-6, or how
  close it got before its limit. The seconds "at that accuracy" are a whole process:
  the run's wall time less its solver seconds, plus the seconds to that product. The
  iteration converges to the eigenvalue of largest magnitude, so it is scored against
  both ends (on the transformer that is λmin);
- hessian-eigenthings: ``power_iteration_one`` (its defaults) on its
  ``HessianOperator`` and its ``GGNOperator`` over the same loader;
- curvlinops: ``GGNLinearOperator`` over the loader, seconds per GGN matvec.

Errors: |λ − λ_ref| / |λmax ref| against a float64 reference computed after the
timed runs: ARPACK (scipy ``eigsh``, tol ``BENCH_NETWORKS_REF_TOL``, default 1e-8,
``BENCH_NETWORKS_REF_NCV`` vectors, default 20) over hesscli's float64 HVP (Hessian
both ends; GGN λmax), each end limited to ``BENCH_NETWORKS_REF_SECONDS`` (default 900;
an unfinished end is None). Only the ends still missing are computed: a later run
with more time or vectors completes the network's cached reference
(``bench-results/networks_reference_NETWORK_tol*.json``), which every row of that
network (either dtype) is scored against.
The trace has no tight reference at these sizes (it would take n HVPs): the table
gives each tool's estimate with its standard error and the difference between
them in those units.

Threads: the machine this was written on is a shared 2-core box with a load
average near 10; torch's OpenMP threads spin-waiting there made PyHessian and
curvlinops 16× slower than one thread. Every child therefore runs with one thread
(``OMP_NUM_THREADS=1`` for torch, ``--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` for XLA) unless ``BENCH_NETWORKS_THREADS=0``.

``BENCH_NETWORKS_ROWS`` picks rows, ``network:dtype`` comma-separated (default
``transformer:float64,transformer:float32,cnn:float64,cnn:float32,
transformer10m:float32``); each row is saved on its own
(``bench-results/networks_row_*.json``) and the final table shows every saved row.
A run adds to the saved row of its network and dtype: a tool measured again replaces
that tool's earlier run, the others are kept (each run records when it was measured
and at which commit), so peers and hesscli can be measured in separate invocations.
``transformer10m_seq8`` is the 10⁷ network on 8 sequences instead of 32 (so that
every peer finishes in the time a session has). ``python -m
tests.benchmarks.bench_networks`` prints the saved rows as the Markdown table of
docs/benchmarks.md.
``BENCH_NETWORKS_TOOLS`` limits the tools (default
``check,hesscli,ggn,pyhessian,eigenthings,curvlinops,reference``; ``pyhessian_tight``
is asked for by name).
``BENCH_NETWORKS_TIMEOUT`` (default 1800 s) stops a child. hesscli's persistent
compilation cache: every hesscli process starts with an empty one of its own (a first
call, compiling everything) unless ``BENCH_NETWORKS_JAX_CACHE`` names a folder (the
runs then share it: warm from the second on); the run records which. Compare ratios (÷
PyHessian's λmax alone, measured in the same run), not seconds.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.benchmarks.bench_scale import HESSCLI, ROOT, fmt, progress_tail, run_child
from tests.benchmarks.common import RESULTS

EXAMPLES = ROOT / "examples"
# name: (kind, objective file, -p parameters, peer batch size)
NETWORKS = {
    "transformer": ("transformer", str(EXAMPLES / "transformer_lm.py"), [], 8),
    "transformer10m": ("transformer", str(EXAMPLES / "transformer_lm.py"),
                       ["d_model=320", "layers=8"], 8),
    "cnn": ("cnn", str(EXAMPLES / "cnn.py"), ["channels=64", "samples=1792"], 256),
    # 10⁷ parameters on a quarter of the data (8 sequences of 64 tokens, one peer batch):
    # an HVP at 32 sequences took about 10 s on one thread, too long for every peer's
    # default iteration counts in a session's time
    "transformer10m_seq8": ("transformer", str(EXAMPLES / "transformer_lm.py"),
                            ["d_model=320", "layers=8", "sequences=8"], 8),
    # small sizes, to try the machinery quickly
    "tinytransformer": ("transformer", str(EXAMPLES / "transformer_lm.py"),
                        ["d_model=16", "layers=2", "heads=2", "context=8", "sequences=8"], 2),
    "tinycnn": ("cnn", str(EXAMPLES / "cnn.py"), ["channels=4", "samples=256"], 64),
}
DATA_NOTES = {"transformer10m_seq8": "8 sequences, not 32"}
DEFAULT_ROWS = ("transformer:float64,transformer:float32,cnn:float64,cnn:float32,"
                "transformer10m:float32")
TOOLS = "check,hesscli,ggn,pyhessian,eigenthings,curvlinops,reference"
TIMEOUT = float(os.environ.get("BENCH_NETWORKS_TIMEOUT", "1800"))
REF_SECONDS = float(os.environ.get("BENCH_NETWORKS_REF_SECONDS", "900"))
REF_TOL = float(os.environ.get("BENCH_NETWORKS_REF_TOL", "1e-8"))
REF_NCV = int(os.environ.get("BENCH_NETWORKS_REF_NCV", "20"))
TIGHT_SECONDS = float(os.environ.get("BENCH_NETWORKS_TIGHT_SECONDS", str(max(TIMEOUT - 60, 60))))
# errors at which the tight run's products and seconds are read (besides hesscli's own)
REACH_TARGETS = (1e-3, 1e-4, 1e-6)


def stamp() -> dict[str, Any]:
    """When a run was measured, and hesscli's commit (with ``+dirty`` for local edits)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()

    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")}


def thread_env() -> dict[str, str]:
    if os.environ.get("BENCH_NETWORKS_THREADS", "1") == "0":
        return {}
    xla = os.environ.get("XLA_FLAGS", "")
    return {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "XLA_FLAGS": f"{xla} --xla_cpu_multi_thread_eigen=false "
                         "intra_op_parallelism_threads=1".strip()}


def pflags(params: list[str]) -> list[str]:
    return [a for p in params for a in ("-p", p)]


def hesscli_row(target: str, params: list[str], dtype: str, extra: list[str],
                label: str) -> dict[str, Any]:
    """One whole ``hesscli spectrum`` process: its ends, trace and HVPs."""
    argv = [str(HESSCLI), "spectrum", target, *pflags(params), "--matrix-free", "--k", "1",
            "--format", "json", "--dtype", dtype, "--progress", *extra]
    cache = os.environ.get("BENCH_NETWORKS_JAX_CACHE", "cold")
    with tempfile.TemporaryDirectory() as empty:  # cold: a compilation cache of its own
        env = {**thread_env(), "HESSCLI_CACHE_DIR": empty if cache == "cold" else cache}
        got = run_child(argv, env=env, timeout=TIMEOUT)
    row: dict[str, Any] = {"tool": label, "argv": argv[1:], "wall_s": got["wall_s"],
                           "cpu_s": got["cpu_s"], "peak_mib": got["peak_mib"],
                           "timed_out": got["timed_out"], "threads": thread_env(),
                           "jax_cache": cache,
                           "progress": progress_tail(got["stderr"]), **stamp()}
    if got["timed_out"]:
        return row
    doc = json.loads(got["stdout"])
    if "spectra" in doc and "lambda_max" not in doc:  # a comma list: not used here
        doc = doc["spectra"][0]
    ex = doc.get("extremes") or {}
    tr = doc.get("trace") or {}
    row.update({"n": doc["n"], "lambda_max": doc["lambda_max"], "lambda_min": doc["lambda_min"],
                "converged": doc.get("converged"), "eigenvalue_errors":
                doc.get("eigenvalue_errors"), "eigenvalue_error_estimates":
                doc.get("eigenvalue_error_estimates"), "eigenvalues": doc.get("eigenvalues"),
                "hvps_max": ex.get("hvps_max"),
                "hvps_min": ex.get("hvps_min"), "eig_hvps": ex.get("hvps"),
                "trace": tr.get("estimate"), "trace_standard_error": tr.get("standard_error"),
                "trace_hvps": tr.get("hvps"), "trace_estimator": tr.get("estimator"),
                "notes": doc.get("notes")})
    row["hvps"] = (row["eig_hvps"] or 0) + (row["trace_hvps"] or 0)
    return row


def peer_row(tool: str, net: Path, dtype: str, batch: int) -> dict[str, Any]:
    env = {**thread_env(), "BENCH_NETWORKS_TIGHT_SECONDS": str(TIGHT_SECONDS)}
    try:
        got = run_child([sys.executable, "-W", "ignore", "-m", "tests.benchmarks.torch_twins",
                         tool, str(net), dtype, str(batch)], env=env, timeout=TIMEOUT)
    except RuntimeError as exc:  # the peer failed: say so in its row
        return {"tool": tool, "error": str(exc)[-800:], "timed_out": False, **stamp()}
    row: dict[str, Any] = {"tool": tool, "wall_s": got["wall_s"], "cpu_s": got["cpu_s"],
                           "peak_mib": got["peak_mib"], "timed_out": got["timed_out"],
                           "threads": thread_env(), **stamp()}
    if got["timed_out"]:
        row["progress"] = progress_tail(got["stderr"])
        return row
    lines = [ln for ln in got["stdout"].splitlines() if ln.startswith("{")]
    if not lines:
        row["error"] = got["stderr"][-800:]
        return row
    row.update(json.loads(lines[-1]))
    return row


def references(target: str, params: list[str], want_ggn: bool,
               have: dict[str, Any] | None = None) -> dict[str, Any]:
    """ARPACK in float64 over hesscli's HVP (both ends) and GGN product (λmax): only the
    ends ``have`` lacks (None or absent), each limited to REF_SECONDS."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    from hesscli.api import load
    from hesscli.curvature.choose import curvature_for
    from hesscli.curvature.exact import linearized_hvp

    ref = dict(have or {})
    todo = [k for k in ("lambda_max", "lambda_min") if ref.get(k) is None]
    if want_ggn and ref.get("ggn_lambda_max") is None:
        todo.append("ggn_lambda_max")
    if not todo:
        return ref
    obj = load(target, None, params, seed=0, dtype="float64", method="auto")
    x = np.asarray(obj.x)
    for key in todo:
        if key == "ggn_lambda_max":
            cur, _ = curvature_for(obj, "auto", kind="ggn")
            hvp = cur.hvp_fn
        else:
            cur, _ = curvature_for(obj, "auto")
            hvp = (linearized_hvp(cur.f, x) if cur.hvp_mode == "forward-over-reverse"
                   else cur.hvp_fn)
        count, deadline = [0], [time.perf_counter() + REF_SECONDS]

        def mv(v: np.ndarray, hvp: Any = hvp, count: list[int] = count,
               deadline: list[float] = deadline) -> np.ndarray:
            count[0] += 1
            if time.perf_counter() > deadline[0]:
                raise TimeoutError
            return np.asarray(hvp(x, np.asarray(v)), dtype=np.float64)

        start = time.perf_counter()
        try:
            val = eigsh(LinearOperator((x.size, x.size), matvec=mv, dtype=np.float64), k=1,
                        which="SA" if key == "lambda_min" else "LA", tol=REF_TOL, ncv=REF_NCV,
                        maxiter=5000, v0=np.random.default_rng(123).standard_normal(x.size),
                        return_eigenvectors=False)
            ref[key] = float(val[0])
        except TimeoutError:
            ref[key] = None
        ref[f"{key}_hvps"] = count[0]
        ref[f"{key}_s"] = time.perf_counter() - start
        ref[f"{key}_ncv"] = REF_NCV
        ref[f"{key}_seconds_limit"] = REF_SECONDS
        print(f"reference {key}: {ref[key]} ({count[0]} products, {ref[key + '_s']:.0f} s)",
              flush=True)
    ref["method"] = f"ARPACK float64 over hesscli's HVP, tol {REF_TOL:g}"
    return ref


def rel(got: Any, want: Any, scale: Any) -> float | None:
    return None if None in (got, want, scale) else abs(got - want) / abs(scale)


def score(row: dict[str, Any]) -> None:
    ref = row.get("reference") or {}
    hmax, hmin, gmax = (ref.get(k) for k in ("lambda_max", "lambda_min", "ggn_lambda_max"))
    for r in row["runs"]:
        if r["tool"] == "hesscli spectrum":
            r["err_max"] = rel(r.get("lambda_max"), hmax, hmax)
            r["err_min"] = rel(r.get("lambda_min"), hmin, hmax)
        elif r["tool"] == "hesscli spectrum --curvature ggn":
            r["err_max"] = rel(r.get("lambda_max"), gmax, gmax)
        elif r["tool"] == "pyhessian":
            r["err_max"] = rel(r.get("lambda_max"), hmax, hmax)
            r["err_to_min"] = rel(r.get("lambda_max"), hmin, hmax)
        elif r["tool"] == "pyhessian_tight":
            r["err_max"] = rel(r.get("lambda_max"), hmax, hmax)
            r["err_to_min"] = rel(r.get("lambda_max"), hmin, hmax)
        elif r["tool"] == "eigenthings":
            for key, want in (("hessian", hmax), ("ggn", gmax)):
                if isinstance(r.get(key), dict):
                    r[key]["err_max"] = rel(r[key].get("lambda_max"), want, want)
    for r in row["runs"]:  # after hesscli's errors: the tight run is read at them
        if r["tool"] == "pyhessian_tight":
            reach(r, row, hmax, hmin)


def reach(r: dict[str, Any], row: dict[str, Any], hmax: Any, hmin: Any) -> None:
    """Where the tight PyHessian run came, and stayed, within each error of an end: the
    products and seconds (a whole process: wall less solver seconds plus the seconds to
    that product), for hesscli's achieved error in the row (against the reference), for
    the error bound hesscli reports for that end (its residual, relative to |λmax|), and
    for REACH_TARGETS; and the closest it came to each end."""
    q = r.get("quotients") or []
    t = r.get("elapsed_s") or []
    fixed = (r["wall_s"] - r["solver_s"]) if None not in (r.get("wall_s"),
                                                          r.get("solver_s")) else None
    hs = next((x for x in row["runs"] if x["tool"] == "hesscli spectrum"
               and not x.get("timed_out")), None)
    out: dict[str, Any] = {}
    for end, want in (("max", hmax), ("min", hmin)):
        if want is None or hmax is None or not q:
            continue
        errs = np.abs(np.asarray(q) - want) / abs(hmax)
        tail_max = np.maximum.accumulate(errs[::-1])[::-1]  # largest error from k on
        best = int(np.argmin(errs))
        info: dict[str, Any] = {"best_err": float(errs[best]), "best_at_product": best + 1,
                                "final_err": float(errs[-1]), "targets": []}
        targets = [("fixed", e) for e in REACH_TARGETS]
        bounds = (hs or {}).get("eigenvalue_errors") or []
        if bounds and bounds[-1 if end == "max" else 0] is not None:
            info["hesscli_bound"] = bounds[-1 if end == "max" else 0] / abs(hmax)
            targets.insert(0, ("hesscli bound", info["hesscli_bound"]))
        if hs and hs.get(f"err_{end}") is not None:
            info["hesscli_err"] = hs[f"err_{end}"]
            targets.insert(0, ("hesscli achieved", hs[f"err_{end}"]))
        for kind, target in targets:
            hit = np.nonzero(tail_max <= target)[0]
            k = int(hit[0]) if hit.size else None
            item: dict[str, Any] = {"kind": kind, "err": target,
                                    "products": None if k is None else k + 1}
            if k is not None and fixed is not None:
                item["wall_s"] = fixed + t[k]
                if hs and kind != "fixed":
                    item["hesscli_wall_over"] = hs["wall_s"] / item["wall_s"]
            info["targets"].append(item)
        out[end] = info
    r["reach"] = out


def save_row(row: dict[str, Any]) -> Path:
    """The row as measured so far (after every tool: a stopped run keeps its rows)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"networks_row_{row['network']}_{row['dtype']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=2, default=float))
    tmp.replace(path)
    return path


def one_row(name: str, dtype: str, tools: set[str]) -> dict[str, Any]:
    from tests.benchmarks.torch_twins import save_twin

    kind, target, params, batch = NETWORKS[name]
    tmp = tempfile.TemporaryDirectory()
    net = Path(tmp.name) / "net.npz"
    start = time.perf_counter()
    n = save_twin(kind, target, params, net, with_grad="check" in tools)
    print(f"\n-- {name} {dtype}: n = {n} (twin saved in {time.perf_counter() - start:.0f} s)",
          flush=True)
    row: dict[str, Any] = {"network": name, "params": params, "n": n, "dtype": dtype,
                           "peer_batch": batch, "threads": thread_env(), "runs": [],
                           "data_note": DATA_NOTES.get(name),
                           "load_average_start": os.getloadavg()}
    saved = RESULTS / f"networks_row_{name}_{dtype}.json"
    if saved.exists():  # add to it: a tool run again replaces its earlier run
        old = json.loads(saved.read_text())
        if old.get("params") == params:
            row["runs"] = [r for r in old["runs"] if r["tool"] not in tool_labels(tools)]
            for key in ("check", "reference"):
                if key in old and key not in tools:
                    row[key] = old[key]
    if "check" in tools:
        row["check"] = peer_row("check", net, "float64", batch)
        save_row(row)
        print("twin check (float64):", {k: row["check"].get(k) for k in
                                        ("loss_rel_diff", "grad_rel_diff")}, flush=True)
    if "hesscli" in tools:
        row["runs"].append(hesscli_row(target, params, dtype, [], "hesscli spectrum"))
        print("hesscli spectrum:", summary(row["runs"][-1]), flush=True)
        save_row(row)
    for tool in ("pyhessian", "pyhessian_tight"):  # the baseline first
        if tool in tools:
            row["runs"].append(peer_row(tool, net, dtype, batch))
            print(f"{tool}:", summary(row["runs"][-1]), flush=True)
            ratios(row)
            save_row(row)
    if "ggn" in tools:
        row["runs"].append(hesscli_row(target, params, dtype,
                                       ["--curvature", "ggn", "--ends", "max"],
                                       "hesscli spectrum --curvature ggn"))
        print("hesscli ggn:", summary(row["runs"][-1]), flush=True)
        save_row(row)
    for tool in ("eigenthings", "curvlinops"):
        if tool in tools:
            row["runs"].append(peer_row(tool, net, dtype, batch))
            print(f"{tool}:", summary(row["runs"][-1]), flush=True)
            ratios(row)
            save_row(row)
    tmp.cleanup()
    if "reference" in tools:
        cache = reference_cache(name)
        have = json.loads(cache.read_text()) if cache.exists() else row.get("reference")
        row["reference"] = references(target, params, True, have)
        RESULTS.mkdir(exist_ok=True)
        tmp_cache = cache.with_suffix(".tmp")
        tmp_cache.write_text(json.dumps(row["reference"]))
        tmp_cache.replace(cache)
        print("reference:", row["reference"], flush=True)
    score(row)
    ratios(row)
    row["load_average_end"] = os.getloadavg()
    return row


def tool_labels(tools: set[str]) -> set[str]:
    """The run labels the given tools write (to replace them in a saved row)."""
    labels = {"hesscli": "hesscli spectrum", "ggn": "hesscli spectrum --curvature ggn"}
    return {labels.get(t, t) for t in tools}


def summary(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("wall_s", "cpu_s", "lambda_max", "lambda_min", "trace", "trace_standard_error",
            "hvps", "hvps_max", "hvps_min", "trace_hvps", "eig_s", "solver_s", "trace_probes",
            "matvec_s", "converged", "progress", "timed_out", "error",
            "stopped_at_time_limit")
    out = {k: r[k] for k in keys if k in r}
    for sub in ("hessian", "ggn"):
        if isinstance(r.get(sub), dict):
            out[sub] = {k: r[sub].get(k) for k in ("lambda_max", "hvps", "solver_s")}
    return out


def ratios(row: dict[str, Any]) -> None:
    """Wall ÷ PyHessian's λmax alone (its process wall × eig share of its solver time)."""
    ph = next((r for r in row["runs"] if r["tool"] == "pyhessian" and "eig_s" in r), None)
    if not ph:
        return
    # PyHessian's λmax alone as a whole process: the process minus its trace's seconds
    ph["wall_lambda_max_only_s"] = ph["wall_s"] - (ph["solver_s"] - ph["eig_s"])
    for r in row["runs"]:
        r["wall_over_pyhessian_lambda_max"] = r["wall_s"] / ph["wall_lambda_max_only_s"]
        r["wall_over_pyhessian_all"] = r["wall_s"] / ph["wall_s"]


def table_rows(row: dict[str, Any]) -> list[list[str]]:
    label = f"{row['network']} n={row['n']:.3g}"
    out = []
    ref = row.get("reference") or {}
    chk = row.get("check") or {}
    if chk:
        out.append([label, "float64", "twin check: torch vs JAX loss / gradient rel. diff",
                    "", "", "", "", "", f"{fmt(chk.get('loss_rel_diff'), '.1e')} / "
                    f"{fmt(chk.get('grad_rel_diff'), '.1e')}", "", ""])
    for r in row["runs"]:
        base = [label, row["dtype"], r["tool"], fmt(r.get("wall_s")),
                fmt(r.get("wall_over_pyhessian_lambda_max"), ".2f")]
        if r.get("timed_out"):
            out.append(base + ["stopped", "", "", "", "", ""])
            continue
        if r["tool"].startswith("hesscli"):
            ggn = "ggn" in r["tool"]
            out.append(base + [
                f"{fmt(r.get('hvps_max'), 'd')} / {fmt(r.get('hvps_min'), 'd')} + "
                f"{fmt(r.get('trace_hvps'), 'd')}",
                fmt(r.get("lambda_max"), ".6g"), "" if ggn else fmt(r.get("lambda_min"), ".6g"),
                f"{fmt(r.get('err_max'), '.1e')}" + ("" if ggn else
                                                     f" / {fmt(r.get('err_min'), '.1e')}"),
                "" if ggn else f"{fmt(r.get('trace'), '.5g')} ± "
                f"{fmt(r.get('trace_standard_error'), '.2g')}", ""])
        elif r["tool"] == "pyhessian":
            out.append(base + [
                f"{fmt(r.get('hvps_max'), 'd')} + {fmt(r.get('trace_probes'), 'd')}",
                fmt(r.get("lambda_max"), ".6g"), "", fmt(r.get("err_max"), ".1e"),
                f"{fmt(r.get('trace'), '.5g')} ± {fmt(r.get('trace_standard_error'), '.2g')}",
                f"λmax alone {fmt(r.get('wall_lambda_max_only_s'))} s"])
        elif r["tool"] == "eigenthings":
            for sub in ("hessian", "ggn"):
                s = r.get(sub) or {}
                out.append(base + [fmt(s.get("hvps"), "d"), fmt(s.get("lambda_max"), ".6g"), "",
                                   fmt(s.get("err_max"), ".1e"), "",
                                   f"{sub}: {fmt(s.get('solver_s'))} s in solver, "
                                   f"converged {s.get('converged')}"])
        elif r["tool"] == "curvlinops":
            out.append(base + [fmt(r.get("products"), "d"), "", "", "", "",
                               f"GGN matvec {fmt(r.get('matvec_s'))} s" if "matvec_s" in r
                               else str(r.get("error", ""))[-80:]])
    if ref:
        out.append([label, "float64", f"reference: {ref.get('method')}", "", "",
                    f"{fmt(ref.get('lambda_max_hvps'), 'd')} / "
                    f"{fmt(ref.get('lambda_min_hvps'), 'd')}",
                    fmt(ref.get("lambda_max"), ".10g"), fmt(ref.get("lambda_min"), ".10g"),
                    "", "", f"GGN λmax {fmt(ref.get('ggn_lambda_max'), '.10g')}"])
    return out


def print_rows(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(title="whole processes, one thread each; err = |λ − λ_ref| / |λmax ref| "
                "(max / min); ÷ PyH λmax: wall ÷ PyHessian's λmax-only process",
                title_justify="left")
    for col in ["network", "dtype", "run", "wall s", "÷ PyH λmax", "HVPs (max / min + trace)",
                "λmax", "λmin", "err", "trace ± SE", "note"]:
        out.add_column(col, justify="left" if col in ("network", "dtype", "run", "note")
                       else "right")
    for row in rows:
        for r in table_rows(row):
            out.add_row(*r)
    Console(width=240).print(out)


def reference_cache(name: str) -> Path:
    return RESULTS / f"networks_reference_{name}_tol{REF_TOL:g}.json"


def with_cached_reference(row: dict[str, Any]) -> dict[str, Any]:
    """A row measured without the reference (``BENCH_NETWORKS_TOOLS`` without it, or
    before it was computed) scored against the network's cached float64 reference, when
    a later row computed it: the reference depends on the network, not on the row's dtype."""
    cache = reference_cache(row["network"])
    if cache.exists():  # the network's reference, completed by later runs
        row["reference"] = json.loads(cache.read_text())
        row["reference_from_cache"] = True
    score(row)
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    """The saved rows as the Markdown table of docs/benchmarks.md (one line per tool)."""
    head = ("| network, n | dtype | tool | wall s | CPU s | ÷ PyH λmax | HVPs | λmax | λmin "
            "| err λmax / λmin | trace ± SE | peak MiB |")
    out = [head, "| " + " | ".join(["---"] * (head.count("|") - 1)) + " |"]
    shown: set[str] = set()  # networks whose reference line is in the table already

    def line(*cells: str) -> None:
        out.append("| " + " | ".join(cells) + " |")

    for row in rows:
        label = f"{row['network']}, {row['n']:,}"
        if row.get("data_note"):
            label += f" ({row['data_note']})"
        dt = row["dtype"]
        for r in row["runs"]:
            cost = [fmt(r.get("wall_s"), ".0f"), fmt(r.get("cpu_s"), ".0f"),
                    fmt(r.get("wall_over_pyhessian_lambda_max"), ".2f")]
            mib = fmt(r.get("peak_mib"), ".0f")
            if r.get("timed_out"):
                prog = "; ".join(r.get("progress") or [])[-160:]
                line(label, dt, r["tool"], *cost, f"stopped at the time limit {prog}", "", "",
                     "", "", mib)
                continue
            if r.get("error"):
                line(label, dt, r["tool"], *cost, "failed: " +
                     str(r["error"]).strip().splitlines()[-1][:100], "", "", "", "", mib)
                continue
            if r["tool"].startswith("hesscli"):
                ggn = "ggn" in r["tool"]
                # Lanczos HVPs (the step at which each end met the target) + trace HVPs
                hv = (f"{fmt(r.get('eig_hvps'), 'd')} ({fmt(r.get('hvps_max'), 'd')} / "
                      f"{fmt(r.get('hvps_min'), 'd')}) + {fmt(r.get('trace_hvps'), 'd')}")
                err = (fmt(r.get("err_max"), ".1e") if ggn else
                       f"{fmt(r.get('err_max'), '.1e')} / {fmt(r.get('err_min'), '.1e')}")
                tr = (f"{fmt(r.get('trace'), '.5g')} ± "
                      f"{fmt(r.get('trace_standard_error'), '.2g')}" + (" (GGN)" if ggn else ""))
                line(label, dt, r["tool"] + (" --ends max" if ggn else ""), *cost, hv,
                     fmt(r.get("lambda_max"), ".6g"), "" if ggn else
                     fmt(r.get("lambda_min"), ".6g"), err, tr, mib)
            elif r["tool"] == "pyhessian_tight":
                line(label, dt, f"PyHessian eigenvalues(tol={fmt(r.get('tol'), 'g')}, "
                     f"maxIter={fmt(r.get('max_iter'), 'd')})" +
                     (f", stopped at {fmt(r.get('seconds_limit'), '.0f')} s"
                      if r.get("stopped_at_time_limit") else ""), *cost,
                     fmt(r.get("hvps_max"), "d"), fmt(r.get("lambda_max"), ".6g"), "",
                     f"{fmt(r.get('err_max'), '.1e')} / {fmt(r.get('err_to_min'), '.1e')}",
                     "", mib)
            elif r["tool"] == "pyhessian":
                line(label, dt, "PyHessian eigenvalues() + trace()", *cost,
                     f"{fmt(r.get('hvps_max'), 'd')} + {fmt(r.get('trace_probes'), 'd')}",
                     fmt(r.get("lambda_max"), ".6g"), "",
                     f"{fmt(r.get('err_max'), '.1e')} / {fmt(r.get('err_to_min'), '.1e')}",
                     f"{fmt(r.get('trace'), '.5g')} ± "
                     f"{fmt(r.get('trace_standard_error'), '.2g')}", mib)
                line(label, dt, "PyHessian λmax alone (derived)",
                     fmt(r.get("wall_lambda_max_only_s"), ".0f"), "", "1.00",
                     fmt(r.get("hvps_max"), "d"), fmt(r.get("lambda_max"), ".6g"), "",
                     f"{fmt(r.get('err_max'), '.1e')} / {fmt(r.get('err_to_min'), '.1e')}",
                     "", "")
            elif r["tool"] == "eigenthings":
                for sub in ("hessian", "ggn"):
                    s = r.get(sub) or {}
                    line(label, dt, f"eigenthings power_iteration_one, {sub}",
                         fmt(s.get("solver_s"), ".0f") + " in solver", "", "",
                         fmt(s.get("hvps"), "d"), fmt(s.get("lambda_max"), ".6g"), "",
                         fmt(s.get("err_max"), ".1e") + ("" if s.get("converged") else
                                                          " (not converged)"), "", "")
                line(label, dt, "eigenthings (whole process, both)", *cost, "", "", "", "",
                     "", mib)
            elif r["tool"] == "curvlinops":
                line(label, dt, "curvlinops GGNLinearOperator", *cost,
                     fmt(r.get("products"), "d"), "", "", "",
                     f"{fmt(r.get('matvec_s'), '.2f')} s per GGN matvec", mib)
        ref = row.get("reference") or {}
        if ref and row["network"] not in shown:
            shown.add(row["network"])
            line(label, "float64", "reference (ARPACK, tol "
                 f"{fmt(REF_TOL, 'g')}, ncv {fmt(ref.get('lambda_max_ncv', 20), 'd')} / "
                 f"{fmt(ref.get('lambda_min_ncv', 20), 'd')})",
                 f"{fmt(ref.get('lambda_max_s'), '.0f')} / {fmt(ref.get('lambda_min_s'), '.0f')}",
                 "", "",
                 f"{fmt(ref.get('lambda_max_hvps'), 'd')} / "
                 f"{fmt(ref.get('lambda_min_hvps'), 'd')}",
                 fmt(ref.get("lambda_max"), ".10g"), fmt(ref.get("lambda_min"), ".10g"), "",
                 f"GGN λmax {fmt(ref.get('ggn_lambda_max'), '.10g')}", "")
    return "\n".join(out) + "\n"


def reach_markdown(rows: list[dict[str, Any]]) -> str:
    """The tight PyHessian runs as the equal-accuracy table of docs/benchmarks.md: per
    row, the end the iteration went to, and the products and whole-process seconds at
    which it came, and stayed, within each error (— : not within it by its last product)."""
    head = ("| network | dtype | PyHessian run | end approached | closest (product) "
            "| ≤ 1e-3 | ≤ 1e-4 | ≤ hesscli's bound | ≤ hesscli's error | hesscli spectrum |")
    out = [head, "| " + " | ".join(["---"] * (head.count("|") - 1)) + " |"]

    def cell(hit: dict[str, Any] | None) -> str:
        if not hit:
            return ""
        err = "" if hit["kind"] == "fixed" else f"{fmt(hit['err'], '.1e')}: "
        if hit.get("products") is None:
            return err + "not reached"
        return f"{err}{hit['products']} products, {fmt(hit.get('wall_s'), '.0f')} s"

    for row in rows:
        hs = next((r for r in row["runs"] if r["tool"] == "hesscli spectrum"
                   and not r.get("timed_out")), None)
        for r in row["runs"]:
            if r["tool"] != "pyhessian_tight" or not r.get("reach"):
                continue
            ends = r["reach"]
            end = min(ends, key=lambda e: ends[e]["final_err"])
            info = ends[end]
            by = {(t["kind"], t["err"]): t for t in info["targets"]}
            kinds = {t["kind"]: t for t in info["targets"] if t["kind"] != "fixed"}
            run = (f"tol {fmt(r.get('tol'), 'g')}: {r['hvps_max']} products, "
                   f"{fmt(r.get('wall_s'), '.0f')} s" +
                   (" (time limit)" if r.get("stopped_at_time_limit") else ""))
            out.append("| " + " | ".join([
                row["network"], row["dtype"], run, "λmax" if end == "max" else "λmin",
                f"{fmt(info['best_err'], '.1e')} ({info['best_at_product']})",
                cell(by.get(("fixed", 1e-3))), cell(by.get(("fixed", 1e-4))),
                cell(kinds.get("hesscli bound")), cell(kinds.get("hesscli achieved")),
                "" if not hs else f"{fmt(hs.get('wall_s'), '.0f')} s"]) + " |")
    return "\n".join(out) + "\n"


def saved_rows() -> list[dict[str, Any]]:
    saved = [with_cached_reference(json.loads(p.read_text()))
             for p in sorted(RESULTS.glob("networks_row_*.json"))]
    for row in saved:  # a reference with an unfinished end is not cached: borrow it
        other = next((r for r in saved if r["network"] == row["network"]
                      and r.get("reference") and not r.get("reference_from_row")), None)
        if not row.get("reference") and other:
            row["reference"], row["reference_from_row"] = other["reference"], other["dtype"]
            score(row)
        ratios(row)
    saved.sort(key=lambda r: (r["n"], r["network"], r["dtype"]))
    return saved


def main() -> dict[str, Any]:
    spec = os.environ.get("BENCH_NETWORKS_ROWS", DEFAULT_ROWS)
    tools = set(os.environ.get("BENCH_NETWORKS_TOOLS", TOOLS).split(","))
    rows = []
    for item in filter(None, spec.split(",")):
        name, dtype = (item.split(":") + ["float64"])[:2]
        row = one_row(name, dtype, tools)
        save_row(row)
        rows.append(row)
        print_rows([row])
    saved = saved_rows()
    print_rows(saved)
    return {"rows_measured_now": spec, "rows": saved}


if __name__ == "__main__":  # the saved rows as docs/benchmarks.md's Markdown table
    rows = saved_rows()
    print(markdown(rows))
    print(reach_markdown(rows), end="")
