"""Whether an objective file streams is asked of the imported module, which is imported once.

A file that takes ``batches`` from another module (``from mydata import batches``)
defines it as surely as one with ``def batches():``; reading the source for
``def batches(`` missed it. The file is imported once: its module decides
whether the data stream and is then the one bound.
"""

from __future__ import annotations

import textwrap

import jsonschema

from hesscli.schemas import load_schema
from tests.conftest import run_cli

MYDATA = textwrap.dedent('''
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    y = rng.standard_normal(50)
    CUTS = (0, 16, 40, 50)  # three batches: 16, 24 and 10 samples


    def batches():
        for a, b in zip(CUTS[:-1], CUTS[1:]):
            yield X[a:b], y[a:b]
''')

OBJECTIVE = textwrap.dedent('''
    from pathlib import Path

    import jax.numpy as jnp
    import numpy as np

    from {module} import batches

    # every import of this file leaves a line (the test counts them)
    with open(Path(__file__).with_suffix(".imports"), "a") as log:
        log.write("imported\\n")


    def model(params, inputs):
        return jnp.tanh(inputs @ params["w"]) @ params["v"]


    def output_loss(outputs, targets):
        return 0.5 * jnp.mean((outputs - targets) ** 2)


    _rng = np.random.default_rng(1)
    x0 = {{"w": jnp.asarray(_rng.standard_normal((3, 4))),
           "v": jnp.asarray(_rng.standard_normal(4))}}
''')


def _files(tmp_path, module: str):
    (tmp_path / f"{module}.py").write_text(MYDATA)
    path = tmp_path / "objective.py"
    path.write_text(OBJECTIVE.format(module=module))
    return path, path.with_suffix(".imports")


def test_batches_imported_from_another_module_streams(tmp_path) -> None:
    path, imports = _files(tmp_path, "mydata")
    res = run_cli("spectrum", path, "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("spectrum"))
    stream = doc["stream"]
    assert stream["source"] == "batches()"
    assert stream["batches"] == 3  # mydata's CUTS: 16, 24 and 10 samples
    assert stream["batch_sizes"] == [16, 24, 10]
    assert stream["samples"] == 50
    assert imports.read_text().splitlines() == ["imported"]  # imported once


def test_the_api_streams_it_too_and_imports_it_once(tmp_path) -> None:
    import hesscli

    path, imports = _files(tmp_path, "mydata_api")
    res = hesscli.analyze(str(path))
    assert res.parts["stream"].stream.count == 3
    assert res.parts["stream"].stream.sizes == (16, 24, 10)
    assert "stream" in res.to_json()
    assert imports.read_text().splitlines() == ["imported"]


def test_a_file_without_batches_is_loaded_once_and_not_streamed(tmp_path) -> None:
    import hesscli

    (tmp_path / "plain.py").write_text(textwrap.dedent('''
        from pathlib import Path

        import jax.numpy as jnp

        with open(Path(__file__).with_suffix(".imports"), "a") as log:
            log.write("imported\\n")

        x0 = jnp.array([1.0, -2.0])


        def objective(x):
            return jnp.sum(x ** 2)
    '''))
    res = hesscli.spectrum(str(tmp_path / "plain.py"))
    assert "stream" not in res.parts
    assert "stream" not in res.to_json()
    assert sorted(res.output.spectrum.eigenvalues.tolist()) == [2.0, 2.0]  # ∇²(x·x) = 2I
    assert (tmp_path / "plain.imports").read_text().splitlines() == ["imported"]
