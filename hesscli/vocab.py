"""The words hesscli's results use, in one place.

Every user-facing string that names a method, a path, a dtype, a
classification, a definiteness, an event kind or a verdict is a member of one
of these enums. They are :class:`enum.StrEnum`: a member *is* its string
(``Method.FD == "fd"``, ``json.dumps`` writes ``"fd"``), so JSON documents,
``--expect`` comparisons and ``checks.yaml`` keep plain strings while the code
names the words instead of retyping them.
"""

from __future__ import annotations

from enum import StrEnum


class Method(StrEnum):
    """How a backend computes derivatives (``method`` in every JSON document)."""

    EXACT = "exact"  # JAX autodiff
    FD = "fd"  # finite differences


class MethodRequest(StrEnum):
    """What ``--method`` asks for: ``auto`` is exact when JAX can trace the objective."""

    AUTO = "auto"
    EXACT = "exact"
    FD = "fd"


class SpectrumPath(StrEnum):
    """How the spectrum is computed (``path`` in analyze and spectrum documents)."""

    DENSE = "dense"  # the n×n Hessian, every eigenvalue (LAPACK)
    MATRIX_FREE = "matrix-free"  # extreme eigenvalues from Hessian-vector products


class PathRequest(StrEnum):
    """``--dense`` / ``--matrix-free`` / neither (``auto``: by the fixed dense budget)."""

    AUTO = "auto"
    DENSE = "dense"
    MATRIX_FREE = "matrix-free"


class CurvatureKind(StrEnum):
    """``--curvature``: the matrix whose spectrum is reported (``curvature`` in documents).

    All but the Hessian need a model split (``model``, ``output_loss``, ``data``).
    The Fisher and the empirical Fisher are positive semidefinite by construction;
    the GGN only where the output loss is convex in the outputs (checked at the
    point: :func:`hesscli.curvature.ggn.output_hessian`). ``residual`` and ``difference``
    name the side-by-side difference blocks of ``spectrum --curvature A,B``.
    """

    HESSIAN = "hessian"
    GGN = "ggn"  # generalized Gauss–Newton JᵀH_ℓJ
    FISHER = "fisher"  # the true Fisher of the output likelihood
    EMPIRICAL_FISHER = "empirical-fisher"  # (1/N) Σ gᵢgᵢᵀ
    RESIDUAL = "residual"  # Hessian − GGN = Σ(∂ℓ/∂m)·∇²m
    DIFFERENCE = "difference"  # A − B for other pairs


class Dtype(StrEnum):
    """Floating-point precision of the objective's evaluations."""

    FLOAT64 = "float64"
    FLOAT32 = "float32"


class FDAccuracy(StrEnum):
    """``--fd-accuracy``: central differences (normal) or a Richardson ladder (high)."""

    NORMAL = "normal"
    HIGH = "high"


class FDSource(StrEnum):
    """What a finite-difference backend differences."""

    VALUES = "function values"
    GRADIENTS = "gradient differences"


class Classification(StrEnum):
    """What the point is (``classification`` in analyze, landscape, train)."""

    LOCAL_MINIMUM = "local_minimum"
    LOCAL_MAXIMUM = "local_maximum"
    SADDLE_POINT = "saddle_point"
    DEGENERATE = "degenerate"  # critical, but the second-order test is silent
    NOT_CRITICAL = "not_critical"
    UNDETERMINED = "undetermined"  # the numbers cannot support any of the above


class Definiteness(StrEnum):
    """The Hessian's definiteness (``definiteness`` in analyze)."""

    POSITIVE_DEFINITE = "positive_definite"
    POSITIVE_SEMIDEFINITE = "positive_semidefinite"
    NEGATIVE_DEFINITE = "negative_definite"
    NEGATIVE_SEMIDEFINITE = "negative_semidefinite"
    INDEFINITE = "indefinite"
    ZERO = "zero"
    UNDETERMINED = "undetermined"


