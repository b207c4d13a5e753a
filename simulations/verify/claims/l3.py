r"""``L3``: Lemma 3, ξ converges: the mean over paths of sup_{s>t}‖ξ(s) − ξ(t)‖ decreases from
the first anchor t to the last (:func:`simulations.verify.claims.verdicts.decrease_verdict`); for
classic clipping the row also gives E‖ξ(T)‖² against 4λ²γ_T."""

from __future__ import annotations

import math

import numpy as np

from simulations.verify.claims.context import Context, fmt
from simulations.verify.claims.result import ClaimResult
from simulations.verify.claims.verdicts import decrease_verdict

ID = "L3"
STATEMENT = "Lemma 3: ξ(t) converges (sup_{s>t}‖ξ(s)−ξ(t)‖ → 0)"
RULES = None
OBSERVERS = ("xi",)
OPTIONS: dict = {}


def check(ctx: Context) -> list[ClaimResult]:
    arr = ctx.sim.arrays
    sup = arr["xi_sup_after"]  # (R_xi, anchors)
    anchors = arr["xi_anchors"].tolist()
    mean = sup.mean(0)
    se = sup.std(0, ddof=1) / math.sqrt(len(sup)) if len(sup) > 1 else np.zeros_like(mean)
    verdict = decrease_verdict(mean[0], mean[-1], math.hypot(se[0], se[-1]))
    gamma_t = float(np.sum(ctx.a**2))
    second = float(np.mean(arr["xi_norm_at"][:, -1] ** 2))
    why = ("mean sup_{s>t}‖ξ(s)−ξ(t)‖ at t = " + ", ".join(
        f"{t}: {fmt(m)}" for t, m in zip(anchors, mean, strict=True)))
    if ctx.rule.kind == "classic":
        why += f"; E‖ξ(T)‖² ≈ {fmt(second)} ≤ 4λ²γ_T = {fmt(4 * ctx.lam**2 * gamma_t)}"
    why += f"; H by {ctx.h_method}"
    return [ctx.row(
        prediction="decreasing in t", measurement=f"{fmt(mean[0])} → {fmt(mean[-1])}",
        interval=(float(mean[-1] - 1.96 * se[-1]), float(mean[-1] + 1.96 * se[-1])),
        verdict=verdict, reason=why, prediction_value=None, measurement_value=float(mean[-1]),
        details={"anchors": anchors, "mean": mean.tolist(), "se": se.tolist(),
                 "mean_sq_xi_T": second, "sum_sq_mean": float(np.mean(arr["xi_sum_sq"])),
                 "h_method": ctx.h_method})]
