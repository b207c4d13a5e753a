r"""``ODE``: the iterates track dθ/dτ = −H(θ), τ(t) = Σ_{s<t} a(s) (the paper's Section 4 prints
+H: a sign slip). The largest gap between a kept SGD path and the ODE started on it over windows
of τ-length Δ (option ``ode_window``) at ``ode_windows`` log-spaced starts; ``holds`` when the
median gap over paths in the last window is at most half that of the first, ``violated`` when it
is not below it, ``inconclusive`` in between."""

from __future__ import annotations

import numpy as np

from simulations.verify.claims.context import Context, fmt
from simulations.verify.claims.result import ClaimResult
from theory import equilibria

ID = "ODE"
STATEMENT = "Section 4: the iterates track dθ/dτ = −H(θ), τ = Σa"
RULES = None
OBSERVERS = ("paths",)
OPTIONS = {"ode_window": 1.0, "ode_windows": 6}


def applicable(scenario) -> str | None:
    return None if scenario.keep_paths >= 1 else "needs keep_paths >= 1"


def check(ctx: Context) -> list[ClaimResult]:
    paths = ctx.sim.arrays["path"]  # (k, T+1, P)
    h = ctx.field()
    tau = equilibria.stochastic_time(ctx.schedule, ctx.steps)
    window = float(ctx.opt("ode_window"))
    count = int(ctx.opt("ode_windows"))
    last_start = int(np.searchsorted(tau, tau[-1] - window, side="right")) - 1
    if last_start < 1:
        return [ctx.row(prediction="gap → 0", measurement="—", interval=None,
                        verdict="inconclusive",
                        reason=f"the run's τ(T) = {tau[-1]:.3g} is shorter than one window "
                               f"(Δ = {window:g})")]
    first_start = max(1, int(np.searchsorted(tau, min(1.0, tau[last_start] / 4))))
    starts = np.unique(np.round(np.geomspace(first_start, last_start, count)).astype(int))
    gaps = np.array([equilibria.tracking_gaps(p, tau, h, window, starts.tolist()) for p in paths])
    median = np.median(gaps, axis=0)
    printed = np.median([equilibria.tracking_gaps(p, tau, h, window, starts[[0, -1]].tolist(),
                                                sign=+1.0)
                         for p in paths], axis=0)
    if median[-1] <= 0.5 * median[0]:
        verdict = "holds"
    elif median[-1] >= median[0]:
        verdict = "violated"
    else:
        verdict = "inconclusive"
    why = (f"median gap over {len(paths)} paths in windows of τ-length {window:g} from t = "
           + ", ".join(f"{s}: {fmt(g)}" for s, g in zip(starts, median, strict=True))
           + f"; with the printed sign dθ/dτ = +H: {fmt(float(printed[0]))} in the first "
             f"window, {fmt(float(printed[1]))} in the last; H by {ctx.h_method}")
    return [ctx.row(
        prediction="gap shrinks as t grows", measurement=f"{fmt(median[0])} → {fmt(median[-1])}",
        interval=(float(np.min(gaps[:, -1])), float(np.max(gaps[:, -1]))), verdict=verdict,
        reason=why, measurement_value=float(median[-1]),
        details={"starts": starts.tolist(), "tau_starts": tau[starts].tolist(),
                 "window": window, "median_gap": median.tolist(), "gaps": gaps.tolist(),
                 "printed_sign_gap": printed.tolist(), "h_method": ctx.h_method})]
