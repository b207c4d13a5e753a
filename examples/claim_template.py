r"""A claim template: copy this file, fill in each part, and name it in a scenario as
``claims = ["./my_claim.py"]``.

Statement.
    Write the claim as the source states it, with its hypotheses, e.g.
    "Under classic clipping with threshold λ, ‖θ(s) − θ(0)‖ ≤ λ·Σ_{t<s} a(t) for every s ≤ T."

Why it holds (or what is known).
    A short derivation or a reference, so a reader can check the prediction by hand, e.g.
    "each step has ‖a(t)·g/c‖ ≤ λa(t); sum the steps (triangle inequality)."

Prediction.
    The number the claim promises for this scenario, computed by the theory (``theory.bounds``,
    ``theory.schedules``), never by the paths.

Measurement.
    What is read from the paths (``ctx.sim.arrays[...]``, see ``simulations/engine/observers.py``),
    with a 95% interval where it is random.

Verdict.
    ``holds`` / ``violated`` / ``inconclusive`` / ``vacuous``: ``violated`` only when the whole
    interval lies beyond the prediction; a pathwise comparison allows for what floating-point
    rounding can have added over the steps (``ctx.displacement_budget`` for a bound on
    ‖θ(s) − θ(0)‖, ``ctx.growth_budget`` for a Grönwall-type bound; the derivation is in
    ``simulations/verify/claims/rounding.py``), and ``pathwise_check`` gives the verdict.

References.
    Where the statement comes from.
"""

import numpy as np

from simulations.verify.claims.verdicts import pathwise_check

ID = "my-claim"  # unique, short: it names the row in the report
STATEMENT = "‖θ(s) − θ(0)‖ ≤ λΣ_{t<s} a(t)"  # one line
RULES = ("classic",)  # the clip rules it is stated for (None: any)
OBSERVERS = ("running_max",)  # the engine observers it reads
OPTIONS: dict = {}  # the [options] it takes, with their defaults


def applicable(scenario):
    """None where the claim applies to ``scenario``, else the reason it does not."""
    return None


def check(ctx):
    """One row per prediction: ``ctx.row(...)`` fills in the scenario and the claim."""
    deviations = ctx.sim.arrays["max_deviation"]
    prediction = ctx.lam * float(np.sum(ctx.a))
    worst = float(np.max(deviations))
    # the rounding budget of each path at s = T (it reads the running maximum of ‖θ‖), and
    # whether the run's steps were below one ulp of θ
    rtol, unresolved = ctx.displacement_budget([ctx.steps], [prediction])
    verdict, why, details = pathwise_check(deviations[:, None] / prediction, rtol,
                                           "max_s‖θ(s) − θ(0)‖", unresolved=unresolved)
    return [ctx.row(prediction=f"≤ {prediction:.4g}", measurement=f"{worst:.4g}",
                    interval=None, verdict=verdict,
                    reason=f"{len(deviations)} paths against λΣa = {prediction:.4g}: {why}",
                    prediction_value=prediction, measurement_value=worst, details=details)]
