"""Observers: how a caller watches training runs without being part of them.

:func:`run_plan` runs every run of a :class:`~hesscli.training.plan.Plan` (one,
or the ``--compare`` variants one after the other) and tells each observer what
happens, in the order given: the plan before any step, each run's start (its
resumed state, if any), every logged step (the record, the events it raised and
the state after it: the point, the optimizer state and the step, what a
checkpoint holds), each run's end, an interruption, and the close, whatever
ended the runs. An observer is any object with some of these methods
(:class:`Observer` has them all, doing nothing); the ``train`` command's are
its JSONL run log and its progress bar, a notebook's might collect records
for a live plot. The training itself stays pure (optax's and optimistix's
style: a loop that returns values, with side effects at the edges).

An exception an observer raises ends the runs like any other; a
``KeyboardInterrupt`` (Ctrl-C) is first reported to every observer by
:meth:`Observer.interrupted` with the last step taken, so a log can keep what
finished, and then raised again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hesscli.spectra.policy import SpectrumPolicy
from hesscli.training.loop import ChunkProgress, Minibatch, TrainConfig, TrainResult, TrainState
from hesscli.training.monitor import MONITOR_POLICY
from hesscli.training.plan import Plan
from hesscli.training.report import RunSummary


class Observer:
    """Receives what training runs do; every method is optional and does nothing here.

    ``label`` names the run: ``""`` for a single run, the variant's name
    (``plain``, ``adam+noisy``, ...) when several are compared.
    """

    def begin(self, plan: Plan) -> None:
        """Before the first run: what will run (and the log being resumed, if any)."""

    def start(self, label: str, config: TrainConfig, state: TrainState | None) -> None:
        """Before a run's first step; ``state`` is the resumed state, or None."""

    def progress(self, label: str, p: ChunkProgress) -> None:
        """After each logged step: ``p.record``, ``p.events`` and ``p.state``."""

    def end(self, label: str, result: TrainResult) -> None:
        """After a run's last step (completed or diverged), before its final analysis."""

    def interrupted(self, step: int) -> None:
        """Ctrl-C: the last step taken (``KeyboardInterrupt`` is raised again after)."""

    def close(self, error: BaseException | None) -> None:
        """Last, whatever ended the runs (``error``: the exception that did, or None)."""


def run_plan(
    plan: Plan, obj: Any, curvature: Any, *, minibatch: Minibatch | None = None,
    gtol: float | None = None, tol: float | None = None, curvature_on: bool = True,
    policy: SpectrumPolicy = MONITOR_POLICY, blocks: list | None = None,
    observers: Iterable[Any] = (),
) -> list[RunSummary]:
    """Run every run of ``plan`` on ``obj`` (its history continued from ``plan.resume``),
    telling ``observers``; returns one :class:`RunSummary` per run, in order."""
    from hesscli.training.run import run

    watchers = list(observers)
    last_step = 0

    def tell(method: str, *args: Any) -> None:
        for watcher in watchers:
            hook = getattr(watcher, method, None)
            if hook is not None:
                hook(*args)

    def one(label: str, config: TrainConfig) -> RunSummary:
        resume_state = history = None
        if plan.resume is not None:
            import jax.numpy as jnp

            from hesscli.training.runlog import restore_state

            def resume_state(optimizer: Any) -> Any:
                return restore_state(plan.resume.state_line, optimizer.init(jnp.asarray(obj.x)))

            history = list(plan.resume.records)

        def started(state: TrainState | None) -> None:
            tell("start", label, config, state)

        def callback(p: ChunkProgress) -> None:
            nonlocal last_step
            last_step = p.state.step
            tell("progress", label, p)

        def trained(result: TrainResult) -> None:
            tell("end", label, result)

        return run(obj, curvature, config, label=label, minibatch=minibatch, gtol=gtol,
                   tol=tol, curvature_on=curvature_on, resume_state=resume_state,
                   history=history, callback=callback, started=started, trained=trained,
                   policy=policy, blocks=blocks)

    error: BaseException | None = None
    try:
        tell("begin", plan)
        summaries = []
        for label, config in plan.runs:
            summaries.append(one(label, config))
        return summaries
    except KeyboardInterrupt as exc:
        error = exc
        tell("interrupted", last_step)
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        failure: Exception | None = None
        for watcher in watchers:  # every observer closes, even when one of them fails
            hook = getattr(watcher, "close", None)
            if hook is not None:
                try:
                    hook(error)
                except Exception as exc:  # noqa: BLE001 - reported below, after the others
                    failure = failure or exc
        if failure is not None and error is None:
            raise failure
