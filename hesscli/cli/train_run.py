"""What ``hesscli train`` adds to :func:`hesscli.api.train`: its files, its bar, its exit codes.

The API trains (loading, backends, the memory check, variants, resume, the
document); this module holds only what belongs to a command: the checks of
the command's own options and output files before any work, the JSONL run
log (``--out``, ``--checkpoint-every``, appending on ``--resume``) and the
progress bar as observers of the API's runs, the Ctrl-C message, and after the
runs ``--save-point``, ``--plot``, the printed result, ``--fail-on`` and
``--expect``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hesscli.errors import CheckFailed, InputError
from hesscli.training.observers import Observer
from hesscli.vocab import EventKind, RecordKind, words

SAVE_SUFFIXES = (".npz", ".json", ".npy", ".txt", ".csv", ".msgpack", ".safetensors", ".eqx",
                 "")  # "": a folder, written as an orbax checkpoint
EVENT_KINDS = words(EventKind)
#: the command's own options: handled here, not passed to :func:`hesscli.api.train`
CLI_ONLY = ("out", "checkpoint_every", "force", "save_point", "plot", "fail_on", "no_curvature")


def check_inputs(p: dict[str, Any]) -> None:
    """The command's own options and every file the run will write, checked before any work
    (a missing folder or two options naming one file must not cost a finished run)."""
    out, resume, save_point, plot = p["out"], p["resume"], p["save_point"], p["plot"]
    if p["checkpoint_every"] is not None and p["checkpoint_every"] < 1:
        raise InputError(f"--checkpoint-every must be at least 1; got {p['checkpoint_every']}")
    if p["checkpoint_every"] is not None and out is None and resume is None:
        raise InputError("--checkpoint-every sets how often the run log (--out, or the "
                         "--resume log it appends to) gets the state; give --out FILE.jsonl "
                         "too")
    if plot is not None:
        from hesscli.render.plotting import check_plot_path

        check_plot_path(plot)
    if save_point is not None and save_point.suffix.lower() not in SAVE_SUFFIXES:
        raise InputError(f"--save-point {str(save_point)!r}: use one of "
                         f"{', '.join(s for s in SAVE_SUFFIXES if s)} or a folder (orbax)")
    if save_point is not None:
        from hesscli.objective.checkpoints import check_writer

        check_writer(save_point, "--save-point")
    from hesscli.files import check_outputs

    log_option = "--out" if out is not None else "--resume"
    check_outputs({log_option: out or resume, "--save-point": save_point, "--plot": plot},
                  directories=("--save-point",))
    if p["compare"] and (resume or save_point):
        raise InputError("--compare runs several variants; --resume and --save-point take one "
                         "run (drop --compare)")
    check_out(out, resume, p["force"])
    if p["fail_on"]:
        for kind in p["fail_on"].split(","):
            if kind.strip() not in EVENT_KINDS:
                raise InputError(f"--fail-on {kind.strip()!r}: not an event; choose from "
                                 f"{', '.join(EVENT_KINDS)}")


def check_out(out: Path | None, resume: Path | None, force: bool) -> None:
    """Refuse to truncate an existing ``--out`` file (it may hold a run worth keeping).

    Appending to the ``--resume`` log itself is the one safe reuse; anything
    else needs ``--force``. Checked before any work, so nothing is touched.
    """
    if out is None or force or not Path(out).exists():
        return
    if resume is not None and Path(out).resolve() == Path(resume).resolve():
        return
    raise InputError(f"--out {str(out)!r} exists; train would overwrite it (pass --force to "
                     "overwrite, or --resume it to continue that run)")


def check_expect_keys(items: tuple[str, ...]) -> None:
    """A misspelt top-level ``--expect`` key: exit 2 before training, not after it."""
    from hesscli.errors import closest
    from hesscli.expect import key_steps, parse
    from hesscli.schemas import load_schema

    fields = list(load_schema("train")["$defs"]["run"]["properties"])
    for text in items:
        root = key_steps(parse(text).key)[0]
        if root not in fields:
            raise InputError(f"--expect {text!r}: no field {root!r} in the hesscli.train/1 "
                             f"document{closest(str(root), fields, n=1)}")


class RunLogSink(Observer):
    """The ``--out FILE.jsonl`` run log, written as the runs go (:mod:`hesscli.training.runlog`).

    Records and events at every logged step; the state (what ``--resume`` needs)
    every ``--checkpoint-every`` steps, at the end and on Ctrl-C. With
    ``--resume`` and no ``--out`` it appends to the resumed log (after dropping the
    lines logged past its last state).
    """

    def __init__(self, out: Path | None, resume: Path | None, force: bool,
                 checkpoint_every: int | None) -> None:
        self.out, self.resume, self.force, self.every = out, resume, force, checkpoint_every
        self.log: Any = None
        self.state: Any = None  # the newest state seen (logged on an interrupt)
        self.state_step: int | None = None  # the step of the newest state in the log
        self.steps = 0

    def begin(self, plan: Any) -> None:
        from hesscli.training.runlog import RunLog, header_line

        out = self.out or (self.resume if plan.resume is not None else None)
        if out is None:
            return
        if plan.resume is not None:
            same = self.resume is not None and Path(out).resolve() == Path(
                self.resume).resolve()
            if not same or plan.resume.skipped:
                from hesscli.objective.points import atomic_write

                text = "".join(line + "\n" for line in plan.resume.kept_lines)
                atomic_write(Path(out), lambda fh: fh.write(text), mode="w")
            self.log = RunLog(Path(out), mode="a")
            return
        self.log = RunLog(Path(out), mode="w" if self.force else "x")
        config = plan.runs[0][1]
        extra: dict[str, Any] = {"start": plan.start, "steps": config.steps}
        if len(plan.runs) > 1:
            extra["variants"] = {label: c.trajectory_fields() for label, c in plan.runs}
        self.log.write(header_line(plan.objective, plan.n, config, extra))

    def log_state(self, state: Any) -> None:
        """Write ``state`` (what --resume continues from) unless it is already logged."""
        from hesscli.training.runlog import state_line

        if self.log is not None and state is not None and self.state_step != state.step:
            self.log.write(state_line(state))
            self.state_step = state.step

    def state_due(self, step: int) -> bool:
        """A state goes into the log every --checkpoint-every steps and at the end."""
        if step >= self.steps:
            return True
        if not self.every:
            return False
        before = 0 if self.state_step is None else self.state_step
        return step // self.every > before // self.every

    def start(self, label: str, config: Any, state: Any) -> None:
        self.steps = config.steps
        if state is not None:
            self.state_step = state.step  # the resumed log ends with this state

    def progress(self, label: str, p: Any) -> None:
        from hesscli.training.runlog import event_line, record_line

        if self.log is None:
            return
        variant = label or None
        self.log.write(record_line(p.record, variant))
        for event in p.events:
            self.log.write(event_line(event, variant))
        if variant is None:
            self.state = p.state
            if self.state_due(p.state.step):
                self.log_state(p.state)

    def end(self, label: str, result: Any) -> None:
        if self.log is None:
            return
        if not label:
            self.log_state(result.state)  # a run that stopped early (diverged)
        end = {"record": RecordKind.END, "reason": "diverged" if result.diverged else "completed",
               "step": result.steps}
        if label:
            end["variant"] = label
        self.log.write(end)

    def interrupted(self, step: int) -> None:
        if self.log is not None:
            self.log_state(self.state)
            self.log.write({"record": RecordKind.END, "reason": "interrupted", "step": step})

    def close(self, error: BaseException | None) -> None:
        if self.log is not None:
            self.log.close()  # releases the lock, whatever ended the run

    def where(self) -> str:
        """Where an interrupted run was kept, for the message."""
        if self.log is None:
            return " (nothing was logged: use --out FILE.jsonl to keep a run)"
        return (f"; {self.log.lines} lines logged in {self.log.path} "
                f"(continue with --resume {self.log.path})")


class SavePointCheck(Observer):
    """``--save-point`` checked against the loaded point before the first step: a format
    that cannot hold it (one array for a pytree) must not cost a finished run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def begin(self, plan: Any) -> None:
        from hesscli.objective.points import check_point_target

        obj = plan.bound
        check_point_target(self.path, obj.unravel(obj.x), obj.params_of(obj.x), "--save-point")


