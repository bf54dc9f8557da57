"""Products with a convolution leave the compiled loops on the CPU (curvature/host_products.py).

The eigenvalues through the callback path equal the dense ``jax.hessian``'s (computed
here, independently of hesscli) to the solver's residuals; the note appears for a conv
net and not for an MLP; the detection finds a convolution wherever the jaxpr nests it.
"""

from __future__ import annotations

import numpy as np
import pytest

import hesscli.curvature.host_products as hp
from hesscli.jaxconf import jax_module
from tests.helpers import validate

REAL_USABLE_CPUS = hp.usable_cpus


@pytest.fixture(autouse=True)
def two_cpus(monkeypatch):
    """These tests are about the callback path, which a one-CPU process (a pinned CI
    job) turns off: they run as on two CPUs unless a test says otherwise (their
    programs are small enough to run inline, so they cannot hang)."""
    monkeypatch.setattr(hp, "usable_cpus", lambda: 2)

jax = jax_module()
jnp = jax.numpy

# A tiny conv net on fixed data: 3×3 conv (1 → 2 channels) + bias, tanh, global
# average pool, dense 2 → 3, softmax cross-entropy. n = 18 + 2 + 6 + 3 = 29.
CONV = '''
import jax
import jax.numpy as jnp
import numpy as np

_rng = np.random.default_rng(3)
IMAGES = jnp.asarray(_rng.standard_normal((6, 5, 5, 1)))
LABELS = jnp.asarray(_rng.integers(0, 3, 6))


def objective(x):
    kernel = x[:18].reshape(3, 3, 1, 2)
    bias = x[18:20]
    dense = x[20:26].reshape(2, 3)
    out = x[26:29]
    h = jax.lax.conv_general_dilated(IMAGES, kernel, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    h = jnp.tanh(h + bias).mean(axis=(1, 2))
    logits = h @ dense + out
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, LABELS[:, None], axis=1))


x0 = jnp.asarray(np.random.default_rng(4).standard_normal(29) * 0.5)
'''

# The same sizes without the convolution: a dense layer on the flattened images.
MLP = '''
import jax
import jax.numpy as jnp
import numpy as np

_rng = np.random.default_rng(3)
INPUTS = jnp.asarray(_rng.standard_normal((6, 4)))
LABELS = jnp.asarray(_rng.integers(0, 3, 6))


def objective(x):
    w1 = x[:16].reshape(4, 4)
    b1 = x[16:20]
    w2 = x[20:32].reshape(4, 3)
    h = jnp.tanh(INPUTS @ w1 + b1)
    logp = jax.nn.log_softmax(h @ w2)
    return -jnp.mean(jnp.take_along_axis(logp, LABELS[:, None], axis=1))


x0 = jnp.asarray(np.random.default_rng(4).standard_normal(32) * 0.5)
'''

# A model split (model, output_loss, data) with a convolution, for the GGN: n = 9 + 1 + 4 + 1.
CONV_SPLIT = '''
import jax
import jax.numpy as jnp
import numpy as np

_rng = np.random.default_rng(5)
data = (jnp.asarray(_rng.standard_normal((5, 4, 4, 1))), jnp.asarray(_rng.standard_normal((5, 1))))
x0 = {"k": jnp.asarray(_rng.standard_normal((3, 3, 1, 1)) * 0.5), "b": jnp.zeros(1),
      "w": jnp.asarray(_rng.standard_normal((4, 1))), "c": jnp.zeros(1)}


def model(params, inputs):
    h = jax.lax.conv_general_dilated(inputs, params["k"], (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    h = jnp.tanh(h + params["b"]).reshape(inputs.shape[0], -1)  # 2×2 positions
    return h @ params["w"] + params["c"]


def output_loss(outputs, targets):
    return 0.5 * jnp.mean(jnp.sum((outputs - targets) ** 2, axis=-1))
'''

NOTE = "products ran outside the solver's compiled loop"


