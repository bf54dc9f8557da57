"""Run by tests/test_sharded.py in a subprocess with 4 host devices; prints one JSON.

``XLA_FLAGS=--xla_force_host_platform_device_count=4`` must be set before JAX
starts, hence the subprocess. Everything that needs the 4 devices is done here
in one process (compiling is the cost; starting JAX twice would double it), and
the test file asserts on the numbers. References are the single-device
:class:`ExactCurvature` on the same objective; the sharded backend must agree to
rounding (summation order is all that differs).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PARAM_SHARDED = '''
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import PartitionSpec as P

rng = np.random.default_rng(1)
X = rng.standard_normal((10, 3))
Y = np.tanh(X @ rng.standard_normal((3, 4)))
data = (jnp.asarray(X), jnp.asarray(Y))

def loss(params, batch):
    Xb, Yb = batch
    h = jnp.tanh(Xb @ params["hidden"]["w"] + params["hidden"]["b"])
    return jnp.mean(jnp.sum((h @ params["head"]["w"] + params["head"]["b"] - Yb) ** 2, -1))

def objective(params):
    return loss(params, data)

x0 = {"hidden": {"w": 0.5 * rng.standard_normal((3, 4)), "b": 0.1 * rng.standard_normal(4)},
      "head": {"w": 0.5 * rng.standard_normal((4, 4)), "b": np.zeros(4)}}
param_sharding = {"hidden": {"w": P(None, "devices"), "b": P("devices")},
                  "head": {"w": P("devices", None), "b": None}}
'''

NOT_A_MEAN = '''
import jax.numpy as jnp, numpy as np
X = np.linspace(-1, 1, 10)
data = (jnp.asarray(X),)
def loss(w, batch):
    return jnp.mean((batch[0] * w[0] - 1.0) ** 2)
def objective(w):
    return loss(w, data) + 0.5 * jnp.sum(w ** 2)   # a regularizer: not the mean of loss
x0 = np.array([0.3])
'''


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def compare(obj, parallel, dense: bool = True, ref=None, check: bool = True) -> tuple:
    from hesscli.curvature.exact import ExactCurvature
    from hesscli.curvature.sharded import ShardedCurvature, check_mean

    ref = ref or ExactCurvature(obj)
    sh = ShardedCurvature(obj, parallel)
    if check:
        check_mean(sh)
    x = obj.x
    v = np.random.default_rng(0).standard_normal(obj.n)
    out = {
        "n": obj.n,
        "devices": parallel.devices,
        "samples": sh.samples,
        "padded": sh.padded_samples,
        "value": abs(sh.value(x) - ref.value(x)) / abs(ref.value(x)),
        "gradient": max_rel(sh.gradient(x), ref.gradient(x)),
        "hvp": max_rel(sh.hvp(x, v), ref.hvp(x, v)),
    }
    if sh.samples is not None:
        out["data_shards"] = sorted(
            {s.data.shape[0] for s in sh.operands[0][0].addressable_shards}
        )
    if dense:
        # the dense Hessian from sharded HVPs against the basis (the hessian()
        # program itself is exercised by the CLI comparison below)
        lam_ref = np.linalg.eigvalsh(ref.hessian(x).matrix)
        columns = np.array([sh.hvp(x, e) for e in np.eye(obj.n)])
        out["symmetry"] = float(np.max(np.abs(columns - columns.T)) / np.max(np.abs(columns)))
        lam = np.linalg.eigvalsh(0.5 * (columns + columns.T))
        scale = float(np.max(np.abs(lam_ref)))
        out["lambda_min"] = abs(lam[0] - lam_ref[0]) / scale
        out["lambda_max"] = abs(lam[-1] - lam_ref[-1]) / scale
    return out, sh, ref


def main() -> None:
    from hesscli.jaxconf import jax_module

    jax = jax_module()
    from click.testing import CliRunner

    from hesscli.api import load
    from hesscli.cli import cli
    from hesscli.devices import select

    results: dict = {"device_count": jax.device_count(), "seconds": {}}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        results["seconds"][name] = round(now - clock[0], 2)
        clock[0] = now

    four = select(None)
    three = select(3)

    obj10 = load("mlp", None, ("width=4", "samples=10"), seed=0, dtype="float64",
                 method="auto")
    lap("load")
    results["uneven_4"], sh10, ref10 = compare(obj10, four, dense=False)
    lap("uneven_4")
    results["uneven_3"], _, _ = compare(obj10, three, dense=False, ref=ref10, check=False)
    lap("uneven_3")

    # a minibatch (5 samples on 4 devices) against loss on it, single device
    X, Y = (np.asarray(a) for a in obj10.file.data)
    batch = (X[2:7], Y[2:7])
    want_v, want_g = jax.value_and_grad(lambda p: obj10.file.loss(p, batch))(
        obj10.unravel(obj10.x))
    got_v, got_g = sh10.batch_value_and_gradient(obj10.x, batch)
    flat_g = np.concatenate([np.ravel(g) for g in jax.tree_util.tree_leaves(want_g)])
    results["minibatch"] = {"value": abs(got_v - float(want_v)) / abs(float(want_v)),
                            "gradient": max_rel(got_g, flat_g)}

    lap("minibatch")
    # hvp_fn inside other compiled code: closed over, and passed as an argument
    x = obj10.x
    v = np.random.default_rng(1).standard_normal(obj10.n)
    want = ref10.hvp(x, v)
    closed = jax.jit(lambda a, b: sh10.hvp_fn(a, b) * 2.0)
    passed = jax.jit(lambda h, a, b: h(a, b) * 2.0)
    results["outer_jit_closed"] = max_rel(np.asarray(closed(x, v)) / 2, want)
    results["outer_jit_argument"] = max_rel(np.asarray(passed(sh10.hvp_fn, x, v)) / 2, want)
    hlo = sh10._hvp.lower(sh10.operands, sh10._x(x), sh10._x(v)).compile().as_text()
    results["hvp_all_reduces"] = hlo.count("all-reduce(") + hlo.count("all-reduce-start(")

    lap("outer_jit")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "psharded.py"
        path.write_text(PARAM_SHARDED)
        objp = load(str(path), None, (), seed=0, dtype="float64", method="auto")
        res, shp, refp = compare(objp, four)
        out = shp.hvp_fn(shp._x(objp.x), shp._x(np.ones(objp.n)))
        res["vector_spec"] = str(shp.vector_sharding.spec)
        res["hvp_shards"] = sorted({s.data.shape[0] for s in out.addressable_shards})
        res["leaf_specs"] = [str(s.spec) for s in shp.leaf_shardings]
        # a Krylov basis built by an outer compiled loop inherits the vectors' sharding
        jnp = jax.numpy
        rows = 4

        @jax.jit
        def krylov(x, basis):
            def step(j, b):
                w = shp.hvp_fn(x, b[j])
                return b.at[j + 1].set(w / jnp.linalg.norm(w))
            return jax.lax.fori_loop(0, rows - 1, step, basis)

        start = jnp.zeros((rows, objp.n)).at[0].set(jnp.ones(objp.n) / np.sqrt(objp.n))
        basis = krylov(jnp.asarray(objp.x), start)
        res["basis_shards"] = sorted({tuple(s.data.shape) for s in basis.addressable_shards})
        dense = np.asarray(refp.hessian(objp.x).matrix)
        want = [np.ones(objp.n) / np.sqrt(objp.n)]
        for _ in range(rows - 1):
            w = dense @ want[-1]
            want.append(w / np.linalg.norm(w))
        res["basis"] = max_rel(np.asarray(basis), np.array(want))
        # Lanczos through the sharded backend: the Partial's data are arguments of the
        # kernel (not constants), the basis is split along n, the extremes are unchanged
        from hesscli.spectra.certify import Solve
        from hesscli.spectra.lanczos import _lanczos_program, split_operator
        from hesscli.spectra.matrix_free import basis_sharding, extremes_of

        ex_sh = extremes_of(shp, objp.x, Solve(k=2, seed=0))
        ex_ref = extremes_of(refp, objp.x, Solve(k=2, seed=0))
        res["lanczos"] = max_rel(ex_sh.eigenvalues, ex_ref.eigenvalues)
        res["lanczos_shards"] = basis_sharding(shp)[1]
        static, dynamic = split_operator(sh10.hvp_fn, None)
        program = _lanczos_program(static[0], static[1], jax.tree_util.tree_structure(dynamic),
                                   obj10.n, "float64", 16)
        zeros = np.zeros((16, obj10.n))
        text = program.lower(dynamic, obj10.x, zeros, np.zeros(16), np.zeros(16), 0, 4,
                             0.0).as_text()
        lines = text.splitlines()
        results["lanczos_data_constants"] = sum(
            "stablehlo.constant" in line and "x32xf64>" in line for line in lines)
        results["lanczos_data_arguments"] = sum(
            "@main(" in line and "tensor<12x32xf64>" in line for line in lines)
        results["param_sharding"] = res
        lap("param_sharding")

        bad = Path(tmp) / "not_a_mean.py"
        bad.write_text(NOT_A_MEAN)
        runner = CliRunner()
        r = runner.invoke(cli, ["analyze", str(bad), "--devices", "all"])
        results["not_a_mean"] = {"exit_code": r.exit_code, "stderr": r.stderr}
        lap("not_a_mean")

        docs = {}
        for devices in ("1", "all"):
            r = runner.invoke(cli, ["analyze", "mlp", "-p", "width=4", "-p", "samples=10",
                                    "--devices", devices, "--format", "json"])
            docs[devices] = {"exit_code": r.exit_code, "stderr": r.stderr,
                             "doc": json.loads(r.stdout) if r.exit_code == 0 else None}
        results["cli"] = docs
        lap("cli")

        # spectrum (dense and matrix-free) and a seeded minibatch train run, --devices 1/all
        mlp10 = ("mlp", "-p", "width=4", "-p", "samples=10")
        runs = {
            "spectrum_dense": ("spectrum", *mlp10, "--dense"),
            "spectrum_free": ("spectrum", *mlp10, "--matrix-free", "--k", "2"),
            "train": ("train", *mlp10, "--optimizer", "momentum", "--lr", "0.05",
                      "--batch-size", "3", "--steps", "8", "--monitor-every", "4",
                      "--seed", "5"),
            "train_full": ("train", *mlp10, "--lr", "0.05", "--steps", "4",
                           "--monitor-every", "2", "--no-curvature"),
        }
        for name, args in runs.items():
            pair = {}
            for devices in ("1", "all"):
                r = runner.invoke(cli, [*args, "--devices", devices, "--format", "json"])
                pair[devices] = {"exit_code": r.exit_code, "stderr": r.stderr[-2000:],
                                 "doc": json.loads(r.stdout) if r.exit_code == 0 else None}
            results[name] = pair
            lap(name)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
