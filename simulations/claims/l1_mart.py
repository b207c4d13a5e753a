r"""``L1-mart``: Pinelis (1994), P(max_{s≤T} ‖ξ(s)‖ ≥ r) ≤ 2exp(−r²/(8λ²γ_T)),
γ_T = Σ_{t<T} a(t)², on the paths where ξ is tracked, one row per radius r of ``[radii] xi``.
Classic clipping (‖increment‖ ≤ 2λa(t)). ``vacuous`` when 2λ·Σ_{t<T} a(t) < r."""

from __future__ import annotations

import numpy as np

from simulations.claims.context import Context, bound_text, fmt
from simulations.claims.result import ClaimResult
from simulations.claims.verdicts import clopper_pearson, probability_verdict
from theory import bounds

ID = "L1-mart"
STATEMENT = "Pinelis: P(max_s‖ξ(s)‖ ≥ r) ≤ 2exp(−r²/(8λ²γ_T))"
RULES = ("classic",)
OBSERVERS = ("xi",)
OPTIONS: dict = {}


def applicable(scenario) -> str | None:
    return None if scenario.xi_radii else "needs [radii] xi = [r, ...]"


def check(ctx: Context) -> list[ClaimResult]:
    xi_max = ctx.sim.arrays["xi_max"]
    n = len(xi_max)
    reach = 2 * ctx.lam * float(np.sum(ctx.a))
    out = []
    for r in ctx.scenario.xi_radii:
        b = bounds.pinelis(ctx.lam, r, ctx.schedule, horizon=ctx.steps)
        k = int(np.sum(xi_max >= r))
        lo, hi = clopper_pearson(k, n)
        verdict, why = probability_verdict(k, n, b.log10_probability, impossible=reach < r)
        out.append(ctx.row(
            statement=f"Pinelis: P(max_s‖ξ(s)‖ ≥ {fmt(r)}) ≤ 2exp(−r²/(8λ²γ_T))",
            prediction=bound_text(b), measurement=f"{k}/{n} = {fmt(k / n)}",
            interval=(lo, hi), verdict=verdict, reason=why + f"; H by {ctx.h_method}",
            prediction_value=b.log10_probability, measurement_value=k / n,
            details={"radius": r, "log10_bound": b.log10_probability, "exits": k, "paths": n,
                     "max_xi": float(np.max(xi_max)), "h_method": ctx.h_method}))
    return out
