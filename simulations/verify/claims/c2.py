r"""``C2``: Claim 2, ‖g/c‖ ≤ K(1 + ‖θ‖) on every step of every path, with the smallest
K = λ·max(1, ε) (the paper's max(λε, λ, 1) is reported beside it). Adaptive clipping.
Pathwise, one step at a time: the recorded ‖g/c‖ and the ‖θ‖ it is divided by share the same
computed ‖θ‖, so their rounding cancels and the tolerance is a few float64 roundings,
:attr:`simulations.verify.claims.rounding.Rounding.step_ratio_rtol` (γ₈ of float64), whatever the
dtype."""

from __future__ import annotations

import numpy as np

from simulations.verify.claims.context import Context, fmt
from simulations.verify.claims.result import ClaimResult
from simulations.verify.claims.verdicts import pathwise_check
from theory import bounds

ID = "C2"
STATEMENT = "Claim 2: ‖g/c‖ ≤ K(1+‖θ‖), K = λ·max(1, ε)"
RULES = ("adaptive",)
OBSERVERS = ("claim2",)
OPTIONS: dict = {}


def check(ctx: Context) -> list[ClaimResult]:
    k = bounds.claim2_constants(ctx.lam, ctx.rule.eps)
    ratio = ctx.sim.arrays["claim2_ratio"]
    worst = float(np.max(ratio))
    rtol = ctx.rounding.step_ratio_rtol
    verdict, why, _ = pathwise_check(ratio / k.k_tight, rtol, "‖g/c‖/(1+‖θ‖)")
    return [ctx.row(
        prediction=f"K = {fmt(k.k_tight)} (paper's {fmt(k.k_paper)})",
        measurement=f"max {fmt(worst)}", interval=(float(np.min(ratio)), worst),
        verdict=verdict, reason=why, prediction_value=k.k_tight, measurement_value=worst,
        details={"k_tight": k.k_tight, "k_paper": k.k_paper, "worst_ratio": worst / k.k_tight,
                 "rtol": rtol})]
