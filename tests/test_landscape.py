"""``hesscli landscape``: slices and the plane against analytic values, views, plots, JSON."""

from __future__ import annotations

import json
import os
from importlib import resources

import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console

from hesscli.analysis.landscape import default_radius, landscape
from hesscli.api import load
from hesscli.curvature.choose import curvature_for

# A quadratic with a known spectrum: f(x) = ½ xᵀAx + bᵀx, A = Q diag(λ) Qᵀ.
LAMBDAS = np.array([-2.0, 0.5, 3.0, 10.0])
QUADRATIC = """
import jax.numpy as jnp
import numpy as np

Q, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((4, 4)))
A = jnp.asarray((Q * np.array([-2.0, 0.5, 3.0, 10.0])) @ Q.T)
b = jnp.asarray([0.3, -0.2, 0.1, 0.4])


def objective(x):
    return 0.5 * x @ A @ x + b @ x
"""
X0 = np.array([0.5, -1.0, 0.25, 1.0])


def quadratic_parts():
    Q, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((4, 4)))
    A = (Q * LAMBDAS) @ Q.T
    b = np.array([0.3, -0.2, 0.1, 0.4])
    return A, b, Q


def build(spec, at, *params, **kw):
    obj = load(str(spec), at, params, seed=0, dtype="float64", method="auto")
    curvature, notes = curvature_for(obj, "auto")
    return landscape(obj, curvature, notes=notes, **kw)


@pytest.fixture(scope="module")
def quad(tmp_path_factory):
    path = tmp_path_factory.mktemp("quad") / "quad.py"
    path.write_text(QUADRATIC)
    return build(path, ",".join(map(str, X0)), lr=0.3, points=21, grid=11)


@pytest.fixture(scope="module")
def saddle():
    return build("saddle", "zeros", points=41, grid=9)


def f_quad(x):
    A, b, _ = quadratic_parts()
    return 0.5 * x @ A @ x + b @ x


def test_eigen_slices_are_the_analytic_parabolas(quad):
    A, b, Q = quadratic_parts()
    g = A @ X0 + b
    f0 = f_quad(X0)
    by = {s.name: s for s in quad.slices}
    for name, lam, q in (("max", 10.0, Q[:, 3]), ("min", -2.0, Q[:, 0])):
        s = by[name]
        assert s.eigenvalue == pytest.approx(lam, rel=1e-12)
        assert abs(s.direction @ q) == pytest.approx(1.0, abs=1e-12)
        expected = f0 + s.t * (g @ s.direction) + 0.5 * lam * s.t**2
        np.testing.assert_allclose(s.values, expected, rtol=1e-12, atol=1e-12)
        # for a quadratic the model is f itself
        np.testing.assert_allclose(s.model, s.values, rtol=1e-12, atol=1e-12)


def test_gradient_slice_is_the_descent_direction(quad):
    A, b, _ = quadratic_parts()
    g = A @ X0 + b
    s = next(s for s in quad.slices if s.name == "grad")
    np.testing.assert_allclose(s.direction, -g / np.linalg.norm(g), atol=1e-14)
    assert s.slope == pytest.approx(-np.linalg.norm(g), rel=1e-12)
    assert s.curvature == pytest.approx(g @ A @ g / (g @ g), rel=1e-12)
    expected = [f_quad(X0 + t * s.direction) for t in s.t]
    np.testing.assert_allclose(s.values, expected, rtol=1e-12, atol=1e-12)
    assert s.t.size == 21 and s.t[10] == 0.0


def test_step_marker_is_where_the_gradient_step_lands(quad):
    A, b, _ = quadratic_parts()
    g = A @ X0 + b
    lr = 0.3
    st = quad.step
    assert st.t == pytest.approx(lr * np.linalg.norm(g), rel=1e-12)
    assert st.value == pytest.approx(f_quad(X0 - lr * g), rel=1e-12)
    predicted = -lr * g @ g + 0.5 * lr**2 * g @ A @ g
    assert st.predicted_change == pytest.approx(predicted, rel=1e-10)
    assert st.increases_loss == (f_quad(X0 - lr * g) > f_quad(X0))
    assert st.best_t == pytest.approx(np.linalg.norm(g) ** 3 / (g @ A @ g), rel=1e-12)
    assert st.max_t == pytest.approx(2 * st.best_t, rel=1e-12)
    # λmin < 0 here, so the default plane is (grad, min); the step lies on the a axis
    grid = quad.grid
    assert grid.names == ("grad", "min")
    assert grid.step[0] == pytest.approx(st.t, rel=1e-12)
    assert grid.step[1] == pytest.approx(0.0, abs=1e-12)


def test_grid_matches_f_on_the_plane(quad):
    grid = quad.grid
    assert abs(grid.u @ grid.w) < 1e-12
    assert np.linalg.norm(grid.w) == pytest.approx(1.0)
    for i in (0, 3, 10):
        for j in (0, 5, 9):
            point = X0 + grid.a[j] * grid.u + grid.b[i] * grid.w
            assert grid.values[i, j] == pytest.approx(f_quad(point), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grid.model, grid.values, rtol=1e-10, atol=1e-10)


