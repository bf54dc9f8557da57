"""The ``analyze`` report: verdict in words first, then the numbers."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hesscli.analysis.analyze import Analysis
from hesscli.render.numbers import eigen_list, num, small
from hesscli.spectra.bounds import EndBounds
from hesscli.vocab import (
    Certainty,
    Classification,
    CurvatureKind,
    Definiteness,
    KinkKind,
    KinkSource,
)

KIND_STYLE = {
    "local_minimum": "bold green",
    "local_maximum": "bold red",
    "saddle_point": "bold yellow",
    "degenerate": "bold magenta",
    "not_critical": "bold cyan",
    "undetermined": "bold magenta",
}


def unconverged_ends(a: Analysis) -> str:
    """"λmin", "λmax" or "λmin and λmax": the ends the matrix-free run did not converge."""
    sp = a.spectrum
    ends = [e for e, ok in (("λmin", sp.min_converged), ("λmax", sp.max_converged)) if not ok]
    return " and ".join(ends)


def proven_curvature(a: Analysis) -> str:
    """What the Ritz values prove whatever their residuals (one-sided bounds)."""
    sp = a.spectrum
    proven = []
    if sp.lambda_min < -a.tolerance:
        proven.append(f"negative curvature (λmin ≤ {num(sp.lambda_min)})")
    if sp.lambda_max > a.tolerance:
        proven.append(f"positive curvature (λmax ≥ {num(sp.lambda_max)})")
    return " and ".join(proven) if proven else "nothing about the sign of the curvature"


def probable_clause(a: Analysis, verdict: str) -> str:
    """" — with probability ≥ p over the random start (…)" when ``verdict``
    (classification, definiteness) rests on the random-start bound, else ""."""
    b = a.spectrum.bounds
    if b is None or b.probability is None or a.certainty.get(verdict) != Certainty.PROBABILISTIC:
        return ""
    return (f" — with probability ≥ {b.probability:.3g} over the random start (a Krylov run "
            f"can miss an eigenvector; Kuczyński–Woźniakowski after {b.krylov_steps} Lanczos "
            f"steps: λmin ≥ {num(b.min_at_least)}, λmax ≤ {num(b.max_at_most)})")


def undetermined_headline(a: Analysis) -> str:
    if a.spectrum.bounds is not None:
        return (
            f"Undetermined: the gradient vanishes (‖∇f‖ = {num(a.gradient_norm)} ≤ gtol), "
            f"but the matrix-free run does not decide the second-order test. Proven: "
            f"{proven_curvature(a)}. Not proven: a lower bound on λmin beyond zero (a "
            "minimum) or an upper bound on λmax below zero (a maximum): a Krylov run from "
            "one start can miss an eigenvector. See the notes; a dense run (--dense, when "
            "it fits) decides it."
        )
    return (
        f"Undetermined: the gradient vanishes (‖∇f‖ = {num(a.gradient_norm)} ≤ gtol), but "
        f"the matrix-free {unconverged_ends(a)} did not converge, so the second-order test "
        f"cannot be completed. Proven: {proven_curvature(a)}. Not proven: the far side of "
        f"the unconverged end{'s' if ' and ' in unconverged_ends(a) else ''} (a minimum "
        "needs a lower bound on λmin, a maximum an upper bound on λmax). Raise --max-steps "
        "(or --rtol) and run again."
    )


def nonsmooth_headline(a: Analysis) -> str:
    ns = a.nonsmooth
    assert ns is not None
    names = ", ".join(ns.parameters[:6]) + (f" and {len(ns.parameters) - 6} more"
                                             if len(ns.parameters) > 6 else "")
    if ns.source == KinkSource.PROBE:
        k = max(ns.kinks, key=lambda k: k.significance)
        what = ("the one-sided slope" if k.kind == KinkKind.SLOPE else "the one-sided curvature")
        evidence = (
            f"Not smooth at this point: along {k.direction} ({'+' if k.side == '+' else '−'} "
            f"side) {what} differs from what the derivatives predict by {num(k.mismatch, 3)}, "
            f"at every probe step ({num(k.significance, 3)}× the rounding allowance); "
            f"involved: {names}. Autodiff returns one side's derivative at a kink"
        )
    else:
        evidence = (
            f"Not smooth at this point: finite differences at two step sizes disagree far "
            f"beyond their error model ({num(ns.disagreement, 3)}× what it allows) in {names}"
        )
    text = evidence + (
        ". The objective has a kink here (a hinge margin, a ReLU, |x| at 0), so the Hessian "
        "does not exist and hesscli gives no second-order verdict."
    )
    if a.critical:
        text += (" The gradient is zero within the kink's slope jump "
                 f"(‖∇f‖ = {num(a.gradient_norm)}, jump band {num(ns.gradient_band)}): "
                 "this may be a non-smooth critical point; inspect it by hand.")
    else:
        text += (f" The gradient ‖∇f‖ = {num(a.gradient_norm)} exceeds gtol plus the kink's "
                 "slope jump: not a critical point.")
    return text


def curvature_headline(a: Analysis) -> str:
    """The verdict line when the spectrum is a GGN or Fisher, not the Hessian's."""
    from hesscli.curvature.operators import TITLES

    title = TITLES.get(a.curvature, a.curvature)
    lam_min, lam_max = a.spectrum.lambda_min, a.spectrum.lambda_max
    grad = (f"the gradient vanishes (‖∇f‖ = {num(a.gradient_norm)} ≤ gtol)" if a.critical
            else f"‖∇f‖ = {num(a.gradient_norm)} > gtol = {num(a.gtol)}")
    cond = (f", condition number {num(a.condition_number, 3)}"
            if a.condition_number is not None else "")
    if a.curvature != CurvatureKind.GGN:  # the Fisher and the empirical Fisher: PSD at every point
        what = f"The {title} is positive semidefinite by construction, so it"
    elif a.inertia.negative:  # a GGN with negative eigenvalues: H_ℓ is not PSD here
        count = a.inertia.negative
        what = (f"The GGN has {count} negative eigenvalue{'s' if count != 1 else ''} here: "
                "the output loss is not convex in the outputs (see the notes), so it is not "
                "positive semidefinite. It")
    else:  # PSD only where the output loss is convex in the outputs: the notes say
        what = ("The GGN is positive semidefinite only where the output loss is convex in "
                "the outputs (the notes say whether it is here). It")
    return (
        f"{title} curvature: λmin = {num(lam_min)}, λmax = {num(lam_max)}{cond}; {grad}. "
        f"{what} says how sharp the model and loss are here, not whether this is a minimum "
        "or a saddle: rerun with --curvature hessian for that verdict."
    )


