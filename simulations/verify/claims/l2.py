r"""``L2``: Lemma 2, H = E[g/c] is Marchaud: continuous and ‖H(θ)‖ ≤ K(1 + ‖θ‖), estimated on
shells of points about θ(0) (radii ``l2_radii`` times 1 + ‖θ(0)‖, ``l2_points`` points each;
:func:`theory.equilibria.marchaud_check`). ``holds`` when the growth constant is at most the
analytic K (λ for classic, λ·max(1, ε) for adaptive, λ√P for value clipping) and the
increments shrink with δ; without an analytic K, when the constant on the outermost shell is at
most 1.5 times the largest inside it."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

from simulations.verify.claims.context import Context, fmt
from simulations.verify.claims.result import ClaimResult
from theory import bounds, equilibria

ID = "L2"
STATEMENT = "Lemma 2: H is Marchaud (continuous, ‖H(θ)‖ ≤ K(1+‖θ‖))"
RULES = None
OBSERVERS = ()
OPTIONS = {"l2_radii": [0.5, 5.0, 50.0, 500.0], "l2_points": 16}


def analytic_k(ctx: Context) -> float | None:
    """The K with ‖H(θ)‖ ≤ K(1 + ‖θ‖) where one is known for the rule."""
    kind = ctx.rule.kind
    if kind == "classic":
        return ctx.lam
    if kind == "adaptive":
        return bounds.claim2_constants(ctx.lam, ctx.rule.eps).k_tight
    if kind == "value":
        return ctx.lam * math.sqrt(ctx.problem.n_params)
    return None


def check(ctx: Context) -> list[ClaimResult]:
    h = ctx.field()
    theta0 = ctx.theta0()
    scale = 1.0 + float(np.linalg.norm(theta0))
    radii = [scale * r for r in ctx.opt("l2_radii")]
    rng = np.random.default_rng(ctx.scenario.seed)
    shells = equilibria.shell_points(theta0, radii, int(ctx.opt("l2_points")), rng)
    check = equilibria.marchaud_check(h, shells, analytic_k=analytic_k(ctx), rng=rng)
    k = check.analytic_k
    if k is not None:
        ok = check.growth <= k * (1 + ctx.rtol)
        verdict = "holds" if ok and check.continuous else "violated"
        why = f"sup ‖H‖/(1+‖θ‖) = {fmt(check.growth)} {'≤' if ok else '>'} K = {fmt(k)}"
    else:
        ok = check.growth_by_shell[-1] <= 1.5 * max(check.growth_by_shell[:-1])
        verdict = "holds" if ok and check.continuous else "inconclusive"
        why = ("no analytic K; ‖H‖/(1+‖θ‖) by shell " +
               ", ".join(fmt(g) for g in check.growth_by_shell))
    why += (f"; increments {', '.join(fmt(i) for i in check.increments)} at δ = "
            f"{', '.join(f'{d:g}' for d in check.deltas)} "
            f"({'shrinking' if check.continuous else 'not shrinking: discontinuous?'}); "
            f"H by {ctx.h_method}")
    if not check.continuous:
        verdict = "violated"
    return [ctx.row(
        prediction="K = " + ("none known" if k is None else fmt(k)),
        measurement=f"sup ‖H‖/(1+‖θ‖) ≈ {fmt(check.growth)}", interval=None, verdict=verdict,
        reason=why, prediction_value=k, measurement_value=check.growth,
        details={**asdict(check), "shell_radii": radii, "h_method": ctx.h_method})]
