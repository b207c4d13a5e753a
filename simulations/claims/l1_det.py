r"""``L1-det``: ‖θ(s) − θ(0)‖ ≤ λ·Σ_{t<s} a(t) on every path, at every checkpoint s and for the
running maximum (against λ·Σ_{t<T} a(t)). Classic clipping (each step moves at most λa(t)).
Pathwise, with the tolerance of :func:`simulations.claims.verdicts.pathwise_rtol`; the partial
sums are summed in float64 in step order, as the engine sums the steps."""

from __future__ import annotations

import numpy as np

from simulations.claims.context import Context, fmt
from simulations.claims.result import ClaimResult
from simulations.claims.verdicts import pathwise_verdict

ID = "L1-det"
STATEMENT = "‖θ(s)−θ(0)‖ ≤ λ·Σ_{t<s}a(t) on every path"
RULES = ("classic",)
OBSERVERS = ("checkpoints", "running_max")
OPTIONS: dict = {}


def check(ctx: Context) -> list[ClaimResult]:
    arr = ctx.sim.arrays
    cum = np.concatenate([[0.0], np.cumsum(ctx.a)])
    radius = ctx.lam * cum[arr["checkpoint_steps"]]
    dev = arr["deviation_at"]
    positive = radius > 0
    ratios = dev[:, positive] / radius[positive]
    total = ctx.lam * cum[-1]
    max_dev = arr["max_deviation"]
    worst = float(np.max(ratios)) if ratios.size else 0.0
    if total > 0:
        worst = max(worst, float(np.max(max_dev)) / total)
    verdict, why = pathwise_verdict(worst, ctx.rtol, "‖θ(s) − θ(0)‖")
    blown = int(np.sum(arr["blown_step"] >= 0))
    if blown:
        verdict, why = "violated", f"{blown} paths blew up, which classic clipping cannot do"
    finite = max_dev[np.isfinite(max_dev)]
    return [ctx.row(
        prediction=f"≤ λΣa = {fmt(total)} at T", measurement=f"max {fmt(float(np.max(max_dev)))}",
        interval=(float(finite.min()), float(finite.max())) if finite.size else None,
        verdict=verdict, reason=why, prediction_value=total,
        measurement_value=float(np.max(max_dev)),
        details={"worst_ratio": worst, "rtol": ctx.rtol, "blown_up": blown})]
