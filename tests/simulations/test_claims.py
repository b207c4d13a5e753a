"""The verdict rules of simulations.verify.claims on constructed results whose right verdict is
known,
and the xi observer the martingale claims read, against a slow reference loop."""

import math

import numpy as np
import pytest
from scipy import stats

from simulations.engine.run import simulate
from simulations.engine.simulation import Simulation
from simulations.engine.spec import Execution, RunSpec
from simulations.verify import claims
from simulations.verify.claims import verdicts
from simulations.verify.scenarios import scenario_from_dict

# ---- the rules on numbers -------------------------------------------------------------------

@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (1, 10000), (517, 1000)])
def test_clopper_pearson_against_scipy_binomtest(k, n):
    want = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    np.testing.assert_allclose(claims.clopper_pearson(k, n), (want.low, want.high), rtol=1e-7,
                               atol=1e-15)


def test_probability_bound_that_is_violated():
    verdict, why = claims.probability_verdict(10000, 10000, math.log10(0.0155))
    assert verdict == "violated" and "lower limit" in why


def test_probability_bound_holds_only_when_the_upper_limit_is_below_it():
    """0 of n paths cannot resolve a bound below the upper limit 1 − 0.025^{1/n}: that is
    inconclusive, never holds (0 of 100 against 1e-6, or against a false bound)."""
    verdict, why = claims.probability_verdict(0, 10000, -614.9)
    assert verdict == "inconclusive" and "cannot resolve" in why
    assert claims.probability_verdict(0, 100, -6.0)[0] == "inconclusive"
    # a false bound (the true P is 0.5) that 0 of 100 happens to meet: not holds either
    assert claims.probability_verdict(0, 100, math.log10(0.01))[0] == "inconclusive"
    # 3 of 1000: upper limit 0.00874 (scipy's exact interval) ≤ 0.01
    hi = stats.binomtest(3, 1000).proportion_ci(0.95, method="exact").high
    assert hi < 0.01 and claims.probability_verdict(3, 1000, math.log10(0.01))[0] == "holds"
    # just above the upper limit of 0 of 100: 1 − 0.025^{1/100}
    edge = 1 - 0.025 ** (1 / 100)
    assert claims.probability_verdict(0, 100, math.log10(edge * 1.0001))[0] == "holds"
    assert claims.probability_verdict(0, 100, math.log10(edge * 0.9999))[0] == "inconclusive"


def test_vacuous_bounds():
    assert claims.probability_verdict(5, 10, math.log10(1.5))[0] == "vacuous"
    assert claims.probability_verdict(0, 10, -614.9, impossible=True)[0] == "vacuous"


def test_inconclusive_when_the_interval_reaches_the_bound():
    # 12 of 1000 against 0.01: the estimate is above, the lower limit 0.0062 is below
    assert claims.probability_verdict(12, 1000, math.log10(0.01))[0] == "inconclusive"


def test_pathwise_tolerance():
    assert claims.pathwise_verdict(1 + 0.5e-9, 1e-9, "x")[0] == "holds"
    assert claims.pathwise_verdict(1 + 2e-9, 1e-9, "x")[0] == "violated"
    # the tolerance is 4 machine epsilons of the run's dtype: 4·2⁻⁵², 4·2⁻²³
    assert verdicts.pathwise_rtol("float64") == 4 * 2.0**-52
    assert verdicts.pathwise_rtol("float32") == 4 * 2.0**-23
    assert claims.pathwise_verdict(float("inf"), 1e-9, "x")[0] == "violated"
    assert claims.pathwise_verdict(float("nan"), 1e-9, "x")[0] == "violated"


def test_mean_agreement_is_the_largest_z():
    assert claims.mean_agreement([1.0, 2.0], [0.1, 0.5], [1.2, 2.0]) == pytest.approx(2.0)
    assert claims.mean_agreement([1.0], [0.0], [1.0]) == 0.0


# ---- the rules on constructed runs ----------------------------------------------------------

def _scenario(claim_list, rule="classic", **extra):
    clip = {"rule": rule, "lam": 1.0} | ({"eps": 0.5} if rule == "adaptive" else {})
    data = {"name": "constructed", "claims": claim_list,
            "problem": {"name": "quadratic", "noise": "point", "mean": 0.0, "theta0": 0.0},
            "clip": clip, "run": {"schedule": "1/(t+1)", "paths": 4, "steps": 8}} | extra
    return scenario_from_dict(data)


def _sim(**arrays):
    base = {"blown_step": np.full(4, -1), "endpoints": np.zeros((4, 1)),
            "checkpoint_steps": np.array([0, 1, 2, 4, 8])}
    return Simulation({"guard": 1e100, "paths": 4, "steps": 8}, base | arrays)


