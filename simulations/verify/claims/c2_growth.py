r"""``C2-growth``: Grönwall, ‖θ(s)‖ ≤ max(‖θ(0)‖, ε)·Π_{t<s}(1 + λa(t)) at every checkpoint of
every path (the ε is needed; the bound is attained by a far target). Adaptive clipping.
Pathwise, with the rounding budget of each checkpoint s: how far the run's rounding can lift
max(‖θ(s)‖, ε) above the bound (:meth:`simulations.verify.claims.rounding.Rounding.growth_rtol`,
about (s + κΣλa/(1 + λa))·u), with the evaluation of the norms and of the product added
(:func:`budget`). The product is taken in float64 in step order while it is finite (as the
engine multiplies), in log space past that. A path that reaches the engine's guard below the
bound plus its budget is a violation."""

from __future__ import annotations

import math

import numpy as np

from simulations.verify.claims.context import Context, fmt
from simulations.verify.claims.result import ClaimResult
from simulations.verify.claims.rounding import U64, gamma
from simulations.verify.claims.verdicts import pathwise_check
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


def budget(ctx: Context, steps: np.ndarray, log_terms: np.ndarray | None = None) -> np.ndarray:
    """ρ at the checkpoints ``steps``: 1 + ρ = (1 + ρ_g(s))·(1 + γ_{P+2})/(1 − γ_{P+2})·
    (1 + γ^{64}_{3s+2}), the growth budget of the path (:meth:`Context.growth_budget`), the
    computed ‖θ(s)‖ and ‖θ(0)‖ (γ_{P+2} each, in the dtype) and the float64 running product of
    the 1 + λa(t) with the bound's last product and the ratio (3s + 2 roundings). Where the
    comparison is made in log space, ``log_terms`` (the sum of the absolute values of the logs
    compared) adds exp(γ^{64}_{2s+4}·log_terms)·(1 + u₆₄): the logs' absolute rounding, which
    exp turns into a relative one."""
    growth, _ = ctx.growth_budget(steps)
    norm = ctx.rounding.norm_rel
    one_plus = ((1 + growth) * (1 + norm) / (1 - norm) * (1 + gamma(3 * steps + 2, U64)))
    if log_terms is not None:
        with np.errstate(over="ignore"):
            one_plus = one_plus * np.exp(gamma(2 * steps + 4, U64) * log_terms) * (1 + U64)
    return one_plus - 1


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
    in_logs = ~np.isfinite(bound)
    ratio = np.where(in_logs, np.exp(log_ratio), ratio)
    ratio = np.where(np.isfinite(norms), ratio, 0.0)
    ck = steps[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_terms = (np.abs(np.log(norms)) + np.abs(np.log(start))[:, None]
                     + log_prod[ck][None, :])
    rtol = np.where(in_logs, budget(ctx, ck[None, :], np.where(in_logs, log_terms, 0.0)),
                    budget(ctx, ck)[None, :])
    _, low = ctx.growth_budget(ck)
    verdict, why, check_details = pathwise_check(ratio, rtol, "‖θ(s)‖", unresolved=low)
    worst = check_details["worst_ratio"] or 0.0
    guard = float(ctx.sim.setting.get("guard", 1e100))
    blown_rows = arr["blown_step"]
    at = np.maximum(blown_rows, 0)
    log_bound_blow = np.log(start) + log_prod[at] + np.log1p(budget(ctx, at))
    broke = int(np.sum((blown_rows >= 0) & (log_bound_blow < math.log(guard))))
    if broke:
        verdict, why = "violated", (f"{broke} paths passed the guard {guard:g} below the bound "
                                    "plus its rounding budget")
    elif np.any(blown_rows >= 0):
        why += (f"; {int(np.sum(blown_rows >= 0))} paths reached the guard {guard:g}, which the "
                "bound allows")
    g = bounds.gronwall(ctx.lam, eps, ctx.schedule, ctx.steps, float(np.max(norm0)))
    max_norm = arr["max_norm"]
    return [ctx.row(
        prediction=f"‖θ(T)‖ ≤ 10^{g.log10_norm:.5g}",
        measurement=f"max_s ‖θ(s)‖ = {fmt(float(np.max(max_norm)))}",
        interval=(float(np.min(max_norm)), float(np.max(max_norm))), verdict=verdict,
        reason=why, prediction_value=g.log10_norm, measurement_value=float(np.max(max_norm)),
        details={**check_details, "worst_ratio": worst, "log10_bound_T": g.log10_norm})]
