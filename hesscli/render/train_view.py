"""The ``train`` outputs: progress bar (stderr), summary tables, the JSON documents.

Renderers read :class:`hesscli.training.report.RunSummary` values and compute
nothing.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hesscli.render.console import stderr_console
from hesscli.render.numbers import num
from hesscli.vocab import Certainty, Classification, EventKind

SCHEMA = "hesscli.train/1"
COMPARE_SCHEMA = "hesscli.train-compare/1"
EVENT_STYLE = {
    "at_saddle": "bold yellow", "stalled": "yellow", "escaped_saddle": "bold green",
    "reached_minimum": "bold green", "unstable": "bold red", "diverged": "bold red",
    "progressive_sharpening": "magenta", "edge_of_stability": "bold cyan",
    "above_edge": "yellow",
    "adaptive_progressive_sharpening": "magenta", "adaptive_edge_of_stability": "bold cyan",
    "adaptive_above_edge": "yellow", "adaptive_unstable": "bold red",
}


class TrainProgress:
    """A Rich progress bar on stderr, one task per run; events are logged above it."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = stderr_console()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("f = {task.fields[value]}  ‖∇f‖ = {task.fields[gnorm]}"),
            TimeElapsedColumn(), console=self.console, disable=quiet, transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None and not issubclass(exc[0], KeyboardInterrupt):
            self.progress.live.transient = True  # an error ends the run: its line stands alone
        self.progress.__exit__(*exc)

    def start_task(self, label: str, total: int, done: int) -> None:
        self.tasks[label] = self.progress.add_task(label, total=total, completed=done,
                                                   value="—", gnorm="—")

    def update(self, p: Any, label: str) -> None:
        key = label if label in self.tasks else next(iter(self.tasks))
        self.progress.update(self.tasks[key], completed=p.state.step,
                             value=num(p.record.value), gnorm=num(p.record.gradient_norm))
        for event in p.events:
            prefix = f"{label}: " if label else ""
            self.progress.console.print(
                f"[{EVENT_STYLE.get(event.kind, '')}]step {event.step}: {prefix}"
                f"{event.message}[/]", highlight=False)


def _headline(s: Any) -> str:
    r, a = s.result, s.analysis
    kinds = [e.kind for e in r.events]
    parts = []
    if "diverged" in kinds:
        ev = next(e for e in r.events if e.kind == EventKind.DIVERGED)
        parts.append(f"Diverged at step {ev.step}: {ev.data.get('reason')}; "
                     f"{ev.data.get('parameter')} blew up first.")
    esc = [e for e in r.events if e.kind == EventKind.ESCAPED_SADDLE]
    if esc:
        parts.append(f"Escaped the saddle at step {esc[0].step}.")
    parts += _dynamics_sentences(r)
    last = r.history[-1].block_lambda_max if r.history else None
    if last:
        name, lam = max(last.items(), key=lambda kv: kv[1])
        first = next((h.block_lambda_max for h in r.history if h.block_lambda_max), {})
        grew = max(first, key=lambda k: last[k] - first[k]) if first else None
        parts.append(f"Sharpest block at the end: {name} (λmax = {num(lam)}, lr·λmax = "
                     f"{num(r.config.lr * lam, 3)})"
                     + (f"; {grew} sharpened most ({num(first[grew])} → {num(last[grew])})."
                        if grew is not None else "."))
    if a is not None:
        verdict = a.classification.replace("_", " ")
        if a.classification == Classification.SADDLE_POINT:
            parts.append(f"Ended at a saddle point (λmin = {num(a.spectrum.lambda_min)}): "
                         "the gradient is zero, so plain gradient descent cannot leave; "
                         "try --noisy.")
        elif a.classification == Classification.NOT_CRITICAL and r.config.noise is not None and \
                (r.config.noise_steps is None or r.config.noise_steps >= r.steps):
            parts.append(f"Ended not critical (‖∇f‖ = {num(a.gradient_norm)} > gtol): the "
                         "noise keeps the point moving; --noise-steps N ends with plain steps.")
        elif a.classification == Classification.NOT_CRITICAL:
            parts.append(f"Final point not critical yet (‖∇f‖ = {num(a.gradient_norm)} > gtol = "
                         f"{num(a.gtol)}); the Hessian there is "
                         f"{a.definiteness.replace('_', ' ')}"
                         + (": still converging toward a minimum." if a.definiteness ==
                            "positive_definite" else "."))
        elif a.classification == Classification.UNDETERMINED:
            parts.append("Final point: undetermined (" + (
                "not smooth there: a kink" if a.smooth is False else
                "the matrix-free extremes do not decide it") + "; see the notes).")
        elif a.certainty.get("classification") == Certainty.PROBABILISTIC:
            parts.append(f"Final point: {verdict}, with probability ≥ "
                         f"{a.certainty.get('probability') or 0:.3g} over the random start "
                         "(a matrix-free run can miss an eigenvector; see the notes).")
        else:
            parts.append(f"Final point: {verdict}.")
    return " ".join(parts)


