"""The verdict rules of simulations.claims on constructed results whose right verdict is known,
and the xi observer the martingale claims read, against a slow reference loop."""

import math

import numpy as np
import pytest
from scipy import stats

from simulations import claims
from simulations.engine import Simulation, simulate
from simulations.scenarios import scenario_from_dict
from simulations.spec import Execution, RunSpec

# ---- the rules on numbers -------------------------------------------------------------------

@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (1, 10000), (517, 1000)])
def test_clopper_pearson_against_scipy_binomtest(k, n):
    want = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    np.testing.assert_allclose(claims.clopper_pearson(k, n), (want.low, want.high), rtol=1e-7,
                               atol=1e-15)


def test_probability_bound_that_is_violated():
    verdict, why = claims.probability_verdict(10000, 10000, math.log10(0.0155))
    assert verdict == "violated" and "lower limit" in why


def test_probability_bound_that_holds_and_cannot_be_resolved():
    verdict, why = claims.probability_verdict(0, 10000, -614.9)
    assert verdict == "holds" and "cannot resolve" in why
    assert claims.probability_verdict(3, 1000, math.log10(0.01))[0] == "holds"


def test_vacuous_bounds():
    assert claims.probability_verdict(5, 10, math.log10(1.5))[0] == "vacuous"
    assert claims.probability_verdict(0, 10, -614.9, impossible=True)[0] == "vacuous"


def test_inconclusive_when_the_interval_reaches_the_bound():
    # 12 of 1000 against 0.01: the estimate is above, the lower limit 0.0062 is below
    assert claims.probability_verdict(12, 1000, math.log10(0.01))[0] == "inconclusive"


def test_pathwise_tolerance():
    assert claims.pathwise_verdict(1 + 0.5e-9, 1e-9, "x")[0] == "holds"
    assert claims.pathwise_verdict(1 + 2e-9, 1e-9, "x")[0] == "violated"
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
    ok = claims.evaluate(sc, _sim(deviation_at=dev, max_deviation=dev[:, -1].copy()))[0]
    assert ok.verdict == "holds"
    dev[2, 3] *= 1 + 1e-8  # one path, one checkpoint, a relative 1e-8 past λΣa
    bad = claims.evaluate(sc, _sim(deviation_at=dev, max_deviation=r[-1] * np.ones(4)))[0]
    assert bad.verdict == "violated"


def test_l1_paper_violated_when_every_path_leaves_and_vacuous_when_none_can():
    sc = _scenario(["L1-paper"], radii={"exit": [1.0, 100.0]})
    dev = np.tile(_radius([0, 1, 2, 4, 8]), (4, 1))  # ‖θ(8) − θ(0)‖ = 2.72 > 1 on every path
    rows = claims.evaluate(sc, _sim(deviation_at=dev))
    # M = 1: bound 2exp(−2/γ) = 0.6 at most, but 4 of 4 left: lower limit 0.40 < 0.6 → 4 paths
    # cannot prove it; M = 100 > λΣa: vacuous
    assert [r.verdict for r in rows] == ["inconclusive", "vacuous"]
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
