"""api._bind: the one place analyze and spectrum load, bind and get their backend.

The options travel as one ``DataOptions`` taken from the call's arguments; a
streamed data set refuses what cannot be combined with it before any batch is
read, whichever command asks.
"""

from __future__ import annotations

import textwrap

import pytest

from hesscli.api import DataOptions
from hesscli.errors import InputError

GENERATOR = textwrap.dedent('''
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = rng.standard_normal(20)


    def model(params, inputs):
        return inputs @ params


    def output_loss(outputs, targets):
        return 0.5 * jnp.mean((outputs - targets) ** 2)


    def batches():
        raise AssertionError("no batch may be read before the options are checked")
        yield


    x0 = jnp.zeros(3)
''')


def test_the_options_are_taken_from_the_call_by_name() -> None:
    call = {"objective": "mlp", "params": ["width=3"], "seed": 4, "dtype": "float32",
            "method": "exact", "devices": 1, "chunk_size": 8, "batch_size": None,
            "batches": 2, "curvature": None, "lr": 0.1, "k": 3}
    opts = DataOptions.of(call)
    assert opts == DataOptions(params=["width=3"], seed=4, dtype="float32", method="exact",
                               fd_accuracy="normal", devices=1, chunk_size=8, batch_size=None,
                               batches=2, curvature=None)
    with pytest.raises(AttributeError):
        opts.seed = 5  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(("command", "options", "message"), [
    ("spectrum", {"curvature_kind": "hessian,ggn"}, "run one curvature at a time"),
    ("spectrum", {"chunk_size": 4}, "drop --chunk-size"),
    ("analyze", {"chunk_size": 4}, "drop --chunk-size"),
])
def test_streamed_refusals_come_before_any_batch(tmp_path, command, options, message) -> None:
    import hesscli

    path = tmp_path / "gen.py"
    path.write_text(GENERATOR)
    with pytest.raises(InputError, match=message):
        getattr(hesscli, command)(str(path), **options)
