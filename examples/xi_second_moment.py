r"""A claim of one's own, in one file: E‖ξ(T)‖² ≤ 4λ²γ_T under classic clipping.

ξ(T) = Σ_{t<T} a(t)M(t+1) is a sum of orthogonal martingale increments with ‖M(t+1)‖ ≤ 2λ, so
E‖ξ(T)‖² = Σ_{t<T} a(t)² E‖M(t+1)‖² ≤ 4λ²γ_T, γ_T = Σ_{t<T} a(t)². Measured as the mean of
‖ξ(T)‖² over the paths where ξ is tracked, with mean ± 1.96 standard errors as its interval:
``violated`` when the interval lies above the bound, ``holds`` when it lies at or below it.

Name it in a scenario as ``claims = ["./xi_second_moment.py"]`` (a path relative to the TOML
file) or, on the import path, as a module ``"mypkg.xi_second_moment"``.
"""

import math

import numpy as np

ID = "xi-second-moment"
STATEMENT = "E‖ξ(T)‖² ≤ 4λ²γ_T"
RULES = ("classic",)  # clip rules it is stated for (None: any)
OBSERVERS = ("xi",)  # engine observers it reads
OPTIONS = {"xi_moment_factor": 4.0}  # [options] it takes, with defaults


def check(ctx):
    sq = ctx.sim.arrays["xi_norm_at"][:, -1] ** 2
    mean, se = float(sq.mean()), float(sq.std(ddof=1) / math.sqrt(len(sq)))
    bound = ctx.opt("xi_moment_factor") * ctx.lam**2 * float(np.sum(ctx.a**2))
    lo, hi = mean - 1.96 * se, mean + 1.96 * se
    verdict = "violated" if lo > bound else "holds" if hi <= bound else "inconclusive"
    return [ctx.row(prediction=f"≤ {bound:.4g}", measurement=f"{mean:.4g} ± {se:.2g}",
                    interval=(lo, hi), verdict=verdict,
                    reason=f"mean ‖ξ(T)‖² over {len(sq)} paths, 95% interval [{lo:.4g}, "
                           f"{hi:.4g}], against {bound:.4g}",
                    prediction_value=bound, measurement_value=mean)]