def headline(a: Analysis) -> str:
    if a.smooth is False and a.nonsmooth is not None:
        return nonsmooth_headline(a)
    if a.curvature != CurvatureKind.HESSIAN:
        return curvature_headline(a)
    lam_min, lam_max = a.spectrum.lambda_min, a.spectrum.lambda_max
    zero = a.inertia.zero
    if a.classification == Classification.LOCAL_MINIMUM:
        return (
            f"Local minimum: the gradient vanishes (‖∇f‖ = {num(a.gradient_norm)} ≤ gtol) and "
            f"every eigenvalue is positive (λmin = {num(lam_min)} > tol = {num(a.tolerance)})"
            + probable_clause(a, "classification") + "."
        )
    if a.classification == Classification.LOCAL_MAXIMUM:
        return (
            f"Local maximum: the gradient vanishes and every eigenvalue is negative "
            f"(λmax = {num(lam_max)} < −tol)"
            + probable_clause(a, "classification") + "."
        )
    if a.classification == Classification.SADDLE_POINT and a.escape is not None:
        e = a.escape
        lead = e.top_parameters[0][0] if e.top_parameters else "the escape direction"
        best = min(e.actual_change, e.actual_change_opposite)
        return (
            f"Strict saddle point: the gradient vanishes but λmin = {num(lam_min)} < 0. "
            f"Moving {num(e.distance)} along the escape direction (mostly {lead}) "
            f"{'decreases' if best < 0 else 'changes'} f by {num(abs(best))} "
            f"(quadratic model: {signed_change(e.predicted_change)})."
        )
    if a.classification == Classification.UNDETERMINED:
        return undetermined_headline(a)
    if a.classification == Classification.DEGENERATE:
        return (
            f"Degenerate critical point: the gradient vanishes and {zero} eigenvalue"
            f"{'s are' if zero != 1 else ' is'} zero within tol = {num(a.tolerance)}, with "
            f"none negative{' or' if a.inertia.negative == 0 else ', some negative, none'} "
            "positive beyond it: the second-order test is inconclusive and "
            "higher-order terms decide. hesscli does not guess."
        )
    text = f"Not a critical point: ‖∇f‖ = {num(a.gradient_norm)} > gtol = {num(a.gtol)}. "
    if a.definiteness == Definiteness.UNDETERMINED and a.spectrum.bounds is not None:
        return text + (
            f"The Hessian's definiteness is undetermined: proven: {proven_curvature(a)}; "
            "the far sides of the ends are not (see the notes)."
        )
    if a.definiteness == Definiteness.UNDETERMINED:
        return text + (
            f"The Hessian's definiteness is undetermined: {unconverged_ends(a)} did not "
            f"converge; proven: {proven_curvature(a)}. Raise --max-steps to decide it."
        )
    return (text + f"The Hessian here is {a.definiteness.replace('_', ' ')}"
            + probable_clause(a, "definiteness") + ".")


