"""Gauss–Newton, Fisher and empirical Fisher operators against matrices formed densely.

References are built another way than the operators: the model's Jacobian
J with ``jax.jacobian`` (dense, never used by the operators), the output
loss's Hessian with ``jax.hessian``, per-sample gradients one sample at a time
in a Python loop, and the Fisher from its definition (the expected outer
product of the log-likelihood gradient over the model's own labels). All are
exact up to rounding, so the tolerances are a few hundred ε relative.
"""

import numpy as np
import pytest

from hesscli.curvature.exact import ExactCurvature
from hesscli.curvature.operators import operator_curvature
from hesscli.errors import InputError, ObjectiveError
from hesscli.jaxconf import jax_module
from hesscli.objective.bind import bind
from hesscli.objective.files import load_file
from hesscli.spectra.certify import Solve
from hesscli.spectra.matrix_free import extremes_of

jax = jax_module()
jnp = jax.numpy
RTOL = 1e-12

SMALL_CLASSIFIER = {"width": "3", "inputs": "3", "classes": "3", "samples": "12"}
SMALL_MLP = {"width": "3", "inputs": "3", "outputs": "2", "samples": "10"}

LINEAR = """
import jax.numpy as jnp
import numpy as np

_rng = np.random.default_rng(3)
data = (jnp.asarray(_rng.standard_normal((9, 3))), jnp.asarray(_rng.standard_normal((9, 2))))
x0 = {"w": jnp.asarray(_rng.standard_normal((3, 2))), "b": jnp.zeros(2)}


def model(params, inputs):
    return inputs @ params["w"] + params["b"]


def output_loss(outputs, targets):
    return 0.5 * jnp.mean(jnp.sum((outputs - targets) ** 2, axis=-1))
"""


def bound(spec, overrides=None):
    obj = bind(load_file(spec, overrides or {}), None)
    return obj, ExactCurvature(obj)


@pytest.fixture(scope="module")
def classifier():
    return bound("classifier", SMALL_CLASSIFIER)


@pytest.fixture(scope="module")
def regression():
    return bound("mlp", SMALL_MLP)


def jacobian_parts(obj):
    """(J as samples × outputs × n, outputs) by dense jax.jacobian of the model."""
    split = obj.file.split

    def model(x):
        return split.model(obj.unravel(x), split.inputs)

    x = jnp.asarray(obj.x)
    return np.asarray(jax.jacobian(model)(x)), np.asarray(model(x))


def dense_ggn(obj):
    """Σ J_aᵀ (∇²ℓ)_ab J_b with J and ∇²ℓ formed densely."""
    split = obj.file.split
    jac, out = jacobian_parts(obj)
    h_out = np.asarray(jax.hessian(lambda o: split.output_loss(o, split.targets))(out))
    n = obj.n
    jf = jac.reshape(-1, n)
    return jf.T @ h_out.reshape(jf.shape[0], jf.shape[0]) @ jf


def close(a, b, rtol=RTOL):
    scale = max(float(np.max(np.abs(b))), 1e-300)
    assert np.max(np.abs(a - b)) <= rtol * scale, np.max(np.abs(a - b)) / scale


@pytest.mark.parametrize("which", ["classifier", "regression"])
def test_ggn_matches_j_h_jt_formed_densely(which, request):
    obj, base = request.getfixturevalue(which)
    ggn = operator_curvature(obj, base, "ggn")
    reference = dense_ggn(obj)
    close(ggn.hessian(obj.x).matrix, reference)
    v = np.random.default_rng(0).standard_normal(obj.n)
    close(ggn.hvp(obj.x, v), reference @ v)
    assert np.linalg.eigvalsh(reference).min() >= -1e-12 * np.abs(reference).max()


def test_ggn_extremes_by_lanczos_match_the_dense_matrix(classifier):
    obj, base = classifier
    ggn = operator_curvature(obj, base, "ggn")
    lam = np.linalg.eigvalsh(dense_ggn(obj))
    ex = extremes_of(ggn, obj.x, Solve(k=2, seed=0))
    assert ex.all_converged
    np.testing.assert_allclose(ex.eigenvalues[-2:], lam[-2:], rtol=1e-8)
    assert abs(ex.eigenvalues[0] - lam[0]) <= 1e-8 * lam[-1]


def test_ggn_equals_the_hessian_for_a_linear_model_with_squared_error(write):
    obj, base = bound(str(write("linear.py", LINEAR)))
    ggn = operator_curvature(obj, base, "ggn")
    g = ggn.hessian(obj.x).matrix
    # analytic: f = (1/2N) Σ‖Wᵀxᵢ + b − yᵢ‖², so H = (1/N) Σ [xᵢ;1][xᵢ;1]ᵀ ⊗ I₂ in
    # the flat order (b, then w row-major): built here from the data alone
    inputs = np.asarray(obj.file.split.inputs)
    n_samples, d = inputs.shape
    ones = np.ones((n_samples, 1))
    a = np.hstack([ones, inputs])  # feature 0 multiplies b
    gram = a.T @ a / n_samples
    analytic = np.kron(gram, np.eye(2))
    close(g, analytic)
    close(base.hessian(obj.x).matrix, analytic)
    residual = operator_curvature(obj, base, "residual")
    assert np.max(np.abs(residual.hessian(obj.x).matrix)) <= 1e-13 * np.abs(analytic).max()


