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
    What is read from the paths (``ctx.sim.arrays[...]``, see ``simulations/observers.py``),
    with a 95% interval where it is random.

Verdict.
    ``holds`` / ``violated`` / ``inconclusive`` / ``vacuous``: ``violated`` only when the whole
    interval lies beyond the prediction; a pathwise comparison allows for floating-point
    rounding (``ctx.rtol``).

References.
    Where the statement comes from.
"""

import numpy as np

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
    allowed = prediction * (1 + ctx.rtol)
    verdict = "violated" if worst > allowed else "holds"
    return [ctx.row(prediction=f"≤ {prediction:.4g}", measurement=f"{worst:.4g}",
                    interval=None, verdict=verdict,
                    reason=f"the largest max_s‖θ(s) − θ(0)‖ over {len(deviations)} paths "
                           f"against λΣa = {prediction:.4g}",
                    prediction_value=prediction, measurement_value=worst)]
