"""Facts about the committed tour (docs/tour.md, README.md): printed numbers against analytic ones.

tests/test_readme_tour.py checks that the tour is what the program prints now, which
``make docs`` can always make true. This file checks what the committed
docs/tour.md says against values derived here from the built-in problems' formulas
(problems/*.py), never from hesscli: eigenvalues of the Hessians written out by hand,
the SVM's data regenerated from its seed in NumPy, the ravine's rotation from its seed,
exact changes of f computed from f itself. A printed number must equal the true one to
its printed precision: within half a unit of its last printed digit.

The tour is parsed here on its own (``<!-- tour: CMD -->`` then a console block), so
a change of wording around a number fails a regex below; a change of a number fails
its comparison.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TOUR = (ROOT / "docs" / "tour.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"<!-- tour(?: slow)?: (?P<cmd>[^\n]+?) -->\n```console\n\$ [^\n]*\n"
                   r"(?P<out>.*?)```", re.S)
BLOCKS = {m["cmd"]: m["out"] for m in BLOCK.finditer(TOUR)}
NUM = r"(-?\d+(?:\.\d+)?(?:e[+-]\d+)?)"


def output(command: str) -> str:
    assert command in BLOCKS, f"docs/tour.md has no block for '{command}'"
    return BLOCKS[command]


def found(pattern: str, text: str) -> list[str]:
    """The groups of ``pattern`` (NUM for each number) in ``text``; it must occur."""
    m = re.search(pattern, text)
    assert m, f"not in the tour output: {pattern!r}\n{text}"
    return list(m.groups())


def half_unit(printed: str) -> float:
    """Half a unit in the last digit of ``printed`` ("0.3994" → 5e-5, "2.980e-09" → 5e-13)."""
    m = re.fullmatch(r"-?\d+(?:\.(\d+))?(?:e([+-]\d+))?", printed)
    assert m, printed
    return 0.5 * 10.0 ** (int(m[2] or 0) - len(m[1] or ""))


def agrees(printed: str, true: float, slack: float = 0.0) -> None:
    """``printed`` is ``true`` rounded to the digits shown (``slack``: the true value's
    own uncertainty, when it is computed from printed inputs)."""
    bound = half_unit(printed) * (1 + 1e-9) + slack + 1e-12 * abs(true)
    assert abs(float(printed) - true) <= bound, (printed, true, bound)


# --- the problems, from their formulas ----------------------------------------------------


def rosenbrock(x: np.ndarray) -> float:  # problems/rosenbrock.py, a = 1, b = 100
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosenbrock_gradient(x: np.ndarray) -> np.ndarray:  # n = 2
    return np.array([-400.0 * x[0] * (x[1] - x[0] ** 2) - 2.0 * (1.0 - x[0]),
                     200.0 * (x[1] - x[0] ** 2)])


def rosenbrock_hessian(x: np.ndarray) -> np.ndarray:  # n = 2
    return np.array([[2.0 - 400.0 * (x[1] - x[0] ** 2) + 800.0 * x[0] ** 2, -400.0 * x[0]],
                     [-400.0 * x[0], 200.0]])


def svm_data(samples=50, dim=5, seed=0):
    """problems/svm.py's data, regenerated from its seed."""
    rng = np.random.default_rng(seed)
    w_true = rng.standard_normal(dim)
    X = rng.standard_normal((samples, dim))
    y = np.sign(X @ w_true + 0.3 * rng.standard_normal(samples))
    y[y == 0] = 1.0
    return X, y


def svm(w, X, y, lam=0.1) -> float:
    return float(lam * w @ w + np.sum(np.maximum(0.0, 1.0 - y * (X @ w))))


