"""Options of the finite-difference machinery (``--fd-accuracy``, ``--verify``)."""

from __future__ import annotations

import click

from hesscli.vocab import FDAccuracy, words

fd_accuracy_option = click.option(
    "--fd-accuracy", "fd_accuracy", type=click.Choice(words(FDAccuracy)), default="normal",
    show_default=True,
    help="Finite-difference effort: normal = central differences at the error-balancing "
    "step (checked against twice that step); high = a ladder of steps with Richardson "
    "extrapolation (about 5x the evaluations, several more correct digits).",
)
verify_option = click.option(
    "--verify", is_flag=True,
    help="Self-test: compare one exact Hessian-vector product and directional derivative "
    "with finite differences on a seeded random vector.",
)
