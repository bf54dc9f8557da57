"""Curvature over a data set streamed in batches (``--batch-size``, ``--batches``, ``batches()``).

References are built independently on the concatenated data: the full-data objective's
value, gradient, HVP (``jvp(grad)``), dense Hessian (``jax.hessian``), GGN (``jax.jacobian``
of the model and ``jax.hessian`` of the output loss), empirical Fisher (per-sample
gradients by ``jax.jacobian``). Streaming is a reordering of the same sums, so in float64
they agree to rounding (1e-12 relative).
"""

from __future__ import annotations

import json
import textwrap

import jsonschema
import numpy as np
import pytest

from hesscli.jaxconf import jax_module
from hesscli.schemas import load_schema

jax = jax_module()
jnp = jax.numpy

MODEL = '''
import jax.numpy as jnp
import numpy as np

rng = np.random.default_rng(0)
X = rng.standard_normal((50, 3))
y = rng.standard_normal(50)


def model(params, inputs):
    return jnp.tanh(inputs @ params["w"]) @ params["v"]


def output_loss(outputs, targets):
    return 0.5 * jnp.mean((outputs - targets) ** 2)


x0 = {"w": jnp.asarray(rng.standard_normal((3, 4))), "v": jnp.asarray(rng.standard_normal(4))}
'''
ARRAYS = MODEL + "\ndata = (X, y)\n"  # --batch-size 16: batches of 16, 16, 16 and 2
CUTS = (0, 16, 40, 50)  # batches() yields 16, 24 and 10 samples
GENERATOR = MODEL + textwrap.dedent('''
    CUTS = (0, 16, 40, 50)


    def batches():
        for a, b in zip(CUTS[:-1], CUTS[1:]):
            yield X[a:b], y[a:b]
''')


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("streaming")
    out = {}
    for name, text in (("arrays", ARRAYS), ("generator", GENERATOR)):
        path = root / f"{name}.py"
        path.write_text(text)
        out[name] = str(path)
    return out


def _streamed(path, kind="hessian", batch_size=None, batches=None):
    from hesscli.curvature.streamed import streamed_curvature
    from hesscli.objective.files import load_file
    from hesscli.objective.streaming import bind_streamed

    obj, stream = bind_streamed(load_file(path), None, seed=0, dtype="float64", method="auto",
                                batch_size=batch_size, batches=batches)
    return obj, streamed_curvature(obj, stream, kind)[0]


@pytest.fixture(scope="module")
def backends(files):
    """(objective, backend) per (source, kind), compiled once for the module."""
    out = {}
    for kind in ("hessian", "ggn", "fisher", "empirical-fisher"):
        out["generator", kind] = _streamed(files["generator"], kind)
    out["arrays", "hessian"] = _streamed(files["arrays"], batch_size=16)
    out["arrays", "ggn"] = _streamed(files["arrays"], "ggn", batch_size=16)
    return out


@pytest.fixture(scope="module")
def reference(backends):
    """The full-data functions of the flat parameters, independent of hesscli's streaming."""
    obj = backends["generator", "hessian"][0]
    mod = obj.file.module
    X, y = jnp.asarray(mod.X), jnp.asarray(mod.y)

    def outputs(x):
        return mod.model(obj.unravel(x), X)

    def f(x):
        return mod.output_loss(outputs(x), y)

    x = jnp.asarray(obj.x)
    J = jax.jacobian(outputs)(x)  # (N, n)
    H_out = jax.hessian(lambda o: mod.output_loss(o, y))(outputs(x))
    per_sample = jax.jacobian(lambda x_: 0.5 * (outputs(x_) - y) ** 2)(x)  # rows gᵢ
    return {
        "x": np.asarray(x), "value": float(f(x)), "gradient": np.asarray(jax.grad(f)(x)),
        "hessian": np.asarray(jax.hessian(f)(x)),
        "ggn": np.asarray(J.T @ H_out @ J),
        "empirical-fisher": np.asarray(per_sample.T @ per_sample / X.shape[0]),
    }


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


@pytest.mark.parametrize("source,kind", [("generator", "hessian"), ("arrays", "hessian"),
                                         ("generator", "ggn"), ("arrays", "ggn"),
                                         ("generator", "fisher"),
                                         ("generator", "empirical-fisher")])
