"""Glue for ``hesscli train``: options -> configs, runs, the JSONL log, resume, outputs.

No numerics here: :mod:`hesscli.training` trains, :mod:`hesscli.render.train_view`
shows. This module wires them, owns the output files and decides exit codes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import click

from hesscli.errors import CheckFailed, InputError
from hesscli.vocab import EventKind, MethodRequest, words

OPT_FLAGS = ("momentum", "nesterov", "b1", "b2", "eps", "weight_decay", "decay")
SAVE_SUFFIXES = (".npz", ".json", ".npy", ".txt", ".csv", ".msgpack", ".safetensors", ".eqx",
                 "")  # "": a folder, written as an orbax checkpoint
EVENT_KINDS = words(EventKind)


@dataclass(frozen=True)
class TrainOptions:
    """The ``train`` command's options, typed (built from the command's ``ctx.params``)."""

    objective: str
    at: str | None
    params: tuple[str, ...]
    method: str
    dtype: str
    seed: int
    fmt: str
    devices: str
    coordinator: str | None
    num_processes: int | None
    process_id: int | None
    optimizer: str
    lr: float
    steps: int | None
    epochs: int | None
    batch_size: int | None
    momentum: float | None
    nesterov: bool | None
    b1: float | None
    b2: float | None
    eps: float | None
    weight_decay: float | None
    decay: float | None
    opt_extra: tuple[str, ...]
    noisy: bool
    noise_scale: float
    noise_steps: int | None
    monitor_every: int | None
    curvature_on: bool
    gtol: float | None
    tol: float | None
    compare: str | None
    out: Path | None
    checkpoint_every: int | None
    resume: Path | None
    force: bool
    save_point: Path | None
    plot: Path | None
    fail_on: str | None
    expects: tuple[str, ...] = ()
    dense_budget: str | None = None
    monitor_blocks: str | None = None
    curvature_kind: str = "hessian"  # the monitored matrix (--curvature KIND)


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"--opt value {text!r}: expected a number or true/false") from None
    if not math.isfinite(number):  # nan/inf would only show up as a diverged run
        raise InputError(f"--opt value {text!r}: must be a finite number")
    return int(number) if number.is_integer() and "." not in text and "e" not in low else number


def optimizer_options(o: TrainOptions) -> dict[str, Any]:
    from hesscli.objective.params import parse_assignments

    options = {k: getattr(o, k) for k in OPT_FLAGS if getattr(o, k) is not None}
    for key, raw in parse_assignments(o.opt_extra, "--opt").items():
        options[key] = _value(raw)
    return options


def parse_variants(text: str, base: str, noisy: bool) -> list[tuple[str, str, bool]]:
    """``plain,noisy`` / ``sgd,adam`` / ``sgd+noisy`` -> [(label, optimizer, noisy)]."""
    from hesscli.training.optimizers import optimizer_spec

    out = []
    for token in [t.strip() for t in text.split(",") if t.strip()]:
        if token == "plain":
            out.append((token, base, False))
        elif token == "noisy":
            out.append((token, base, True))
        else:
            name, _, suffix = token.partition("+")
            if suffix not in ("", "noisy"):
                raise InputError(f"--compare {token!r}: expected NAME or NAME+noisy")
            optimizer_spec(name)
            out.append((token, name, noisy or suffix == "noisy"))
    if len(out) < 2:
        raise InputError(f"--compare {text!r}: name at least two variants, e.g. plain,noisy")
    labels = [v[0] for v in out]
    if len(set(labels)) != len(labels):
        raise InputError(f"--compare {text!r}: a variant is named twice")
    return out


def options_for(name: str, options: dict[str, Any], strict: bool) -> dict[str, Any]:
    """Options the optimizer takes; with ``strict`` others are an error (checked later)."""
    from hesscli.training.optimizers import accepted_options

    if strict:
        return dict(options)
    allowed = accepted_options(name)
    return {k: v for k, v in options.items() if k in allowed}


def check_inputs(o: TrainOptions) -> None:
    from hesscli.validate import positive

    positive("--lr", o.lr)
    positive("--noise-scale", o.noise_scale)
    for key in ("steps", "epochs", "batch_size", "monitor_every", "checkpoint_every"):
        value = getattr(o, key)
        if value is not None and value < 1:
            raise InputError(f"--{key.replace('_', '-')} must be at least 1; got {value}")
    from hesscli.spectra.paths import dense_budget

    dense_budget(o.dense_budget)  # a malformed size is exit 2 before any work
    if o.checkpoint_every is not None and o.out is None:
        raise InputError("--checkpoint-every sets how often --out logs the state; give "
                         "--out FILE.jsonl too")
    if o.noise_steps is not None and o.noise_steps < 0:
        raise InputError(f"--noise-steps must be 0 or more; got {o.noise_steps}")
    if o.plot is not None:
        from hesscli.render.plotting import check_plot_path

        check_plot_path(o.plot)
    if o.save_point is not None and o.save_point.suffix.lower() not in SAVE_SUFFIXES:
        raise InputError(f"--save-point {str(o.save_point)!r}: use one of "
                         f"{', '.join(s for s in SAVE_SUFFIXES if s)} or a folder (orbax)")
    if o.save_point is not None:
        from hesscli.objective.checkpoints import check_writer

        check_writer(o.save_point, "--save-point")
    from hesscli.files import check_outputs

    # every file the run will write, checked now: a missing folder or two options
    # naming one file must not cost a finished run (or its log)
    log_option = "--out" if o.out is not None else "--resume"
    check_outputs({log_option: o.out or o.resume, "--save-point": o.save_point,
                   "--plot": o.plot}, directories=("--save-point",))
    if o.compare and (o.resume or o.save_point):
        raise InputError("--compare runs several variants; --resume and --save-point take one "
                         "run (drop --compare)")
    check_out(o)
    if o.fail_on:
        for kind in o.fail_on.split(","):
            if kind.strip() not in EVENT_KINDS:
                raise InputError(f"--fail-on {kind.strip()!r}: not an event; choose from "
                                 f"{', '.join(EVENT_KINDS)}")
    if o.epochs is not None and o.steps is not None:
        raise InputError("give --steps or --epochs, not both")


def check_out(o: TrainOptions) -> None:
    """Refuse to truncate an existing ``--out`` file (it may hold a run worth keeping).

    Appending to the ``--resume`` log itself is the one safe reuse; anything
    else needs ``--force``. Checked before any work, so nothing is touched.
    """
    out = o.out
    if out is None or o.force or not Path(out).exists():
        return
    if o.resume is not None and Path(out).resolve() == Path(o.resume).resolve():
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


def run_command(o: TrainOptions) -> None:
    from hesscli.api import load
    from hesscli.cli.session import start
    from hesscli.curvature.choose import curvature_for
    from hesscli.curvature.ggn import single_kind
    from hesscli.documents.meta import meta
    from hesscli.training.loop import TrainConfig, minibatch_for

    o = replace(o, curvature_kind=single_kind(o.curvature_kind or "hessian"))
    check_inputs(o)
    if o.expects and not o.compare:
        check_expect_keys(o.expects)
    per_process = start(o.devices, o.coordinator, o.num_processes,
                        o.process_id)
    fmt, seed, dtype = o.fmt, o.seed, o.dtype
    resume = None
    if o.resume is not None:
        from hesscli.training.runlog import read_log

        resume = read_log(o.resume)
    obj = load(o.objective, o.at, o.params, seed=seed, dtype=dtype,
               method=o.method)
    if o.method == MethodRequest.FD:
        raise InputError("train needs JAX derivatives of the objective, and --method fd asks "
                         "for finite differences; use --method auto or exact")
    if not obj.traceable:  # exit 3 when JAX traces but cannot differentiate it, else 2
        from hesscli.objective.bind import no_derivatives_error

        raise no_derivatives_error(obj)(
            f"train needs JAX derivatives of the objective, and {obj.why_untraceable}; write "
            "it with jax.numpy (lax.scan for loops, no host callbacks)")
    if o.save_point is not None:  # the format fits this point's structure, before the run
        from hesscli.objective.points import check_point_target

        check_point_target(o.save_point, obj.unravel(obj.x), obj.params_of(obj.x),
                           "--save-point")
    curvature, _ = curvature_for(obj, MethodRequest.EXACT, devices=per_process)
    parallel = curvature.parallel
    if o.curvature_kind != "hessian" and o.curvature_on:  # the final verdict stays the Hessian's
        from hesscli.curvature.ggn import operator_curvature

        curvature = operator_curvature(obj, curvature, o.curvature_kind)
    minibatch = minibatch_for(obj, o.batch_size) if o.batch_size else None
    steps = o.steps
    if o.epochs is not None:
        if minibatch is None:
            raise InputError("--epochs needs --batch-size (an epoch is a pass over the data)")
        steps = o.epochs * minibatch.per_epoch
    if resume is not None and steps is None:
        steps = int(resume.header.get("steps", 1000))
    steps = steps or 1000
    every = o.monitor_every
    if every is None and resume is not None:
        every = int(resume.header["config"].get("monitor_every", 0)) or None
    every = every or max(1, steps // 100)
    from hesscli.budget import require_train

    require_train(steps, every, len(o.compare.split(",")) if o.compare else 1)
    options = optimizer_options(o)
    noise = o.noise_scale
    base = TrainConfig(optimizer=o.optimizer, options={}, lr=o.lr, noise=None,
                       noise_steps=o.noise_steps, seed=seed, batch_size=o.batch_size,
                       monitor_every=every, steps=steps)
    if o.compare:
        variants = parse_variants(o.compare, o.optimizer, o.noisy)
        used = set()
        configs = []
        for label, name, noisy in variants:
            opts = options_for(name, options, strict=False)
            used |= set(opts)
            configs.append((label, replace(base, optimizer=name, options=opts,
                                           noise=noise if noisy else None)))
        unused = set(options) - used
        if unused:
            raise InputError(f"option {', '.join(sorted(unused))} applies to none of the "
                             f"variants {o.compare}")
    else:
        configs = [("", replace(base, options=options, noise=noise if o.noisy else None))]
    for _, config in configs:
        from hesscli.training.optimizers import resolved_options

        resolved_options(config.optimizer, config.options)  # checks names before any work

    start = {"objective": o.objective, "at": o.at, "params": list(o.params),
             "dtype": dtype}
    if resume is not None:
        check_resume(resume, start, configs[0][1])
    runner = Runner(obj, curvature, minibatch, o, start, fmt)
    summaries = runner.run_all(configs, resume)
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(o).items()
               if k not in ("fmt", "seed", "dtype") and not isinstance(v, tuple)}
    options.update(params=list(o.params), opt=list(o.opt_extra), steps=steps,
                   monitor_every=every)
    finish(summaries, o, obj, meta(seed, dtype, parallel=parallel, **options))


def check_resume(resume: Any, start: dict[str, Any], config: Any) -> None:
    """The log's options must be the ones given now (else the trajectory would differ)."""
    logged_start = resume.header.get("start", {})
    now = json.loads(json.dumps(config.trajectory_fields()))
    then = resume.header.get("config", {})
    diffs = [f"{k}: logged {then.get(k)!r}, now {now.get(k)!r}"
             for k in sorted(set(now) | set(then)) if now.get(k) != then.get(k)]
    diffs += [f"{k}: logged {logged_start.get(k)!r}, now {start.get(k)!r}"
              for k in start if logged_start.get(k) != start.get(k)]
    if diffs:
        raise InputError("--resume: repeat the logged run's options to continue it exactly ("
                         + "; ".join(diffs) + ")")


