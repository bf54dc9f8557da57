"""``--batch-size`` and ``--batches``: a data set streamed one batch at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def _batches(ctx: click.Context, param: click.Parameter, value: str | None) -> str | int | None:
    if value is None or value.strip().lower() == "all":
        return value
    try:
        count = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a positive integer or 'all'") from None
    if count < 1:
        raise click.BadParameter(f"must be at least 1 (or 'all'); got {count}")
    return count


def stream_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--batch-size B`` and ``--batches N|all`` to a command."""
    fn = click.option(
        "--batches", "batches", default=None, callback=_batches, metavar="N|all",
        help="Streamed data: use the first N batches (default: all, when the file defines "
        "batches() or --batch-size is given; an N above the number of batches means all).",
    )(fn)
    return click.option(
        "--batch-size", "batch_size", type=click.IntRange(min=1), default=None,
        help="Stream the file's data arrays in batches of B samples (the last may be "
        "smaller): value, gradient and curvature over the data set are sample-weighted "
        "means of per-batch ones, with the memory of one batch; reports the batch-to-batch "
        "spread of λmax and the trace. A file's batches() generator streams without it.",
    )(fn)
