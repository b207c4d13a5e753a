r"""``L1-mart``: Pinelis (1994), P(max_{s≤T} ‖ξ(s)‖ ≥ r) ≤ 2exp(−r²/(8λ²γ_T)),
γ_T = Σ_{t<T} a(t)², on the paths where ξ is tracked, one row per radius r of ``[radii] xi``.
Classic clipping (‖increment‖ ≤ 2λa(t)). ``vacuous`` when 2λ·Σ_{t<T} a(t) < r. Where the plain
run cannot resolve the bound, AMS with the score ``xi`` at level r estimates exactly this event
(:meth:`Context.probability`)."""

from __future__ import annotations

import numpy as np

from simulations.verify.claims.context import RARE_OPTIONS, Context, bound_text, fmt
from simulations.verify.claims.result import ClaimResult
from theory import bounds

ID = "L1-mart"
STATEMENT = "Pinelis: P(max_s‖ξ(s)‖ ≥ r) ≤ 2exp(−r²/(8λ²γ_T))"
RULES = ("classic",)
OBSERVERS = ("xi",)
OPTIONS: dict = dict(RARE_OPTIONS)


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
        got = ctx.probability(k, n, b.log10_probability, event=("xi", r),
                              impossible=reach < r)
        out.append(ctx.row(
            statement=f"Pinelis: P(max_s‖ξ(s)‖ ≥ {fmt(r)}) ≤ 2exp(−r²/(8λ²γ_T))",
            prediction=bound_text(b), measurement=got["measurement"],
            interval=got["interval"], verdict=got["verdict"],
            reason=got["reason"] + f"; H by {ctx.h_method}",
            prediction_value=b.log10_probability, measurement_value=got["measurement_value"],
            details={"radius": r, "log10_bound": b.log10_probability, "exits": k, "paths": n,
                     "max_xi": float(np.max(xi_max)), "h_method": ctx.h_method,
                     **got["details"]}))
    return out
