"""The pathwise claims' rounding budgets (simulations.verify.claims.rounding): a path that meets a
bound
exactly in exact arithmetic is never ``violated`` for its rounding, however many steps it took;
a path that breaks a bound by more than the budget is. The exact answers are computed here with
``fractions.Fraction`` from the very float64 inputs the engine used (θ(0), ε, the a(t)); the
budgets from the formulas of the module docstring, in exact arithmetic."""

import math
import textwrap
from fractions import Fraction

import numpy as np
import pytest

from simulations.engine.run import simulate
from simulations.engine.simulation import Simulation
from simulations.engine.spec import Execution
from simulations.verify import claims
from simulations.verify.claims import verdicts
from simulations.verify.claims.rounding import Rounding
from simulations.verify.scenarios import scenario_from_dict

U64 = Fraction(1, 2**53)


def _run(data):
    sc = scenario_from_dict(data)
    return sc, simulate(sc.run, Execution(progress=False))


def _steps(sc):
    """The a(t) the engine used, as exact fractions of their float64 values."""
    return [Fraction(float(x)) for x in sc.run.schedule_obj()(np.arange(sc.steps))]


def _g(n, u):
    return n * u / (1 - n * u)


# ---- the reported defects, on real runs ---------------------------------------------------

def test_the_gronwall_path_from_eps_meets_its_bound_and_holds():
    """Adaptive clipping towards y = 10⁸ from θ(0) = ε = 1e-3, λ = 1, a(t) = 1/(t+1), T = 200:
    g = θ − 10⁸ is clipped to λθ every step, so θ(t+1) = θ(t)(1 + a(t)) and θ(s) equals the
    Grönwall bound ε·Π_{t<s}(1 + λa(t)) exactly. The recorded path comes out a few ulps above
    it (rounding), which is not a violation."""
    sc, sim = _run({"name": "gronwall-eps", "claims": ["C2-growth"],
                    "problem": {"name": "quadratic", "noise": "point", "mean": 1e8,
                                "theta0": 1e-3},
                    "clip": {"rule": "adaptive", "lam": 1.0, "eps": 1e-3},
                    "run": {"schedule": "1/(t+1)", "paths": 2, "steps": 200}})
    eps, a = Fraction(1e-3), _steps(sc)
    theta, bound, exact = eps, eps, [eps]
    for t in range(200):
        g = theta - Fraction(10**8)
        assert abs(g) > max(theta, eps)  # clipped: g/c = −λ·max(θ, ε)
        theta, bound = theta + a[t] * max(theta, eps), bound * (1 + a[t])
        exact.append(theta)
    assert theta == bound  # the path is the bound: ratio 1 in exact arithmetic
    assert abs(bound / (eps * 201) - 1) < Fraction(1, 10**13)  # Π(1 + 1/(t+1)) = T + 1
    steps = sim.arrays["checkpoint_steps"]
    recorded = [Fraction(float(v)) / exact[s] for s, v in zip(steps, sim.arrays["norm_at"][0],
                                                              strict=True)]
    assert max(recorded) > 1  # rounding lifted the recorded path above the bound
    row = claims.evaluate(sc, sim)[0]
    assert row.verdict == "holds", row.reason
    assert row.details["worst_ratio"] > 1


@pytest.mark.parametrize("dtype,step", [("float32", 7e-7), ("float64", 1.3e-15)])
def test_steps_below_an_ulp_of_theta_are_not_a_counterexample(dtype, step):
    """Classic clipping towards y = 100 from θ(0) = 8 with a constant step below one ulp of θ
    (ulp(8) = 2⁻²⁰ ≈ 9.5e-7 in float32, 2⁻⁴⁹ ≈ 1.8e-15 in float64) for T = 20 000 steps: each
    step rounds up to a whole ulp, so the recorded ‖θ(T) − θ(0)‖ is about 1.36·λΣa, where the
    exact path has ‖θ(s) − θ(0)‖ = λ·Σ_{t<s}a(t) exactly. Not violated: below resolution."""
    steps = 20_000
    sc, sim = _run({"name": "sub-ulp", "claims": ["L1-det"],
                    "problem": {"name": "quadratic", "noise": "point", "mean": 100.0,
                                "theta0": 8.0},
                    "clip": {"rule": "classic", "lam": 1.0},
                    "run": {"schedule": repr(step), "paths": 2, "steps": steps,
                            "dtype": dtype}})
    a = _steps(sc)
    assert a[0] == Fraction(step) and len(set(a)) == 1
    # exact: g = θ − 100 < −1 all the way (θ ≤ 8 + Σa < 9), so every step moves by λa exactly
    exact_dev = steps * a[0]
    assert 8 + exact_dev < 99
    ulp = Fraction(2) ** (3 - (23 if dtype == "float32" else 52))
    assert ulp / 2 < a[0] < ulp  # each step rounds up to one ulp
    recorded = Fraction(float(sim.arrays["max_deviation"][0])) / exact_dev
    assert recorded > Fraction(13, 10)  # the rounding artefact, not in the exact path
    row = claims.evaluate(sc, sim)[0]
    assert row.verdict == "inconclusive", row.reason
    assert row.reason.startswith("below floating-point resolution")
    # and the rounding budget does bound how far the recorded path is from the exact one
    rounding = Rounding(dtype, 1)
    off = abs(Fraction(float(sim.arrays["endpoints"][0, 0])) - (8 + exact_dev))
    assert off <= Fraction(float(rounding.drift(steps, sim.arrays["max_norm"][0],
                                                float(exact_dev))))