def test_saddle_escape_slice_falls_then_rises(saddle):
    by = {s.name: s for s in saddle.slices}
    assert "grad" not in by and saddle.step is None
    s = by["min"]
    assert s.eigenvalue == pytest.approx(-1.0)
    t = s.t
    # f(0, t) = ¼t⁴ − ½t², the model −½t²
    np.testing.assert_allclose(s.values, 0.25 * t**4 - 0.5 * t**2, atol=1e-14)
    np.testing.assert_allclose(s.model, -0.5 * t**2, atol=1e-14)
    right = s.values[(t >= 0) & (t <= 1)]
    assert np.all(np.diff(right) < 0)  # decreasing away from the saddle up to the minimum
    assert s.lowest_value == pytest.approx(-0.25) and abs(s.lowest_t) == pytest.approx(1.0)
    # the radius is where f leaves the model by half its change: ¼t⁴ > ¼t² for t > 1 -> 2
    assert saddle.radius == pytest.approx(2.0)
    np.testing.assert_allclose(by["max"].values, 0.5 * t**2, atol=1e-14)
    assert saddle.grid.names == ("max", "min")


def test_default_radius_shows_the_bowl_and_the_step():
    # ‖g‖ = 2, curvature along g = 4: bowl back at f(x) at 2·2/4 = 1; step at 0.5·2 = 1
    r, why = default_radius(2.0, 4.0, 0.25, [], None, 1.0)
    assert r == pytest.approx(1.25) and "bowl" in why
    r, why = default_radius(2.0, 4.0, 2.0, [], None, 1.0)
    assert r == pytest.approx(1.25 * 4.0) and "step" in why
    assert default_radius(0.0, None, 0.1, [], 0.5, 3.0)[0] == 0.5
    assert default_radius(0.0, None, 0.1, [], None, 3.0)[0] == 3.0


def test_one_parameter_has_slices_but_no_plane(write):
    path = write("one.py", "def objective(x):\n    return (x[0] - 1.0) ** 2\n")
    ls = build(path, "0", points=11, grid=5)
    assert ls.grid is None and any("no plane" in n for n in ls.notes)


def render_lines(ls) -> list[str]:
    from hesscli.render.landscape_view import render_landscape

    console = Console(width=80, record=True, color_system="truecolor")
    render_landscape(ls, console)
    return console.export_text().splitlines()


@pytest.mark.parametrize("which", ["quad", "saddle"])
def test_terminal_view_fits_80_columns(which, request):
    ls = request.getfixturevalue(which)
    lines = render_lines(ls)
    assert max(cell_len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "O" in text and "quadratic model" in text
    if which == "quad":
        assert "X x − lr·∇f" in text
    else:
        assert "the escape direction" in text


def test_ravine_cli_shows_the_overshoot(hess):
    # A = diag(1, 100), x = (1, 1): g = (1, 100), x − 0.05·g = (0.95, −4),
    # f goes from 50.5 to ½(0.95² + 100·16) = 800.45, a rise of 749.95
    res = hess("landscape", "ravine", "-p", "rotate=false", "--at", "1,1", "--lr", "0.05")
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "increases f by 750" in text
    assert "overshoots the valley" in text
    assert max(cell_len(line) for line in res.stdout.splitlines()) <= 80


def schema():
    text = resources.files("hesscli.schemas").joinpath("landscape.schema.json").read_text()
    return json.loads(text)


def test_json_validates_against_the_schema(hess):
    import jsonschema

    res = hess("landscape", "ravine", "-p", "rotate=false", "--at", "1,1", "--lr", "0.05",
               "--points", "11", "--grid", "5", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, schema())
    assert doc["schema"] == "hesscli.landscape/1"
    assert len(doc["grid"]["values"]) == 5 and len(doc["grid"]["values"][0]) == 5
    assert [s["direction"] for s in doc["slices"]] == ["grad", "max", "min"]
    assert doc["step"]["increases_loss"] is True
    assert doc["step"]["value"] == pytest.approx(0.5 * (0.95**2 + 100 * 16), rel=1e-12)
    assert doc["value"] == pytest.approx(50.5, rel=1e-12)
    res = hess("landscape", "saddle", "--at", "zeros", "--points", "11", "--grid", "5",
               "--plane", "min,max", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = res.json()
    jsonschema.validate(doc, schema())
    assert doc["step"] is None and doc["grid"]["directions"] == ["min", "max"]


def test_plots_png_and_svg(hess, tmp_path):
    import matplotlib.image

    from hesscli.render.plot_landscape import DPI, FIGSIZE

    png = tmp_path / "ravine.png"
    res = hess("landscape", "ravine", "--at", "1,1", "--lr", "0.05", "--points", "31",
               "--grid", "15", "--plot", png)
    assert res.exit_code == 0, res.output
    assert f"wrote {png}" in res.stderr
    image = matplotlib.image.imread(png)
    height, width = image.shape[:2]
    # bbox_inches="tight" trims the margins: within 10 % of the figure's size
    assert abs(width - FIGSIZE[0] * DPI) <= 0.1 * FIGSIZE[0] * DPI
    assert abs(height - FIGSIZE[1] * DPI) <= 0.1 * FIGSIZE[1] * DPI
    assert image[..., :3].std() > 0.05  # not a blank canvas
    umask = os.umask(0)
    os.umask(umask)
    assert png.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    svg = tmp_path / "saddle.svg"
    res = hess("landscape", "saddle", "--at", "zeros", "--points", "31", "--grid", "15",
               "--plot", svg)
    assert res.exit_code == 0, res.output
    assert "<svg" in svg.read_text()[:2000]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["saddle", "--at", "zeros", "--plane", "grad,min"], "the gradient is zero"),
        (["saddle", "--at", "zeros", "--plane", "max"], "two different directions"),
        (["saddle", "--at", "zeros", "--plot", "out.gif"], "unknown image format"),
        (["saddle", "--at", "zeros", "--radius", "-1"], "--radius must be a positive"),
    ],
)
def test_bad_input_is_exit_2(hess, args, message):
    res = hess("landscape", *args)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and message in res.stderr