def ravine_matrix(n=2, kappa=100.0, seed=0) -> np.ndarray:
    """problems/ravine.py's A = Q diag(geomspace(1, κ, n)) Qᵀ, Q from its seed."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return (q * np.geomspace(1.0, kappa, n)) @ q.T


# --- the SVM: Hessian 2λI ---------------------------------------------------------------


def test_svm_hessian_is_two_lambda_identity_and_its_gradient_step():
    """At w = 0 every hinge is active (margin 1 > 0): f = Σ 1 = 50, ∇f = −Σ yₙxₙ,
    H = 2λI = 0.2·I. The step w = −lr·∇f is evaluated on f itself."""
    out = output("hesscli analyze svm")
    X, y = svm_data()
    g = -(y[:, None] * X).sum(axis=0)
    (eigs,) = found(r"eigenvalues\s+([-\d., e]+)\n", out)
    assert [float(e) for e in eigs.split(",")] == [0.2] * 5  # 2λ, λ = 0.1, five times
    (cond,) = found(r"condition number\s+" + NUM, out)
    assert float(cond) == 1.0
    (value,) = found(r"\nvalue\s+" + NUM, out)
    agrees(value, svm(np.zeros(5), X, y))
    for printed in found(r"‖∇f‖ = " + NUM + " >", out) + found(r"gradient norm\s+" + NUM, out):
        agrees(printed, np.linalg.norm(g))
    lr = 0.01
    actual, model = found(r"decreases f by " + NUM + r" \(quadratic model: a fall of\n?\s*"
                          + NUM, out)
    agrees(actual, svm(np.zeros(5), X, y) - svm(-lr * g, X, y))
    agrees(model, lr * g @ g - 0.5 * lr**2 * 0.2 * g @ g)
    best, rises = found(r"lowest at lr = " + NUM + r" and rises for lr > " + NUM, out)
    agrees(best, (g @ g) / (0.2 * g @ g))  # gᵀg/gᵀHg = 1/(2λ)
    agrees(rises, 2 * (g @ g) / (0.2 * g @ g))
    (sharp,) = found(r"lr·λmax = " + NUM, out)
    agrees(sharp, lr * 0.2)
    # the gradient's three largest entries, by name, with their values
    named = re.findall(r"x\[(\d)\] \(" + NUM + r"\)", found(r"gradient lives in\s+(.*)\n", out)[0])
    top = np.argsort(-np.abs(g))[:3]
    assert [int(i) for i, _ in named] == list(top)
    for i, printed in named:
        agrees(printed, g[int(i)])


def test_svm_convexity_sees_two_lambda_everywhere():
    out = output("hesscli convexity svm --box -3,3 --samples 500 --seed 0")
    (lam_min,) = found(r"smallest λmin = " + NUM, out)
    agrees(lam_min, 0.2)  # H = 2λI wherever it exists
    assert "0 violation(s) in 500 pairs" in out


# --- Rosenbrock's minimum: eigenvalues and the learning-rate bound 2/λmax ----------------


@pytest.mark.parametrize("command", ["hesscli analyze rosenbrock --at 1,1",
                                     "hesscli analyze rosenbrock --at 1,1 --method fd "
                                     "--fd-accuracy high"])
def test_rosenbrock_minimum_spectrum_and_lr_bound(command):
    out = output(command)
    h = rosenbrock_hessian(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(h, [[802.0, -400.0], [-400.0, 200.0]])
    lo, hi = np.linalg.eigvalsh(h)
    assert "local minimum" in out and np.all(rosenbrock_gradient(np.ones(2)) == 0)
    small, large = found(r"eigenvalues\s+" + NUM + ", " + NUM, out)
    agrees(small, lo)
    agrees(large, hi)
    (banner,) = found(r"λmin = " + NUM + " >", out)
    agrees(banner, lo)
    (cond,) = found(r"condition number\s+" + NUM, out)
    agrees(cond, hi / lo)
    sharp, bound = found(r"lr·λmax = " + NUM + r" > 2: .*?\n?.*?lr < 2/λmax = " + NUM, out)
    agrees(sharp, 0.01 * hi)
    agrees(bound, 2 / hi)


def test_rosenbrock_convexity_witness_is_a_real_violation():
    """The printed pair recomputed on f: f(x), f(y), f(m) as printed (up to the rounding
    of the printed coordinates, bounded by |∇f|·half a unit), and f(m) > (f(x)+f(y))/2."""
    out = output("hesscli convexity rosenbrock --box -2,2 --seed 0")
    pts = {}
    for name in ("x", "y", "m = \\(x\\+y\\)/2"):
        pts[name[0]] = found(r"\n" + name + r"\s+" + NUM + ", " + NUM + r"\n", out)
    fx, fy = found(r"f\(x\), f\(y\)\s+" + NUM + ", " + NUM, out)
    (fm,) = found(r"\nf\(m\)\s+" + NUM, out)

    def check(printed_value, coords):
        z = np.array([float(c) for c in coords])
        dz = np.array([half_unit(c) for c in coords])
        slack = np.abs(rosenbrock_gradient(z)) @ dz + 1e3 * dz @ dz  # |∇f|·δ + ½‖H‖δ²
        agrees(printed_value, rosenbrock(z), slack)

    check(fx, pts["x"])
    check(fy, pts["y"])
    check(fm, pts["m"])
    x = np.array([float(c) for c in pts["x"]])
    y = np.array([float(c) for c in pts["y"]])
    for i, printed in enumerate(pts["m"]):  # m is the midpoint, to the printed x's and y's
        agrees(printed, (x[i] + y[i]) / 2,
               slack=(half_unit(pts["x"][i]) + half_unit(pts["y"][i])) / 2)
    (margin,) = found(r"margin\s+f\(m\) − \(f\(x\)\+f\(y\)\)/2 = " + NUM, out)
    true_margin = rosenbrock((x + y) / 2) - (rosenbrock(x) + rosenbrock(y)) / 2
    assert true_margin > 200  # a violation by far more than any rounding
    agrees(margin, true_margin, slack=1e-2)


# --- the ravine: the step that increases the loss -------------------------------------------


def test_ravine_step_overshoots_as_the_quadratic_says():
    """f = ½xᵀAx at x = (1, 1), g = Ax; the step x − lr·g changes f by exactly the
    quadratic model −lr·gᵀg + ½lr²·gᵀAg; the model along −g is lowest at lr = gᵀg/gᵀAg."""
    out = output("hesscli analyze ravine --at 1,1 --lr 0.05")
    a = ravine_matrix()
    x, lr = np.ones(2), 0.05
    g = a @ x
    lam = np.linalg.eigvalsh(a)
    np.testing.assert_allclose(lam, [1.0, 100.0], rtol=1e-13)
    (value,) = found(r"\nvalue\s+" + NUM, out)
    agrees(value, 0.5 * x @ a @ x)
    (norm,) = found(r"gradient norm\s+" + NUM, out)
    agrees(norm, np.linalg.norm(g))
    small, large = found(r"eigenvalues\s+" + NUM + ", " + NUM, out)
    agrees(small, lam[0])
    agrees(large, lam[1])
    step = x - lr * g
    rise = 0.5 * step @ a @ step - 0.5 * x @ a @ x
    actual, model = found(r"increases f by " + NUM + r" \(quadratic model: a rise of\n?\s*"
                          + NUM, out)
    agrees(actual, rise)
    agrees(model, -lr * g @ g + 0.5 * lr**2 * g @ a @ g)
    best, back = found(r"lowest at lr = " + NUM + r" and rises for lr > " + NUM, out)
    agrees(best, (g @ g) / (g @ a @ g))
    agrees(back, 2 * (g @ g) / (g @ a @ g))
    sharp, bound = found(r"lr·λmax = " + NUM + r" > 2: .*?\n?.*?lr\s+< 2/λmax = " + NUM, out)
    agrees(sharp, lr * lam[1])
    agrees(bound, 2 / lam[1])
    named = re.findall(r"x\[(\d)\] \(" + NUM + r"\)", found(r"gradient lives in\s+(.*)\n", out)[0])
    for i, printed in named:
        agrees(printed, g[int(i)])


def test_ravine_landscape_distances_along_the_gradient():
    """Along d = −g/‖g‖: the step moves t = lr‖g‖; the model ½(dᵀAd)t² − ‖g‖t is lowest at
    t = ‖g‖/dᵀAd = ‖g‖³/gᵀAg and back at f(x) at twice that."""
    out = output("hesscli landscape ravine --at 1,1 --lr 0.05 --plot docs/landscape-ravine.png")
    a = ravine_matrix()
    g = a @ np.ones(2)
    norm = np.linalg.norm(g)
    t, low, back = found(r"moves t = " + NUM + r" along −∇f.*?lowest at t = " + NUM
                         + r" and\s+back at f\(x\) at t = " + NUM, out.replace("\n", " "))
    agrees(t, 0.05 * norm)
    agrees(low, norm**3 / (g @ a @ g))
    agrees(back, 2 * norm**3 / (g @ a @ g))
    (curv,) = found(r"dᵀHd = " + NUM, out)
    agrees(curv, (g @ a @ g) / norm**2)


# --- the saddle: −1, the escape direction e_y, and the minima at y = ±1 --------------------


def test_saddle_spectrum_and_escape_direction():
    """f = ½x² + ¼y⁴ − ½y²: H(0) = diag(1, −1), escape direction ±e_y (the eigenvector
    of −1), f(±0.1·e_y) − f(0) = ¼·10⁻⁴ − ½·10⁻²; the quadratic model says −½·10⁻²."""
    out = output("hesscli analyze saddle --at zeros")
    small, large = found(r"eigenvalues\s+" + NUM + ", " + NUM, out)
    assert (float(small), float(large)) == (-1.0, 1.0)
    weights = dict(re.findall(r"\n(x\[\d\])\s+" + NUM, out.split("parameter  weight")[1]))
    assert {k: abs(float(v)) for k, v in weights.items()} == {"x[0]": 0.0, "x[1]": 1.0}
    t = 0.1
    change = 0.25 * t**4 - 0.5 * t**2
    plus, minus = found(r"f\(x \+ 0\.1·v\) − f\(x\)\s*= " + NUM + r", f\(x − 0\.1·v\) − f\(x\) = "
                        + NUM, out)
    agrees(plus, change)
    agrees(minus, change)  # f is even in y
    actual, model = found(r"decreases f by " + NUM + r" \(quadratic\s+│\n│ model: a fall of "
                          + NUM, out)
    agrees(actual, -change)
    agrees(model, 0.5 * t**2)
    (sharp,) = found(r"lr·λmax = " + NUM, out)
    agrees(sharp, 0.01 * 1.0)


def test_saddle_landscape_finds_the_minimum_along_the_escape():
    """Along e_y, f(t) = ¼t⁴ − ½t² is lowest at t = ±1 with f = −¼."""
    out = output("hesscli landscape saddle --at zeros --plot docs/landscape-saddle.png")
    low, at = found(r"lowest " + NUM + r" at t = " + NUM, out)
    agrees(low, -0.25)
    assert abs(float(at)) == 1.0


def test_noisy_sgd_ends_at_a_minimum_plain_gd_at_the_saddle():
    """Plain GD at the saddle has ∇f = 0 exactly: it ends where it started (f = 0,
    λmin = −1). The minima (0, ±1) have f = −¼ and H = diag(1, 3y² − 1) = diag(1, 2)."""
    out = output("hesscli train saddle --at zeros --compare plain,noisy --lr 0.1 --steps 400 "
                 "--noise-steps 200 --plot docs/train-saddle.png")
    plain_f, noisy_f = found(r"│ final f\s+│\s+" + NUM + r" │\s+" + NUM + " │", out)
    plain_min, noisy_min = found(r"│ final λmin\s+│\s+" + NUM + r" │\s+" + NUM + " │", out)
    assert float(plain_f) == 0.0 and float(plain_min) == -1.0
    agrees(noisy_f, -0.25)
    agrees(noisy_min, 1.0)
    kinds = found(r"│ classification\s+│\s+(.+?) │\s+(.+?) │", out)
    assert kinds == ["saddle point", "local minimum"]


# --- the CI spec's measured values -----------------------------------------------------------


def test_check_table_measures_the_analytic_values():
    """examples/checks.yaml's table: Rosenbrock's eigenvalues at (1, 1) and their ratio,
    the saddle's −1, the ravine's condition number κ = 1000, the SVM's 2λ = 0.2."""
    out = output("hesscli check examples/checks.yaml")
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines()
            if line.startswith("│")]
    measured: dict[str, list[str]] = {}
    for row in rows:
        key, value = row[1], row[3]
        if key and re.fullmatch(NUM, value):
            measured.setdefault(key, []).append(value)
    lo, hi = np.linalg.eigvalsh(rosenbrock_hessian(np.ones(2)))
    rosen_min, saddle_min, svm_min = measured["lambda_min"]
    agrees(rosen_min, lo)
    agrees(saddle_min, -1.0)
    agrees(svm_min, 0.2)
    (rosen_max,) = measured["lambda_max"]
    agrees(rosen_max, hi)
    rosen_cond, ravine_cond = measured["condition_number"]
    agrees(rosen_cond, hi / lo)
    a = ravine_matrix(n=10, kappa=1000.0)
    lam = np.linalg.eigvalsh(a)
    agrees(ravine_cond, lam[-1] / lam[0])
    assert "15 of 15 expectations hold; 5 of 5 checks pass." in out