def _dynamics_sentences(r: Any) -> list[str]:
    """The span events in words: sharpening, edge of stability, real instability."""
    out = []
    for e in r.events:
        d = e.data
        if e.kind == EventKind.PROGRESSIVE_SHARPENING:
            out.append(f"Progressive sharpening over steps {d['start']}–{d['end']}: λmax rose "
                       f"from {num(d['lambda_max_start'])} to {num(d['lambda_max_end'])} "
                       f"(lr·λmax {num(d['lr_times_lambda_max_start'], 3)} → "
                       f"{num(d['lr_times_lambda_max_end'], 3)}).")
        elif e.kind == EventKind.EDGE_OF_STABILITY:
            out.append(f"Edge of stability over steps {d['start']}–{d['end']}: lr·λmax hovered "
                       f"around {num(d['bound'], 3)} (median "
                       f"{num(d['lr_times_lambda_max_median'], 4)}, "
                       f"{d['share_in_band']:.0%} of the records within ± {num(d['band'], 3)}; "
                       f"range {num(d['lr_times_lambda_max_min'], 4)}–"
                       f"{num(d['lr_times_lambda_max_max'], 4)}) while f fell from "
                       f"{num(d['value_start'], 4)} to {num(d['value_end'], 4)}: gradient "
                       "descent is regulating its own sharpness (Cohen et al. 2021), not "
                       "diverging.")
        elif e.kind == EventKind.UNSTABLE:
            out.append(f"Unstable over steps {d.get('start', e.step)}–{d.get('end', e.step)}: "
                       f"lr·λmax reached {num(d.get('lr_times_lambda_max'), 4)} and f rose; "
                       "lower the learning rate.")
        elif e.kind == EventKind.ADAPTIVE_EDGE_OF_STABILITY:
            out.append(f"Adaptive edge of stability over steps {d['start']}–{d['end']}: "
                       f"lr·λmax(P⁻¹H) hovered around {num(d['bound'], 3)} (median "
                       f"{num(d['lr_times_lambda_max_median'], 4)}) while f fell from "
                       f"{num(d['value_start'], 4)} to {num(d['value_end'], 4)}: "
                       f"{r.config.optimizer} is regulating its preconditioned sharpness "
                       "(Cohen et al. 2022), not diverging.")
        elif e.kind == EventKind.ADAPTIVE_UNSTABLE:
            out.append(f"Unstable ({r.config.optimizer}) over steps {d.get('start', e.step)}–"
                       f"{d.get('end', e.step)}: lr·λmax(P⁻¹H) reached "
                       f"{num(d.get('lr_times_lambda_max'), 4)} > {num(d.get('bound'), 3)} and "
                       "f rose; lower the learning rate.")
        elif e.kind == EventKind.ABOVE_EDGE:
            out.append(f"Above the edge over steps {d['start']}–{d['end']}: lr·λmax up to "
                       f"{num(d['lr_times_lambda_max_max'], 4)} > 2 without divergence; f "
                       f"{num(d['value_start'], 4)} → {num(d['value_end'], 4)}.")
    return out


def render_train(s: Any, console: Console) -> None:
    r = s.result
    c = r.config
    title = f"train {s.objective}: {c.optimizer}{' + noise' if c.noise is not None else ''}"
    console.print(f"[bold]{title}[/bold]  (n = {s.n}, lr = {num(c.lr)}, "
                  f"{r.steps} of {s.requested_steps} steps)")
    console.print(_headline(s))
    from hesscli.training.optimizers import plain_gd

    adaptive = any(rec.preconditioned_lambda_max is not None for rec in r.history)
    title = "History (logged steps)"
    gd = "" if plain_gd(c.optimizer) else " (GD)"  # plain-GD diagnostics: see the note
    if adaptive:  # Adam-type: λmax(P⁻¹H) against its threshold is the criterion (see the note)
        bound = next(rec.preconditioned_bound for rec in r.history
                     if rec.preconditioned_bound is not None)
        title = (f"History (logged steps; {c.optimizer} is stable while lr·λmax(P⁻¹H) < "
                 f"{num(bound, 3)})")
        cols = ("step", "f", "‖∇f‖", "λmin", "λmax", "λmax(P⁻¹H)", "lr·λmax(P⁻¹H)")
    else:
        cols = ("step", "f", "‖∇f‖", "λmin", "λmax", f"lr·λmax{gd}", f"model error{gd}")
    table = Table(title=title, show_lines=False)
    for col in cols:
        table.add_column(col, justify="right")
    rows = list(r.history)
    if len(rows) > 12:
        rows = rows[:5] + [None] + rows[-6:]
    for rec in rows:
        if rec is None:
            table.add_row("…", *([""] * (len(cols) - 1)))
            continue
        if adaptive:
            ratio, limit = rec.lr_times_preconditioned_lambda_max, rec.preconditioned_bound
            ratio_text = (num(ratio) if ratio is None or limit is None or ratio <= limit
                          else f"[bold red]{num(ratio)}[/]")
            table.add_row(str(rec.step), num(rec.value, 6), num(rec.gradient_norm),
                          num(rec.lambda_min), num(rec.lambda_max),
                          num(rec.preconditioned_lambda_max), ratio_text)
            continue
        ratio = rec.lr_times_lambda_max
        ratio_text = num(ratio) if ratio is None or ratio <= 2 else f"[bold red]{num(ratio)}[/]"
        table.add_row(str(rec.step), num(rec.value, 6), num(rec.gradient_norm),
                      num(rec.lambda_min), num(rec.lambda_max), ratio_text,
                      num(rec.model_error))
    console.print(table)
    if r.events:
        ev = Table(title="Events")
        ev.add_column("step", justify="right")
        ev.add_column("event")
        ev.add_column("detail")
        for e in r.events:
            ev.add_row(str(e.step), f"[{EVENT_STYLE.get(e.kind, '')}]{e.kind}[/]", e.message)
        console.print(ev)
    _final_table(s, console)
    if s.report is not None:
        _report_table(s.report, console)
    for note in _notes(s):
        console.print(f"[dim]note: {note}[/dim]")