def dense_eigenvalues(source: str) -> np.ndarray:
    """The eigenvalues of jax.hessian of the file's objective at x0 (no hesscli code)."""
    space: dict = {}
    exec(compile(source, "<objective>", "exec"), space)  # noqa: S102 - the test's own source
    h = np.asarray(jax.hessian(space["objective"])(space["x0"]), dtype=np.float64)
    return np.linalg.eigvalsh(0.5 * (h + h.T))


def dense_ggn_eigenvalues(source: str) -> np.ndarray:
    """Eigenvalues of Jᵀ(∇²ℓ)J, J = jacfwd of the model in the flat parameters."""
    from jax.flatten_util import ravel_pytree

    space: dict = {}
    exec(compile(source, "<split>", "exec"), space)  # noqa: S102 - the test's own source
    inputs, targets = space["data"]
    flat, unravel = ravel_pytree(space["x0"])
    out_fn = lambda w: space["model"](unravel(w), inputs).reshape(-1)  # noqa: E731
    jac = np.asarray(jax.jacfwd(out_fn)(flat), dtype=np.float64)
    outputs = out_fn(flat)
    h_out = np.asarray(jax.hessian(lambda o: space["output_loss"](o.reshape(targets.shape),
                                                                  targets))(outputs))
    g = jac.T @ h_out @ jac
    return np.linalg.eigvalsh(0.5 * (g + g.T))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("conv")
    paths = {}
    for name, source in (("conv", CONV), ("mlp", MLP), ("split", CONV_SPLIT)):
        paths[name] = root / f"{name}.py"
        paths[name].write_text(source)
    return paths


def spectrum(hess, path, *extra):
    res = hess("spectrum", path, "--k", "2", "--format", "json", *extra)
    assert res.exit_code == 0, res.output
    doc = res.json()
    validate(doc, "spectrum")
    return doc


def assert_extremes_match(doc, exact):
    lam = np.asarray(doc["eigenvalues"], dtype=np.float64)
    res = np.asarray(doc["residuals"], dtype=np.float64)
    scale = float(np.max(np.abs(exact)))
    # a Rayleigh quotient θ with residual r has an eigenvalue within r of it (plus the
    # products' rounding); here those are the two smallest and the two largest
    want = np.concatenate([exact[:2], exact[-2:]])
    assert np.all(np.abs(lam - want) <= res + 1e-9 * scale), (lam, want, res)


def test_conv_net_matrix_free_eigenvalues_equal_dense_hessian(hess, files):
    doc = spectrum(hess, files["conv"], "--matrix-free")
    assert doc["path"] == "matrix-free"
    assert_extremes_match(doc, dense_eigenvalues(CONV))
    notes = [n for n in doc["notes"] if NOTE in n]
    assert len(notes) == 1 and "conv_general_dilated" in notes[0], doc["notes"]


def test_conv_net_restarted_lanczos_through_the_callback(hess, files):
    doc = spectrum(hess, files["conv"], "--matrix-free", "--eigensolver", "restarted")
    assert_extremes_match(doc, dense_eigenvalues(CONV))
    assert any(NOTE in n for n in doc["notes"])


def test_conv_net_dense_path_equals_jax_hessian(hess, files):
    doc = spectrum(hess, files["conv"], "--dense")
    exact = dense_eigenvalues(CONV)
    lam = np.sort(np.asarray(doc["eigenvalues"], dtype=np.float64))
    np.testing.assert_allclose(lam, exact, rtol=0, atol=1e-10 * float(np.max(np.abs(exact))))
    assert not any(NOTE in n for n in doc["notes"])  # no compiled loop ran a product


def test_conv_ggn_operator_through_the_callback(hess, files):
    doc = spectrum(hess, files["split"], "--matrix-free", "--curvature", "ggn")
    assert doc["curvature"] == "ggn"
    assert_extremes_match(doc, dense_ggn_eigenvalues(CONV_SPLIT))
    assert any(NOTE in n for n in doc["notes"]), doc["notes"]