CLAIM = '''
"""‖θ(s) − θ(0)‖ ≤ (1 − delta)·λΣ_{t<s}a(t): a bound a user gets slightly wrong."""
import numpy as np
from simulations.verify.claims.verdicts import pathwise_check

ID = "tmp-shrunk-radius"
STATEMENT = "‖θ(s) − θ(0)‖ ≤ (1 − δ)·λΣa"
RULES = ("classic",)
OBSERVERS = ("checkpoints", "running_max")
OPTIONS = {"delta": 0.0}


def check(ctx):
    steps = ctx.sim.arrays["checkpoint_steps"][1:]
    bound = (1 - ctx.opt("delta")) * ctx.lam * np.cumsum(ctx.a)[steps - 1]
    ratio = ctx.sim.arrays["deviation_at"][:, 1:] / bound
    rtol, low = ctx.displacement_budget(steps, bound)
    verdict, why, details = pathwise_check(ratio, rtol, "‖θ(s) − θ(0)‖", unresolved=low)
    return [ctx.row(prediction="", measurement="", interval=None, verdict=verdict, reason=why,
                    details=details)]
'''


def test_a_user_bound_broken_slightly_beyond_the_budget_is_violated(tmp_path):
    """Classic clipping towards y = 100 from θ(0) = 0, λ = 1, a(t) = 1/(t+1), T = 200: the exact
    path has ‖θ(s) − θ(0)‖ = Σ_{t<s}a(t), so a user's bound (1 − δ)·λΣa is false by δ. The
    budget here is about (2s + κ + 5)·u ≤ 440·2⁻⁵³ ≈ 4.9e-14 (ctx.displacement_budget: u per
    step against ‖θ‖ ≤ λΣa, and the float64 sum of the bound); δ = 1e-13, twice that, is
    reported violated; the true bound (δ = 0) holds."""
    path = tmp_path / "shrunk.py"
    path.write_text(textwrap.dedent(CLAIM), encoding="utf-8")
    data = {"name": "far-point", "claims": [str(path)],
            "problem": {"name": "quadratic", "noise": "point", "mean": 100.0, "theta0": 0.0},
            "clip": {"rule": "classic", "lam": 1.0},
            "run": {"schedule": "1/(t+1)", "paths": 2, "steps": 200}}
    try:
        sc, sim = _run(data)
        assert sum(_steps(sc)) < 99  # clipped every step: the exact deviation is Σ_{t<s}a(t)
        budget = _g(Fraction(440), U64)
        assert 2 * budget < Fraction(1e-13) < 3 * budget
        for delta, want in ((1e-13, "violated"), (0.0, "holds")):
            row = claims.evaluate(scenario_from_dict({**data, "options": {"delta": delta}}),
                                  sim)[0]
            assert row.verdict == want, (delta, row.reason)
            assert 0 < row.details["rtol"] < float(budget)
    finally:
        claims.unregister("tmp-shrunk-radius")


# ---- the budgets at their edge, on constructed runs -----------------------------------------

def _scenario(claim, rule="classic", dtype="float64"):
    clip = {"rule": rule, "lam": 1.0} | ({"eps": 0.5} if rule == "adaptive" else {})
    return scenario_from_dict({
        "name": "constructed", "claims": [claim],
        "problem": {"name": "quadratic", "noise": "point", "mean": 0.0, "theta0": 0.0},
        "clip": clip, "run": {"schedule": "1/(t+1)", "paths": 4, "steps": 8, "dtype": dtype}})


def _sim(**arrays):
    base = {"blown_step": np.full(4, -1), "endpoints": np.zeros((4, 1)),
            "checkpoint_steps": np.array([0, 1, 2, 4, 8])}
    return Simulation({"guard": 1e100, "paths": 4, "steps": 8}, base | arrays)