class Runner:
    """Runs the variants, streams the log, shows progress; keeps what finished."""

    def __init__(self, obj: Any, curvature: Any, minibatch: Any, o: TrainOptions,
                 start: dict[str, Any], fmt: str) -> None:
        self.obj, self.curvature, self.minibatch = obj, curvature, minibatch
        self.o, self.start, self.fmt = o, start, fmt
        self.log: Any = None
        self.last_step = 0
        self.state: Any = None  # the newest state seen (logged on an interrupt)
        self.state_step: int | None = None  # the step of the newest state in the log

    def log_state(self, state: Any) -> None:
        """Write ``state`` (what --resume continues from) unless it is already logged."""
        from hesscli.training.runlog import state_line

        if self.log is not None and state is not None and self.state_step != state.step:
            self.log.write(state_line(state))
            self.state_step = state.step

    def state_due(self, step: int, last: int) -> bool:
        """A state goes into the log every --checkpoint-every steps and at the end."""
        every = self.o.checkpoint_every
        if step >= last:
            return True
        if not every:
            return False
        before = 0 if self.state_step is None else self.state_step
        return step // every > before // every

    def open_log(self, configs: list[tuple[str, Any]], resume: Any) -> None:
        from hesscli.cli.session import primary
        from hesscli.training.runlog import RunLog, header_line

        out = self.o.out or (self.o.resume if resume is not None else None)
        if out is None or not primary():  # only process 0 writes files
            return
        if resume is not None:
            same = self.o.resume is not None and Path(out).resolve() == Path(
                self.o.resume).resolve()
            if not same or resume.skipped:
                from hesscli.objective.points import atomic_write

                text = "".join(line + "\n" for line in resume.kept_lines)
                atomic_write(Path(out), lambda fh: fh.write(text), mode="w")
            self.log = RunLog(Path(out), mode="a")
            return
        self.log = RunLog(Path(out), mode="w" if self.o.force else "x")
        config = configs[0][1]
        extra: dict[str, Any] = {"start": self.start, "steps": config.steps}
        if len(configs) > 1:
            extra["variants"] = {label: c.trajectory_fields() for label, c in configs}
        self.log.write(header_line(self.obj.label, self.obj.n, config, extra))

    def run_all(self, configs: list[tuple[str, Any]], resume: Any) -> list[Any]:
        from hesscli.render.train_view import TrainProgress

        self.open_log(configs, resume)
        summaries: list[Any] = []
        from hesscli.cli.session import primary

        progress = TrainProgress(quiet=not primary())
        try:
            with progress:
                for label, config in configs:
                    summaries.append(self.run_one(label, config, resume, progress))
        except KeyboardInterrupt:
            if self.log is not None:
                self.log_state(self.state)
                self.log.write({"record": "end", "reason": "interrupted",
                                "step": self.last_step})
                self.log.close()
                where = (f"; {self.log.lines} lines logged in {self.log.path} "
                         f"(continue with --resume {self.log.path})")
            else:
                where = " (nothing was logged: use --out FILE.jsonl to keep a run)"
            click.echo(f"interrupted at step {self.last_step}{where}", err=True)
            raise click.exceptions.Exit(130) from None
        finally:
            if self.log is not None:
                self.log.close()  # releases the lock, whatever ended the run
        return summaries

    def run_one(self, label: str, config: Any, resume: Any, progress: Any) -> Any:
        from hesscli.training.run import run
        from hesscli.training.runlog import event_line, record_line, restore_state

        obj, o = self.obj, self.o
        variant = label or None
        resume_state = history = None
        if resume is not None:
            import jax.numpy as jnp

            def resume_state(optimizer: Any) -> Any:
                return restore_state(resume.state_line, optimizer.init(jnp.asarray(obj.x)))

            history = list(resume.records)

        def started(state: Any) -> None:
            if state is not None:
                self.state_step = state.step  # the resumed log ends with this state
            progress.start_task(label or obj.label, config.steps, state.step if state else 0)

        def callback(p: Any) -> None:
            self.last_step = p.state.step
            if self.log is not None:
                self.log.write(record_line(p.record, variant))
                for event in p.events:
                    self.log.write(event_line(event, variant))
                if variant is None:
                    self.state = p.state
                    if self.state_due(p.state.step, config.steps):
                        self.log_state(p.state)
            progress.update(p, label)

        def trained(result: Any) -> None:
            if self.log is not None:
                if variant is None:
                    self.log_state(result.state)  # a run that stopped early (diverged)
                end = {"record": "end",
                       "reason": "diverged" if result.diverged else "completed",
                       "step": result.steps}
                if variant:
                    end["variant"] = variant
                self.log.write(end)

        blocks = None
        if o.monitor_blocks is not None and o.curvature_on:
            from hesscli.spectra.blocks import group_blocks

            try:
                _, blocks = group_blocks(obj.layout, o.monitor_blocks)
            except ValueError as exc:
                raise InputError(str(exc).replace("--blocks", "--monitor-blocks")) from None
        return run(obj, self.curvature, config, label=label, minibatch=self.minibatch,
                   gtol=o.gtol, tol=o.tol, curvature_on=o.curvature_on,
                   resume_state=resume_state, history=history, callback=callback,
                   started=started, trained=trained, dense_budget=o.dense_budget,
                   blocks=blocks)


