r"""``C2-growth``: Grönwall, ‖θ(s)‖ ≤ max(‖θ(0)‖, ε)·Π_{t<s}(1 + λa(t)) at every checkpoint of
every path (the ε is needed; the bound is attained by a far target). Adaptive clipping.
Pathwise, with the tolerance of :func:`simulations.claims.verdicts.pathwise_rtol`: the product
is taken in float64 in step order while it is finite (as the engine multiplies), in log space
past that. A path that reaches the engine's guard below the bound is a violation."""

from __future__ import annotations

import math

import numpy as np

from simulations.claims.context import Context, fmt
from simulations.claims.result import ClaimResult
from simulations.claims.verdicts import pathwise_verdict
from theory import bounds

ID = "C2-growth"
STATEMENT = "Grönwall: ‖θ(s)‖ ≤ max(‖θ(0)‖, ε)·Π_{t<s}(1+λa(t))"
RULES = ("adaptive",)
OBSERVERS = ("checkpoints", "running_max")
OPTIONS: dict = {}


def products(lam: float, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Π_{t<s}(1 + λa(t)) for s = 0..T as the float64 running product in step order (inf past
    overflow), and its log Σ_{t<s} log1p(λa(t))."""
    with np.errstate(over="ignore"):
        prod = np.concatenate([[1.0], np.cumprod(1.0 + lam * a)])
    return prod, np.concatenate([[0.0], np.cumsum(np.log1p(lam * a))])


def check(ctx: Context) -> list[ClaimResult]:
    arr, eps = ctx.sim.arrays, ctx.rule.eps
    steps = arr["checkpoint_steps"]
    prod, log_prod = products(ctx.lam, ctx.a)
    norm0 = arr["norm_at"][:, 0]
    start = np.maximum(norm0, eps)
    norms = arr["norm_at"][:, 1:]  # at s = 0 the bound is ‖θ(0)‖ itself
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        bound = start[:, None] * prod[steps[1:]][None, :]
        ratio = norms / bound
        # where the product overflows, compare logs
        log_ratio = np.log(norms) - (np.log(start)[:, None] + log_prod[steps[1:]][None, :])
    ratio = np.where(np.isfinite(bound), ratio, np.exp(log_ratio))
    ratio = np.where(np.isfinite(norms), ratio, 0.0)
    worst = float(np.max(ratio)) if ratio.size else 0.0
    blown = arr["blown_step"]
    guard = float(ctx.sim.setting.get("guard", 1e100))
    log_bound_blow = np.log(start) + log_prod[np.maximum(blown, 0)]
    broke = int(np.sum((blown >= 0) & (log_bound_blow < math.log(guard))))
    verdict, why = pathwise_verdict(worst, ctx.rtol, "‖θ(s)‖")
    if broke:
        verdict, why = "violated", f"{broke} paths passed the guard {guard:g} below the bound"
    elif np.any(blown >= 0):
        why += (f"; {int(np.sum(blown >= 0))} paths reached the guard {guard:g}, which the "
                "bound allows")
    g = bounds.gronwall(ctx.lam, eps, ctx.schedule, ctx.steps, float(np.max(norm0)))
    max_norm = arr["max_norm"]
    return [ctx.row(
        prediction=f"‖θ(T)‖ ≤ 10^{g.log10_norm:.5g}",
        measurement=f"max_s ‖θ(s)‖ = {fmt(float(np.max(max_norm)))}",
        interval=(float(np.min(max_norm)), float(np.max(max_norm))), verdict=verdict,
        reason=why, prediction_value=g.log10_norm, measurement_value=float(np.max(max_norm)),
        details={"worst_ratio": worst, "log10_bound_T": g.log10_norm, "rtol": ctx.rtol})]
