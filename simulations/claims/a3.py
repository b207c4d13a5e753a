r"""``A3``: the rule is stable w.h.p.: P(max_s ‖θ(s)‖ > R) ≤ δ, with R the blow-up radius
(``[radii] blowup``, default 10⁶) and δ the option ``a3_delta``. Judged by the running maximum,
never by the endpoint, with the probability rule of :mod:`simulations.claims.verdicts`."""

from __future__ import annotations

import math

import numpy as np

from simulations.claims.context import Context, fmt
from simulations.claims.result import ClaimResult
from simulations.claims.verdicts import clopper_pearson, probability_verdict

ID = "A3"
STATEMENT = "stable w.h.p.: P(max_s ‖θ(s)‖ > R) ≤ δ"
RULES = None
OBSERVERS = ("running_max",)
OPTIONS = {"a3_delta": 0.05}


def check(ctx: Context) -> list[ClaimResult]:
    arr = ctx.sim.arrays
    radius = ctx.scenario.blowup_radius
    delta = float(ctx.opt("a3_delta"))
    if not 0 < delta < 1:
        raise ValueError(f"options.a3_delta must be in (0, 1), got {delta}")
    max_norm = arr["max_norm"]
    n = len(max_norm)
    k = int(np.sum(~(max_norm <= radius)))
    lo, hi = clopper_pearson(k, n)
    verdict, _ = probability_verdict(k, n, math.log10(delta))
    end = np.linalg.norm(arr["endpoints"], axis=1)
    why = (f"{k} of {n} paths had max_s ‖θ(s)‖ > {fmt(radius)} (largest "
           f"{fmt(float(np.max(max_norm)))}; median endpoint ‖θ(T)‖ = "
           f"{fmt(float(np.median(end)))}); δ = {delta:g}, interval [{lo:.3g}, {hi:.3g}]")
    if ctx.rule.kind == "classic":
        why += f"; classic clipping moves at most λΣa = {fmt(ctx.lam * float(np.sum(ctx.a)))}"
    return [ctx.row(
        statement=f"stable w.h.p.: P(max_s ‖θ(s)‖ > {fmt(radius)}) ≤ {delta:g}",
        prediction=f"≤ {delta:g}", measurement=f"{k}/{n} = {fmt(k / n)}", interval=(lo, hi),
        verdict=verdict, reason=why, prediction_value=delta, measurement_value=k / n,
        details={"radius": radius, "exits": k, "paths": n,
                 "max_norm": float(np.max(max_norm)),
                 "median_endpoint_norm": float(np.median(end))})]
