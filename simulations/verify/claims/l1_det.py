r"""``L1-det``: ‖θ(s) − θ(0)‖ ≤ λ·Σ_{t<s} a(t) on every path, at every checkpoint s and for the
running maximum (against λ·Σ_{t<T} a(t)). Classic clipping (each step moves at most λa(t)).
Pathwise, with each path's rounding budget at each checkpoint
(:meth:`simulations.verify.claims.rounding.Rounding.displacement_rtol`: u per step relative to the
path's largest ‖θ‖, accumulated over the s steps, against λΣa); ``inconclusive`` where a path
exceeds the bound within that budget on steps λa(t) below one ulp of θ. The partial sums are
summed in float64 in step order, as the engine sums the steps."""

from __future__ import annotations

import numpy as np

from simulations.verify.claims.context import Context, fmt
from simulations.verify.claims.result import ClaimResult
from simulations.verify.claims.verdicts import pathwise_check

ID = "L1-det"
STATEMENT = "‖θ(s)−θ(0)‖ ≤ λ·Σ_{t<s}a(t) on every path"
RULES = ("classic",)
OBSERVERS = ("checkpoints", "running_max")
OPTIONS: dict = {}


def check(ctx: Context) -> list[ClaimResult]:
    arr = ctx.sim.arrays
    cum = np.concatenate([[0.0], np.cumsum(ctx.a)])
    steps = np.asarray(arr["checkpoint_steps"])
    radius = ctx.lam * cum[steps]
    dev = arr["deviation_at"]
    max_dev = arr["max_deviation"]
    total = ctx.lam * cum[-1]
    # every checkpoint with a positive radius, then the running maximum against λΣ_{t<T}a
    positive = radius > 0
    at = np.concatenate([steps[positive], [ctx.steps] if total > 0 else []])
    bound = np.concatenate([radius[positive], [total] if total > 0 else []])
    measured = np.concatenate([dev[:, positive], max_dev[:, None]] if total > 0
                              else [dev[:, positive]], axis=1)
    ratios = measured / bound
    rtol, low = ctx.displacement_budget(at, bound)
    blown = int(np.sum(arr["blown_step"] >= 0))
    verdict, why, check_details = pathwise_check(ratios, rtol, "‖θ(s) − θ(0)‖",
                                                 unresolved=low)
    if blown:
        verdict, why = "violated", f"{blown} paths blew up, which classic clipping cannot do"
    finite = max_dev[np.isfinite(max_dev)]
    return [ctx.row(
        prediction=f"≤ λΣa = {fmt(total)} at T", measurement=f"max {fmt(float(np.max(max_dev)))}",
        interval=(float(finite.min()), float(finite.max())) if finite.size else None,
        verdict=verdict, reason=why, prediction_value=total,
        measurement_value=float(np.max(max_dev)),
        details={**check_details, "blown_up": blown})]
