"""The one home of matplotlib: figures for spectra, training curves and landscapes.

matplotlib is an optional extra (``pip install 'hesscli[plot]'``); asking for a
plot without it is an input error with that fix. Figures are rendered with the
Agg backend (no display needed) and written atomically; the format follows the
file's suffix (``.png`` or ``.svg``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hesscli.errors import InputError
from hesscli.files import atomic_write

FORMATS = (".png", ".svg")


MISSING = ("--plot needs matplotlib, which is not installed; "
           "install it with: pip install 'hesscli[plot]'")


def require_matplotlib() -> None:
    """Fail (exit 2) when matplotlib cannot be imported, without importing it (fast)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise InputError(MISSING)


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or a clear error when it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise InputError(MISSING) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def new_figure(**options: Any) -> Any:
    """A matplotlib ``Figure`` outside pyplot (no backend switched, no global figure list).

    What every plot here draws on: the command saves it (:func:`save_figure`), and a
    notebook displays the one ``res.plot()`` returns, the same figure.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError(MISSING) from None
    return Figure(**options)


def check_plot_path(path: Path | str) -> Path:
    """Validate ``--plot FILE`` before any work is done: suffix, folder, and matplotlib.

    Every command calls this before loading the objective, so a missing optional
    package costs nothing (not a long run followed by an error).
    """
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InputError(
            f"--plot {str(path)!r}: unknown image format {path.suffix!r}; use .png or .svg"
        )
    from hesscli.files import check_output

    check_output(path, "--plot")
    require_matplotlib()
    return path


def save_figure(fig: Any, path: Path | str, dpi: int = 120) -> None:
    """Write ``fig`` to ``path`` atomically (PNG or SVG by suffix) and close it."""
    path = check_plot_path(path)
    fmt = path.suffix.lower().lstrip(".")
    plt = pyplot()
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight"))
    finally:
        plt.close(fig)
