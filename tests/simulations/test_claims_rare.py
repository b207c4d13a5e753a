"""The probability claims fall back on AMS (simulations.engine.rare) where plain Monte Carlo cannot
resolve the bound, checked on the ±1 walk (quadratic, two-point law ±1000, λ = 1, a ≡ 1,
θ(0) = 0: every clipped step is ±1, H = 0 away from ±999, so ξ(s) = −θ(s)), where
P(max_{s≤T}|S_s| ≥ r) is exact by dynamic programming (walk_probability of
tests/simulations/test_rare.py,
in exact rationals, independent of the package).

With T = 40 and r = 32 the exact probability is ≈ 2.1e-7; 32 plain paths see 0 events (upper
limit 0.11), which resolves neither Pinelis' 2exp(−r²/(8T)) ≈ 0.082 nor a δ of 1e-5."""

from __future__ import annotations

import math

import pytest

from simulations.verify import claims
from simulations.verify.claims import verdicts
from simulations.verify.runner import run_scenario
from simulations.verify.scenarios import scenario_from_dict
from theory.walk import walk_probability

T, R_LEVEL, PATHS = 40, 32, 32
EXACT = float(walk_probability(T, R_LEVEL))


def _walk(claim: str, options: dict | None = None, **extra):
    data = {"name": "walk", "claims": [claim],
            "problem": {"name": "quadratic", "noise": "discrete", "values": [-1000.0, 1000.0],
                        "probs": [0.5, 0.5], "theta0": 0.0},
            "clip": {"rule": "classic", "lam": 1.0},
            "run": {"schedule": "1", "paths": PATHS, "steps": T, "seed": 3},
            "options": {"rare_particles": 40, "rare_replicas": 6} | (options or {})} | extra
    sc = scenario_from_dict(data)
    return claims.evaluate(sc, run_scenario(sc, progress=False))


def test_exact_reference():
    assert 1e-7 < EXACT < 3e-7


def test_l1_mart_holds_by_ams_where_plain_monte_carlo_is_inconclusive():
    (row,) = _walk("L1-mart", radii={"xi": [float(R_LEVEL)]})
    log10_bound = math.log10(2) - R_LEVEL**2 / (8 * T) / math.log(10)  # Pinelis by hand
    assert row.details["exits"] == 0
    assert row.details["log10_bound"] == pytest.approx(log10_bound, rel=1e-12)
    assert row.details["estimator"] == "ams" and row.verdict == "holds"
    lo, hi = row.interval
    assert lo <= EXACT <= hi and hi <= 10**log10_bound
    assert "AMS" in row.reason and "bound/estimate" in row.reason
    # the tightness is log10(bound/estimate); the exact log10(bound/p) ≈ 5.6 decades lies
    # between log10(bound/hi) and log10(bound/lo)
    assert row.details["log10_tightness"] == pytest.approx(
        log10_bound - math.log10(row.measurement_value), rel=1e-12)
    exact_tight = log10_bound - math.log10(EXACT)
    loosest = log10_bound - math.log10(lo) if lo > 0 else math.inf  # lo clipped at 0
    assert log10_bound - math.log10(hi) <= exact_tight <= loosest
    assert 5.5 < exact_tight < 5.7


def test_a3_holds_and_is_violated_by_ams_against_the_exact_probability():
    radius = R_LEVEL - 0.5  # max|S| > 31.5 ⟺ max|S| ≥ 32
    (ok,) = _walk("A3", {"a3_delta": 1e-5}, radii={"blowup": radius})
    assert ok.details["exits"] == 0 and ok.details["estimator"] == "ams"
    assert ok.verdict == "holds" and ok.interval[0] <= EXACT <= ok.interval[1] <= 1e-5
    lo, hi = ok.interval
    assert -5 - math.log10(hi) <= -5 - math.log10(EXACT) <= -5 - math.log10(lo)
    assert ok.details["log10_tightness"] == pytest.approx(
        -5 - math.log10(ok.measurement_value), rel=1e-12)
    (bad,) = _walk("A3", {"a3_delta": 1e-9}, radii={"blowup": radius})
    assert bad.verdict == "violated" and 1e-9 < bad.interval[0] <= EXACT <= bad.interval[1]
    assert "AMS" in bad.reason