def _notes(s: Any) -> list[str]:
    r = s.result
    notes = list(r.notes)
    if s.analysis is not None:
        notes += list(s.analysis.notes)
    total = num(r.train_seconds + r.monitor_seconds, 3)
    notes.append(f"monitoring took {100 * r.monitor_share:.0f}% of {total} s "
                 "(the rest: compiled training steps, compilation included)")
    return notes


def _final_table(s: Any, console: Console) -> None:
    r, a = s.result, s.analysis
    t = Table(title="Final point", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    t.add_row("value", num(r.final.value, 8))
    t.add_row("gradient norm", num(r.final.gradient_norm))
    if a is not None:
        t.add_row("classification", a.classification.replace("_", " "))
        t.add_row("λmin, λmax", f"{num(a.spectrum.lambda_min)}, {num(a.spectrum.lambda_max)}")
        t.add_row("tolerances", f"gtol {num(a.gtol)}, tol {num(a.tolerance)}")
    if s.n <= 8:
        t.add_row("point", ", ".join(f"{name} = {num(float(v), 6)}"
                                     for name, v in zip(s.names, r.x, strict=False)))
    console.print(t)


def _report_table(report: dict[str, Any], console: Console) -> None:
    t = Table(title="Problem report", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    for key, value in report.items():
        if isinstance(value, list):
            text = ", ".join(num(v) if isinstance(v, float) else str(v) for v in value[:12])
            text += " …" if len(value) > 12 else ""
        elif isinstance(value, float):
            text = num(value, 6)
        else:
            text = str(value)
        t.add_row(key, text)
    console.print(t)


def render_compare(summaries: list[Any], console: Console) -> None:
    first = summaries[0]
    console.print(f"[bold]train {first.objective}: {len(summaries)} variants from the same "
                  f"start and seed[/bold] (n = {first.n})")
    t = Table(title="Side by side")
    t.add_column("", style="bold")
    for s in summaries:
        t.add_column(s.name, justify="right")

    def row(name: str, fn: Any) -> None:
        t.add_row(name, *[fn(s) for s in summaries])

    row("optimizer", lambda s: s.result.config.optimizer
        + (" + noise" if s.result.config.noise is not None else ""))
    row("steps", lambda s: str(s.result.steps))
    row("final f", lambda s: num(s.result.final.value, 6))
    row("final ‖∇f‖", lambda s: num(s.result.final.gradient_norm))
    row("final λmin", lambda s: num(s.result.final.lambda_min))
    row("classification", lambda s: s.analysis.classification.replace("_", " ")
        if s.analysis is not None else "—")
    seen = {e.kind for s in summaries for e in s.result.events}
    dynamics = [k for k in ("progressive_sharpening", "edge_of_stability", "above_edge",
                            "adaptive_progressive_sharpening", "adaptive_edge_of_stability",
                            "adaptive_above_edge", "adaptive_unstable")
                if k in seen]  # shown only when some run has them
    for kind in ("at_saddle", "escaped_saddle", "reached_minimum", *dynamics, "unstable",
                 "diverged"):
        row(kind, lambda s, k=kind: ", ".join(str(e.step) for e in s.result.events
                                               if e.kind == k) or "—")
    row("monitoring share", lambda s: f"{100 * s.result.monitor_share:.0f}%")
    console.print(t)
    if any(s.report for s in summaries):
        for s in summaries:
            if s.report:
                console.print(f"[bold]{s.name}[/bold]")
                _report_table(s.report, console)
    for s in summaries:
        console.print(f"{s.name}: {_headline(s)}")