class ProgressSink(Observer):
    """The progress bar on stderr (one task per run; events printed above it)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.label = ""
        self.last_step = 0

    def begin(self, plan: Any) -> None:
        from hesscli.render.train_view import TrainProgress

        self.label = plan.objective
        self.bar = TrainProgress(quiet=self.quiet)
        self.bar.__enter__()

    def start(self, label: str, config: Any, state: Any) -> None:
        self.bar.start_task(label or self.label, config.steps, state.step if state else 0)

    def progress(self, label: str, p: Any) -> None:
        self.last_step = p.state.step
        self.bar.update(p, label)

    def interrupted(self, step: int) -> None:
        self.last_step = step

    def close(self, error: BaseException | None) -> None:
        if self.bar is not None:
            bar, self.bar = self.bar, None
            bar.__exit__(type(error) if error else None, error,
                         error.__traceback__ if error else None)


def run_command(app: Any) -> None:
    """``hesscli train``: check, train through the API with the sinks, then write and exit."""
    from hesscli import api
    from hesscli.cli.session import primary

    p = app.params
    check_inputs(p)
    if p["expects"] and not p["compare"]:
        check_expect_keys(p["expects"])
    app.start()
    show = primary()  # only process 0 prints and writes files; the others compute alongside
    log = RunLogSink(p["out"], p["resume"], p["force"], p["checkpoint_every"])
    bar = ProgressSink(quiet=not show)
    sinks: tuple[Observer, ...] = (log, bar) if show else (bar,)
    if p["save_point"] is not None:
        sinks = (SavePointCheck(p["save_point"]), *sinks)
    try:
        res = app.call(api.train, cli_only=CLI_ONLY, curvature_on=not p["no_curvature"],
                       observers=sinks)
    except KeyboardInterrupt:
        if not bar.label:
            raise  # before training started: the usual "interrupted"
        click.echo(f"interrupted at step {bar.last_step}{log.where()}", err=True)
        raise click.exceptions.Exit(130) from None
    finish(app, res, show)


def finish(app: Any, res: Any, show: bool) -> None:
    """After the runs: --save-point, --plot, the report, --fail-on, then --expect."""
    p = app.params
    runs = list(res.output.runs) if hasattr(res.output, "runs") else [res.output]
    if p["save_point"] is not None and show:
        from hesscli.objective.points import write_point

        x = runs[0].result.x
        write_point(p["save_point"], res.objective.unravel(x), res.objective.params_of(x))
    if p["plot"] is not None and show:
        from hesscli.render.plot_train import plot_training

        plot_training(runs, p["plot"])
    from hesscli.render.views import show

    pending = app.report(res, lambda console: show(res, console))
    if p["fail_on"]:
        kinds = {k.strip() for k in p["fail_on"].split(",")}
        hits = [(s.name, e) for s in runs for e in s.result.events if e.kind in kinds]
        if hits:
            name, event = hits[0]
            where = f"{name}: " if name else ""
            raise CheckFailed(f"--fail-on: {where}{event.kind} at step {event.step} "
                              f"({event.message})")
    pending.enforce()