class ConvexityVerdict(StrEnum):
    """The convexity test's verdict: a proof of non-convexity, or evidence only."""

    NOT_CONVEX = "not_convex"
    NO_VIOLATION_FOUND = "no_violation_found"


class EventKind(StrEnum):
    """What ``train`` reports along a run (``events[].kind``, ``--fail-on``)."""

    STALLED = "stalled"
    AT_SADDLE = "at_saddle"
    ESCAPED_SADDLE = "escaped_saddle"
    REACHED_MINIMUM = "reached_minimum"
    PROGRESSIVE_SHARPENING = "progressive_sharpening"  # lr·λmax rising toward 2
    EDGE_OF_STABILITY = "edge_of_stability"  # hovering at 2 while f falls (Cohen et al. 2021)
    ABOVE_EDGE = "above_edge"  # above the band without f rising
    UNSTABLE = "unstable"  # above 2 with f rising, or diverging
    DIVERGED = "diverged"
    # Adam-type optimizers: the same spans of lr·λmax(P⁻¹H) against (2 + 2β₁)/(1 − β₁)
    # (Cohen et al. 2022), P from the optimizer state
    ADAPTIVE_PROGRESSIVE_SHARPENING = "adaptive_progressive_sharpening"
    ADAPTIVE_EDGE_OF_STABILITY = "adaptive_edge_of_stability"
    ADAPTIVE_ABOVE_EDGE = "adaptive_above_edge"
    ADAPTIVE_UNSTABLE = "adaptive_unstable"


class Eigensolver(StrEnum):
    """The matrix-free eigensolver that ran (``extremes.solver``, ``meta.eigensolver_used``)."""

    LANCZOS = "lanczos"  # full basis, full reorthogonalization
    RESTARTED = "restarted-lanczos"  # thick restart, basis of at most m vectors
    ARPACK = "arpack"  # scipy eigsh over the HVP


class EigensolverRequest(StrEnum):
    """``--eigensolver``: auto picks by n and memory (and says which)."""

    AUTO = "auto"
    LANCZOS = "lanczos"
    RESTARTED = "restarted"
    ARPACK = "arpack"


class Ends(StrEnum):
    """``--ends``: which ends of the spectrum must meet the eigensolver's target."""

    BOTH = "both"
    MIN = "min"
    MAX = "max"


class StopRule(StrEnum):
    """When a matrix-free eigensolver may stop (``SpectrumPolicy.stop``)."""

    VERDICT = "verdict"  # each eigenvalue to rtol by the Kato–Temple estimate, λmin's sign
    RESIDUAL = "residual"  # the certified residual ‖Hv − θv‖ ≤ rtol·max|λ|


class ErrorMeasure(StrEnum):
    """How an eigensolver measured each eigenvalue's error (``measure`` of its extremes)."""

    RESIDUAL = "residual"  # ‖Hv − θv‖: a certified bound (Weyl)
    KATO_TEMPLE = "Kato-Temple estimate"  # min(r, r²/gap): an estimate


class Estimator(StrEnum):
    """``--estimator``: how the trace is estimated (``hutch++`` needs at least 3 probes)."""

    HUTCHINSON = "hutchinson"
    HUTCH_PLUS_PLUS = "hutch++"
    AUTO = "auto"  # Hutch++ with enough products, else Hutchinson


class TraceMethod(StrEnum):
    """How a reported trace was computed (``trace.estimator``, a block's ``trace_estimator``)."""

    EXACT = "exact"  # the sum of a dense matrix's diagonal
    HUTCHINSON = "hutchinson"
    HUTCH_PLUS_PLUS = "hutch++"


class BlockMethod(StrEnum):
    """How one diagonal block's extremes were computed (``blocks[].method``)."""

    DENSE = "dense"  # the block formed, every eigenvalue
    LANCZOS = "lanczos"  # matrix-free, from products with the block


