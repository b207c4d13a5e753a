r"""``L1-paper``: Lemma 1 as printed, in both of its forms,

    (15)  P(‖θ(T) − θ(0)‖ > M) ≤ 2exp(−2M²/(γλ²)),   γ = Σ_t a(t)²,
    (14)  P(‖θ(T) − θ(0)‖ > M) ≤ 2exp(−2M²/(λ²Σ_{t<T} a(t)²)),

measured as the fraction of paths with ‖θ(T) − θ(0)‖ > M at the horizon T: two rows per radius
M of ``[radii] exit``, (15) then (14); only (14) for a schedule defined on a finite horizon
(cosine, step or linear decay to T, values), where γ does not exist. Classic clipping.
``vacuous`` when λ·Σ_{t<T} a(t) ≤ M (no path can leave).

Where the plain run cannot resolve a bound (:meth:`Context.probability`), AMS estimates the
endpoint event itself, P(‖θ(T) − θ(0)‖ ≥ M⁺) (score ``exit`` at T, ``endpoint=True`` of
:func:`simulations.engine.rare.ams`, at the level M⁺ just above M, so "≥ M⁺" is "> M"): an AMS upper
limit at or below the bound shows ``holds``, a lower limit above it ``violated``."""

from __future__ import annotations

import math

import numpy as np

from simulations.verify.claims.context import RARE_OPTIONS, Context, bound_text, fmt
from simulations.verify.claims.result import ClaimResult
from theory import bounds

ID = "L1-paper"
STATEMENT = "Lemma 1 (15)/(14): P(‖θ(T)−θ(0)‖ > M) ≤ 2exp(−2M²/(γλ²)) / with Σ_{t<T}a(t)²"
RULES = ("classic",)
OBSERVERS = ("checkpoints",)
OPTIONS: dict = dict(RARE_OPTIONS)

FORMS = (("15", "2exp(−2M²/(γλ²))"), ("14", "2exp(−2M²/(λ²Σ_{t<T}a(t)²))"))


def applicable(scenario) -> str | None:
    return None if scenario.exit_radii else "needs [radii] exit = [M, ...]"


def check(ctx: Context) -> list[ClaimResult]:
    dev_T = ctx.sim.arrays["deviation_at"][:, -1]
    reach = ctx.lam * float(np.sum(ctx.a))
    finite = ctx.schedule.horizon is not None
    out = []
    for M in ctx.scenario.exit_radii:
        b15 = None if finite else bounds.lemma1_paper(ctx.lam, M, ctx.schedule)
        b14 = bounds.lemma1_paper(ctx.lam, M, ctx.schedule, horizon=ctx.steps) \
            if ctx.steps > 0 or b15 is None else b15
        k, n = int(np.sum(~(dev_T <= M))), len(dev_T)
        for form, text in FORMS[1:] if finite else FORMS:
            b = b14 if form == "14" or b15 is None else b15
            got = ctx.probability(k, n, b.log10_probability,
                                  event=("exit", math.nextafter(M, math.inf), True),
                                  impossible=reach <= M)
            why = got["reason"]
            if got["verdict"] == "vacuous" and reach <= M:
                why = f"λ·Σ_{{t<T}}a(t) = {fmt(reach)} ≤ M = {fmt(M)}: no path can leave the ball"
                why += (f" on the schedule's horizon {ctx.schedule.horizon}" if finite else
                        f" before T = {bounds.deterministic_horizon(ctx.lam, M, ctx.schedule)}")
            out.append(ctx.row(
                statement=f"Lemma 1 ({form}): P(‖θ(T)−θ(0)‖ > {fmt(M)}) ≤ {text}",
                prediction=f"({form}) {bound_text(b)}", measurement=got["measurement"],
                interval=got["interval"], verdict=got["verdict"], reason=why,
                prediction_value=b.log10_probability,
                measurement_value=got["measurement_value"],
                details={"radius": M, "form": form, "exponent": b.exponent,
                         "log10_bound": b.log10_probability,
                         "log10_bound_15": None if b15 is None else b15.log10_probability,
                         "log10_bound_14": b14.log10_probability, "exits": k, "paths": n,
                         "deterministic_radius": reach, **got["details"]}))
    return out