def _radius(steps):
    return np.array([sum(1 / (t + 1) for t in range(s)) for s in steps])  # λ = 1


def test_l1_det_holds_at_the_bound_and_is_violated_just_past_it():
    sc = _scenario(["L1-det"])
    r = _radius([0, 1, 2, 4, 8])
    dev = np.tile(r, (4, 1))
    norm = np.full(4, r[-1])  # θ(0) = 0: max ‖θ(s)‖ is the largest deviation
    ok = claims.evaluate(sc, _sim(deviation_at=dev, max_deviation=dev[:, -1].copy(),
                                  max_norm=norm))[0]
    assert ok.verdict == "holds"
    dev[2, 3] *= 1 + 1e-8  # one path, one checkpoint, a relative 1e-8 past λΣa
    bad = claims.evaluate(sc, _sim(deviation_at=dev, max_deviation=r[-1] * np.ones(4),
                                   max_norm=norm))[0]
    assert bad.verdict == "violated"


def test_l1_paper_violated_when_every_path_leaves_and_vacuous_when_none_can():
    sc = _scenario(["L1-paper"], radii={"exit": [1.0, 100.0]})
    dev = np.tile(_radius([0, 1, 2, 4, 8]), (4, 1))  # ‖θ(8) − θ(0)‖ = 2.72 > 1 on every path
    rows = claims.evaluate(sc, _sim(deviation_at=dev))
    # M = 1: bound 2exp(−2/γ) = 0.6 at most, but 4 of 4 left: lower limit 0.40 < 0.6 → 4 paths
    # cannot prove it; M = 100 > λΣa: vacuous. Two rows per radius, (15) then (14) (bound
    # 2exp(−2/Σ_{t<8}a²) ≈ 0.54). AMS is tried on M = 1, on the problem itself, where θ never
    # moves (point noise at 0): every replica estimates 0, which bounds nothing: inconclusive
    assert [r.verdict for r in rows] == ["inconclusive"] * 2 + ["vacuous"] * 2
    assert [r.details["form"] for r in rows] == ["15", "14"] * 2
    assert rows[1].details["log10_bound"] == pytest.approx(
        math.log10(2 * math.exp(-2 / sum(1 / (t + 1) ** 2 for t in range(8)))), rel=1e-12)
    assert rows[0].details["estimator"] == "ams" and rows[0].measurement_value == 0
    many = scenario_from_dict({**_dict(sc), "run": {"schedule": "1/(t+1)", "paths": 400,
                                                     "steps": 8}})
    sim = Simulation({"paths": 400, "steps": 8}, {"deviation_at": np.tile(dev[0], (400, 1))})
    assert claims.evaluate(many, sim)[0].verdict == "violated"


def _dict(sc):
    return {"name": sc.name, "claims": list(sc.claims), "problem": sc.problem, "clip": sc.clip,
            "radii": {"exit": list(sc.exit_radii)}}


def test_a3_is_judged_by_the_running_maximum_not_the_endpoint():
    sc = _scenario(["A3"], rule="adaptive", run={"schedule": "1/(t+1)", "paths": 200,
                                                 "steps": 8})
    max_norm = np.full(200, 7.8e7)
    sim = Simulation({"paths": 200, "steps": 8},
                     {"max_norm": max_norm, "endpoints": np.zeros((200, 1))})
    row = claims.evaluate(sc, sim)[0]
    assert row.verdict == "violated" and row.measurement_value == 1.0
    calm = Simulation({"paths": 200, "steps": 8}, {"max_norm": np.full(200, 30.0),
                                                   "endpoints": np.full((200, 1), 1e7)})
    assert claims.evaluate(sc, calm)[0].verdict == "holds"


def test_c2_violated_above_the_tight_constant():
    sc = _scenario(["C2"], rule="adaptive")  # K = λ·max(1, ε) = 1
    assert claims.evaluate(sc, _sim(claim2_ratio=np.array([0.5, 1.0, 0.2, 0.9])))[0].verdict \
        == "holds"
    assert claims.evaluate(sc, _sim(claim2_ratio=np.array([0.5, 1.001, 0.2, 0.9])))[0].verdict \
        == "violated"


