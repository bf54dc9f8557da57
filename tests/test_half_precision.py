"""Points stored in bfloat16 / float16: computed in the run's dtype from the stored values.

Every test derives its expected numbers independently: the stored half-precision
values upcast in NumPy, and the analytic gradient and Hessian of

    f(x) = ½ xᵀAx + Σ x³/3 + Σ sin x,  ∇f = Ax + x² + cos x,  ∇²f = A + diag(2x − sin x)

with x = concat(u, v) (the ``ravel_pytree`` order of ``{"u": ..., "v": ...}``).
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)

# entries no binary format of 16 bits holds exactly
A = np.array([[math.pi, 1 / 3, 0.0, 0.1],
              [1 / 3, math.e, 1 / 7, 0.0],
              [0.0, 1 / 7, -math.sqrt(2), 0.2],
              [0.1, 0.0, 0.2, 1 / 9]])
U = np.array([0.3141, -0.7071])
V = np.array([0.5773, -0.1234])

SOURCE = f"""
import jax.numpy as jnp
A = jnp.array({A.tolist()!r})
x0 = {{"u": jnp.zeros(2), "v": jnp.zeros(2)}}

def objective(p):
    x = jnp.concatenate([p["u"], p["v"]])
    return 0.5 * x @ A @ x + jnp.sum(x ** 3) / 3 + jnp.sum(jnp.sin(x))
"""

FLAT = """
import jax.numpy as jnp
A = jnp.array({A!r})

def objective(x):
    return 0.5 * x @ A @ x + jnp.sum(x ** 3) / 3 + jnp.sum(jnp.sin(x))
""".replace("{A!r}", repr(A.tolist()))


def truth(x: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Value, gradient norm and eigenvalues at ``x`` (float64, analytic)."""
    x = np.asarray(x, dtype=np.float64)
    value = 0.5 * x @ A @ x + np.sum(x ** 3) / 3 + np.sum(np.sin(x))
    grad = A @ x + x ** 2 + np.cos(x)
    hess = A + np.diag(2 * x - np.sin(x))
    return float(value), float(np.linalg.norm(grad)), np.linalg.eigvalsh(hess)


def stored(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    return U.astype(dtype), V.astype(dtype)


def upcast(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])


def half_notes(doc: dict) -> list[str]:
    return [n for n in doc["notes"] if n.startswith("parameters stored in")]


def assert_matches(doc: dict, x: np.ndarray, dtype: str) -> None:
    """The document's numbers are those of the upcast point, to ``dtype``'s accuracy."""
    value, gnorm, eigs = truth(x)
    rtol = 1e-12 if dtype == "float64" else 2e-6
    scale = float(np.max(np.abs(eigs)))
    assert doc["dtype"] == dtype
    assert doc["n"] == x.size
    assert doc["value"] == pytest.approx(value, rel=rtol, abs=rtol)
    assert doc["gradient_norm"] == pytest.approx(gnorm, rel=rtol, abs=rtol)
    np.testing.assert_allclose(doc["eigenvalues"], eigs, rtol=0, atol=rtol * 10 * scale)


@pytest.fixture
def pytree_file(write):
    return write("tree.py", SOURCE)


@pytest.fixture
def flat_file(write):
    return write("flat.py", FLAT)


