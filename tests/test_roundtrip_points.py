"""Every point hesscli writes reads back through ``--at`` (issue 21: "Data lost").

For every format × pytree shape, a point written by ``write_point`` (what
``--save-point`` and ``--save-escape`` call) is read back by binding it to the
same objective, and must give the very same flat vector (bit for bit: every
format stores float64). Formats holding one array refuse a pytree of several
leaves, and say so before any work (``check_point_target``).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import hesscli  # noqa: E402
from hesscli.errors import InputError  # noqa: E402
from hesscli.objective.points import FLAT_SUFFIXES, check_point_target, write_point  # noqa: E402

SHAPES = {
    "flat": np.arange(5.0),
    "scalar": np.ones(()),
    "dict_0d_leaf": {"a": np.ones(()), "b": np.arange(6.0).reshape(2, 3)},
    "nested": {"l1": {"w": np.ones((2, 2)), "b": np.zeros(2)}, "l2": {"w": np.arange(3.0)}},
    "none_leaf": {"a": np.arange(2.0), "b": None},
    "tuple": (np.arange(2.0), np.ones((1, 2))),
    "list_of_dict": [np.arange(2.0), {"c": np.ones(3)}],
}
PACKAGES = {".msgpack": "flax", ".safetensors": "safetensors", ".eqx": "equinox",
            "": "orbax.checkpoint"}
FORMATS = [".npy", ".txt", ".csv", ".npz", ".json", ".msgpack", ".safetensors", ".eqx", ""]


def fn(p):
    return sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(p))


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="module", params=list(SHAPES))
def shape(request):
    return request.param, hesscli.load(fn, SHAPES[request.param])


@pytest.mark.parametrize("suffix", FORMATS, ids=lambda s: s or "orbax")
def test_every_writer_round_trips(shape, suffix, tmp_path):
    name, obj = shape
    if suffix in PACKAGES and not _installed(PACKAGES[suffix]):
        pytest.skip(f"{PACKAGES[suffix]} is not installed")
    x = np.arange(obj.n, dtype=np.float64) + 0.5  # distinct entries: a permutation shows
    path = tmp_path / f"point{suffix}" if suffix else tmp_path / "point"
    tree, params = obj.unravel(x), obj.params_of(x)
    one_array = len(obj.layout.leaves) == 1 and obj.layout.leaves[0].path == "x"
    if suffix in FLAT_SUFFIXES and not one_array:
        with pytest.raises(InputError, match="pytree"):
            check_point_target(path, tree, params, "--save-point")
        with pytest.raises(InputError, match="pytree"):
            write_point(path, tree, params)
        assert not path.exists()
        return
    check_point_target(path, tree, params, "--save-point")  # accepted before the work
    write_point(path, tree, params)
    back = hesscli.load(obj, str(path))
    np.testing.assert_array_equal(back.x, x)
    assert [(leaf.path, leaf.shape) for leaf in back.layout.leaves] == [
        (leaf.path, leaf.shape) for leaf in obj.layout.leaves]