def test_data_set_product_equals_the_concatenated_data(backends, reference, source, kind):
    obj, backend = backends[source, kind]
    assert len(set(backend.stream.sizes)) > 1  # batches of unequal size
    # the Fisher of a squared error (Gaussian) is the GGN: Jᵀ(2c·I)J
    matrix = reference["ggn" if kind == "fisher" else kind]
    rng = np.random.default_rng(1)
    for v in rng.standard_normal((3, obj.n)):
        assert _rel(backend.hvp(obj.x, v), matrix @ v) <= 1e-12
    # the compiled operator the eigensolvers call (a callback to the host loop), batched
    vs = rng.standard_normal((4, obj.n))
    got = np.asarray(jax.jit(jax.vmap(backend.hvp_fn, in_axes=(None, 0)))(obj.x, vs))
    assert _rel(got, vs @ matrix.T) <= 1e-12


@pytest.mark.parametrize("source", ["generator", "arrays"])
def test_value_gradient_and_dense_equal_the_full_data_ones(backends, reference, source):
    obj, backend = backends[source, "hessian"]
    value, grad = backend.value_and_gradient(obj.x)
    assert abs(value - reference["value"]) <= 1e-12 * abs(reference["value"])
    assert _rel(grad, reference["gradient"]) <= 1e-12
    assert abs(backend.value(obj.x + 0.1) - backend.value(obj.x)) > 0  # not a stale cache
    assert _rel(backend.hessian(obj.x).matrix, reference["hessian"]) <= 1e-12
    _, ggn = backends[source, "ggn"]
    assert _rel(ggn.hessian(obj.x).matrix, reference["ggn"]) <= 1e-12


