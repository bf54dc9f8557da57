"""One training run, from its configuration to the :class:`RunSummary` that is reported.

Called for each run by :func:`hesscli.training.observers.run_plan` (the pipeline of
:func:`hesscli.api.train`, which the ``train`` command calls), which continues a
logged run through ``resume_state`` and ``history`` and tells its observers through
``started``, ``callback`` and ``trained``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from hesscli.curvature.base import Curvature
from hesscli.objective.bind import Objective
from hesscli.spectra.policy import HessianOnce, SpectrumPolicy
from hesscli.training.events import EventTracker
from hesscli.training.loop import (
    ChunkProgress,
    Minibatch,
    TrainConfig,
    TrainResult,
    TrainState,
    optimizer_for,
    tracker_options,
    train,
)
from hesscli.training.monitor import MONITOR_POLICY, Record
from hesscli.training.report import RunSummary, final_analysis, problem_report
from hesscli.vocab import CurvatureKind


def run(
    obj: Objective, curvature: Curvature, config: TrainConfig, *, label: str = "",
    minibatch: Minibatch | None = None, gtol: float | None = None, tol: float | None = None,
    curvature_on: bool = True, resume_state: Callable[[Any], Any] | None = None,
    history: list[Record] | None = None, callback: Callable[[ChunkProgress], None] | None = None,
    started: Callable[[TrainState | None], None] | None = None,
    trained: Callable[[TrainResult], None] | None = None,
    policy: SpectrumPolicy = MONITOR_POLICY,
    blocks: list | None = None,
) -> RunSummary:
    """Train ``obj`` by ``config`` and summarize: final verdict (unless ``curvature_on``
    is off: no Hessian work at all) and the file's ``report(params)``.

    To continue a logged run, ``resume_state(optimizer)`` rebuilds the state for the
    optimizer and ``history`` holds the logged records (fed to the event tracker).
    ``started(state)`` runs before the first step, ``trained(result)`` after the
    last one (before the final analysis). ``policy`` is the run's spectrum policy
    (the monitor's k and seed, the path request and the parsed ``--dense-budget``).
    ``blocks`` (a partition from :func:`hesscli.spectra.blocks.group_blocks`) logs
    each diagonal block's λmax.
    """
    optimizer = optimizer_for(config)
    tracker = EventTracker(obj.n, obj.dtype, config.lr, gtol=gtol, tol=tol,
                           optimizer=config.optimizer,
                           hessian=curvature.kind == CurvatureKind.HESSIAN,
                           **tracker_options(config, curvature, curvature_on))
    state = resume_state(optimizer) if resume_state is not None else None
    history = list(history) if history is not None else None
    for record in history or ():
        tracker.feed(record)
    if started is not None:
        started(state)
    # the verdict at the end is the Hessian's, whatever curvature was monitored; when the
    # monitor watched the Hessian itself, its last record's dense Hessian (at the final
    # point) is the one the verdict uses: formed once there
    hessian = (curvature.base or curvature
               ) if curvature.kind != CurvatureKind.HESSIAN else curvature
    with HessianOnce(hessian):
        result = train(obj, curvature, optimizer, config, minibatch=minibatch, state=state,
                       tracker=tracker, history=history, curvature_on=curvature_on,
                       callback=callback, policy=policy, blocks=blocks)
        if trained is not None:
            trained(result)
        analysis = None
        if curvature_on:
            analysis = final_analysis(obj, hessian, result.x, config.lr, gtol=gtol, tol=tol,
                                      policy=policy)
    if not curvature_on and obj.notes:
        # no final analysis to carry them: how the point was read, what was held
        result = dataclasses.replace(result, notes=tuple(obj.notes) + tuple(result.notes))
    names = tuple(obj.layout.name(i) for i in range(obj.n)) if obj.n <= 1000 else ()
    return RunSummary(label, obj.label, obj.n, obj.dtype, result, analysis,
                      problem_report(obj, result.x), config.steps, names)