def _l1_budget(s, m, b, u, float32):
    """1 + ρ of the displacement budget, P = 1, κ = 15 (rounding module docstring)."""
    v = u + (U64 + u * U64 if float32 else 0)
    upd = v / (1 - v)
    inner = (1 + _g(15, u)) / (1 - _g(s, U64)) + upd * s * m / ((1 - _g(3, u)) * b)
    return (1 + u) * (1 + _g(3, U64)) * inner * (1 + _g(16, U64)) - 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_l1_det_is_violated_just_past_its_budget_and_not_before(dtype):
    """A path far from the origin (max ‖θ‖ = 50) that moves 2.7: the budget at T = 8 is
    ū·8·50/λΣa plus a few u, some 150 u. Past it by 10%: violated; at 90% of it: holds."""
    sc = _scenario("L1-det", dtype=dtype)
    u = Fraction(1, 2**53 if dtype == "float64" else 2**24)
    steps = [0, 1, 2, 4, 8]
    radius = [sum((Fraction(1, t + 1) for t in range(s)), Fraction(0)) for s in steps]
    radius = [Fraction(float(r)) for r in radius]  # as the claim sums them (exact here)
    rho = _l1_budget(8, Fraction(50), radius[-1], u, dtype == "float32")
    assert 100 * u < rho < 200 * u
    for factor, want in ((Fraction(9, 10), "holds"), (Fraction(11, 10), "violated")):
        dev = np.tile(np.array([float(r) for r in radius]), (4, 1))
        dev[2, 4] = float(radius[-1] * (1 + factor * rho))
        row = claims.evaluate(sc, _sim(deviation_at=dev, max_deviation=dev[:, -1].copy(),
                                       max_norm=np.full(4, 50.0)))[0]
        assert row.verdict == want, row.reason


def test_c2_growth_is_violated_just_past_its_budget_and_not_before():
    """Grönwall at s = 8 in float64, P = 1: 1 + ρ = (1 + ρ_g)·(1 + γ₃)/(1 − γ₃)·(1 + γ₂₆),
    ρ_g = ((1 + u)^8·Π_{t<8}(1 + γ₁₅·a/(1 + a)) − 1)·(1 + γ₂₀) (rounding module docstring).
    Past it by 10%: violated; at 90% of it: holds."""
    sc = _scenario("C2-growth", rule="adaptive")
    u = U64
    steps = [0, 1, 2, 4, 8]
    prod = [math.prod(1 + 1 / (t + 1) for t in range(s)) for s in steps]  # the claim's floats
    growth = ((1 + u) ** 8 * math.prod((1 + _g(15, u) * Fraction(1, t + 1) / (1 + Fraction(
        1, t + 1)) for t in range(8)), start=Fraction(1)) - 1) * (1 + _g(2 * 8 + 4, U64))
    one_plus = (1 + growth) * (1 + _g(3, u)) / (1 - _g(3, u)) * (1 + _g(3 * 8 + 2, U64))
    rho = one_plus - 1
    assert 60 * u < rho < 80 * u  # 8 + 15·Σ1/(t+2) + 3 + 3 + 26 ≈ 67 roundings
    for factor, want in ((Fraction(9, 10), "holds"), (Fraction(11, 10), "violated")):
        norms = np.tile(0.5 * np.array(prod), (4, 1))
        norms[:, 0] = 0.0
        norms[1, 4] = float(Fraction(0.5 * prod[4]) * (1 + factor * rho))
        row = claims.evaluate(sc, _sim(norm_at=norms, max_norm=norms.max(1)))[0]
        assert row.verdict == want, row.reason


def test_the_pathwise_rule_on_numbers():
    check = verdicts.pathwise_check
    assert check([1.0, 1 + 1e-9], 2e-9, "x")[0] == "holds"
    assert check([1.0, 1 + 3e-9], 2e-9, "x")[0] == "violated"
    # per-point budgets: the same ratio is within one point's budget, not another's
    assert check([[1 + 3e-9, 1.0]], [[4e-9, 1e-9]], "x")[0] == "holds"
    assert check([[1.0, 1 + 3e-9]], [[4e-9, 1e-9]], "x")[0] == "violated"
    verdict, why, details = check([1 + 3e-9], 4e-9, "x", unresolved=True)
    assert verdict == "inconclusive" and why.startswith("below floating-point resolution")
    assert check([1.0], 4e-9, "x", unresolved=True)[0] == "holds"  # at the bound: resolved
    for bad in (float("nan"), float("inf")):
        assert check([1.0, bad], 1.0, "x")[0] == "violated"
