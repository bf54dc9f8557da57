"""Flax and Equinox models as points, and the checkpoints their users save.

Each model is built in memory (from the example files), moved away from its
default point, saved in every supported format and read back through ``--at``;
the value and the gradient hesscli computes must equal the in-memory model's
(``jax.grad`` of the same function on the same float64 parameters: the same
arithmetic, so agreement to rounding).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hesscli.api import load
from hesscli.curvature.exact import ExactCurvature
from hesscli.errors import InputError
from hesscli.jaxconf import jax_module
from hesscli.objective.points import write_point

jax = jax_module()
jnp = jax.numpy
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FLAX = str(EXAMPLES / "flax_mlp.py")
EQX = str(EXAMPLES / "equinox_mlp.py")


def ravel(tree):
    from jax.flatten_util import ravel_pytree

    return np.asarray(ravel_pytree(tree)[0], dtype=np.float64)


def moved(tree, seed):
    """``tree`` with every float leaf shifted (so the default point would be wrong)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_unflatten(treedef, [
        jnp.asarray(np.asarray(leaf, np.float64) + 0.1 * rng.standard_normal(np.shape(leaf)))
        for leaf in leaves
    ])


def value_and_grad(at):
    obj = load(at[0], at[1], (), seed=0, dtype="float64", method="auto")
    value, grad = ExactCurvature(obj).value_and_gradient(obj.x)
    return obj, float(value), np.asarray(grad)


# ---------------------------------------------------------------- Flax


@pytest.fixture(scope="module")
def flax_model():
    pytest.importorskip("flax")
    from hesscli.objective.files import load_file

    module = load_file(FLAX).module
    variables = module.init(jax.random.PRNGKey(0))
    variables = {"params": moved(variables["params"], 1),
                 "batch_stats": moved(variables["batch_stats"], 2)}
    f = module.objective

    def grad_params(v):
        return jax.grad(lambda p: f({**v, "params": p}))(v["params"])

    return module, variables, f, grad_params


def flat_keys(tree, sep):
    from hesscli.objective.layout import path_to_str

    return {path_to_str(p).replace(".", sep): np.asarray(leaf)
            for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def save_flax(fmt, variables, folder):
    """Save ``variables`` as a Flax user would; returns the --at text."""
    if fmt == "msgpack":
        from flax import serialization

        path = folder / "ckpt.msgpack"
        path.write_bytes(serialization.to_bytes(variables))
        return str(path)
    if fmt == "msgpack-params":
        from flax import serialization

        path = folder / "params.msgpack"
        path.write_bytes(serialization.to_bytes(variables["params"]))
        return str(path)
    if fmt == "variables::params":
        from flax import serialization

        path = folder / "all.msgpack"
        path.write_bytes(serialization.to_bytes(variables))
        return f"{path}::params"
    if fmt == "safetensors":
        from safetensors.numpy import save_file

        pytest.importorskip("safetensors")
        path = folder / "ckpt.safetensors"
        save_file(flat_keys(variables, "."), str(path))
        return str(path)
    if fmt == "npz-slash":
        path = folder / "ckpt.npz"
        np.savez(path, **flat_keys(variables, "/"))
        return str(path)
    if fmt == "orbax":
        ocp = pytest.importorskip("orbax.checkpoint")
        path = folder / "orbax"
        ckpt = ocp.StandardCheckpointer()
        ckpt.save(str(path.resolve()), variables)
        ckpt.wait_until_finished()
        return str(path)
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", ["msgpack", "variables::params", "msgpack-params",
                                 "safetensors", "npz-slash", "orbax"])