def finish(summaries: list[Any], o: TrainOptions, obj: Any, meta: dict[str, Any]) -> None:
    from hesscli.cli.session import primary

    show = primary()  # only process 0 prints and writes files; the others computed alongside
    if o.save_point is not None and show:
        from hesscli.objective.points import write_point

        x = summaries[0].result.x
        write_point(o.save_point, obj.unravel(x), obj.params_of(x))
    if o.plot is not None and show:
        from hesscli.render.plot_train import plot_training

        plot_training(summaries, o.plot)
    from hesscli.documents.train import compare_document, train_document
    from hesscli.expect import expectations

    if len(summaries) == 1:
        doc = train_document(summaries[0], meta)
    else:
        doc = compare_document(summaries, meta)
    pending = expectations(o.expects, doc)
    if not show:
        pass
    elif o.fmt == "json":
        from hesscli.render.jsonout import dump

        dump(doc)
    else:
        from hesscli.render.console import stdout_console
        from hesscli.render.train_view import render_compare, render_train

        console = stdout_console()
        if len(summaries) == 1:
            render_train(summaries[0], console)
        else:
            render_compare(summaries, console)
    if o.fail_on:
        kinds = {k.strip() for k in o.fail_on.split(",")}
        hits = [(s.name, e) for s in summaries for e in s.result.events if e.kind in kinds]
        if hits:
            name, event = hits[0]
            where = f"{name}: " if name else ""
            raise CheckFailed(f"--fail-on: {where}{event.kind} at step {event.step} "
                              f"({event.message})")
    pending.enforce()