def test_c2_growth_against_gronwall_at_each_checkpoint():
    sc = _scenario(["C2-growth"], rule="adaptive")  # ε = 0.5, θ(0) = 0: bound 0.5·Π(1 + a)
    steps = np.array([0, 1, 2, 4, 8])
    bound = 0.5 * np.array([np.prod([1 + 1 / (t + 1) for t in range(s)]) for s in steps])
    norms = np.tile(bound, (4, 1))
    norms[:, 0] = 0.0
    ok = _sim(norm_at=norms, max_norm=norms.max(1))
    assert claims.evaluate(sc, ok)[0].verdict == "holds"
    norms[1, 2] = bound[2] * 1.01
    assert claims.evaluate(sc, _sim(norm_at=norms, max_norm=norms.max(1)))[0].verdict \
        == "violated"


def test_l3_decrease_verdicts():
    sc = _scenario(["L3"])
    sup = np.array([[4.0, 3.0, 2.0, 1.0]] * 3 + [[4.1, 3.1, 2.1, 1.1]])
    base = dict(xi_anchors=np.array([0, 1, 2, 4]), xi_norm_at=np.zeros((4, 5)),
                xi_sum_sq=np.zeros(4))
    assert claims.evaluate(sc, _sim(xi_sup_after=sup, **base))[0].verdict == "holds"
    assert claims.evaluate(sc, _sim(xi_sup_after=sup[:, ::-1].copy(), **base))[0].verdict \
        == "violated"


def test_claims_are_refused_for_rules_they_are_not_stated_for():
    with pytest.raises(ValueError, match="C2: stated for adaptive"):
        _scenario(["C2"], rule="classic")
    with pytest.raises(ValueError, match="needs \\[radii\\] exit"):
        _scenario(["L1-paper"])


# ---- the xi observer against a slow loop ----------------------------------------------------

def test_xi_observer_against_a_reference_loop():
    """ξ(s) = Σ_{t<s} a(t)(g/c − H(θ(t))) rebuilt from whole paths: g/c = (θ(t) − θ(t+1))/a(t),
    and H(θ) = 0.9·clamp(θ, −1, 1) + 0.1·clamp(θ − 10, −1, 1) by hand."""
    steps, paths = 64, 16
    run = RunSpec.from_dict({
        "problem": {"name": "quadratic", "noise": "discrete", "values": [0.0, 10.0],
                    "probs": [0.9, 0.1]},
        "clip": {"rule": "classic", "lam": 1.0}, "schedule": "1/(t+1)", "paths": paths,
        "steps": steps, "record": ("paths", "xi"), "keep_paths": paths, "xi_paths": paths})
    sim = simulate(run, Execution(progress=False))
    theta = sim.arrays["path"][:, :, 0]  # (R, T+1)
    a = 1.0 / (np.arange(steps) + 1.0)
    step = (theta[:, :-1] - theta[:, 1:]) / a
    h = 0.9 * np.clip(theta[:, :-1], -1, 1) + 0.1 * np.clip(theta[:, :-1] - 10, -1, 1)
    xi = np.concatenate([np.zeros((paths, 1)), np.cumsum(a * (step - h), axis=1)], axis=1)
    np.testing.assert_allclose(sim.arrays["xi_max"], np.abs(xi).max(1), rtol=1e-10)
    for i, t in enumerate(sim.arrays["xi_anchors"]):
        want = np.abs(xi[:, t + 1:] - xi[:, t:t + 1]).max(1)
        np.testing.assert_allclose(sim.arrays["xi_sup_after"][:, i], want, rtol=1e-9,
                                   atol=1e-14)
    np.testing.assert_allclose(sim.arrays["xi_sum_sq"], ((a * (step - h)) ** 2).sum(1),
                               rtol=1e-9)


# ---- the pathwise tolerance is the rounding of a few steps, no looser -------------------------
# (its derivation and its edge: tests/simulations/test_rounding.py)

def test_l1_det_tolerates_an_ulp_but_not_a_relative_1e_12():
    """8 steps from θ(0) = 0 with ‖θ‖ ≤ λΣa = 2.72: the budget is some 40 ulps (u per step and
    per term of the bound's sum, κ = 15 for the step), far below 1e-12."""
    sc = _scenario(["L1-det"])
    r = _radius([0, 1, 2, 4, 8])
    dev = np.tile(r, (4, 1))
    norm = np.full(4, r[-1])
    dev[1, 4] = np.nextafter(np.nextafter(r[4], np.inf), np.inf)  # 2 ulps past λΣa
    assert claims.evaluate(sc, _sim(deviation_at=dev, max_deviation=dev[:, -1].copy(),
                                    max_norm=norm))[0].verdict == "holds"
    dev[1, 4] = r[4] * (1 + 1e-12)  # far more than the rounding of 8 steps
    row = claims.evaluate(sc, _sim(deviation_at=dev, max_deviation=dev[:, -1].copy(),
                                   max_norm=norm))[0]
    assert row.verdict == "violated" and 8 * 2.0**-53 < row.details["rtol"] < 1e-14