def test_flax_checkpoint_loads_with_its_values_and_gradient(flax_model, fmt, tmp_path):
    if fmt == "safetensors":
        pytest.importorskip("safetensors")
    module, variables, f, grad_params = flax_model
    at = save_flax(fmt, variables, tmp_path)
    obj, value, grad = value_and_grad((FLAX, at))
    if fmt in ("msgpack-params", "variables::params"):
        # params only: the batch statistics are the objective file's own (its init)
        held = module.init(jax.random.PRNGKey(0))["batch_stats"]
    else:
        held = variables["batch_stats"]  # the checkpoint's, not the file's
    want = {"params": variables["params"], "batch_stats": held}
    assert obj.n == ravel(variables["params"]).size  # the stats are not parameters
    assert value == pytest.approx(float(f(want)), rel=1e-13, abs=1e-15)
    np.testing.assert_allclose(grad, ravel(grad_params(want)), rtol=1e-12, atol=1e-14)
    assert any("batch_stats" in note for note in obj.notes)
    from_file = any("held collections from the objective's default point" in note
                    for note in obj.notes)
    assert from_file is (fmt in ("msgpack-params", "variables::params"))


def test_flax_variables_analyze_holds_batch_stats_fixed(flax_model, hess, tmp_path):
    _, variables, f, grad_params = flax_model
    at = save_flax("msgpack", variables, tmp_path)
    res = hess("analyze", FLAX, "--at", at, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    assert doc["n"] == ravel(variables["params"]).size == 25
    assert doc["value"] == pytest.approx(float(f(variables)), rel=1e-13)
    assert doc["gradient_norm"] == pytest.approx(
        float(np.linalg.norm(ravel(grad_params(variables)))), rel=1e-12)
    assert any("held fixed: batch_stats" in n for n in doc["notes"])
    # the Hessian is that of the params alone: compare with jax.hessian on them
    h = jax.hessian(lambda p: f({**variables, "params": p}))(variables["params"])
    from jax.flatten_util import ravel_pytree

    flat, unravel = ravel_pytree(variables["params"])
    dense = jax.hessian(lambda x: f({**variables, "params": unravel(x)}))(flat)
    assert h is not None
    lam = np.linalg.eigvalsh(np.asarray(dense))
    np.testing.assert_allclose(doc["eigenvalues"], lam, atol=1e-10 * max(1, abs(lam).max()))


def test_plain_params_template_names_the_selector(flax_model, tmp_path, write):
    """A variables file for an objective that takes params: the error suggests ::params."""
    _, variables, _, _ = flax_model
    at = save_flax("msgpack", variables, tmp_path)
    path = write("takes_params.py", (
        f"import jax.numpy as jnp\nimport sys\nsys.path.insert(0, {str(EXAMPLES)!r})\n"
        "import flax_mlp as m\n\n"
        "x0 = m.init(m.jax.random.PRNGKey(0))['params']\n\n"
        "def objective(params):\n"
        "    return m.objective({'params': params, 'batch_stats': "
        "m.init(m.jax.random.PRNGKey(0))['batch_stats']})\n"))
    with pytest.raises(InputError, match=r"::params"):
        load(str(path), at, (), seed=0, dtype="float64", method="auto")
    obj = load(str(path), f"{at}::params", (), seed=0, dtype="float64", method="auto")
    np.testing.assert_array_equal(obj.x, ravel(variables["params"]))


def test_selector_names_what_is_there(flax_model, tmp_path):
    _, variables, _, _ = flax_model
    at = save_flax("msgpack", variables, tmp_path)
    with pytest.raises(InputError, match=r"no 'parms' at the top level; it has .*params"):
        load(FLAX, f"{at}::parms", (), seed=0, dtype="float64", method="auto")


@pytest.mark.parametrize("suffix", [".msgpack", ".npz", ".json", ".safetensors", ""])
def test_flax_point_written_in_a_format_reads_back(flax_model, tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    if suffix == "":
        pytest.importorskip("orbax.checkpoint")
    _, variables, f, _ = flax_model
    path = tmp_path / f"point{suffix}"
    write_point(path, variables, variables["params"])
    obj, value, _ = value_and_grad((FLAX, str(path)))
    np.testing.assert_array_equal(obj.x, ravel(variables["params"]))
    assert value == pytest.approx(float(f(variables)), rel=1e-13)


def assert_lowest_eigenvector(saved, f, params):
    """``saved`` is ± the unit eigenvector of λmin of ``jax.hessian`` of ``f`` at ``params``
    (formed densely here, not by hesscli), to the accuracy the eigen-gap allows."""
    from jax.flatten_util import ravel_pytree

    flat, unravel = ravel_pytree(params)
    h = np.asarray(jax.hessian(lambda z: f(unravel(z)))(flat), dtype=np.float64)
    w, v = np.linalg.eigh((h + h.T) / 2)
    assert w[0] < 0 and w[1] - w[0] > 1e-6 * np.abs(w).max()  # an isolated λmin: v is unique
    assert np.linalg.norm(saved) == pytest.approx(1.0, rel=1e-12)
    assert abs(saved @ v[:, 0]) == pytest.approx(1.0, abs=1e-8)


def test_save_escape_in_flax_msgpack(flax_model, hess, tmp_path):
    from flax import serialization

    _, variables, f, _ = flax_model
    at = save_flax("msgpack", variables, tmp_path)
    out = tmp_path / "escape.msgpack"
    res = hess("analyze", FLAX, "--at", at, "--save-escape", out, "--format", "json")
    assert res.exit_code == 0, res.output
    back = serialization.msgpack_restore(out.read_bytes())
    np.testing.assert_allclose(ravel(back["params"]), res.json()["escape"]["direction"],
                               rtol=0, atol=0)
    assert_lowest_eigenvector(ravel(back["params"]), lambda p: f({**variables, "params": p}),
                              variables["params"])


# ---------------------------------------------------------------- Equinox


@pytest.fixture(scope="module")
def eqx_model():
    eqx = pytest.importorskip("equinox")
    from hesscli.objective.files import load_file

    module = load_file(EQX).module
    model = module.init(jax.random.PRNGKey(0))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    model = eqx.combine(moved(params, 3), static)
    return eqx, module, model


@pytest.mark.parametrize("fmt", ["eqx", "npz", "safetensors", "orbax", "npy"])
def test_equinox_checkpoint_loads_with_its_values_and_gradient(eqx_model, fmt, tmp_path):
    eqx, module, model = eqx_model
    params = eqx.filter(model, eqx.is_inexact_array)
    flat = flat_keys(params, ".")
    if fmt == "eqx":
        path = tmp_path / "model.eqx"
        eqx.tree_serialise_leaves(str(path), model)
    elif fmt == "npz":
        path = tmp_path / "model.npz"
        np.savez(path, **flat)
    elif fmt == "npy":  # flat, in ravel_pytree order (documented in points.py)
        path = tmp_path / "model.npy"
        np.save(path, ravel(params))
    elif fmt == "safetensors":
        pytest.importorskip("safetensors")
        from safetensors.numpy import save_file

        path = tmp_path / "model.safetensors"
        save_file(flat, str(path))
    else:
        ocp = pytest.importorskip("orbax.checkpoint")
        path = tmp_path / "orbax"
        ckpt = ocp.StandardCheckpointer()
        ckpt.save(str(path.resolve()), params)
        ckpt.wait_until_finished()
    obj, value, grad = value_and_grad((EQX, str(path)))
    assert obj.n == ravel(params).size
    assert value == pytest.approx(float(module.objective(model)), rel=1e-13, abs=1e-15)
    want = eqx.filter_grad(module.objective)(model)
    np.testing.assert_allclose(grad, ravel(eqx.filter(want, eqx.is_inexact_array)),
                               rtol=1e-12, atol=1e-14)
    assert any("Equinox module" in note and "activation" in note for note in obj.notes)


def test_equinox_save_point_round_trip(eqx_model, hess, tmp_path):
    eqx, module, _ = eqx_model
    out = tmp_path / "trained.eqx"
    res = hess("train", EQX, "--optimizer", "adam", "--lr", "0.01", "--steps", "5",
               "--monitor-every", "5", "--no-curvature", "--save-point", out, "--format",
               "json")
    assert res.exit_code == 0, res.output
    like = module.init(jax.random.PRNGKey(0))
    back = eqx.tree_deserialise_leaves(str(out), like)
    np.testing.assert_array_equal(ravel(eqx.filter(back, eqx.is_inexact_array)),
                                  res.json()["final_point"])


def test_equinox_escape_as_npz_keeps_leaf_paths(eqx_model, hess, tmp_path):
    out = tmp_path / "escape.npz"
    res = hess("analyze", EQX, "--save-escape", out, "--format", "json")
    assert res.exit_code == 0, res.output
    if res.json().get("escape") is None:
        pytest.skip("no negative curvature at this point")
    with np.load(out) as archive:
        assert set(archive.files) == {"layers.0.weight", "layers.0.bias", "layers.1.weight",
                                      "layers.1.bias"}
        saved = {name: archive[name] for name in archive.files}
    eqx, module, _ = eqx_model
    model = module.init(jax.random.PRNGKey(0))  # the default point: init(key) with --seed 0
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat = flat_keys(params, ".")  # the same leaf names, in the model's own order
    assert all(saved[name].shape == np.shape(leaf) for name, leaf in flat.items())
    direction = np.concatenate([np.ravel(saved[name]) for name in flat])
    assert_lowest_eigenvector(direction, lambda p: module.objective(eqx.combine(p, static)),
                              params)


# ---------------------------------------------------------------- missing packages


def test_missing_package_names_the_pip_command(monkeypatch, tmp_path):
    import sys

    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\0" * 16)
    monkeypatch.setitem(sys.modules, "safetensors", None)  # import fails
    with pytest.raises(InputError) as err:
        load("saddle", str(path), (), seed=0, dtype="float64", method="auto")
    text = str(err.value)
    assert sys.executable in text and "pip install 'hesscli[safetensors]'" in text


def test_save_in_a_format_without_its_package_fails_before_work(hess, monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("flax") else real(name, *a))
    res = hess("train", "saddle", "--at", "0.1,0.1", "--steps", "3", "--save-point",
               tmp_path / "p.msgpack")
    assert res.exit_code == 2, res.output
    assert "hesscli[flax]" in res.stderr and "Traceback" not in res.stderr


def test_npz_pickle_is_still_refused(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="pickled"):
        load("saddle", str(path), (), seed=0, dtype="float64", method="auto")


def test_json_written_for_equinox_params_reads_back(eqx_model, tmp_path):
    eqx, _, model = eqx_model
    params = eqx.filter(model, eqx.is_inexact_array)
    path = tmp_path / "p.json"
    write_point(path, model, params)
    assert set(json.loads(path.read_text())) == {"layers"}
    obj = load(EQX, str(path), (), seed=0, dtype="float64", method="auto")
    np.testing.assert_array_equal(obj.x, ravel(params))


def test_missing_import_in_an_objective_names_the_interpreter(hess, write):
    import sys

    path = write("needs.py", "import sklearn_missing_xyz\n\ndef objective(x):\n"
                             "    return (x ** 2).sum()\n")
    res = hess("analyze", path, "--at", "1,2")
    assert res.exit_code == 3, res.output
    assert "No module named 'sklearn_missing_xyz'" in res.stderr
    assert f"{sys.executable} -m pip install sklearn_missing_xyz" in res.stderr


def test_plot_without_matplotlib_fails_before_loading(hess, monkeypatch, write, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    marker = tmp_path / "imported"
    path = write("slow.py", f"open({str(marker)!r}, 'w').close()\n\n"
                            "def objective(x):\n    return (x ** 2).sum()\n")
    for command in ("spectrum", "landscape"):
        res = hess(command, path, "--at", "1,2", "--plot", tmp_path / "p.png")
        assert res.exit_code == 2, res.output
        assert "hesscli[plot]" in res.stderr
    res = hess("train", path, "--at", "1,2", "--steps", "2", "--plot", tmp_path / "p.png")
    assert res.exit_code == 2 and "hesscli[plot]" in res.stderr
    assert not marker.exists()  # the objective was never imported


NNX = """
import jax, jax.numpy as jnp
from flax import nnx

class MLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(2, 3, rngs=rngs, param_dtype=jnp.float64)
        self.bn = nnx.BatchNorm(3, rngs=rngs, use_running_average=True,
                                param_dtype=jnp.float64)
        self.l2 = nnx.Linear(3, 1, rngs=rngs, param_dtype=jnp.float64)

    def __call__(self, x):
        return self.l2(jnp.tanh(self.bn(self.l1(x))))[..., 0]

inputs = jax.random.normal(jax.random.PRNGKey(1), (8, 2))

def init(key):
    return MLP(nnx.Rngs(0))

def objective(model):
    return jnp.mean((model(inputs) - inputs[:, 0]) ** 2)
"""


def test_nnx_module_point_and_npz_round_trip(write, tmp_path):
    pytest.importorskip("flax.nnx")
    from flax import nnx

    path = str(write("nnx_mlp.py", NNX))
    obj, value, grad = value_and_grad((path, None))
    module = obj.file.module
    model = module.init(None)
    graph, params, rest = nnx.split(model, nnx.Param, ...)

    def f(p):
        return module.objective(nnx.merge(graph, p, rest))

    assert obj.n == 2 * 3 + 3 + 3 + 3 + 3 * 1 + 1  # Linear, BatchNorm scale/bias, Linear
    assert value == pytest.approx(float(f(params)), rel=1e-13)
    np.testing.assert_allclose(grad, ravel(jax.grad(f)(params)), rtol=1e-12, atol=1e-14)
    assert any("Flax NNX module" in n and "bn.mean" in n for n in obj.notes)
    out = tmp_path / "p.npz"
    write_point(out, obj.unravel(obj.x + 1.0), obj.params_of(obj.x + 1.0))
    back = load(path, str(out), (), seed=0, dtype="float64", method="auto")
    np.testing.assert_array_equal(back.x, obj.x + 1.0)


def test_api_takes_an_equinox_module_as_the_point(eqx_model):
    """hesscli.analyze(fn, model): the module is split like an objective file's x0."""
    from jax.flatten_util import ravel_pytree

    import hesscli

    eqx, module, model = eqx_model
    res = hesscli.analyze(module.objective, model)
    params = eqx.filter(model, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)
    static = eqx.filter(model, eqx.is_inexact_array, inverse=True)
    dense = jax.hessian(lambda x: module.objective(eqx.combine(unravel(x), static)))(flat)
    lam = np.linalg.eigvalsh(np.asarray(dense))
    assert res.n == flat.size
    np.testing.assert_allclose(res.to_json()["eigenvalues"], lam,
                               atol=1e-10 * max(1.0, float(abs(lam).max())))


@pytest.mark.parametrize("name", ["bad.msgpack", "bad.safetensors", "bad.eqx", "folder"])
def test_unreadable_checkpoints_are_input_errors(hess, tmp_path, name):
    """One error line and exit 2 for a corrupt file or a folder that is no checkpoint."""
    pytest.importorskip("flax")
    pytest.importorskip("equinox")
    if name.endswith(".safetensors"):
        pytest.importorskip("safetensors")
    if name == "folder":
        pytest.importorskip("orbax.checkpoint")
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
        (path / "notes.txt").write_text("not a checkpoint")
    else:
        path.write_bytes(b"\x93 this is not the format \x00\x01")
    target = EQX if name.endswith(".eqx") else FLAX
    res = hess("analyze", target, "--at", path)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
