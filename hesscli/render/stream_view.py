"""The streamed data set in the table: its batches and their variability (estimates)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from hesscli.render.numbers import num


def stream_sentence(part: Any) -> str:
    s = part.stream
    return (f"Data set: {s.count} batch{'es' if s.count != 1 else ''}, {s.samples} samples, "
            f"streamed from {s.how}; {part.hvps} products over the data set "
            f"({s.passes} passes over the batches).")


def spread_table(part: Any) -> Table:
    sp = part.spread
    t = Table(title=f"Batch to batch ({sp.kind}; estimates)", title_justify="left")
    for col, just in (("per batch", "left"), ("mean", "right"), ("std", "right"),
                      ("std. error", "right"), ("weighted mean", "right"),
                      ("min", "right"), ("max", "right")):
        t.add_column(col, justify=just)
    for name, s in (("λmax", sp.lambda_max), ("trace", sp.trace)):
        t.add_row(name, num(s.mean), num(s.std), num(s.stderr), num(s.weighted_mean),
                  num(float(s.per_batch.min())), num(float(s.per_batch.max())))
    t.caption = (f"λmax: Ritz value after {sp.lanczos_steps} Lanczos steps per batch (a lower "
                 f"bound on that batch's λmax); trace: Hutchinson, {sp.probes} probes per "
                 "batch (the same probes for every batch). std. error = std/√batches")
    return t


def render_stream(part: Any, console: Console) -> None:
    console.print()
    console.print(stream_sentence(part))
    if part.spread is not None:
        console.print(spread_table(part))
