"""Each command's view of a :class:`hesscli.api.Result`: its Rich report and its figure.

One place for both audiences: the commands print :func:`show` (the table of
``--format table``) and save :func:`figure` (``--plot``); a notebook displays
the same report (``Result.__rich__``, ``_repr_html_``, ``_repr_pretty_``) and
gets the same figure from ``res.plot()``. Nothing here computes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from hesscli.errors import InputError

#: the commands that draw a figure (``--plot``)
PLOTS = ("spectrum", "landscape", "train")


def _runs(res: Any) -> list[Any]:
    """A train result's runs: one, or the ``--compare`` variants."""
    out = res.output
    return list(out.runs) if hasattr(out, "runs") else [out]


def _analyze(res: Any, console: Console, **_: Any) -> None:
    from hesscli.render.analyze_view import render_analysis

    parallel = res.parallel
    rows = [("devices", parallel.describe())] if parallel.sharded else []
    render_analysis(res.output, console, rows=rows)
    if "blocks" in res.parts:
        from hesscli.render.curvatures_view import title_of
        from hesscli.render.structure_view import render_blocks

        render_blocks(res.parts["blocks"], console, title_of(res.output.curvature))
    if "curvatures" in res.parts:
        from hesscli.render.curvatures_view import render_curvatures

        render_curvatures(res.parts["curvatures"], console)
    if "null_space" in res.parts:
        from hesscli.render.structure_view import render_null_space

        render_null_space(res.parts["null_space"], console)
    if "preconditioned" in res.parts:
        from hesscli.render.preconditioned_view import render_preconditioned

        render_preconditioned(res.parts["preconditioned"], console)
    if "stream" in res.parts:
        from hesscli.render.stream_view import render_stream

        render_stream(res.parts["stream"], console)


def _spectrum(res: Any, console: Console, plot: Path | None = None, **_: Any) -> None:
    from hesscli.analysis.spectrum_compare import Comparison
    from hesscli.render.spectrum_view import render_comparison, render_spectrum

    render = render_comparison if isinstance(res.output, Comparison) else render_spectrum
    render(res.output, console, plot)
    if "stream" in res.parts:
        from hesscli.render.stream_view import render_stream

        render_stream(res.parts["stream"], console)


def _gradcheck(res: Any, console: Console, **_: Any) -> None:
    from hesscli.render.gradcheck_view import render_gradcheck

    render_gradcheck(res.output, console)


def _convexity(res: Any, console: Console, **_: Any) -> None:
    from hesscli.render.convexity_view import render_convexity

    render_convexity(res.output, res.objective.layout, console)


def _landscape(res: Any, console: Console, **_: Any) -> None:
    from hesscli.render.landscape_view import render_landscape

    render_landscape(res.output, console)


def _train(res: Any, console: Console, **_: Any) -> None:
    from hesscli.render.train_view import render_compare, render_train

    runs = _runs(res)
    if len(runs) == 1:
        render_train(runs[0], console)
    else:
        render_compare(runs, console)


def _check(res: Any, console: Console, **_: Any) -> None:
    from hesscli.render.check_view import render_report

    render_report(res.output, console)


VIEWS: dict[str, Callable[..., None]] = {
    "analyze": _analyze, "spectrum": _spectrum, "gradcheck": _gradcheck,
    "convexity": _convexity, "landscape": _landscape, "train": _train, "check": _check,
}


def show(res: Any, console: Console, **context: Any) -> None:
    """Print ``res`` as its command prints it with ``--format table`` (``context``: what
    only the command knows, such as spectrum's ``plot`` path)."""
    VIEWS[res.command](res, console, **context)


def recorded(res: Any, width: int = 100) -> Console:
    """A recording console holding ``res``'s report (for text, ANSI and HTML export)."""
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True,
                      highlight=False,
                      color_system="truecolor")
    show(res, console)
    return console


def text(res: Any, width: int = 100, styles: bool = False) -> str:
    """The report as text (``styles``: with ANSI colour codes)."""
    return recorded(res, width).export_text(styles=styles)


def html(res: Any, width: int = 100) -> str:
    """The report as an HTML fragment with inline styles (what Jupyter shows)."""
    console = recorded(res, width)
    body = console.export_html(inline_styles=True, code_format="{code}")
    return ('<pre style="white-space: pre; overflow-x: auto; line-height: normal; '
            "font-family: Menlo, 'DejaVu Sans Mono', consolas, 'Courier New', monospace\">"
            f"{body}</pre>")


def figure(res: Any) -> Any:
    """The figure ``--plot`` saves for ``res`` (a matplotlib ``Figure``)."""
    if res.command == "spectrum":
        from hesscli.analysis.spectrum_compare import Comparison
        from hesscli.render.plot_spectrum import comparison_figure, spectrum_figure

        several = isinstance(res.output, Comparison)
        return (comparison_figure if several else spectrum_figure)(res.output)
    if res.command == "landscape":
        from hesscli.render.plot_landscape import landscape_figure

        return landscape_figure(res.output)
    if res.command == "train":
        from hesscli.render.plot_train import training_figure

        return training_figure(_runs(res))
    raise InputError(f"{res.command} draws no figure; the commands with --plot are "
                     f"{', '.join(PLOTS)}")