def test_mlp_has_no_note_and_same_accuracy(hess, files):
    doc = spectrum(hess, files["mlp"], "--matrix-free")
    assert_extremes_match(doc, dense_eigenvalues(MLP))
    assert not any(NOTE in n for n in doc["notes"]), doc["notes"]


def test_switch_off_keeps_products_in_the_loop(hess, files, monkeypatch):
    monkeypatch.setenv("HESSCLI_HOST_PRODUCTS", "0")
    from hesscli import api

    api._BACKENDS.clear()  # a reused backend would carry the other setting
    doc = spectrum(hess, files["conv"], "--matrix-free")
    api._BACKENDS.clear()
    assert not any(NOTE in n for n in doc["notes"])
    assert_extremes_match(doc, dense_eigenvalues(CONV))


# ---- detection -----------------------------------------------------------------------

KERNEL = jnp.ones((3, 3, 1, 1))


def conv(x):
    return jax.lax.conv_general_dilated(x, KERNEL, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


@jax.custom_vjp
def conv_custom(x):
    return conv(x)


def _fwd(x):
    return conv(x), None


def _bwd(_, g):
    return (g,)


conv_custom.defvjp(_fwd, _bwd)


def in_scan(x):
    return jax.lax.scan(lambda c, _: (conv(c), None), x, None, length=2)[0]


def in_remat(x):
    return jax.checkpoint(lambda y: jnp.sin(conv(y)))(x)


def in_cond(x):
    return jax.lax.cond(x.sum() > 0, conv, lambda y: y, x)


def in_jit_in_while(x):
    body = jax.jit(lambda c: conv(c) * 0.5)
    return jax.lax.while_loop(lambda c: c.sum() > 1e9, body, x)


@pytest.mark.parametrize("fn", [conv, conv_custom, in_scan, in_remat, in_cond, in_jit_in_while,
                                jax.jit(in_remat)],
                         ids=["plain", "custom_vjp", "scan", "remat", "cond", "jit_in_while",
                              "jit_of_remat"])
def test_detection_finds_nested_convolutions(fn):
    from hesscli.curvature.host_products import slow_in_loops

    x = jax.ShapeDtypeStruct((1, 4, 4, 1), jnp.float64)
    assert slow_in_loops(fn, x) == {"conv_general_dilated"}


def test_detection_finds_none_in_dense_layers():
    from hesscli.curvature.host_products import slow_in_loops

    def mlp(x):
        return jax.lax.scan(lambda c, _: (jnp.tanh(c @ jnp.ones((4, 4))), None), x, None,
                            length=2)[0]

    assert slow_in_loops(mlp, jax.ShapeDtypeStruct((3, 4), jnp.float64)) == set()


def test_detection_in_the_hessian_product_of_a_conv_net(files):
    from hesscli.curvature.choose import curvature_for
    from hesscli.curvature.host_products import loop_reason
    from tests.helpers import bound

    obj = bound(str(files["conv"]))
    backend, _ = curvature_for(obj)
    assert backend.host_products == "conv_general_dilated"
    assert backend.linearizable is None and backend.direct_hvp_fn is not None
    assert loop_reason(backend) is None  # its hvp_fn is now the callback: nothing to find
    mlp_backend, _ = curvature_for(bound(str(files["mlp"])))
    assert mlp_backend.host_products is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_callback_inside_loops_equals_the_direct_product(dtype):
    """The callback in a fori_loop, under vmap and in lax.map gives the direct product,
    in the backend's dtype and shape."""
    from hesscli.curvature.host_products import HostProducts

    n = 5
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n))
    a = (a + a.T).astype(dtype)

    def hvp(x, v):
        return jnp.asarray(a) @ v + x * 0

    host = HostProducts(jax.jit(hvp), None, n, dtype)
    x = np.zeros(n, dtype)
    vs = rng.standard_normal((3, n)).astype(dtype)
    want = vs.astype(np.float64) @ a.astype(np.float64).T
    tol = 1e-5 if dtype == "float32" else 1e-12
    looped = jax.jit(lambda x, v: jax.lax.fori_loop(0, 2, lambda i, u: host.hvp_fn(x, u), v))
    out = np.asarray(looped(x, vs[0]))
    assert out.dtype == np.dtype(dtype) and out.shape == (n,)
    np.testing.assert_allclose(out, a.astype(np.float64) @ want[0], rtol=tol, atol=tol * 10)
    mapped = np.asarray(jax.jit(lambda x, vs: jax.lax.map(lambda v: host.hvp_fn(x, v), vs,
                                                          batch_size=2))(x, vs))
    np.testing.assert_allclose(mapped, want, rtol=tol, atol=tol)
    batched = np.asarray(jax.jit(jax.vmap(host.hvp_fn, in_axes=(None, 0)))(x, vs))
    np.testing.assert_allclose(batched, want, rtol=tol, atol=tol)
    assert host.calls >= 3 and host.products >= 2 + 3 + 3