class Certainty(StrEnum):
    """How a verdict is known (``certainty`` in analyze; None: undetermined)."""

    PROVEN = "proven"  # every matrix within the computed error bounds agrees
    PROBABILISTIC = "probabilistic"  # a random-start bound, with its probability


class HvpMode(StrEnum):
    """How an autodiff backend forms Hessian-vector products (its ``hvp_mode``)."""

    FORWARD_OVER_REVERSE = "forward-over-reverse"  # jvp of grad: the fast one
    REVERSE_OVER_REVERSE = "reverse-over-reverse"  # vjp of grad: where forward mode is refused


class StreamSource(StrEnum):
    """Where streamed batches come from (``stream.source``)."""

    BATCHES = "batches()"  # the file's own generator (also ``how`` for it)
    DATA = "data"  # the file's arrays cut by --batch-size


class WitnessKind(StrEnum):
    """What proves non-convexity (``witness.kind`` in convexity)."""

    MIDPOINT = "midpoint"  # f((x+y)/2) above the chord
    EIGENVALUE = "eigenvalue"  # a negative Hessian eigenvalue


class KinkKind(StrEnum):
    """Which one-sided derivative jumps at a kink the probe found."""

    SLOPE = "slope"  # the one-sided slope differs from gᵀd
    CURVATURE = "curvature"  # the one-sided curvature differs from dᵀHd


class KinkSource(StrEnum):
    """How a kink was found (``nonsmooth.source`` in analyze)."""

    FINITE_DIFFERENCES = "finite differences"  # the difference stencils disagree
    PROBE = "probe"  # one-sided probes of exact derivatives (analysis/kinks.py)


class PlaneDirection(StrEnum):
    """A unit direction of the landscape's slices and ``--plane`` (``slices[].name``)."""

    GRAD = "grad"  # −∇f/‖∇f‖, steepest descent
    MAX = "max"  # the eigenvector of λmax
    MIN = "min"  # the eigenvector of λmin


class Optimizer(StrEnum):
    """The optimizers hesscli knows a stability bound or a preconditioner for (``--optimizer``
    takes any name in :data:`hesscli.training.optimizers.OPTIMIZERS`; these are the ones
    compared against)."""

    SGD = "sgd"  # x ← x − lr·g: λmax(H) against 2/lr
    MOMENTUM = "momentum"  # heavy ball: against 2(1 + β)/lr
    NESTEROV = "nesterov"  # against 2(1 + β)/((1 + 2β)·lr)
    ADAM = "adam"  # λmax(P⁻¹H) against (2 + 2β₁)/((1 − β₁)·lr)
    ADAMW = "adamw"  # Adam with decoupled weight decay
    NADAM = "nadam"  # Adam with Nesterov momentum
    AMSGRAD = "amsgrad"  # Adam with the running maximum of ν


class RecordKind(StrEnum):
    """A line of ``train --out``'s JSONL run log (its ``record`` field)."""

    HEADER = "header"  # line 1: schema, objective, config
    STEP = "step"  # one logged step's numbers
    EVENT = "event"  # what the step raised
    STATE = "state"  # point and optimizer state, for --resume
    END = "end"  # why the run ended


class NullSource(StrEnum):
    """What explains a part of the Hessian's null space (``null_space.sources[].kind``)."""

    DEAD_UNIT = "dead_unit"  # a unit's weights, bias and outgoing weights: f does not see them
    UNUSED_INPUT = "unused_input"  # a kernel's row f does not depend on, not a dead unit's
    VANISHING = "vanishing"  # other parameters f does not depend on near the point
    SHIFT = "shift"  # adding a constant across a leaf's outputs changes nothing (softmax)
    SCALE = "scale"  # f(c·w) = f(w) for a leaf or one of its rows


def words(enum: type[StrEnum]) -> tuple[str, ...]:
    """The enum's strings, in declaration order (for choices and messages)."""
    return tuple(member.value for member in enum)