def test_c2_and_c2_growth_tolerate_ulps_only():
    sc = _scenario(["C2"], rule="adaptive")  # K = 1
    ok = np.array([0.5, np.nextafter(1.0, 2.0), 0.2, 0.9])
    assert claims.evaluate(sc, _sim(claim2_ratio=ok))[0].verdict == "holds"
    assert claims.evaluate(sc, _sim(claim2_ratio=np.array([0.5, 1 + 1e-13, 0.2, 0.9])))[0] \
        .verdict == "violated"
    sc = _scenario(["C2-growth"], rule="adaptive")
    steps = np.array([0, 1, 2, 4, 8])
    bound = 0.5 * np.array([math.prod(1 + 1 / (t + 1) for t in range(s)) for s in steps])
    norms = np.tile(bound, (4, 1))
    norms[:, 0] = 0.0
    norms[2, 3] = bound[3] * (1 + 1e-12)
    assert claims.evaluate(sc, _sim(norm_at=norms, max_norm=norms.max(1)))[0].verdict \
        == "violated"


# ---- the registry: a claim from one file ----------------------------------------------------

CLAIM_FILE = '''
"""A claim in one file: the fraction of paths whose running maximum of ‖θ(s)‖ exceeds 2."""
import numpy as np

ID = "tmp-max-norm"
STATEMENT = "max_s ‖θ(s)‖ ≤ R on every path"
RULES = ("classic",)
OBSERVERS = ("running_max",)
OPTIONS = {"tmp_radius": 2.0}


def check(ctx):
    radius = ctx.opt("tmp_radius")
    worst = float(np.max(ctx.sim.arrays["max_norm"]))
    verdict = "holds" if worst <= radius else "violated"
    return [ctx.row(prediction=f"<= {radius}", measurement=f"max {worst:.4g}", interval=None,
                    verdict=verdict, reason=f"largest {worst}", measurement_value=worst)]
'''


@pytest.fixture
def claim_file(tmp_path):
    path = tmp_path / "tmp_claim.py"
    path.write_text(CLAIM_FILE, encoding="utf-8")
    yield path
    claims.unregister("tmp-max-norm")


def test_a_claim_from_one_file_runs_through_evaluate_and_verify(claim_file, tmp_path):
    from simulations.verify.runner import verify

    data = {"name": "one-file", "claims": ["L1-det", str(claim_file)],
            "problem": {"name": "quadratic", "noise": "point", "mean": 5.0, "theta0": 0.0},
            "clip": {"rule": "classic", "lam": 1.0},
            "run": {"schedule": "1/(t+1)", "paths": 8, "steps": 4},
            "options": {"tmp_radius": 1.5}, "expect": {str(claim_file): "violated"}}
    sc = scenario_from_dict(data)
    assert sc.claims == ("L1-det", "tmp-max-norm") and sc.expect == {"tmp-max-norm":
                                                                     ("violated",)}
    assert claims.observers_for(sc.claims) == ("exits", "running_max", "checkpoints")
    rows = verify([sc], progress=False)
    assert [r.claim for r in rows] == ["L1-det", "tmp-max-norm"]
    # θ moves by a(t) = 1, 1/2, 1/3, 1/4 towards 5: max ‖θ‖ = 25/12 > 1.5
    assert rows[1].measurement_value == pytest.approx(25 / 12) and rows[1].verdict == "violated"
    assert claims.get("tmp-max-norm").to_dict()["options"] == {"tmp_radius": 2.0}
    assert "tmp-max-norm" in claims.get("tmp-max-norm").describe()
    with pytest.raises(ValueError, match="options.tmp_radius: expected a value like"):
        scenario_from_dict({**data, "options": {"tmp_radius": "big"}})
    with pytest.raises(ValueError, match="tmp-max-norm: stated for classic"):
        scenario_from_dict({**data, "clip": {"rule": "adaptive", "lam": 1.0, "eps": 0.1},
                            "claims": [str(claim_file)], "expect": {}})


def test_registry_refuses_bad_claims_and_clashing_ids():
    with pytest.raises(ValueError, match="missing STATEMENT, check"):
        claims.Claim.from_module(type("M", (), {"ID": "x"}))
    with pytest.raises(ValueError, match="OBSERVERS must be"):
        claims.Claim(id="x", statement="s", check=lambda ctx: [], observers=("telepathy",))
    with pytest.raises(ValueError, match="already defined"):
        claims.register(claims.Claim(id="T1", statement="s", check=lambda ctx: [],
                                     source="elsewhere"))
    with pytest.raises(ValueError, match="unknown claim 'T9'"):
        claims.get("T9")
    with pytest.raises(ValueError, match="options.zero_grid: unknown option"):
        _scenario(["L1-det"], options={"zero_grid": 11})


