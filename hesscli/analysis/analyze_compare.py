"""``hesscli analyze --curvature hessian,ggn``: one point's analysis for several matrices.

The first matrix gets the whole analysis (its classification, step prediction and
escape direction when it is the Hessian); every matrix gets its spectrum, its
definiteness, its verdict tolerance and, with ``--blocks``, its per-block report,
all computed with the same path, policy and seed so that the numbers compare. The
blocks side by side answer the question a Gauss–Newton user asks of a network:
which layers' curvature does the GGN capture, and where does the Hessian's
residual term (its negative eigenvalues) live?
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hesscli.analysis.analyze import Analysis
from hesscli.analysis.analyze import analyze as run_analysis
from hesscli.objective.bind import Objective
from hesscli.spectra.blocks import BlockReport
from hesscli.vocab import CurvatureKind


@dataclass(frozen=True)
class CurvatureAnalysis:
    """One matrix's analysis at the point and, with ``--blocks``, its per-block report."""

    kind: CurvatureKind
    analysis: Analysis
    blocks: BlockReport | None


@dataclass(frozen=True)
class AnalysisComparison:
    """The matrices in the order asked (the first is the command's main analysis)."""

    entries: tuple[CurvatureAnalysis, ...]

    @property
    def kinds(self) -> tuple[CurvatureKind, ...]:
        return tuple(e.kind for e in self.entries)

    def block_rows(self) -> list[tuple[str, int, list[Any]]]:
        """Per block of the first matrix's ranking (sharpest first): its name, size and
        each matrix's :class:`~hesscli.spectra.blocks.BlockResult` (None where a matrix
        has no report for it)."""
        first = self.entries[0].blocks
        if first is None:
            return []
        by_kind = [{b.name: b for b in (e.blocks.blocks if e.blocks else ())}
                   for e in self.entries]
        return [(b.name, b.size, [table.get(b.name) for table in by_kind])
                for b in first.blocks]


def analyze_more(
    obj: Objective, kind: CurvatureKind, backend: Any, *, blocks: Any = None, **options: Any
) -> CurvatureAnalysis:
    """A further matrix's analysis, with ``options`` as the first one's (lr, policy, path
    choice, tolerances) and without its one-off work: value and gradient are the same
    function's, so the kink probe and ``--verify`` are not repeated. ``blocks``: a
    callable ``backend -> BlockReport`` (None: no ``--blocks``)."""
    a = run_analysis(obj, backend, kink_probe=False, **options)
    return CurvatureAnalysis(kind, a, blocks(backend) if blocks is not None else None)