# --- README.md: the classifier's Hessian beside its Gauss–Newton matrix ---------------------


def test_readme_classifier_hessian_and_ggn_side_by_side():
    """problems/classifier.py rebuilt here (its seeded data, ``init(PRNGKey(0))``, the default
    point): H = ``jax.hessian`` of the loss, GGN = JᵀH_ℓJ from ``jax.jacobian`` of the model
    and ``jax.hessian`` of the output loss, both dense. The README's table prints each
    one's λmin, λmax and trace; the GGN is positive semidefinite (λmin zero up to rounding)."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = {m["cmd"]: m["out"] for m in BLOCK.finditer(readme)}
    out = blocks["hesscli spectrum classifier --curvature hessian,ggn "
                  "--plot docs/spectrum-hessian-ggn.png"]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    teacher = rng.standard_normal((4, 3))
    labels = np.argmax(X @ teacher + 0.5 * rng.standard_normal((64, 3)), axis=1)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    params = {"hidden": {"w": jax.random.normal(k1, (4, 6), jnp.float64) / np.sqrt(4),
                         "b": jnp.zeros(6)},
              "head": {"w": jax.random.normal(k2, (6, 3), jnp.float64) / np.sqrt(6),
                       "b": jnp.zeros(3)}}
    flat, unravel = ravel_pytree(params)
    assert flat.size == (4 + 1) * 6 + (6 + 1) * 3 == 51

    def logits(z):
        p = unravel(z)
        return jnp.tanh(X @ p["hidden"]["w"] + p["hidden"]["b"]) @ p["head"]["w"] + p["head"]["b"]

    def output_loss(m):
        logp = jax.nn.log_softmax(m, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, jnp.asarray(labels)[:, None], axis=-1))

    hessian = np.asarray(jax.jit(jax.hessian(lambda z: output_loss(logits(z))))(flat))
    jac = np.asarray(jax.jit(jax.jacobian(logits))(flat)).reshape(64 * 3, 51)
    h_out = np.asarray(jax.jit(jax.hessian(output_loss))(logits(flat))).reshape(192, 192)
    ggn = jac.T @ h_out @ jac
    for name, matrix in (("Hessian", hessian), ("GGN", ggn), ("Hessian − GGN", hessian - ggn)):
        lam_min, lam_max, trace = found(r"│ " + re.escape(name) + r"\s+│\s+" + NUM + r" │\s+"
                                        + NUM + r" │\s+" + NUM + " │", out)
        lam = np.linalg.eigvalsh((matrix + matrix.T) / 2)
        rounding = 1e-13 * np.abs(lam).max()  # eigvalsh's and the sums' rounding
        if name == "GGN":
            assert lam[0] >= -rounding and abs(float(lam_min)) <= rounding  # PSD: zero
        else:
            agrees(lam_min, lam[0], slack=rounding)
        agrees(lam_max, lam[-1], slack=rounding)
        agrees(trace, np.trace(matrix), slack=rounding)
    assert "the GGN has no negative eigenvalue here" in out