# ---- T1: the zero set of H, its window, its uncertainty and its stability -------------------

def _t1_sim(endpoints):
    endpoints = np.asarray(endpoints, dtype=np.float64).reshape(len(endpoints), -1)
    return Simulation({"paths": len(endpoints), "steps": 8},
                      {"blown_step": np.full(len(endpoints), -1), "endpoints": endpoints})


def _t1_scenario(problem, **extra):
    return _scenario(["T1"], problem=problem, **extra)


def test_t1_widens_the_window_to_the_far_zero():
    """y ~ N(100, 1), classic λ = 1: H(θ) = E[clamp(θ − y, −1, 1)] is odd about 100, so its zero
    is 100, far outside θ(0) = 0 and endpoints near λΣa = 7.5 (+10): the window is widened to it,
    and endpoints that have not reached it are inconclusive, not 'H has no zero'."""
    sc = _t1_scenario({"name": "quadratic", "noise": "normal", "mean": 100.0, "sd": 1.0,
                       "theta0": 0.0})
    row = claims.evaluate(sc, _t1_sim(np.full(16, 7.485)))[0]
    assert row.details["zeros"] == pytest.approx([100.0], abs=1e-9)
    lo, hi = row.details["window"]
    assert lo <= 0 and hi >= 100 and "searched" in row.prediction
    assert row.verdict == "inconclusive"


def test_t1_on_a_repelling_zero_is_not_holds():
    """ℓ = −½(θ − y)² (concave), y ~ N(0, 1): H(θ) = −E[clamp(θ − y, −1, 1)] is decreasing, its
    zero 0 repels dθ/dτ = −H. Endpoints that ran off symmetrically have mean 0, on the zero."""
    sc = _t1_scenario({"name": "quadratic", "noise": "normal", "mean": 0.0, "sd": 1.0,
                       "theta0": 0.0, "curvature": -1.0})
    row = claims.evaluate(sc, _t1_sim(np.repeat([-6.0, 6.0], 64)))[0]
    assert row.details["zeros"] == pytest.approx([0.0], abs=1e-9)
    assert row.details["pieces"][0]["stability"] == "repelling"
    assert row.verdict == "violated" and "repelling" in row.reason


def test_t1_with_a_monte_carlo_h_reports_an_uncertain_zero_set():
    """B = 2 makes H a Monte Carlo estimate for a Student-t law (the mean of two t draws has no
    closed form; for a normal law it has). y = 3 + t₅ is symmetric about E[y] = 3, so the zero
    of H is 3; the estimated zero set is an interval (the 95% band of the estimate) that
    contains 3, never an exact point, and endpoints at 3 agree with it."""
    sc = _t1_scenario({"name": "quadratic", "noise": "student-t", "df": 5, "mean": 3.0,
                       "sd": 1.0, "theta0": 0.0},
                      run={"schedule": "1/(t+1)", "paths": 4, "steps": 8, "batch": 2})
    rng = np.random.default_rng(0)
    row = claims.evaluate(sc, _t1_sim(3.0 + 0.01 * rng.standard_normal(512)))[0]
    assert row.details["h_exact"] is False and row.details["zeros_estimated"] is True
    assert row.details["zeros"] == [] and len(row.details["intervals"]) == 1
    a, b = row.details["intervals"][0]
    assert a < 3.0 < b and 0 < b - a < 0.5
    assert row.verdict == "holds" and "Monte Carlo" in row.prediction


def test_t1_in_two_dimensions_with_a_monte_carlo_h_gives_the_zero_its_standard_error():
    """y ~ N(2, 1) in each of 2 coordinates (a continuous law in d > 1: H is estimated from
    4096 samples). The zero's standard error is s_H/H' per coordinate, with, by hand,
    s_H² = E[clamp(z, −1, 1)²]/4096 = (2Φ(1) − 1 − 2φ(1) + 2(1 − Φ(1)))/4096 and
    H' = P(|z| < 1) = 2Φ(1) − 1 for z ~ N(0, 1)."""
    sc = _t1_scenario({"name": "quadratic", "noise": "normal", "mean": 2.0, "sd": 1.0,
                       "dim": 2})
    rng = np.random.default_rng(0)
    row = claims.evaluate(sc, _t1_sim(2.0 + 0.01 * rng.standard_normal((256, 2))))[0]
    inside = 2 * stats.norm.cdf(1) - 1
    second = inside - 2 * stats.norm.pdf(1) + 2 * stats.norm.sf(1)
    want = math.sqrt(second / 4096) / inside
    np.testing.assert_allclose(row.details["zero_se"], [want, want], rtol=0.1)
    zero = np.array(row.details["zeros"][0])
    assert np.all(np.abs(zero - 2.0) <= 4 * want) and row.details["stability"] == ["attracting"]
    assert row.verdict == "holds" and "±" in row.prediction


