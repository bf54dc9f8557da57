"""Helpers shared by benchmarks: timing, compiled-memory size, result files, tables."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench-results"


def timeit(fn: Callable[[], Any], repeat: int = 5, min_time: float = 0.05) -> float:
    """Median seconds per call of ``fn`` (already warmed up by the caller)."""
    times = []
    for _ in range(repeat):
        count, start = 0, time.perf_counter()
        while True:
            fn()
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        times.append(elapsed / count)
    return statistics.median(times)


def block(x: Any) -> Any:
    """Wait for a JAX result (pytree) to be ready."""
    import jax

    return jax.block_until_ready(x)


def compiled_memory(jitted: Any, *args: Any) -> int | None:
    """Peak temporary + output bytes XLA reports for ``jitted(*args)``, None if unknown."""
    try:
        analysis = jitted.lower(*args).compile().memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None
    if analysis is None:
        return None
    return int(analysis.temp_size_in_bytes + analysis.output_size_in_bytes)


def write_results(name: str, results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": platform.platform(), "results": results}
    path.write_text(json.dumps(payload, indent=2, default=float))
    return path


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col != columns[0] else "left")
    for row in rows:
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)
