"""``--at ckpt/``: a CheckpointManager folder whose newest step holds several items."""

import numpy as np
import pytest

ocp = pytest.importorskip("orbax.checkpoint")

SOURCE = """
import jax.numpy as jnp

x0 = {"w": jnp.zeros(2), "b": jnp.zeros(1)}

def objective(p):
    return jnp.sum((p["w"] - 1.0) ** 2) + jnp.sum(p["b"] ** 2)
"""


def save(folder, tree):
    ocp.PyTreeCheckpointer().save(str(folder.resolve()), tree)


def test_the_params_item_is_read_beside_opt_state(hess, tmp_path):
    path = tmp_path / "f.py"
    path.write_text(SOURCE)
    ckpt = tmp_path / "ckpt"
    save(ckpt / "2" / "params", {"w": np.array([9.0, 9.0]), "b": np.array([9.0])})  # older
    save(ckpt / "3" / "params", {"w": np.array([2.0, 3.0]), "b": np.array([0.5])})
    save(ckpt / "3" / "opt_state", {"mu": {"w": np.ones(2), "b": np.ones(1)},
                                    "count": np.array(4)})
    res = hess("analyze", str(path), "--at", str(ckpt), "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    # f = (2−1)² + (3−1)² + 0.5² at the newest step's params; ∇f = (2, 4, 1) in (b, w) order
    assert doc["value"] == pytest.approx(5.25, rel=1e-12)
    assert doc["gradient_norm"] == pytest.approx(np.sqrt(1 + 4 + 16), rel=1e-12)


def test_several_items_none_named_params_is_an_input_error(hess, tmp_path):
    path = tmp_path / "f.py"
    path.write_text(SOURCE)
    ckpt = tmp_path / "ckpt"
    for item in ("model", "ema"):
        save(ckpt / "1" / item, {"w": np.ones(2), "b": np.ones(1)})
    res = hess("analyze", str(path), "--at", str(ckpt))
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and "none named 'params'" in res.stderr
    assert "ema" in res.stderr and "model" in res.stderr


def test_a_real_checkpoint_manager_step(hess, tmp_path):
    """What ``CheckpointManager(item_names=("params", "opt_state"))`` writes: the step
    folder holds its own _CHECKPOINT_METADATA beside the item folders; ``--at ckpt`` and
    ``--at ckpt/STEP`` both read the params item."""
    path = tmp_path / "f.py"
    path.write_text(SOURCE)
    ckpt = tmp_path / "ckpt"
    mgr = ocp.CheckpointManager(str(ckpt.resolve()), item_names=("params", "opt_state"))
    params = {"w": np.array([2.0, 3.0]), "b": np.array([0.5])}
    mgr.save(5, args=ocp.args.Composite(
        params=ocp.args.StandardSave(params),
        opt_state=ocp.args.StandardSave({"count": np.array(5), "mu": params})))
    mgr.wait_until_finished()
    mgr.close()
    for at in (ckpt, ckpt / "5"):
        res = hess("analyze", str(path), "--at", str(at), "--format", "json")
        assert res.exit_code == 0, res.output
        assert res.json()["value"] == pytest.approx(5.25, rel=1e-12)