def _t1_mlp(**options):
    """A small tanh MLP 10–5–1 (P = 61 ≥ t1.LARGE_P) on 100 samples, H exact (the finite sum)."""
    return _t1_scenario({"name": "mlp-regression", "n": 100, "dim": 10, "hidden": 5},
                        run={"schedule": "0.05/(1+t/100)", "paths": 16, "steps": 50, "seed": 3},
                        options={"zero_seconds": 20.0} | options)


def test_t1_on_an_mlp_finishes_within_its_budget_and_never_claims_no_zero():
    """On an MLP the search for a zero of H (a kinked field: per-sample norm clipping) runs with
    H's batched Jacobian from the mean endpoint and θ(0) only, within the budget; a search that
    runs out of it is inconclusive with the budget in the reason, never 'H has no zero'."""
    from simulations.verify.claims import t1

    sc = _t1_mlp()
    sim = simulate(sc.run, Execution(progress=False))
    row = claims.evaluate(sc, sim)[0]
    assert sc.make_problem().n_params == 61 >= t1.LARGE_P
    assert row.verdict in ("holds", "inconclusive") and not row.reason.startswith("H has no")
    assert row.details["zero_evaluations"] <= t1.OPTIONS["zero_budget"]
    tight = claims.evaluate(_t1_mlp(zero_budget=100), sim)[0]  # less than 2 Jacobians (62 each)
    assert tight.verdict == "inconclusive" and tight.details["zeros"] == []
    assert "budget of 100 evaluations of H" in tight.reason
    assert tight.details["zero_evaluations"] <= 100