# ---------------------------------------------------------------- every point format


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("half", [F16, BF16], ids=["float16", "bfloat16"])
def test_npy_point(hess, flat_file, tmp_path, half, dtype):
    u, v = stored(half)
    x = np.concatenate([u, v])  # stays half precision
    np.save(tmp_path / "p.npy", x)  # bfloat16 goes to disk as raw |V2 records
    res = hess("analyze", flat_file, "--at", tmp_path / "p.npy", "--dtype", dtype,
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert_matches(doc, upcast(x), dtype)
    (note,) = half_notes(doc)
    assert note.startswith(f"parameters stored in {half.name} (1 leaf, 4 values)")
    assert f"computed in {dtype}" in note
    assert ("|V2" in note) == (half == BF16)


@pytest.mark.parametrize("half", [F16, BF16], ids=["float16", "bfloat16"])
def test_npz_mixed_tree_names_the_half_precision_leaves(hess, pytree_file, tmp_path, half):
    u, _ = stored(half)
    v = V.astype(np.float32)  # one leaf in float32, one in half precision
    np.savez(tmp_path / "p.npz", u=u, v=v)
    res = hess("analyze", pytree_file, "--at", tmp_path / "p.npz", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert_matches(doc, upcast(u, v), "float64")
    (note,) = half_notes(doc)
    assert note.startswith(f"parameters stored in {half.name} (1 of 2 leaves, 2 values)")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("half", [F16, BF16], ids=["float16", "bfloat16"])
def test_safetensors_point(hess, pytree_file, tmp_path, half, dtype):
    safetensors = pytest.importorskip("safetensors.numpy")
    u, v = stored(half)
    safetensors.save_file({"u": u, "v": v}, str(tmp_path / "p.safetensors"))
    res = hess("analyze", pytree_file, "--at", tmp_path / "p.safetensors", "--dtype", dtype,
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert_matches(doc, upcast(u, v), dtype)
    (note,) = half_notes(doc)
    assert note.startswith(f"parameters stored in {half.name} (2 leaves, 4 values): "
                           f"computed in {dtype}")
    assert "|V2" not in note  # safetensors knows bfloat16: nothing was reinterpreted


def test_flax_msgpack_point(hess, pytree_file, tmp_path):
    serialization = pytest.importorskip("flax.serialization")
    u, v = stored(BF16)
    path = tmp_path / "p.msgpack"
    path.write_bytes(serialization.msgpack_serialize({"params": {"u": u, "v": v}}))
    res = hess("analyze", pytree_file, "--at", f"{path}::params", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert_matches(doc, upcast(u, v), "float64")
    (note,) = half_notes(doc)
    assert note.startswith("parameters stored in bfloat16 (2 leaves, 4 values)")


def test_orbax_point(hess, pytree_file, tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    import jax.numpy as jnp

    u, v = stored(BF16)
    path = tmp_path / "ckpt"
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(str(path), {"u": jnp.asarray(u), "v": jnp.asarray(v)})
    ckpt.wait_until_finished()
    res = hess("analyze", pytree_file, "--at", path, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert_matches(doc, upcast(u, v), "float64")
    (note,) = half_notes(doc)
    assert note.startswith("parameters stored in bfloat16 (2 leaves, 4 values)")


# ---------------------------------------------------------------- Python API and x0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_python_api_with_jnp_bfloat16_leaves(dtype):
    import jax.numpy as jnp

    import hesscli

    def fn(p):
        x = jnp.concatenate([p["u"], p["v"]])
        return 0.5 * x @ jnp.asarray(A) @ x + jnp.sum(x ** 3) / 3 + jnp.sum(jnp.sin(x))

    params = {"u": jnp.asarray(U, jnp.bfloat16), "v": jnp.asarray(V, jnp.float16)}
    res = hesscli.analyze(fn, params, dtype=dtype)
    doc = res.to_json()
    assert_matches(doc, upcast(np.asarray(params["u"]), np.asarray(params["v"])), dtype)
    assert res.objective.x.dtype == np.dtype(dtype)
    (note,) = half_notes(doc)
    assert note.startswith("parameters stored in bfloat16 and float16 (2 leaves, 4 values): "
                           f"computed in {dtype}")


def test_objective_file_x0_in_bfloat16_and_bfloat16_data(hess, write):
    path = write("model.py", """
import jax.numpy as jnp
X = jnp.asarray([[0.3, -1.2], [0.7, 0.25], [-0.4, 0.9]], dtype=jnp.bfloat16)
y = jnp.asarray([1.0, -0.5, 0.3], dtype=jnp.bfloat16)
data = (X, y)
x0 = {"w": jnp.asarray([0.123, -0.456], dtype=jnp.bfloat16)}

def model(p, inputs):
    return inputs @ p["w"]

def output_loss(out, targets):
    return jnp.mean((out - targets) ** 2)
""")
    res = hess("analyze", path, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    # independently: the stored bfloat16 values upcast, least squares in float64
    X = np.asarray([[0.3, -1.2], [0.7, 0.25], [-0.4, 0.9]]).astype(BF16).astype(np.float64)
    y = np.asarray([1.0, -0.5, 0.3]).astype(BF16).astype(np.float64)
    w = np.asarray([0.123, -0.456]).astype(BF16).astype(np.float64)
    r = X @ w - y
    assert doc["dtype"] == "float64"
    assert doc["value"] == pytest.approx(np.mean(r ** 2), rel=1e-13)
    assert doc["gradient_norm"] == pytest.approx(np.linalg.norm(2 * X.T @ r / 3), rel=1e-12)
    np.testing.assert_allclose(doc["eigenvalues"], np.linalg.eigvalsh(2 * X.T @ X / 3),
                               rtol=1e-12)
    (note,) = half_notes(doc)
    assert note.startswith("parameters stored in bfloat16 (1 leaf, 2 values)")
    (data,) = [n for n in doc["notes"] if n.startswith("data stored in")]
    assert data.startswith("data stored in bfloat16 (2 arrays, 9 values): used as stored")


def test_convexity_ball_around_a_bfloat16_point_says_so(pytree_file, tmp_path):
    import hesscli

    u, v = stored(BF16)
    np.savez(tmp_path / "p.npz", u=u, v=v)
    res = hesscli.convexity(str(pytree_file), around=str(tmp_path / "p.npz"), radius=0.1,
                            samples=10, hessian_points=2)
    np.testing.assert_array_equal(res.objective.x, upcast(u, v))  # the ball's center
    assert len(half_notes(res.to_json())) == 1


def test_full_precision_point_has_no_note(hess, pytree_file, tmp_path):
    np.savez(tmp_path / "p.npz", u=U.astype(np.float32), v=V)
    res = hess("analyze", pytree_file, "--at", tmp_path / "p.npz", "--format", "json")
    assert res.exit_code == 0, res.output
    assert half_notes(res.json()) == []


# ---------------------------------------------------------------- nothing silently cast


def test_float16_point_is_never_computed_in_float16(hess, flat_file, tmp_path):
    """--dtype float32 from a float16 point reaches float32 accuracy, which the same
    Hessian formed in float16 arithmetic misses by orders of magnitude."""
    x16 = np.concatenate(stored(F16))
    np.save(tmp_path / "p.npy", x16)
    res = hess("analyze", flat_file, "--at", tmp_path / "p.npy", "--dtype", "float32",
               "--format", "json")
    assert res.exit_code == 0, res.output
    got = np.asarray(res.json()["eigenvalues"])
    _, _, want = truth(x16.astype(np.float64))
    scale = float(np.max(np.abs(want)))
    error = float(np.max(np.abs(got - want)))
    # the Hessian in float16 arithmetic, as a silent cast would have computed it
    a16, two = A.astype(F16), F16.type(2)
    h16 = a16 + np.diag(two * x16 - np.sin(x16))
    assert h16.dtype == F16
    error16 = float(np.max(np.abs(np.linalg.eigvalsh(h16.astype(np.float64)) - want)))
    assert error <= 1e-6 * scale  # measured: 5.9e-8 relative
    assert error16 > 10 * 1e-6 * scale  # measured: 1.1e-4; float16 could not pass the line above


# ---------------------------------------------------------------- points written back


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_train_save_point_round_trip_keeps_the_run_dtype(hess, pytree_file, tmp_path,
                                                          suffix, dtype):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    u, v = stored(BF16)
    np.savez(tmp_path / "start.npz", u=u, v=v)
    out = tmp_path / f"end{suffix}"
    res = hess("train", pytree_file, "--at", tmp_path / "start.npz", "--steps", "3",
               "--lr", "0.01", "--no-curvature", "--dtype", dtype, "--save-point", out,
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    (note,) = half_notes(doc)
    assert f"keep the {dtype} values, not rounded to bfloat16" in note
    final = np.asarray(doc["final_point"])
    if suffix == ".npz":
        with np.load(out) as archive:
            saved = {k: archive[k] for k in archive.files}
    else:
        from safetensors.numpy import load_file

        saved = load_file(str(out))
    back = np.concatenate([saved["u"], saved["v"]])
    assert back.dtype.itemsize >= np.dtype(dtype).itemsize  # never half precision
    np.testing.assert_array_equal(back.astype(np.float64), final)
    assert not np.array_equal(final.astype(BF16).astype(np.float64), final)  # not rounded
    if dtype == "float32":
        np.testing.assert_array_equal(final.astype(np.float32).astype(np.float64), final)
    # read back through --at: the same point, the same value, nothing left to say
    again = hess("analyze", pytree_file, "--at", out, "--dtype", dtype, "--format", "json")
    assert again.exit_code == 0, again.output
    assert half_notes(again.json()) == []
    value, _, _ = truth(final)
    rtol = 1e-12 if dtype == "float64" else 2e-6
    assert again.json()["value"] == pytest.approx(value, rel=rtol)
    assert again.json()["value"] == pytest.approx(doc["final_value"], rel=rtol)


def test_equinox_bfloat16_module_save_point_round_trip(hess, write, tmp_path):
    pytest.importorskip("equinox")
    path = write("eqx_model.py", """
import equinox as eqx
import jax
import jax.numpy as jnp

class Lin(eqx.Module):
    w: jax.Array
    b: jax.Array
    def __call__(self, x):
        return jnp.tanh(x @ self.w + self.b)

X = jnp.asarray([[0.3, -1.2], [0.7, 0.25], [-0.4, 0.9]])
x0 = Lin(jnp.asarray([0.31, -0.57], jnp.bfloat16), jnp.asarray(0.11, jnp.bfloat16))

def objective(m):
    return jnp.mean((m(X) - 0.5) ** 2)
""")
    out = tmp_path / "trained.eqx"
    res = hess("train", path, "--steps", "3", "--lr", "0.1", "--no-curvature",
               "--save-point", out, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    (note,) = half_notes(doc)
    assert note.startswith("parameters stored in bfloat16 (2 leaves, 3 values)")
    again = hess("analyze", path, "--at", out, "--format", "json")
    assert again.exit_code == 0, again.output
    assert half_notes(again.json()) == []
    w, b = np.asarray(doc["final_point"][:2]), doc["final_point"][2]
    X = np.asarray([[0.3, -1.2], [0.7, 0.25], [-0.4, 0.9]])
    assert again.json()["value"] == pytest.approx(np.mean((np.tanh(X @ w + b) - 0.5) ** 2),
                                                  rel=1e-12)


# ---------------------------------------------------------------- bad input


def test_raw_records_of_other_widths_are_refused(hess, flat_file, tmp_path):
    np.save(tmp_path / "p.npy", np.zeros(4, dtype="V4"))
    res = hess("analyze", flat_file, "--at", tmp_path / "p.npy")
    assert res.exit_code == 2
    assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr
    assert "expected numbers, got dtype |V4" in res.stderr


def test_non_finite_bfloat16_entry_is_refused(hess, flat_file, tmp_path):
    x = np.asarray([0.5, np.inf, 0.25, 1.0]).astype(BF16)
    np.save(tmp_path / "p.npy", x)
    res = hess("analyze", flat_file, "--at", tmp_path / "p.npy")
    assert res.exit_code == 2
    assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr
    assert "1 non-finite entries (first at index (1,): inf)" in res.stderr


def test_note_counts_large_trees():
    from hesscli.objective.precision import half_precision_note

    leaves = [np.zeros((1000, 1200), BF16), np.zeros(3, np.float32)]
    note = half_precision_note(leaves, "float32")
    assert note is not None
    assert note.startswith("parameters stored in bfloat16 (1 of 2 leaves, 1.2M values): "
                           "computed in float32")
    assert half_precision_note([np.zeros(3), np.zeros(2, np.float32)], "float64") is None
