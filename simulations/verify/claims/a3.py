r"""``A3``: the rule is stable w.h.p.: P(max_s ‖θ(s)‖ > R) ≤ δ, with R the blow-up radius
(``[radii] blowup``, default 10⁶) and δ the option ``a3_delta``. Judged by the running maximum,
never by the endpoint, with the probability rule of :mod:`simulations.verify.claims.verdicts`. Where
the plain run cannot resolve δ, AMS with the score ``blowup`` at the level just above R
estimates exactly this event (:meth:`Context.probability`); it is not tried where classic
clipping cannot reach R before T (‖θ(0)‖ + λΣ_{t<T}a(t) ≤ R)."""

from __future__ import annotations

import math

import numpy as np

from simulations.verify.claims.context import RARE_OPTIONS, Context, fmt
from simulations.verify.claims.result import ClaimResult

ID = "A3"
STATEMENT = "stable w.h.p.: P(max_s ‖θ(s)‖ > R) ≤ δ"
RULES = None
OBSERVERS = ("running_max",)
OPTIONS = {"a3_delta": 0.05, **RARE_OPTIONS}


def check(ctx: Context) -> list[ClaimResult]:
    arr = ctx.sim.arrays
    radius = ctx.scenario.blowup_radius
    delta = float(ctx.opt("a3_delta"))
    if not 0 < delta < 1:
        raise ValueError(f"options.a3_delta must be in (0, 1), got {delta}")
    max_norm = arr["max_norm"]
    n = len(max_norm)
    k = int(np.sum(~(max_norm <= radius)))
    step_sum = ctx.lam * float(np.sum(ctx.a))
    reachable = (ctx.rule.kind != "classic"
                 or float(np.linalg.norm(ctx.theta0())) + step_sum > radius)
    got = ctx.probability(k, n, math.log10(delta),
                          event=("blowup", math.nextafter(radius, math.inf)), reachable=reachable)
    lo, hi = got["interval"]
    end = np.linalg.norm(arr["endpoints"], axis=1)
    why = (f"{k} of {n} paths had max_s ‖θ(s)‖ > {fmt(radius)} (largest "
           f"{fmt(float(np.max(max_norm)))}; median endpoint ‖θ(T)‖ = "
           f"{fmt(float(np.median(end)))}); δ = {delta:g}"
           + ("" if math.isnan(lo) else f", interval [{lo:.3g}, {hi:.3g}]"))
    if got["details"]["estimator"] == "ams":
        why += " (AMS); " + got["reason"]
    else:
        why += "; " + got["reason"].rsplit("; ", 1)[-1]  # the tightness
    if ctx.rule.kind == "classic":
        why += f"; classic clipping moves at most λΣa = {fmt(step_sum)}"
    return [ctx.row(
        statement=f"stable w.h.p.: P(max_s ‖θ(s)‖ > {fmt(radius)}) ≤ {delta:g}",
        prediction=f"≤ {delta:g}", measurement=got["measurement"], interval=(lo, hi),
        verdict=got["verdict"], reason=why, prediction_value=delta,
        measurement_value=got["measurement_value"],
        details={"radius": radius, "exits": k, "paths": n,
                 "max_norm": float(np.max(max_norm)),
                 "median_endpoint_norm": float(np.median(end)), **got["details"]})]