def per_batch_top(source: str, size: int) -> list[float]:
    """λmax of each batch's own Hessian (batches of ``size`` in order), jax.hessian."""
    from jax.flatten_util import ravel_pytree

    space: dict = {}
    exec(compile(source, "<split>", "exec"), space)  # noqa: S102 - the test's own source
    inputs, targets = space["data"]
    flat, unravel = ravel_pytree(space["x0"])
    tops = []
    for start in range(0, inputs.shape[0], size):
        xs, ys = inputs[start:start + size], targets[start:start + size]

        def loss(w, xs=xs, ys=ys):
            return space["output_loss"](space["model"](unravel(w), xs), ys)

        h = np.asarray(jax.hessian(loss)(flat), dtype=np.float64)
        tops.append(float(np.linalg.eigvalsh(0.5 * (h + h.T))[-1]))
    return tops


def test_streamed_spread_of_a_conv_net_runs_on_the_host(files, monkeypatch):
    """The per-batch Lanczos of the batch-to-batch spread calls the compiled product from a
    host loop when it holds a convolution: per-batch λmax equal to each batch's dense
    Hessian's (15 steps span n = 15), and the same spread as the compiled loop's."""
    import hesscli
    from hesscli import api

    want = per_batch_top(CONV_SPLIT, 2)
    spreads = {}
    for switch in ("1", "0"):
        monkeypatch.setenv("HESSCLI_HOST_PRODUCTS", switch)
        api._BACKENDS.clear()
        res = hesscli.spectrum(str(files["split"]), batch_size=2, k=1, path="matrix-free")
        reason = res.curvature.spread_on_host()
        assert (reason == "conv_general_dilated") if switch == "1" else reason is None
        spreads[switch] = res.parts["stream"].spread
    api._BACKENDS.clear()
    host, loop = spreads["1"], spreads["0"]
    np.testing.assert_allclose(host.lambda_max.per_batch, want, rtol=1e-9)
    np.testing.assert_allclose(host.lambda_max.per_batch, loop.lambda_max.per_batch, rtol=1e-10)
    np.testing.assert_allclose(host.trace.per_batch, loop.trace.per_batch, rtol=1e-10)


def test_one_cpu_keeps_products_in_the_loop(hess, files, monkeypatch):
    """A process allowed one CPU (taskset, a cpuset) would hang with products called back
    from a compiled loop (XLA's one CPU thread is held by the loop): they stay in the loop
    there, with the same eigenvalues."""
    from hesscli import api

    monkeypatch.setattr(hp.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert REAL_USABLE_CPUS() == 1
    monkeypatch.setattr(hp, "usable_cpus", REAL_USABLE_CPUS)
    api._BACKENDS.clear()
    doc = spectrum(hess, files["conv"], "--matrix-free")
    api._BACKENDS.clear()
    assert not any(NOTE in n for n in doc["notes"])
    assert_extremes_match(doc, dense_eigenvalues(CONV))