def test_spectrum_over_all_batches_equals_the_full_data_spectrum(files, reference, hess):
    want = np.linalg.eigvalsh(reference["hessian"])
    res = hess("spectrum", files["generator"], "--batches", "all", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("spectrum"))
    assert doc["eigenvalues_complete"]
    assert np.max(np.abs(np.asarray(doc["eigenvalues"]) - want)) <= 1e-12 * np.abs(want).max()
    assert doc["stream"]["batch_sizes"] == [16, 24, 10]
    assert doc["stream"]["source"] == "batches()"
    # matrix-free over the same operator: the extremes, each within its residual
    res = hess("spectrum", files["arrays"], "--batch-size", "16", "--matrix-free", "--k", "2",
               "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("spectrum"))
    assert doc["stream"]["batch_sizes"] == [16, 16, 16, 2]
    lam = np.asarray(doc["eigenvalues"])
    assert abs(lam[-1] - want[-1]) <= 1e-6 * abs(want).max()
    assert abs(lam[0] - want[0]) <= 1e-6 * abs(want).max()


def test_analyze_over_batches_is_the_full_data_analysis(files, reference, hess):
    res = hess("analyze", files["arrays"], "--batch-size", "16", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, load_schema("analyze"))
    assert abs(doc["value"] - reference["value"]) <= 1e-12 * abs(reference["value"])
    assert abs(doc["gradient_norm"] - np.linalg.norm(reference["gradient"])) <= 1e-12
    want = np.linalg.eigvalsh(reference["hessian"])
    assert np.max(np.abs(np.asarray(doc["eigenvalues"]) - want)) <= 1e-12 * np.abs(want).max()
    assert doc["stream"]["batches"] == 4 and doc["stream"]["samples"] == 50
    table = hess("analyze", files["generator"], "--batches", "2")
    assert table.exit_code == 0, table.output
    assert "Data set: 2 batches, 40 samples" in table.stdout
    assert "Batch to batch" in table.stdout


def test_step_memory_does_not_grow_with_the_number_of_batches(tmp_path):
    """XLA's memory analysis of the per-batch step: the same for 4 and 64 batches of 32,
    while the in-memory full-data HVP's working memory grows with the data."""
    from hesscli.curvature.exact import ExactCurvature
    from hesscli.objective.bind import bind
    from hesscli.objective.files import load_file

    source = textwrap.dedent('''
        import jax.numpy as jnp
        import numpy as np

        rng = np.random.default_rng(0)
        X = rng.standard_normal((BATCHES * 32, 8))
        y = rng.standard_normal(BATCHES * 32)
        data = (X, y)


        def loss(params, batch):
            inputs, targets = batch
            hidden = jnp.tanh(inputs @ params["w"])
            return jnp.mean((hidden @ params["v"] - targets) ** 2)


        objective = lambda params: loss(params, data)
        x0 = {"w": jnp.asarray(rng.standard_normal((8, 64))) / 3,
              "v": jnp.asarray(rng.standard_normal(64)) / 8}
    ''')
    temp, full = {}, {}
    for batches in (4, 64):
        path = tmp_path / f"mem{batches}.py"
        path.write_text(source.replace("BATCHES", str(batches)))
        obj, backend = _streamed(str(path), batch_size=32)
        assert backend.stream.count == batches
        temp[batches] = backend.step_memory().temp_size_in_bytes
        exact = ExactCurvature(bind(load_file(str(path)), None))
        mem = exact.hvp_fn.lower(exact.example, exact.example).compile().memory_analysis()
        full[batches] = mem.temp_size_in_bytes
    assert temp[4] == temp[64]
    assert full[64] > 8 * full[4]  # what the measurement would show if the step grew
    assert temp[64] < full[64] / 8


def test_batch_variability_against_independent_per_batch_spectra(backends, reference):
    obj, backend = backends["generator", "hessian"]
    mod = obj.file.module
    spread = backend.spread(obj.x, steps=obj.n, probes=40, seed=3)
    lam, tr, bound = [], [], []
    for a, b in zip(mod.CUTS[:-1], mod.CUTS[1:], strict=True):
        X, y = jnp.asarray(mod.X[a:b]), jnp.asarray(mod.y[a:b])
        def f(x, X=X, y=y):
            return mod.output_loss(mod.model(obj.unravel(x), X), y)

        H = np.asarray(jax.hessian(f)(jnp.asarray(obj.x)))
        lam.append(np.linalg.eigvalsh(H)[-1])
        tr.append(np.trace(H))
        # Hutchinson's standard deviation with Rademacher probes: √(2 Σ_{i≠j} H_ij² / p)
        bound.append(5 * np.sqrt(2 * (np.sum(H**2) - np.sum(np.diag(H) ** 2)) / 40))
    lam, tr = np.asarray(lam), np.asarray(tr)
    # n Lanczos steps span the space: the Ritz value is the batch's λmax
    assert np.max(np.abs(spread.lambda_max.per_batch - lam)) <= 1e-9 * np.abs(lam).max()
    assert np.all(np.abs(spread.trace.per_batch - tr) <= bound)
    assert spread.lambda_max.mean == pytest.approx(lam.mean(), rel=1e-9)
    assert spread.lambda_max.std == pytest.approx(np.std(lam, ddof=1), rel=1e-8)
    assert spread.lambda_max.stderr == pytest.approx(np.std(lam, ddof=1) / np.sqrt(3), rel=1e-8)
    weights = np.diff(mod.CUTS) / 50
    assert spread.lambda_max.weighted_mean == pytest.approx(weights @ lam, rel=1e-9)
    t = spread.trace.per_batch
    assert spread.trace.stderr == pytest.approx(np.std(t, ddof=1) / np.sqrt(3), rel=1e-12)
    # the weighted mean of the per-batch traces estimates the data set's
    assert abs(spread.trace.weighted_mean - np.trace(reference["hessian"])) <= max(bound)
    # λmax is convex: the data set's is at most the weighted mean of the batches'
    assert np.linalg.eigvalsh(reference["hessian"])[-1] <= weights @ lam + 1e-12


def test_api_options_and_documents(files):
    import hesscli

    res = hesscli.spectrum(files["arrays"], batch_size=16, batches=2, k=1)
    doc = res.to_json()
    jsonschema.validate(doc, load_schema("spectrum"))
    assert doc["stream"]["batches"] == 2 and doc["stream"]["available_batches"] == 4
    assert any("the first 2 batches of 4" in n for n in doc["notes"])
    res = hesscli.analyze(files["arrays"], batch_size=16, batches=100)
    assert res.parts["stream"].stream.count == 4  # N above the data's batches: all of them
    assert any("all of them were used" in n for n in res.to_json()["notes"])
    json.dumps(res.to_json())


BAD_SHAPES = MODEL + textwrap.dedent('''
    def batches():
        yield X[:10], y[:10]
        yield X[10:20, :2], y[10:20]
''')
SUM_LOSS = MODEL.replace("0.5 * jnp.mean(", "0.5 * jnp.sum(") + "\ndata = (X, y)\n"
RAISES = MODEL + textwrap.dedent('''
    def batches():
        yield X[:10], y[:10]
        raise OSError("disk gone")
''')

REGULARIZED = ARRAYS + textwrap.dedent('''
    def loss(params, batch):
        return output_loss(model(params, batch[0]), batch[1])


    def objective(params):
        return loss(params, data) + 0.1 * jnp.sum(params["w"] ** 2)
''')


@pytest.mark.parametrize("name,source,args,code,words", [
    ("arrays", ARRAYS, ["--batch-size", "0"], 2, "--batch-size"),
    ("arrays", ARRAYS, ["--batches", "0"], 2, "--batches"),
    ("arrays", ARRAYS, ["--batches", "some"], 2, "--batches"),
    ("arrays", ARRAYS, ["--batches", "2"], 2, "give --batch-size"),
    ("arrays", ARRAYS, ["--batch-size", "8", "--chunk-size", "8"], 2, "--chunk-size"),
    ("arrays", ARRAYS, ["--batch-size", "8", "--method", "fd"], 2, "exact JAX"),
    ("gen", GENERATOR, ["--batch-size", "8"], 2, "defines batches()"),
    ("shapes", BAD_SHAPES, [], 3, "batch 1"),
    ("sums", SUM_LOSS, ["--batch-size", "10"], 2, "mean over the batch"),
    ("raises", RAISES, [], 3, "disk gone"),
    ("other", REGULARIZED, ["--batch-size", "10"], 2, "different functions"),
])
def test_bad_input_is_one_line_with_its_exit_code(write, hess, name, source, args, code, words):
    path = write(f"{name}.py", source)
    res = hess("analyze", str(path), *args)
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in res.stderr
    assert words in res.stderr, res.output
    assert lines[-1].startswith(("error:", "Error:")) or "Usage" in res.stderr


def test_progress_reports_batches_and_products(backends):
    from hesscli.progress import reporting
    from hesscli.render.progress_view import progress_text

    obj, backend = backends["generator", "hessian"]
    seen = []
    backend._sink = seen.append  # the sink is captured when the backend is built
    with reporting(seen.append):
        backend.matmat(obj.x, np.eye(obj.n)[:2])
    assert [p.batch for p in seen] == [1, 2, 3]
    assert all(p.batches == 3 for p in seen)
    assert seen[-1].hvps == backend.hvps - 2  # products done before this pass
    assert progress_text(seen[0]).startswith("data set: batch 1/3 ·")


FLAKY = MODEL + textwrap.dedent('''
    PASSES = []


    def batches():
        PASSES.append(1)
        if len(PASSES) > 3:  # fine for the first passes, then the disk goes
            raise OSError("disk gone on a later pass")
        yield X[:25], y[:25]
        yield X[25:], y[25:]
''')


def test_a_generator_failing_inside_a_solver_is_exit_3(write, hess):
    path = write("flaky.py", FLAKY)
    res = hess("spectrum", str(path), "--matrix-free", "--k", "1")
    assert res.exit_code == 3, res.output
    assert "disk gone on a later pass" in res.stderr
    assert "internal error" not in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_python_api_errors_carry_exit_codes(files, write):
    import hesscli
    from hesscli.errors import InputError, ObjectiveError

    with pytest.raises(InputError) as bad:
        hesscli.analyze(files["arrays"], batch_size=0)
    assert bad.value.exit_code == 2
    message = str(bad.value)  # names the argument (as the CLI spells it, today) and the 0
    assert ("batch_size" in message or "--batch-size" in message) and "got 0" in message
    with pytest.raises(InputError, match="--batches"):
        hesscli.spectrum(files["arrays"], batch_size=16, batches="many")
    with pytest.raises(InputError, match="file"):
        hesscli.analyze(lambda p: (p**2).sum(), np.ones(2), batch_size=2)
    gen_object = write("once.py", MODEL + "\nbatches = ((X[i:i + 10], y[i:i + 10]) for i in "
                       "range(0, 50, 10))\n")
    with pytest.raises(InputError, match="used up after one pass"):
        hesscli.analyze(str(gen_object))
    shapes = write("shapes_api.py", BAD_SHAPES)
    with pytest.raises(ObjectiveError) as failed:
        hesscli.analyze(str(shapes))
    assert failed.value.exit_code == 3


def test_a_list_of_batches_streams_like_a_generator(write, reference):
    import hesscli

    path = write("listed.py", MODEL + "\nbatches = [(X[a:b], y[a:b]) for a, b in "
                 "((0, 16), (16, 40), (40, 50))]\n")
    res = hesscli.analyze(str(path))
    assert res.parts["stream"].stream.sizes == (16, 24, 10)
    want = np.linalg.eigvalsh(reference["hessian"])
    assert np.max(np.abs(res.spectrum.eigenvalues - want)) <= 1e-12 * np.abs(want).max()
