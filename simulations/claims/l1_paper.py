r"""``L1-paper``: Lemma 1 as printed, (15): P(‖θ(T) − θ(0)‖ > M) ≤ 2exp(−2M²/(γλ²)), measured as
the fraction of paths with ‖θ(T) − θ(0)‖ > M at the horizon T, one row per radius M of
``[radii] exit``. Classic clipping. ``vacuous`` when λ·Σ_{t<T} a(t) ≤ M (no path can leave)."""

from __future__ import annotations

import numpy as np

from simulations.claims.context import Context, bound_text, fmt
from simulations.claims.result import ClaimResult
from simulations.claims.verdicts import clopper_pearson, probability_verdict
from theory import bounds

ID = "L1-paper"
STATEMENT = "Lemma 1 (15): P(‖θ(T)−θ(0)‖ > M) ≤ 2exp(−2M²/(γλ²))"
RULES = ("classic",)
OBSERVERS = ("checkpoints",)
OPTIONS: dict = {}


def applicable(scenario) -> str | None:
    return None if scenario.exit_radii else "needs [radii] exit = [M, ...]"


def check(ctx: Context) -> list[ClaimResult]:
    dev_T = ctx.sim.arrays["deviation_at"][:, -1]
    reach = ctx.lam * float(np.sum(ctx.a))
    out = []
    for M in ctx.scenario.exit_radii:
        b = bounds.lemma1_paper(ctx.lam, M, ctx.schedule)
        b14 = bounds.lemma1_paper(ctx.lam, M, ctx.schedule, horizon=ctx.steps) \
            if ctx.steps > 0 else b
        k, n = int(np.sum(~(dev_T <= M))), len(dev_T)
        lo, hi = clopper_pearson(k, n)
        verdict, why = probability_verdict(k, n, b.log10_probability, impossible=reach <= M)
        if verdict == "vacuous" and reach <= M:
            why = (f"λ·Σ_{{t<T}}a(t) = {fmt(reach)} ≤ M = {fmt(M)}: no path can leave the ball "
                   f"before T = {bounds.deterministic_horizon(ctx.lam, M, ctx.schedule)}")
        out.append(ctx.row(
            statement=f"Lemma 1 (15): P(‖θ(T)−θ(0)‖ > {fmt(M)}) ≤ 2exp(−2M²/(γλ²))",
            prediction=bound_text(b), measurement=f"{k}/{n} = {fmt(k / n)}",
            interval=(lo, hi), verdict=verdict, reason=why,
            prediction_value=b.log10_probability, measurement_value=k / n,
            details={"radius": M, "exponent": b.exponent, "log10_bound": b.log10_probability,
                     "log10_bound_14": b14.log10_probability, "exits": k, "paths": n,
                     "deterministic_radius": reach}))
    return out
