"""The sharded curvature backend (``--devices``) and the multi-process options.

The numbers need several devices, and XLA_FLAGS must be set before JAX starts,
so one subprocess (``tests/sharded_worker.py``, 4 host devices) computes every
comparison and prints JSON; the tests here assert on it. The reference is the
single-device exact backend: sharding changes the summation order and nothing
else, so agreement to 1e-12 (relative, float64) is the bar. Option parsing and
the process-0-only output run in-process with one device.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from hesscli import devices
from hesscli.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
TOL = 1e-12
SCHEMA = json.loads((ROOT / "hesscli" / "schemas" / "parallel.schema.json").read_text())
ANALYZE = json.loads((ROOT / "hesscli" / "schemas" / "analyze.schema.json").read_text())


@pytest.fixture(scope="module")
def four() -> dict:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "sharded_worker.py")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_worker_sees_four_devices(four):
    assert four["device_count"] == 4


@pytest.mark.parametrize("case", ["uneven_4", "uneven_3", "param_sharding"])
def test_value_gradient_hvp_match_single_device(four, case):
    res = four[case]
    for key in ("value", "gradient", "hvp"):
        assert res[key] <= TOL, (case, key, res[key])


def test_minibatch_value_and_gradient(four):
    assert four["minibatch"]["value"] <= TOL
    assert four["minibatch"]["gradient"] <= TOL


def test_uneven_batch_is_padded_and_masked_not_truncated(four):
    # 10 samples: 4 devices hold 3 each (12, two masked); 3 devices hold 4 each
    assert four["uneven_4"]["samples"] == 10 and four["uneven_4"]["padded"] == 12
    assert four["uneven_4"]["data_shards"] == [3]
    assert four["uneven_3"]["padded"] == 12 and four["uneven_3"]["data_shards"] == [4]


def test_xla_inserts_the_all_reduce(four):
    # the HVP of a data-parallel mean is one all-reduce of the n-vector
    assert four["hvp_all_reduces"] >= 1


def test_hvp_fn_works_inside_other_compiled_code(four):
    assert four["outer_jit_closed"] <= TOL
    assert four["outer_jit_argument"] <= TOL


def test_param_sharding_shards_vectors_and_leaves(four):
    res = four["param_sharding"]
    assert res["lambda_min"] <= TOL and res["lambda_max"] <= TOL
    assert res["symmetry"] <= TOL  # exact HVPs: H built from them is symmetric to rounding
    assert res["vector_spec"] == "P('devices',)"
    assert res["hvp_shards"] == [res["n"] // 4]  # each device holds a quarter of Hv
    # a (4, n) basis built by another compiled loop: each device holds (4, n/4)
    assert res["basis_shards"] == [[4, res["n"] // 4]]
    assert res["basis"] <= 1e-10  # three normalized power steps against the dense H
    assert sorted(res["leaf_specs"]) == sorted(
        ["P()", "P('devices', None)", "P('devices',)", "P(None, 'devices')"]
    )


def test_objective_that_is_not_the_mean_of_loss_is_refused(four):
    res = four["not_a_mean"]
    assert res["exit_code"] == 2
    assert res["stderr"].startswith("error: not_a_mean.py: the objective is not the mean of loss")
    assert res["stderr"].count("\n") == 1


def test_cli_devices_all_matches_devices_1(four):
    one, all_ = four["cli"]["1"], four["cli"]["all"]
    assert one["exit_code"] == 0, one["stderr"]
    assert all_["exit_code"] == 0, all_["stderr"]
    a, b = one["doc"], all_["doc"]
    assert a["classification"] == b["classification"]
    assert a["inertia"] == b["inertia"]
    lam_a, lam_b = np.array(a["eigenvalues"]), np.array(b["eigenvalues"])
    scale = np.max(np.abs(lam_a))
    assert abs(lam_a[0] - lam_b[0]) <= TOL * scale
    assert abs(lam_a[-1] - lam_b[-1]) <= TOL * scale
    assert np.max(np.abs(lam_a - lam_b)) <= 1e-11 * scale  # every eigenvalue
    assert abs(a["value"] - b["value"]) <= TOL * abs(a["value"])
    assert (a["devices"], a["processes"]) == (1, 1)
    assert (b["devices"], b["processes"]) == (4, 1)
    assert b["meta"]["parallel"]["mesh_axis"] == "devices"
    assert any("padded to 12" in note for note in b["notes"])
    for doc in (a, b):
        jsonschema.validate(doc, SCHEMA)
        jsonschema.validate(doc, ANALYZE)


# --- in-process: options, errors, process-0-only output (one device) -----------------


@pytest.mark.parametrize("text, want", [("1", 1), ("4", 4), ("all", None), (" ALL ", None)])
def test_parse_devices(text, want):
    assert devices.parse_devices(text) == want


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_parse_devices_rejects(text):
    with pytest.raises(InputError, match="expected a positive integer or 'all'"):
        devices.parse_devices(text)


@pytest.mark.parametrize("args, message", [
    (("host0:1234", None, 0), "missing --num-processes"),
    (("host0", 2, 0), "expected host:port"),
    (("host0:99999", 2, 0), "expected host:port"),
    (("host0:1234", 2, 2), "expected 0 ≤ id < --num-processes"),
    (("host0:1234", 0, 0), "--num-processes 0"),
])
def test_check_distributed_rejects(args, message):
    with pytest.raises(InputError, match=message):
        devices.check_distributed(*args)


def test_cli_refuses_more_devices_than_available(hess):
    res = hess("analyze", "mlp", "-p", "width=2", "--devices", "2")
    assert res.exit_code == 2, res.output
    assert "--devices 2: only 1 cpu device is available" in res.stderr
    assert "xla_force_host_platform_device_count=2" in res.stderr


def test_cli_bad_devices_value(hess):
    res = hess("analyze", "mlp", "--devices", "many")
    assert res.exit_code == 2, res.output
    assert res.stderr == "error: --devices 'many': expected a positive integer or 'all'\n"


def test_cli_incomplete_process_options(hess):
    res = hess("analyze", "saddle", "--at", "zeros", "--coordinator", "localhost:1234")
    assert res.exit_code == 2, res.output
    assert "missing --num-processes, --process-id" in res.stderr


def test_cli_table_and_json_report_devices(hess, monkeypatch):
    res = hess("analyze", "saddle", "--at", "zeros")
    assert res.exit_code == 0, res.output
    assert "devices" not in res.stdout  # the single-device report is unchanged
    from hesscli.curvature.exact import ExactCurvature

    several = devices.Parallel(devices=8, processes=2, local_devices=4, mesh=object())
    monkeypatch.setattr(ExactCurvature, "parallel", several)  # the backend declares who computes
    res = hess("analyze", "saddle", "--at", "zeros")
    assert res.exit_code == 0, res.output
    assert re.search(r"\ndevices +8 cpu devices, 2 processes", res.stdout), res.stdout
    monkeypatch.undo()
    res = hess("analyze", "saddle", "--at", "zeros", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert (doc["devices"], doc["processes"]) == (1, 1)
    assert doc["meta"]["parallel"]["mesh_axis"] is None
    jsonschema.validate(doc, SCHEMA)
    jsonschema.validate(doc, ANALYZE)


@pytest.fixture
def fake_cluster(monkeypatch):
    """A 'multi-process' start whose jax.distributed.initialize only records its call."""
    calls: list[dict] = []
    monkeypatch.setattr(devices, "_started", {})
    jax = devices.jax_module()
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    return calls


def test_process_options_from_environment_reach_jax_distributed(hess, fake_cluster,
                                                                monkeypatch):
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:12355")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "1")
    monkeypatch.setenv("JAX_PROCESS_ID", "0")
    res = hess("analyze", "saddle", "--at", "zeros", "--format", "json")
    assert res.exit_code == 0, res.output
    assert fake_cluster == [{"coordinator_address": "127.0.0.1:12355", "num_processes": 1,
                             "process_id": 0}]
    assert res.json()["processes"] == 1  # the one process that took part


def test_only_process_0_prints_and_writes(hess, fake_cluster, monkeypatch, tmp_path):
    monkeypatch.setattr(devices, "is_primary", lambda: False)
    out = tmp_path / "escape.npz"
    res = hess("analyze", "saddle", "--at", "zeros", "--format", "json",
               "--coordinator", "127.0.0.1:12355", "--num-processes", "2",
               "--process-id", "1", "--save-escape", out)
    assert res.exit_code == 0, res.output
    assert fake_cluster[0]["process_id"] == 1
    assert res.stdout == ""
    assert not out.exists()
    monkeypatch.setattr(devices, "is_primary", lambda: True)
    res = hess("analyze", "saddle", "--at", "zeros", "--save-escape", out)
    assert res.exit_code == 0, res.output
    assert "saddle point" in res.stdout
    # H = diag(1, −1) at the saddle: the escape direction is ±e_y
    with np.load(out) as archive:
        (saved,) = [archive[name] for name in archive.files]
    np.testing.assert_allclose(np.abs(np.ravel(saved)), [0.0, 1.0], atol=1e-12)


def test_devices_on_an_objective_without_data_is_refused(monkeypatch):
    from hesscli.api import load
    from hesscli.curvature.choose import sharded_curvature

    obj = load("saddle", "zeros", (), seed=0, dtype="float64", method="auto")
    parallel = devices.Parallel(devices=2, local_devices=2, mesh=object())
    with pytest.raises(InputError, match="defines neither data and loss nor param_sharding"):
        sharded_curvature(obj, "auto", parallel)


# --- two real processes on localhost (jax.distributed over loopback, Gloo collectives) ----

LEAST_SQUARES = '''
import jax.numpy as jnp, numpy as np
rng = np.random.default_rng(3)
X = rng.standard_normal((10, 3))
y = rng.standard_normal(10)
data = (jnp.asarray(X), jnp.asarray(y))
def loss(w, batch):
    return jnp.mean((batch[0] @ w - batch[1]) ** 2)
def objective(w):
    return loss(w, data)
x0 = np.zeros(3)
'''


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_processes_on_localhost(tmp_path):
    """2 processes × 2 devices: process 0 prints the one JSON document, process 1 nothing.

    The Hessian of the mean squared error is 2XᵀX/N whatever the point.
    """
    path = tmp_path / "lsq.py"
    path.write_text(LEAST_SQUARES)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu", JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{free_port()}",
               JAX_NUM_PROCESSES="2")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hesscli", "analyze", str(path), "--devices", "all",
             "--format", "json"],
            env=dict(env, JAX_PROCESS_ID=str(rank)), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        )
        for rank in (0, 1)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    doc = json.loads(outs[0][0])
    assert outs[1][0] == ""
    assert (doc["devices"], doc["processes"]) == (4, 2)
    assert doc["meta"]["parallel"]["local_devices"] == 2
    rng = np.random.default_rng(3)
    X = rng.standard_normal((10, 3))
    want = np.linalg.eigvalsh(2 * X.T @ X / 10)
    np.testing.assert_allclose(doc["eigenvalues"], want, rtol=1e-12)
    assert any("padded to 12" in note for note in doc["notes"])
    jsonschema.validate(doc, SCHEMA)


# --- spectrum and train with --devices all against --devices 1 (computed by the worker) ---


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def pair(four, name):
    one, all_ = four[name]["1"], four[name]["all"]
    assert one["exit_code"] == 0, one["stderr"]
    assert all_["exit_code"] == 0, all_["stderr"]
    assert one["doc"]["meta"]["parallel"]["devices"] == 1
    assert all_["doc"]["meta"]["parallel"]["devices"] == 4
    return one["doc"], all_["doc"]


@pytest.mark.parametrize("name", ["spectrum_dense", "spectrum_free"])
def test_spectrum_devices_all_matches_devices_1(four, name):
    a, b = pair(four, name)
    assert a["path"] == b["path"] == ("dense" if name == "spectrum_dense" else "matrix-free")
    assert abs(b["lambda_min"] - a["lambda_min"]) <= TOL * abs(a["lambda_max"])
    assert abs(b["lambda_max"] - a["lambda_max"]) <= TOL * abs(a["lambda_max"])
    assert a["inertia"] == b["inertia"]


@pytest.mark.parametrize("name", ["train", "train_full"])
def test_train_devices_all_follows_the_same_trajectory(four, name):
    a, b = pair(four, name)
    assert a["steps"] == b["steps"] and len(a["history"]) == len(b["history"])
    assert rel([h["value"] for h in b["history"]], [h["value"] for h in a["history"]]) <= TOL
    assert rel(b["final_point"], a["final_point"]) <= TOL
    if name == "train":  # curvature monitored through the sharded backend too
        lam = [h["lambda_max"] for h in a["history"]]
        assert rel([h["lambda_max"] for h in b["history"]], lam) <= TOL


def test_lanczos_takes_the_sharded_data_as_arguments(four):
    # the 10 samples (padded to 12) of 32 inputs enter the kernel as an operand, not a constant
    assert four["lanczos_data_constants"] == 0
    assert four["lanczos_data_arguments"] >= 1
    res = four["param_sharding"]
    assert res["lanczos"] <= TOL  # same extremes from the parameter-sharded backend
    assert res["lanczos_shards"] == 4


def test_lanczos_basis_budget_is_per_device():
    from hesscli.spectra.lanczos import BASIS_BUDGET, max_steps_for

    n = BASIS_BUDGET // 8 // 32  # a float64 basis of 32 rows fills the budget on one device
    one, four = max_steps_for(n, "float64"), max_steps_for(n, "float64", shards=4)
    assert one == 31 and four == 4 * 32 - 1  # one row for the next Lanczos vector
    assert max_steps_for(n, "float64", 10, shards=4) == 10  # --max-steps still wins