def signed_change(change: float) -> str:
    """A change of f said with its direction ("a fall of 0.005"), so that it cannot be
    read as a magnitude after "decreases f by …"."""
    return f"{'a rise' if change > 0 else 'a fall'} of {num(abs(change))}"


def step_lines(a: Analysis) -> list[Text]:
    lines: list[Text] = []
    s = a.step
    if a.smooth is False:
        if s is not None:
            verb = "increases" if s.actually_increases else "decreases"
            lines.append(Text(
                f"A gradient step with lr = {num(s.lr)} {verb} f by {num(abs(s.actual_change))}; "
                "the quadratic model and the 2/λmax bound mean nothing across a kink."
            ))
        return lines
    if s is not None:
        verb = "increases" if s.actually_increases else "decreases"
        style = "bold red" if s.actually_increases or s.increases_loss else "green"
        text = Text()
        noise_actual = s.below_rounding(s.actual_change)
        noise_model = s.below_rounding(s.predicted_change)
        if noise_actual:
            verb, style = "changes", ""
        text.append(f"A gradient step with lr = {num(s.lr)} {verb} f by ", style="")
        text.append(small(abs(s.actual_change), noise_actual), style=style)
        # the model's change is signed and may disagree with f's: say which way it goes
        if noise_model:
            model = small(s.predicted_change, noise_model)
        else:
            model = signed_change(s.predicted_change)
        text.append(f" (quadratic model: {model}).")
        lines.append(text)
        if noise_model:
            pass  # the gradient is rounding noise: its direction says nothing
        elif s.optimal_lr is not None:
            lines.append(
                Text(
                    f"Along the gradient the model is lowest at lr = {num(s.optimal_lr)} and "
                    f"rises for lr > {num(s.max_decreasing_lr)}; this lr is "
                    f"{num(s.lr_ratio, 3)}× the best one."
                )
            )
        else:
            lines.append(
                Text("Curvature along the gradient is ≤ 0: the quadratic model decreases for "
                     "every lr along it (no best step).")
            )
        if s.increases_loss and not noise_model:
            lines.append(
                Text(
                    "Poor conditioning: the curvature term ½lr²gᵀHg outweighs lr·gᵀg, so this "
                    + ("step increases the loss" if s.actually_increases else
                       "step increases the quadratic model (f itself fell: the model is "
                       "inaccurate this far out)")
                    + "; lower the learning rate.",
                    style="bold red",
                )
            )
    st = a.stability
    if st.max_stable_lr is not None and a.curvature != CurvatureKind.HESSIAN:
        from hesscli.curvature.operators import TITLES

        title = TITLES.get(a.curvature, a.curvature)
        lines.append(Text(
            f"lr·λmax = {num(st.lr_times_lambda_max)} with the {title}'s λmax. This λmax is "
            f"the {title}'s: gradient descent's stability is set by the Hessian's λmax, so "
            "it is undetermined here (rerun with --curvature hessian to decide it).",
            style="yellow",
        ))
    elif st.max_stable_lr is not None and a.spectrum.bounds is not None and st.stable is None:
        upper = ("no upper bound on λmax (too few Lanczos steps from the random start)"
                 if st.lambda_max_at_most is None else
                 f"the random-start bound λmax ≤ {num(st.lambda_max_at_most)} gives "
                 f"lr·λmax ≤ {num(st.lr * st.lambda_max_at_most)}")
        lines.append(Text(
            f"lr·λmax ≥ {num(st.lr * a.spectrum.bounds.max_at_least)} (proven) and {upper}, "
            "so stability is undetermined: a Krylov run from one start never proves an "
            f"upper bound on λmax. lr < 2/λmax ≤ {num(st.max_stable_lr)} is needed; a "
            "dense run (--dense, when it fits) decides it.",
            style="bold yellow",
        ))
    elif st.max_stable_lr is not None and st.certainty == Certainty.PROBABILISTIC and st.stable:
        lines.append(Text(
            f"lr·λmax ≤ {num(st.lr * st.lambda_max_at_most)} < 2 with probability ≥ "
            f"{st.probability:.3g} over the random start (λmax ≤ {num(st.lambda_max_at_most)}, "
            "Kuczyński–Woźniakowski): gradient descent is stable near here, unless the run "
            "missed the top eigenvector."
        ))
    elif st.max_stable_lr is not None and st.stable is None:
        lines.append(Text(
            f"lr·λmax ≥ {num(st.lr_times_lambda_max)} (λmax not converged: the true λmax may "
            "be larger), so stability is undetermined: gradient descent is stable only if "
            f"lr < 2/λmax ≤ {num(st.max_stable_lr)}. Raise --max-steps to decide it.",
            style="bold yellow",
        ))
    elif st.max_stable_lr is not None:
        ok = st.stable
        # an unconverged λmax is a lower bound: lr·λmax ≥ …, 2/λmax ≤ …
        rel = "=" if st.lambda_max_converged else "≥"
        bound = "=" if st.lambda_max_converged else "≤"
        lines.append(
            Text(
                f"lr·λmax {rel} {num(st.lr_times_lambda_max)} "
                + ("< 2: gradient descent is stable near here."
                   if ok else
                   f"> 2: gradient descent is unstable along the top eigenvector; "
                   f"use lr < 2/λmax {bound} {num(st.max_stable_lr)}."),
                style="" if ok else "bold red",
            )
        )
    return lines


