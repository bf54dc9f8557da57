"""Results in a notebook: the command's report as the display, the command's figure from
``res.plot()``, the result types importable from ``hesscli`` itself.

The display is compared with what the command prints (the same view by
construction, checked here) and with facts derived by hand: the saddle
f = ½x² + ¼y⁴ − ½y² at 0 has H = diag(1, −1), so the report says saddle point
and λmin = −1. The training figure's curves are compared with gradient descent
on that function computed here in NumPy.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import hesscli
from hesscli.errors import InputError

pytest.importorskip("matplotlib")


class Printer:
    """The part of IPython's pretty printer ``_repr_pretty_`` uses."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, text: str) -> None:
        self.parts.append(text)


def words(text: str) -> list[str]:
    return text.split()


@pytest.fixture(scope="module")
def saddle():
    return hesscli.analyze("saddle", "zeros")


def test_the_display_is_the_commands_report(saddle, hess):
    printer = Printer()
    saddle._repr_pretty_(printer, False)
    (shown,) = printer.parts
    assert "saddle point" in shown and "λmin = -1" in shown
    assert "indefinite" in shown and "x[1]" in shown  # the escape direction's parameter
    cli = hess("analyze", "saddle", "--at", "zeros")
    assert cli.exit_code == 0, cli.output
    from hesscli.render.views import text

    assert words(text(saddle, width=80)) == words(cli.stdout)  # CliRunner: 80 columns


def test_html_and_rich_show_the_same_report(saddle):
    from rich.console import Console

    html = saddle._repr_html_()
    assert html.startswith("<pre") and "saddle point" in html and "indefinite" in html
    assert "<span style=" in html  # styled: the verdict's colour survives
    console = Console(record=True, width=72, color_system=None)
    console.print(saddle)
    shown = console.export_text()
    assert "saddle point" in shown and "indefinite" in shown
    assert max(len(line) for line in shown.splitlines()) <= 72  # at the console's width
    printer = Printer()
    saddle._repr_pretty_(printer, True)
    assert printer.parts == ["<hesscli analyze result>"]


def test_a_train_result_displays_its_run(hess):
    res = hesscli.train("saddle", "zeros", steps=20, monitor_every=10, lr=0.1)
    printer = Printer()
    res._repr_pretty_(printer, False)
    (shown,) = printer.parts
    assert "at_saddle" in shown and "saddle point" in shown.replace("_", " ")


def gradient_descent(x, lr, steps):
    """GD on f = ½x² + ¼y⁴ − ½y² (∇f = (x, y³ − y)), every point of the way."""
    out = [np.array(x, dtype=float)]
    for _ in range(steps):
        px, py = out[-1]
        out.append(out[-1] - lr * np.array([px, py**3 - py]))
    return np.array(out)


def test_plot_returns_the_training_figure_with_its_curves():
    from matplotlib.figure import Figure

    lr = 0.1
    res = hesscli.train("saddle", "0.5,0.5", steps=30, monitor_every=10, lr=lr)
    fig = res.plot()
    assert isinstance(fig, Figure)
    ax_f, ax_g, ax_l = fig.axes
    assert (ax_f.get_ylabel(), ax_g.get_ylabel(), ax_l.get_ylabel()) == (
        "f", "‖∇f‖", "eigenvalues")
    path = gradient_descent([0.5, 0.5], lr, 30)[::10]
    x, y = path[:, 0], path[:, 1]
    f = 0.5 * x**2 + 0.25 * y**4 - 0.5 * y**2
    (value,) = [line for line in ax_f.lines if line.get_label() == "sgd"]
    np.testing.assert_allclose(value.get_xdata(), [0, 10, 20, 30])
    np.testing.assert_allclose(value.get_ydata(), f, rtol=1e-12)
    (gnorm,) = ax_g.lines
    np.testing.assert_allclose(gnorm.get_ydata(), np.hypot(x, y**3 - y), rtol=1e-12)
    # H = diag(1, 3y² − 1): λmax and λmin along the way
    lines = {line.get_label(): line for line in ax_l.lines}
    hess_y = 3 * y**2 - 1
    np.testing.assert_allclose(lines["sgd: λmax"].get_ydata(), np.maximum(1.0, hess_y),
                               rtol=1e-10)
    np.testing.assert_allclose(lines["sgd: λmin"].get_ydata(), np.minimum(1.0, hess_y),
                               rtol=1e-10)


def test_plot_is_the_figure_the_command_saves(hess, tmp_path):
    """The same figure: the command's PNG and res.plot() saved the same way are one file."""
    from hesscli.render.plotting import save_figure

    args = dict(steps=20, monitor_every=10, lr=0.1)
    cli_png = tmp_path / "cli.png"
    cli = hess("train", "saddle", "--at", "0.5,0.5", "--steps", 20, "--monitor-every", 10,
               "--lr", 0.1, "--plot", cli_png)
    assert cli.exit_code == 0, cli.output
    api_png = tmp_path / "api.png"
    save_figure(hesscli.train("saddle", "0.5,0.5", **args).plot(), api_png)
    assert api_png.read_bytes() == cli_png.read_bytes()


def test_spectrum_and_landscape_figures_and_no_figure_for_analyze(saddle):
    from matplotlib.figure import Figure

    sp = hesscli.spectrum("ravine", "1,1")
    fig = sp.plot()
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    # the dense histogram holds every eigenvalue once: its bar heights sum to n
    (bars,) = ax.containers
    assert sum(bar.get_height() for bar in bars) == pytest.approx(sp.n)
    ls = hesscli.landscape("saddle", "zeros", points=5, grid=3)
    assert isinstance(ls.plot(), Figure)
    with pytest.raises(InputError, match="analyze draws no figure"):
        saddle.plot()


def test_result_types_are_exported_lazily():
    from hesscli.analysis.analyze import Analysis
    from hesscli.training.report import RunSummary, TrainComparison

    assert hesscli.Analysis is Analysis and hesscli.RunSummary is RunSummary
    assert hesscli.TrainComparison is TrainComparison
    assert {"Result", "Analysis", "SpectrumReport", "RunSummary"} <= set(dir(hesscli))
    code = ("import sys, hesscli\n"
            "assert 'Analysis' in hesscli.__all__\n"
            "heavy = [m for m in ('jax', 'rich', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