def test_fisher_for_softmax_cross_entropy_is_the_expected_outer_product(classifier):
    obj, base = classifier
    split = obj.file.split
    x = jnp.asarray(obj.x)
    inputs, labels = np.asarray(split.inputs), np.asarray(split.targets)
    n_samples = inputs.shape[0]
    logits = np.asarray(split.model(obj.unravel(x), split.inputs))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)

    def nll(theta, i, c):
        z = split.model(obj.unravel(theta), split.inputs[i : i + 1])[0]
        return -jax.nn.log_softmax(z)[c]

    grad = jax.jit(jax.grad(nll), static_argnums=(1, 2))
    reference = np.zeros((obj.n, obj.n))
    for i in range(n_samples):  # F = (1/N) Σᵢ Σ_c p_ic g_ic g_icᵀ (labels drawn from p)
        for c in range(p.shape[1]):
            g = np.asarray(grad(x, i, c))
            reference += p[i, c] * np.outer(g, g)
    reference /= n_samples
    fisher = operator_curvature(obj, base, "fisher")
    close(fisher.hessian(obj.x).matrix, reference)
    assert labels.dtype.kind in "iu"


def test_fisher_for_squared_error_is_2c_jtj(regression):
    obj, base = regression
    jac, _ = jacobian_parts(obj)
    n_samples = jac.shape[0]
    jf = jac.reshape(-1, obj.n)
    # mlp: ℓ = (1/N) Σ‖m − y‖², so c = 1/N and F = (2/N) JᵀJ
    close(operator_curvature(obj, base, "fisher").hessian(obj.x).matrix,
          2.0 / n_samples * jf.T @ jf)


@pytest.mark.parametrize("which", ["classifier", "regression"])
def test_empirical_fisher_is_the_mean_of_outer_products(which, request):
    obj, base = request.getfixturevalue(which)
    split = obj.file.split
    x = jnp.asarray(obj.x)
    inputs, targets = split.inputs, split.targets

    def sample_loss(theta, i):
        return split.output_loss(split.model(obj.unravel(theta), inputs[i : i + 1]),
                                 targets[i : i + 1])

    grad = jax.jit(jax.grad(sample_loss), static_argnums=1)
    n_samples = int(inputs.shape[0])
    grads = np.stack([np.asarray(grad(x, i)) for i in range(n_samples)])
    reference = grads.T @ grads / n_samples
    ef = operator_curvature(obj, base, "empirical-fisher")
    close(ef.hessian(obj.x).matrix, reference)
    v = np.random.default_rng(1).standard_normal(obj.n)
    close(ef.hvp(obj.x, v), reference @ v)


def test_residual_is_hessian_minus_ggn(classifier):
    obj, base = classifier
    residual = operator_curvature(obj, base, "residual").hessian(obj.x).matrix
    close(residual, base.hessian(obj.x).matrix - dense_ggn(obj), rtol=1e-11)


# ---- the model split protocol ---------------------------------------------------------

SPLIT = """
import jax.numpy as jnp
data = (jnp.arange(6.0).reshape(3, 2), jnp.array([1.0, -1.0, 0.5]))
x0 = jnp.array([0.3, -0.2])


def model(params, inputs):
    return inputs @ params


def output_loss(outputs, targets):
    return jnp.mean((outputs - targets) ** 2)
"""


def test_objective_is_derived_from_the_split(write):
    obj, base = bound(str(write("split.py", SPLIT)))
    inputs = np.arange(6.0).reshape(3, 2)
    expected = np.mean((inputs @ np.array([0.3, -0.2]) - np.array([1.0, -1.0, 0.5])) ** 2)
    assert base.value(obj.x) == pytest.approx(expected, rel=1e-15)
    assert obj.file.loss is not None  # minibatch loss derived too


def test_objective_that_disagrees_with_the_split_is_an_objective_error(write):
    path = write("bad.py", SPLIT + "\n\ndef objective(p):\n    return 2 * output_loss("
                 "model(p, data[0]), data[1])\n")
    with pytest.raises(ObjectiveError, match="model split must compute the same"):
        bound(str(path))


def test_objective_that_agrees_with_the_split_loads(write):
    path = write("good.py", SPLIT + "\n\ndef objective(p):\n    return jnp.mean("
                 "(data[0] @ p - data[1]) ** 2)\n")
    obj, base = bound(str(path))
    assert base.value(obj.x) > 0


def test_half_a_split_is_an_objective_error(write):
    path = write("half.py", SPLIT.replace("def output_loss", "def other_loss"))
    with pytest.raises(ObjectiveError, match="output_loss"):
        load_file(str(path))


def test_ggn_without_a_split_is_an_input_error():
    obj, base = bound("rosenbrock")
    with pytest.raises(InputError, match="needs a model split"):
        operator_curvature(obj, base, "ggn")


def test_fisher_of_an_unrecognized_loss_is_an_input_error(write):
    path = write("abs.py", SPLIT.replace("(outputs - targets) ** 2", "jnp.cosh(outputs - targets)"))
    obj, base = bound(str(path))
    with pytest.raises(InputError, match="neither a squared error"):
        operator_curvature(obj, base, "fisher")
    assert operator_curvature(obj, base, "ggn").hvp(obj.x, np.ones(2)).shape == (2,)


def test_declared_likelihood_that_does_not_hold_is_an_objective_error(write):
    path = write("lie.py", SPLIT + "\nlikelihood = 'softmax_cross_entropy'\n")
    obj, base = bound(str(path))
    with pytest.raises(ObjectiveError, match="likelihood = 'softmax_cross_entropy'"):
        operator_curvature(obj, base, "fisher")


def test_squared_error_scale_is_recognized(write):
    obj, base = bound(str(write("split.py", SPLIT)))
    inputs = np.arange(6.0).reshape(3, 2)
    # ℓ = (1/3) Σ (xᵢᵀp − yᵢ)²: c = 1/3, F = 2c XᵀX
    close(operator_curvature(obj, base, "fisher").hessian(obj.x).matrix,
          2.0 / 3.0 * inputs.T @ inputs)