def test_l1_paper_is_violated_and_holds_by_endpoint_ams(monkeypatch):
    """(14) on the walk is 2exp(−2M²/T) ≈ 6e-22 at M = 31.5, far below the true endpoint
    probability P(|S_40| ≥ 32) = 2·P(Binomial(40, 1/2) ≥ 36) ≈ 1.9e-7: AMS of the endpoint event
    has its lower limit above the bound, so (14) is shown violated. (15) has γ = ∞ for a ≡ 1:
    vacuous. With a bound of 1e-5 in place of (14), the AMS upper limit is below it: holds.
    Both intervals contain the binomial tail."""
    endpoint = 2 * sum(math.comb(T, k) for k in range(36, T + 1)) / 2**T
    assert 1.8e-7 < endpoint < 1.9e-7
    rows = _walk("L1-paper", {"rare_floor": -30.0}, radii={"exit": [R_LEVEL - 0.5]})
    assert [r.details["form"] for r in rows] == ["15", "14"]
    assert [r.verdict for r in rows] == ["vacuous", "violated"]
    assert rows[1].details["estimator"] == "ams"
    assert rows[1].details["rare"]["setting"]["endpoint"] is True
    assert rows[1].interval[0] > 10 ** rows[1].details["log10_bound"]
    assert rows[1].interval[0] <= endpoint <= rows[1].interval[1]
    assert "at T" in rows[1].reason and "lower limit is above the bound" in rows[1].reason

    from theory import bounds
    real = bounds.lemma1_paper

    def loose(lam, radius, schedule, horizon=None):
        b = real(lam, radius, schedule, horizon)
        return b if horizon is None else b.__class__(**{**b.__dict__, "log10_probability": -5.0})

    monkeypatch.setattr(bounds, "lemma1_paper", loose)
    rows = _walk("L1-paper", radii={"exit": [R_LEVEL - 0.5]})
    assert rows[1].verdict == "holds" and rows[1].interval[1] <= 1e-5
    assert rows[1].interval[0] <= endpoint <= rows[1].interval[1]


def test_rare_false_and_the_floor_keep_plain_monte_carlo():
    (row,) = _walk("L1-mart", {"rare": False}, radii={"xi": [float(R_LEVEL)]})
    assert row.verdict == "inconclusive" and row.details["estimator"] == "monte carlo"
    assert row.interval == verdicts.clopper_pearson(0, PATHS)
    assert row.details["log10_tightness"] is None and "estimate 0" in row.reason
    hi = verdicts.clopper_pearson(0, PATHS)[1]
    assert row.details["log10_tightness_at_least"] == pytest.approx(
        row.details["log10_bound"] - math.log10(hi), rel=1e-12)
    (row,) = _walk("A3", {"a3_delta": 1e-5, "rare_floor": -4.0}, radii={"blowup": R_LEVEL - 0.5})
    assert row.verdict == "inconclusive" and row.details["estimator"] == "monte carlo"


def test_interval_verdict_and_tightness():
    assert verdicts.interval_verdict((1e-9, 2e-9), -8) == "holds"
    assert verdicts.interval_verdict((1e-9, 2e-8), -8) == "inconclusive"
    assert verdicts.interval_verdict((2e-8, 3e-8), -8) == "violated"
    assert verdicts.interval_verdict((2e-8, 3e-8), -8, upper_only=True) == "inconclusive"
    assert verdicts.interval_verdict((0.0, 0.5), 0.1) == "vacuous"
    assert verdicts.log10_tightness(-3.0, 1e-5) == pytest.approx(2.0)
    assert verdicts.log10_tightness(-3.0, 0.0) is None


def test_bad_rare_options_name_the_option():
    with pytest.raises(ValueError, match="rare_particles"):
        _walk("L1-mart", {"rare_particles": 1}, radii={"xi": [float(R_LEVEL)]})


@pytest.mark.parametrize("estimates, extinct, capped", [
    ([1.8e-12] * 6, 0, 6),  # every replica stopped at max_iterations, all equal
    ([1e-9] * 6, 0, 0),  # no spread (too few particles)
    ([0.0] * 6, 6, 0),  # every replica died out
])
def test_an_ams_estimate_without_spread_is_inconclusive(monkeypatch, estimates, extinct,
                                                        capped):
    """A degenerate AMS estimate (no spread between the replicas) has no interval: the verdict
    is inconclusive with the reason, never holds from an interval of width 0."""
    from simulations.engine import rare

    def degenerate(chain, splitting, execution=None):
        return rare.RareEventResult.from_replicas(
            estimates, [5] * len(estimates), 1000, extinct, capped,
            {"particles": splitting.particles})

    monkeypatch.setattr(rare, "ams", degenerate)
    (row,) = _walk("L1-mart", radii={"xi": [float(R_LEVEL)]})
    assert row.details["estimator"] == "ams"
    assert row.verdict == "inconclusive" and "inconclusive" in row.reason, row.reason
    assert all(math.isnan(x) for x in row.interval)
    from simulations.verify import report

    assert "—" in report.text([row]).splitlines()[2]