SCHEDULE_KINDS = {
    "constant": ("0.05", lambda t: 0.05),
    "step": ("0.1*0.5**floor(t/20)", lambda t: 0.1 * 0.5 ** (t // 20)),
    "cosine": ("0.05*(1+cos(pi*t/T))", lambda t: 0.05 * (1 + math.cos(math.pi * t / 60))),
    "warmup": ("Min(1, (t+1)/10)*0.1", lambda t: min(1.0, (t + 1) / 10) * 0.1),
    "linear": ("Max(0.01, 0.1*(1-t/T))", lambda t: max(0.01, 0.1 * (1 - t / 60))),
    "exponential": ("0.1*0.99**t", lambda t: 0.1 * 0.99**t),
    "piecewise": ("Piecewise((0.1, t < 20), (0.01, True))", lambda t: 0.1 if t < 20 else 0.01),
    "values": ([0.1] * 30 + [0.05] * 30, lambda t: 0.1 if t < 30 else 0.05),
}


@pytest.mark.parametrize("kind", sorted(SCHEDULE_KINDS))
def test_every_claim_runs_on_every_schedule_kind(kind):
    """Each schedule kind through the claims of classic clipping: no claim fails on it; L1-det
    (true) holds; L1-paper gives (14) with Σ_{t<T} a(t)² written out here, and (15) only where
    γ = Σ_{t≥0} a(t)² exists (not on a schedule defined up to the horizon alone)."""
    from simulations.verify.runner import run_scenario

    schedule, a = SCHEDULE_KINDS[kind]
    sc = scenario_from_dict({
        "name": kind, "claims": ["A2", "L1-paper", "L1-det", "L1-mart", "L2", "L3", "T1"],
        "problem": {"name": "quadratic", "noise": "normal", "mean": 3.0, "sd": 1.0},
        "clip": {"rule": "classic", "lam": 1.0},
        "run": {"schedule": schedule, "paths": 32, "steps": 60, "xi_paths": 32},
        "radii": {"exit": [0.5], "xi": [1.0]}})
    rows = claims.evaluate(sc, run_scenario(sc, progress=False))
    assert {r.claim for r in rows} == set(sc.claims)
    assert all(r.verdict in claims.VERDICTS for r in rows)
    assert [r.verdict for r in rows if r.claim == "L1-det"] == ["holds"]
    paper = {r.details["form"]: r for r in rows if r.claim == "L1-paper"}
    finite = kind not in ("constant", "exponential")
    assert set(paper) == ({"14"} if finite else {"14", "15"})
    sum_a2 = math.fsum(a(t) ** 2 for t in range(60))
    assert paper["14"].prediction_value == pytest.approx(
        math.log10(2) - 2 * 0.25 / sum_a2 / math.log(10), rel=1e-9)


# ---- T1: every sentence of the reason from facts of the case; "does not apply" -------------

def _discrete(values, probs, **extra):
    return {"name": "quadratic", "noise": "discrete", "values": values, "probs": probs,
            "theta0": 0.5} | extra


def test_t1_flat_zero_set_at_large_lambda_is_one_attracting_interval():
    """y = ±9e6 w.p. ½, classic λ = 1e5: H = ½clip(θ + 9e6) + ½clip(θ − 9e6) is exactly 0 on
    [λ − 9e6, 9e6 − λ] = [−8.9e6, 8.9e6] (both residuals clipped there: ½λ − ½λ), ½(θ ∓ 8.9e6)
    just outside, so the interval attracts. Endpoints spread over [−3e5, 3e5] (steps of up to
    λa(t)) lie inside it; float noise of size ε·λ must not split it into pieces, some of them
    'repelling'."""
    sc = _t1_scenario(_discrete([-9e6, 9e6], [0.5, 0.5]), clip={"rule": "classic", "lam": 1e5})
    rng = np.random.default_rng(0)
    row = claims.evaluate(sc, _t1_sim(rng.uniform(-3e5, 3e5, 256)))[0]
    assert len(row.details["pieces"]) == 1 and row.details["zeros"] == []
    piece = row.details["pieces"][0]
    assert (piece["lo"], piece["hi"]) == pytest.approx((-8.9e6, 8.9e6), rel=0, abs=1e-6)
    assert piece["stability"] == "attracting"
    assert "repelling" not in row.prediction and "touching" not in row.prediction
    assert row.verdict == "holds"


@pytest.mark.parametrize("df", [1, 2, 3, 5])
def test_t1_says_nothing_of_a_minimiser_where_the_expected_loss_is_infinite(df):
    """ℓ = ½(θ − y)², y ~ t_ν: E[ℓ] = ½E[(θ − y)²] is finite iff E[y²] is, iff ν > 2 (scipy's
    variance of t_ν is inf for ν ≤ 2, checked here too). For ν ≤ 2 there is no minimiser: no
    'argmin E[ℓ] = 0', no 'also the minimiser'; for ν > 2 the minimiser is the centre 0 and the
    endpoints at 0 match it."""
    from simulations.engine.problems import Law

    finite = df > 2
    assert Law("student-t", df=df).moment_finite(2) == finite == bool(np.isfinite(
        stats.t(df).var()))
    assert Law("student-t", df=df).moment_finite(1) == bool(np.isfinite(stats.t(df).mean()))
    sc = _t1_scenario({"name": "quadratic", "noise": "student-t", "df": df, "mean": 0.0,
                       "sd": 1.0, "theta0": 5.0})
    rng = np.random.default_rng(1)
    row = claims.evaluate(sc, _t1_sim(0.01 * rng.standard_normal(256)))[0]
    assert row.verdict == "holds" and row.details["loss_finite"] is finite
    if finite:
        assert row.prediction.endswith("argmin E[ℓ] = 0")
        assert "the endpoints also match the minimiser of E[ℓ]" in row.reason
    else:
        assert row.details["minimiser"] is None
        assert row.prediction.endswith("argmin E[ℓ] = none (E[ℓ] = ∞)")
        assert "E[ℓ] = ∞ at every θ" in row.reason and f"ν = {df} ≤ 2" in row.reason
        assert "match the minimiser" not in row.reason and "argmin E[ℓ] = 0" not in row.reason


def test_t1_reading_false_only_where_the_limit_is_not_the_minimiser():
    """The sentence "the reading 'minimum of E[ℓ]' is false here" needs a zero of H that the
    endpoints match and that differs from the minimiser x* of E[ℓ] beyond the resolution.

    * printed: y = 0 w.p. 0.9, 10 w.p. 0.1, λ = 1: the zero of H is 1/9 (0.9·θ = 0.1·1 with
      the far atom clipped), x* = E[y] = 1; endpoints at 1/9;
    * printed: y = ±2 w.p. ½, λ = 1: H = 0 on [−1, 1] ∋ x* = 0, but endpoints in the flat
      stretch around 0.27 are limits of the iterates (no drift there) that are not x*;
    * not printed: y ~ N(2, 1)² in 2-D, H by Monte Carlo: by symmetry the zero of H is x* =
      (2, 2) itself; endpoints 0.004 off it match the estimated zero (±0.017) but not x* (to
      their standard error 0.0006): the row must not call the reading false."""
    rng = np.random.default_rng(0)
    skew = claims.evaluate(_t1_scenario(_discrete([0.0, 10.0], [0.9, 0.1])),
                           _t1_sim(1 / 9 + 0.01 * rng.standard_normal(512)))[0]
    assert skew.verdict == "holds" and skew.details["minimiser"] == [1.0]
    assert "the reading 'minimum of E[ℓ]' is false here" in skew.reason
    flat = claims.evaluate(_t1_scenario(_discrete([-2.0, 2.0], [0.5, 0.5])),
                           _t1_sim(0.27 + 0.2 * rng.standard_normal(512)))[0]
    assert flat.details["intervals"] == [pytest.approx((-1.0, 1.0), abs=1e-9)]
    assert flat.verdict == "holds" and "the reading 'minimum of E[ℓ]' is false here" in flat.reason
    rng = np.random.default_rng(0)
    normal = claims.evaluate(
        _t1_scenario({"name": "quadratic", "noise": "normal", "mean": 2.0, "sd": 1.0,
                      "dim": 2}),
        _t1_sim(2.004 + 0.01 * rng.standard_normal((256, 2))))[0]
    assert normal.verdict == "holds" and normal.details["z_minimiser"] > 3
    assert "false here" not in normal.reason
    assert "cannot be told apart" in normal.reason and normal.details["z_zero_minimiser"] <= 3


def _grown_sim(endpoints, start_norm, end_norm):
    """A constructed run with checkpoints at 0, 4, 8 and ‖θ‖ = start_norm at s = 4 (= T/2),
    end_norm at T = 8, plus ±1e-3 noise so that the standard error is not 0."""
    endpoints = np.asarray(endpoints, dtype=np.float64).reshape(len(endpoints), -1)
    n = len(endpoints)
    noise = 1e-3 * np.where(np.arange(n) % 2, 1.0, -1.0)
    norms = np.stack([np.zeros(n), start_norm + noise, end_norm - noise], axis=1)
    return Simulation({"paths": n, "steps": 8},
                      {"blown_step": np.full(n, -1), "endpoints": endpoints,
                       "checkpoint_steps": np.array([0, 4, 8]), "norm_at": norms})


def test_t1_does_not_apply_where_the_iterates_grow_and_is_violated_where_they_do_not():
    """Theorem 1 assumes bounded iterates. ℓ = −½(θ − y)², y ~ N(0, 1): H = −E[clamp(θ − y)]
    has the one zero 0, repelling; iterates whose ‖θ‖ grows from 5 at T/2 to 6 at T (paired
    difference 1 ± 1e-4) are not bounded as far as the run shows: 'does not apply', not
    'violated'. The same endpoints with ‖θ‖ flat at 6 are bounded and converge nowhere:
    'violated'."""
    sc = _t1_scenario({"name": "quadratic", "noise": "normal", "mean": 0.0, "sd": 1.0,
                       "theta0": 0.0, "curvature": -1.0})
    end = np.repeat([-6.0, 6.0], 64)
    grown = claims.evaluate(sc, _grown_sim(end, 5.0, 6.0))[0]
    assert grown.verdict == "does not apply" and "Theorem 1 assumes" in grown.reason
    assert grown.details["growth"]["growth"] == pytest.approx(1.0, abs=1e-2)
    assert grown.details["growth"]["from_step"] == 4 and grown.details["growth"]["grows"]
    flat = claims.evaluate(sc, _grown_sim(end, 6.0, 6.0))[0]
    assert flat.verdict == "violated" and "does not grow measurably" in flat.reason
    assert not flat.details["growth"]["grows"]


def test_t1_does_not_apply_on_separable_logistic_data():
    """Separable logistic regression: H has no zero and ‖θ‖ grows without bound (like the log of
    τ(t)); a short run of 64 paths already shows the growth, so the row is 'does not apply' and
    the report, JSON and the [expect] check take that verdict."""
    from simulations.verify import report
    from simulations.verify.runner import run_scenario

    sc = scenario_from_dict({
        "name": "separable", "claims": ["T1"], "problem": {"name": "logistic"},
        "clip": {"rule": "classic", "lam": 1.0},
        "run": {"schedule": "1/(t+1)**0.6", "paths": 64, "steps": 400, "seed": 9},
        "expect": {"T1": "does not apply"}})
    row = claims.evaluate(sc, run_scenario(sc, progress=False))[0]
    assert row.verdict == "does not apply", row.reason
    assert row.details["growth"]["grows"] and row.details["zeros"] == []
    assert "no zero of H was found" in row.reason
    assert report.unexpected([row], {sc.name: sc.expect}) == []
    assert "1 does not apply" in report.text([row])
    assert '"verdict": "does not apply"' in report.as_json([row])
