"""The progress line of a long matrix-free run, on stderr.

A run that is still computing after :data:`DELAY` seconds shows one Rich line
that the solver's reports (:class:`hesscli.progress.Progress`) keep up
to date: HVPs so far, restarts, and for each end the current Ritz value with
its bound against the target. On a terminal the line is redrawn in place and
removed at the end (the report on stdout says the rest); when stderr is not a
terminal nothing is shown unless asked (``--progress``), and then each update
is a plain line, at most one per :data:`DELAY` seconds. Nothing goes to stdout.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from hesscli.progress import OnProgress, Progress, reporting

if TYPE_CHECKING:  # Rich is imported only when a line is shown (JSON runs never need it)
    from rich.console import Console
    from rich.text import Text

DELAY = 1.0  # seconds: shorter runs show nothing


def end_text(name: str, value: float, bound: float, target: float) -> str:
    """'λmax 12.34 ±3.1e-05 ✓' (the tick once the bound meets the target)."""
    text = f"{name} …" if math.isnan(value) else f"{name} {value:.6g}"
    if not math.isnan(bound):
        text += f" ±{bound:.1e}"
        if not math.isnan(target) and bound <= target:
            text += " ✓"
    return text


def progress_text(p: Progress) -> str:
    """The line for one report."""
    if p.batch:  # a pass over streamed data: which batch, how many products so far
        return (f"data set: batch {p.batch}/{p.batches or '?'} · {p.hvps} HVPs over the "
                "data done")
    parts = [f"{p.solver} {p.hvps} HVPs"]
    if p.restarts:
        parts.append(f"{p.restarts} restart{'s' if p.restarts != 1 else ''}")
    parts.append(end_text("λmax", p.lambda_max, p.bound_max, p.target))
    parts.append(end_text("λmin", p.lambda_min, p.bound_min, p.target))
    if not math.isnan(p.target):
        parts.append(f"target {p.target:.1e}")
    return " · ".join(parts)


def line(text: str) -> Text:
    """One terminal line: cut with an ellipsis rather than wrapped (it is redrawn)."""
    from rich.text import Text

    return Text(text, no_wrap=True, overflow="ellipsis")


class ProgressLine:
    """An ``on_progress`` that draws :func:`progress_text` on ``console`` after ``delay``.

    Reports arriving before ``delay`` seconds have passed since construction
    are kept but not shown (a quick run prints nothing). Thread-safe: reports
    from compiled code arrive on JAX's callback thread.
    """

    def __init__(self, console: Console, delay: float = DELAY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.delay = delay
        self.clock = clock
        self.start = clock()
        self.last_print = -math.inf
        self.live: Any = None
        self.lock = threading.Lock()
        self.shown = 0  # updates drawn (for tests and the final flush)

    def __call__(self, progress: Progress) -> None:
        now = self.clock()
        if now - self.start < self.delay:
            return
        text = progress_text(progress)
        with self.lock:
            if self.console.is_terminal:
                if self.live is None:
                    from rich.live import Live

                    self.live = Live(line(text), console=self.console, transient=True,
                                     refresh_per_second=4, redirect_stdout=False,
                                     redirect_stderr=False)
                    self.live.start()
                else:
                    self.live.update(line(text))
            elif now - self.last_print >= self.delay:
                self.console.print(text, markup=False, highlight=False, soft_wrap=True)
                self.last_print = now
            else:
                return
            self.shown += 1

    def close(self) -> None:
        with self.lock:
            if self.live is not None:
                self.live.stop()
                self.live = None


@contextlib.contextmanager
def progress_line(enabled: bool | None, console: Console | None = None,
                  delay: float | None = None) -> Iterator[OnProgress | None]:
    """Within the block, eigensolvers report to a :class:`ProgressLine` on stderr.

    ``enabled``: True (``--progress``), False (``--no-progress``) or None (only
    when stderr is a terminal). Yields the sink (None when nothing is shown).
    """
    terminal = console.is_terminal if console is not None else sys.stderr.isatty()
    if not (terminal if enabled is None else enabled):
        yield None
        return
    if console is None:
        from hesscli.render.console import stderr_console

        console = stderr_console()
    line = ProgressLine(console, delay=DELAY if delay is None else delay)
    try:
        with reporting(line):
            yield line
    finally:
        line.close()