def numbers_table(a: Analysis, rows: list[tuple[str, str]] | None = None) -> Table:
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="dim")
    t.add_column()
    sp = a.spectrum
    t.add_row("objective", f"{a.objective}  (n = {a.n}, method {a.method}, {a.dtype})")
    t.add_row("value", num(a.value, 8))
    t.add_row("gradient norm", f"{num(a.gradient_norm)}  (gtol {num(a.gtol)})")
    label = "eigenvalues" if sp.complete else "extreme eigenvalues"
    t.add_row(label, eigen_list([float(v) for v in sp.eigenvalues]))
    if sp.bounds is not None and not sp.complete:
        for name, text in end_rows(sp.bounds):
            t.add_row(name, text)
    t.add_row(
        "inertia",
        f"{a.inertia.positive} positive, {a.inertia.negative} negative, {a.inertia.zero} zero"
        + ("" if sp.complete else " (of those computed)"),
    )
    if sp.eigenvalue_errors is not None:
        t.add_row("certified errors", eigen_list([float(v) for v in sp.eigenvalue_errors])
                  + "  (residual ‖Hv−θv‖)")
    if sp.error_estimates is not None:
        t.add_row("estimated errors", eigen_list([float(v) for v in sp.error_estimates])
                  + "  (Kato–Temple, Ritz gap)")
    if sp.converged is not None and not bool(sp.converged.all()):
        t.add_row("converged", ", ".join("yes" if c else "[bold red]NO[/]"
                                         for c in sp.converged))
    t.add_row("tolerance", f"|λ| ≤ {num(a.tolerance)} counts as zero")
    t.add_row("definiteness", a.definiteness.replace("_", " "))
    t.add_row("condition number", num(a.condition_number))
    if sp.symmetry_error:
        t.add_row("symmetry error", f"{num(sp.symmetry_error)}  (‖H−Hᵀ‖/‖H‖ before symmetrizing)")
    if a.gradient_top:
        top = ", ".join(f"{name} ({num(w, 3)})" for name, w in a.gradient_top[:3])
        t.add_row("gradient lives in", top)
    elif a.critical and a.gradient_norm > 0:
        t.add_row("gradient lives in", "0 (below rounding: ‖∇f‖ ≤ gtol)")
    if a.fd is not None:
        t.add_row("finite differences",
                  f"{a.fd.source}, accuracy {a.fd.accuracy}, {a.fd.evaluations} evaluations; "
                  f"Hessian error ≤ {num(a.fd.hessian_error)} (added to tol)")
        if a.fd.why == "--method fd":  # otherwise a note below says why
            t.add_row("why fd", a.fd.why)
    if a.smooth is False and a.nonsmooth is not None:
        t.add_row("not smooth in", ", ".join(
            f"{n} (slope jump {num(j, 3)})" if j == j else n for n, j in
            zip(a.nonsmooth.parameters[:6], a.nonsmooth.slope_jump[:6], strict=False)))
        for k in a.nonsmooth.kinks[:4]:
            t.add_row("kink probe", f"{k.direction}, {k.side} side: {k.kind} mismatch "
                      f"{num(k.mismatch, 3)} (jump across {num(k.jump, 3)})")
    v = a.verification
    if v is not None:
        if not v.performed:
            t.add_row("verify", f"skipped: {v.why}")
        else:
            for c in (v.hvp, v.directional):
                if c is None:
                    continue
                t.add_row(f"verify {c.what}",
                          f"{'passed' if c.passed else 'FAILED'}: relative error "
                          f"{num(c.relative_error, 3)} (tolerance {num(c.tolerance, 3)})")
    for label, text in rows or []:
        t.add_row(label, text)
    return t


def end_rows(b: EndBounds) -> list[tuple[str, str]]:
    """The two ends as what is known: a value ± its certified half-width when resolved,
    else the proven one-sided bound; the random-start bound beside it."""
    ends = (
        ("λmin", b.theta_min, b.min_halfwidth, b.min_resolved, b.min_interval[::-1], "≤",
         "≥", "below", "smallest", b.min_at_least),
        ("λmax", b.theta_max, b.max_halfwidth, b.max_resolved, b.max_interval, "≥", "≤",
         "above", "largest", b.max_at_most),
    )
    rows = []
    for name, theta, half, resolved, (proven, far), sure, other, side, which, likely in ends:
        if resolved:
            text = f"{num(theta)} ± {num(half)}"
        else:
            text = (f"{sure} {num(proven)} (proven; not resolved {side}: {other} {num(far)} if "
                    f"the run found the {which} eigenvalue; --rtol for more)")
        if b.probability is not None:
            text += f"; {other} {num(likely)} with probability {b.probability:.3g}"
        rows.append((name, text))
    return rows


def escape_table(a: Analysis) -> Table | None:
    e = a.escape
    if e is None:
        return None
    t = Table(box=None, pad_edge=False)
    t.add_column("parameter")
    t.add_column("weight", justify="right")
    for name, weight in e.top_parameters:
        t.add_row(name, num(weight, 3))
    return t


def escape_summary(a: Analysis) -> Text | None:
    e = a.escape
    if e is None:
        return None
    text = Text(f"Escape direction: the eigenvector of λmin = {num(e.eigenvalue)} (unit norm). ",
                style="bold")
    text.append(
        f"f(x + {num(e.distance)}·v) − f(x) = {num(e.actual_change)}, "
        f"f(x − {num(e.distance)}·v) − f(x) = {num(e.actual_change_opposite)}.",
        style="",
    )
    if len(e.leaf_shares) > 1:
        shares = ", ".join(f"{leaf} {100 * s:.0f}%" for leaf, s in e.leaf_shares if s >= 0.005)
        text.append(f"\nBy parameter group (share of ‖v‖²): {shares}.", style="")
    return text


def render_analysis(
    a: Analysis, console: Console, notes: list[str] | None = None,
    rows: list[tuple[str, str]] | None = None,
) -> None:
    """The report; ``rows`` are extra (label, text) rows for the numbers table."""
    style = KIND_STYLE.get(a.classification or "", "bold blue")
    title = (a.classification or f"{a.curvature} (no classification)").replace("_", " ")
    console.print(Panel(Text(headline(a)), title=title,
                        title_align="left", border_style=style.split()[-1]))
    for line in step_lines(a):
        console.print(line)
    console.print()
    console.print(numbers_table(a, rows))
    table = escape_table(a)
    summary = escape_summary(a)
    if table is not None and summary is not None:
        console.print()
        console.print(summary)
        console.print(table)
    for note in list(a.notes) + list(notes or []):
        console.print(Text(f"note: {note}", style="dim"))
