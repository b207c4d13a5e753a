"""Tests for theory.bounds: the paper's Lemma 1, Azuma, Pinelis, deterministic facts, Claim 2's
constant, the Grönwall growth bound, and the inverses.

Expected values come from the paper's published numbers (Ramaswamy, ICPRAM 2023) and from
computations done here on their own: mpmath closed forms at 50 digits, brute-force sums and
loops, a 1-D simulation of the worst case, and sampling of the adaptive clipping map.
"""

import json
import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from theory.__main__ import main as theory_main
from theory.bounds import (
    azuma,
    claim2_constants,
    deterministic_horizon,
    deterministic_radius,
    gronwall,
    lemma1_paper,
    max_lam_for,
    pinelis,
    probability_bound,
    radius_for,
    vacuous_horizon,
)
from theory.schedules import PowerSchedule, constant, harmonic, parse_schedule
from theory.table import bound_table

NAMES = ["lemma1_paper", "azuma", "pinelis"]
KAPPA = {"lemma1_paper": mp.mpf(2), "azuma": mp.mpf(1) / 2, "pinelis": mp.mpf(1) / 8}
LAM, M = 30.0, 2.0**10  # the paper's example

# the paper's example: a(t) = 1/t (i.e. 1/(t+1)), λ = 30, M = 2¹⁰, and its printed numbers
PUBLISHED_GAMMA = 1.6449340668
PUBLISHED_EXPONENT = 1416.5728
PUBLISHED_LOG10 = -614.9087
PUBLISHED_AZUMA = 354.1432


def mp_sum(term, horizon: int, dps: int = 50) -> mp.mpf:
    with mp.workdps(dps):
        return mp.fsum(term(mp.mpf(n)) for n in range(horizon))


def harmonic_term(n):
    return 1 / (n + 1)


# ----------------------------------------------------------------------------- Lemma 1 numbers
def test_lemma1_paper_published_example():
    bound = lemma1_paper(LAM, M, "1/(t+1)")
    with mp.workdps(50):
        exponent = mp.mpf(2) ** 21 / (150 * mp.pi**2)
        log_probability = mp.log(2) - exponent
        log10_probability = log_probability / mp.log(10)
    assert abs(bound.exponent - PUBLISHED_EXPONENT) < 1e-4
    assert abs(bound.log10_probability - PUBLISHED_LOG10) < 1e-4
    assert bound.exponent == pytest.approx(float(exponent), rel=1e-14)
    assert bound.log_probability == pytest.approx(float(log_probability), rel=1e-14)
    assert bound.log10_probability == pytest.approx(float(log10_probability), rel=1e-14)
    assert math.exp(bound.log_probability) == 0.0  # 2e^{-1416.57} underflows float64 ...
    assert bound.probability is None  # ... so no float is given
    assert bound.vacuous is False
    assert abs(bound.sum_of_squares - PUBLISHED_GAMMA) < 1e-10
    assert bound.horizon is None
    assert "(15)" in bound.form and "γ" in bound.form
    assert bound.to_dict()["name"] == "lemma1_paper"


def test_azuma_published_exponent():
    bound = azuma(LAM, M, "1/(t+1)")
    with mp.workdps(50):
        exponent = mp.mpf(M) ** 2 / (2 * (mp.pi**2 / 6) * mp.mpf(LAM) ** 2)  # M²/(2γλ²)
        probability = 2 * mp.exp(-exponent)
    assert abs(bound.exponent - PUBLISHED_AZUMA) < 1e-4
    assert bound.exponent == pytest.approx(float(exponent), rel=1e-14)
    assert bound.probability == pytest.approx(float(probability), rel=1e-12)  # ~3e-154: a float
    assert bound.vacuous is False
    assert "(14)" not in bound.form and "(15)" not in bound.form


def test_pinelis_exponent():
    bound = pinelis(LAM, M, harmonic())
    with mp.workdps(50):
        exponent = mp.mpf(M) ** 2 / (8 * mp.mpf(LAM) ** 2 * (mp.pi**2 / 6))
    assert bound.exponent == pytest.approx(float(exponent), rel=1e-14)
    assert bound.exponent == pytest.approx(PUBLISHED_AZUMA / 4, rel=1e-6)
    assert bound.log_probability == pytest.approx(math.log(2) - float(exponent), rel=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_partial_sum_with_horizon(name):
    horizon = 1000
    bound = probability_bound(name, LAM, M, "1/(t+1)", horizon=horizon)
    with mp.workdps(50):
        gamma_t = mp_sum(lambda n: 1 / (n + 1) ** 2, horizon)
        exponent = KAPPA[name] * mp.mpf(M) ** 2 / (mp.mpf(LAM) ** 2 * gamma_t)
    assert bound.sum_of_squares == pytest.approx(float(gamma_t), rel=1e-15)
    assert bound.sum_of_squares < PUBLISHED_GAMMA  # γ_T < γ: the horizon is used
    assert bound.exponent == pytest.approx(float(exponent), rel=1e-14)
    assert bound.horizon == horizon
    assert "Σ_{t<T}" in bound.form
    assert ("(14)" in bound.form) is (name == "lemma1_paper")
    assert "(15)" not in bound.form


def test_named_functions_equal_probability_bound():
    for name, function in zip(NAMES, [lemma1_paper, azuma, pinelis], strict=True):
        assert function(2.0, 3.0, harmonic(), 50) == probability_bound(name, 2.0, 3.0,
                                                                       harmonic(), 50)


def test_divergent_squares_give_vacuous_bound():
    bound = lemma1_paper(LAM, M, "1/sqrt(t+1)")  # γ = Σ 1/(t+1) = ∞
    assert bound.sum_of_squares == math.inf
    assert bound.exponent == 0.0
    assert bound.probability == pytest.approx(2.0)
    assert bound.vacuous is True


def test_empty_horizon_gives_probability_zero():
    bound = lemma1_paper(LAM, M, "1/(t+1)", horizon=0)
    assert bound.sum_of_squares == 0.0
    assert bound.probability == 0.0
    assert bound.vacuous is False


# ----------------------------------------------------------------------------- deterministic
def test_deterministic_horizon_paper_example_exact_to_the_step():
    horizon = deterministic_horizon(LAM, M, "1/(t+1)")
    assert 3.6e14 < horizon < 3.8e14
    with mp.workdps(50):
        assert LAM * mp.harmonic(horizon) >= M > LAM * mp.harmonic(horizon - 1)
        # H_T ~ ln T + γ_E: T ≈ exp(M/λ − γ_E)
        assert abs(horizon - mp.exp(mp.mpf(M) / LAM - mp.euler)) < 2


@pytest.mark.parametrize("lam, radius, spec, term", [
    (1.0, 3.0, "1/(t+1)", harmonic_term),
    (0.5, 2.0, "exp(-t/10)", lambda n: mp.exp(-n / 10)),
    (2.0, 7.0, "3", lambda n: mp.mpf(3)),
    (0.1, 1.0, "(t+10)**-0.7", lambda n: (n + 10) ** mp.mpf(-0.7)),
    (3.0, 12.0, "1/((t+1)*log(t+2))", lambda n: 1 / ((n + 1) * mp.log(n + 2))),
])
def test_deterministic_horizon_and_radius_vs_loop(lam, radius, spec, term):
    with mp.workdps(50):
        total, expected = mp.mpf(0), None
        for n in range(10**6):
            total += term(mp.mpf(n))
            if lam * total >= radius:
                expected = n + 1
                break
    horizon = deterministic_horizon(lam, radius, spec)
    assert horizon == expected
    for steps in [1, horizon - 1, horizon, horizon + 3]:
        brute = lam * mp_sum(term, steps)
        assert deterministic_radius(lam, spec, steps) == pytest.approx(float(brute), rel=1e-14)
    assert deterministic_radius(lam, spec, horizon) >= radius > deterministic_radius(
        lam, spec, horizon - 1)


def test_deterministic_unreachable_and_infinite():
    assert deterministic_horizon(1.0, 2.0, "exp(-t)") is None  # λ·Σ = 1.582 < 2
    assert deterministic_horizon(1.0, 1.65, PowerSchedule(1.0, 1.0, 2.0)) is None  # π²/6 < 1.65
    assert deterministic_radius(2.0, "exp(-t)") == pytest.approx(2 / (1 - math.exp(-1)),
                                                                rel=1e-14)
    assert deterministic_radius(LAM, "1/(t+1)") == math.inf


# ----------------------------------------------------------------------------- Claim 2
def adaptive_ratio(g: np.ndarray, theta: np.ndarray, lam: float, eps: float) -> float:
    """‖g/c‖/(1+‖θ‖) with c = max(‖g‖/(λ·max(‖θ‖, ε)), 1), the adaptive clipping (17)."""
    g_norm, theta_norm = np.linalg.norm(g), np.linalg.norm(theta)
    c = max(g_norm / (lam * max(theta_norm, eps)), 1.0)
    return float(np.linalg.norm(g / c) / (1.0 + theta_norm))


@pytest.mark.parametrize("lam", [0.1, 1.0, 30.0])
@pytest.mark.parametrize("eps", [0.01, 0.5, 1.0, 3.0])
def test_claim2_tight_constant_by_sampling(lam, eps):
    constants = claim2_constants(lam, eps)
    rng = np.random.default_rng(1234)
    largest = 0.0
    for dim in [1, 3, 50]:
        for _ in range(300):
            g = rng.standard_normal(dim)
            g *= 10.0 ** rng.uniform(-3, 6) / np.linalg.norm(g)
            theta = rng.standard_normal(dim)
            theta *= 0.0 if rng.random() < 0.1 else 10.0 ** rng.uniform(-4, 6) / np.linalg.norm(
                theta)
            ratio = adaptive_ratio(g, theta, lam, eps)
            assert ratio <= constants.k_tight * (1 + 1e-12)
            largest = max(largest, ratio)
    assert largest >= constants.k_tight * (1 - 1e-3)  # the sup is approached
    # and attained in the limit by the extreme configurations
    big_g = np.array([1e15, 0.0, 0.0])
    if eps >= 1:
        extreme = adaptive_ratio(big_g, np.zeros(3), lam, eps)  # θ = 0: λε/1
        assert extreme == pytest.approx(constants.k_tight, rel=1e-14)
    else:
        extreme = adaptive_ratio(big_g, np.array([0.0, 1e9, 0.0]), lam, eps)  # λ‖θ‖/(1+‖θ‖)
        assert extreme == pytest.approx(constants.k_tight, rel=1e-8)
    assert constants.k_tight == pytest.approx(lam * max(1.0, eps), rel=1e-15)


@settings(max_examples=200, deadline=None)
@given(lam=st.floats(1e-3, 1e3), eps=st.floats(1e-3, 1e3))
def test_claim2_paper_constant(lam, eps):
    constants = claim2_constants(lam, eps)
    assert constants.k_paper == max(lam * eps, lam, 1.0)
    assert constants.k_paper >= constants.k_tight
    tight_enough = lam * max(1.0, eps) >= 1.0
    assert (constants.k_paper == constants.k_tight) is tight_enough
    assert constants.paper_is_tight is tight_enough


# ----------------------------------------------------------------------------- Grönwall
GRONWALL_CASES = [
    (harmonic(), harmonic_term, [0, 1, 10, 500]),
    (PowerSchedule(2.0, 3.0, 1.0), lambda n: 2 / (n + 3), [1, 77, 2000]),
    (constant(0.1), lambda n: mp.mpf(0.1), [1, 300]),
    (PowerSchedule(1.0, 1.0, 0.7), lambda n: (n + 1) ** mp.mpf(-0.7), [5, 4096, 4097, 10**4]),
    (PowerSchedule(0.5, 2.0, 2.0), lambda n: mp.mpf(0.5) / (n + 2) ** 2, [300, 5000]),
    ("exp(-t/10)", lambda n: mp.exp(-n / 10), [50, 5000]),
]


@pytest.mark.parametrize("schedule, term, horizons", GRONWALL_CASES)
@pytest.mark.parametrize("lam, eps, theta0", [(0.5, 0.1, 0.0), (30.0, 0.2, 2.0)])
def test_gronwall_vs_brute_force_product(schedule, term, horizons, lam, eps, theta0):
    for horizon in horizons:
        bound = gronwall(lam, eps, schedule, horizon, theta0)
        with mp.workdps(50):
            lam_ = mp.mpf(lam)
            log_norm = mp.log(max(theta0, eps)) + mp.fsum(
                mp.log1p(lam_ * term(mp.mpf(n))) for n in range(horizon))
        assert bound.log_norm == pytest.approx(float(log_norm), rel=1e-13, abs=1e-13)
        assert bound.log10_norm == pytest.approx(float(log_norm / mp.log(10)), rel=1e-13,
                                                 abs=1e-13)
        assert bound.horizon == horizon
        expected_norm = float(mp.exp(log_norm)) if log_norm < 709 else math.inf
        assert bound.norm == pytest.approx(expected_norm, rel=1e-12)


def test_gronwall_harmonic_asymptotic():
    # Π_{t<T}(1 + λ/(t+1)) ~ T^λ/Γ(1+λ): log = λ ln T − ln Γ(1+λ) + λ(λ+1)/(2T) + O(T^-2)
    lam, horizon = 30.0, 10**15
    bound = gronwall(lam, 1.0, "1/(t+1)", horizon)
    with mp.workdps(50):
        asymptotic = lam * mp.log(horizon) - mp.loggamma(1 + lam) + lam * (lam + 1) / (2 * horizon)
    assert bound.log_norm == pytest.approx(float(asymptotic), rel=1e-15)
    assert bound.norm == pytest.approx(float(mp.exp(asymptotic)), rel=1e-12)


def simulate_worst_case(term, lam: float, eps: float, theta0: float, horizon: int) -> float:
    """1-D: θ(t+1) = θ(t) + a(t)·λ·max(|θ(t)|, ε), the gradient aligned with θ and clipped."""
    theta = theta0
    for n in range(horizon):
        theta = theta + term(n) * lam * max(abs(theta), eps)
    return theta


SHARP_CASES = [
    (harmonic(), lambda n: 1.0 / (n + 1), 30.0, 0.1, 1.0, 1000),
    (PowerSchedule(1.0, 1.0, 0.7), lambda n: (n + 1.0) ** -0.7, 2.0, 0.5, 0.5, 5000),
    (constant(0.01), lambda n: 0.01, 1.0, 1.0, 3.0, 2000),
    ("exp(-t/100)", lambda n: math.exp(-n / 100), 3.0, 0.2, 0.2, 5000),
]


@pytest.mark.parametrize("schedule, term, lam, eps, theta0, horizon", SHARP_CASES)
def test_gronwall_is_sharp(schedule, term, lam, eps, theta0, horizon):
    # started at max(θ0, ε) the worst case attains the bound
    start = max(theta0, eps)
    theta = simulate_worst_case(term, lam, eps, start, horizon)
    bound = gronwall(lam, eps, schedule, horizon, theta0)
    assert abs(math.log(theta) - bound.log_norm) < 1e-10
    # from θ(0) = 0 the path stays below the bound, yet leaves 0: the ε is needed
    from_zero = simulate_worst_case(term, lam, eps, 0.0, horizon)
    zero_bound = gronwall(lam, eps, schedule, horizon, 0.0)
    assert 0.0 < from_zero
    assert math.log(from_zero) <= zero_bound.log_norm + 1e-10


# ----------------------------------------------------------------------------- inverses
SCHEDULES = [harmonic(), PowerSchedule(0.5, 10.0, 0.7), PowerSchedule(2.0, 1.0, 2.0),
             constant(0.01)]


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), lam=st.floats(0.01, 100.0), radius=st.floats(0.01, 1e4),
       log_delta=st.floats(-3000.0, -1e-6), schedule=st.sampled_from(SCHEDULES),
       horizon=st.one_of(st.none(), st.integers(1, 10**6)))
def test_inverse_round_trips_log_delta(name, lam, radius, log_delta, schedule, horizon):
    assume(not (horizon is None and schedule.gamma == math.inf))
    r = radius_for(name, lam, schedule, horizon, log_delta=log_delta)
    bound = probability_bound(name, lam, r, schedule, horizon)
    assert bound.log_probability == pytest.approx(log_delta, rel=1e-12, abs=1e-12)
    top = max_lam_for(name, radius, schedule, horizon, log_delta=log_delta)
    bound = probability_bound(name, top, radius, schedule, horizon)
    assert bound.log_probability == pytest.approx(log_delta, rel=1e-12, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(NAMES), lam=st.floats(0.01, 100.0),
       delta=st.floats(1e-300, 0.999999), horizon=st.integers(1, 10**4))
def test_inverse_round_trips_delta(name, lam, delta, horizon):
    r = radius_for(name, lam, "1/(t+1)", horizon, delta=delta)
    bound = probability_bound(name, lam, r, "1/(t+1)", horizon)
    assert bound.probability == pytest.approx(delta, rel=1e-11)
    top = max_lam_for(name, r, "1/(t+1)", horizon, delta=delta)
    assert top == pytest.approx(lam, rel=1e-13)


def test_inverses_paper_example_below_float64():
    with mp.workdps(50):
        log_delta = float(mp.log(2) - mp.mpf(2) ** 21 / (150 * mp.pi**2))  # −1415.88
    assert log_delta == pytest.approx(-1415.8797, abs=1e-4)
    assert radius_for("lemma1_paper", LAM, "1/(t+1)", log_delta=log_delta) == pytest.approx(
        M, rel=1e-13)
    assert max_lam_for("lemma1_paper", M, "1/(t+1)", log_delta=log_delta) == pytest.approx(
        LAM, rel=1e-13)
    # an independent radius: r = λ·√(γ_T·ln(2/δ)/κ) with γ_T by brute force
    with mp.workdps(50):
        gamma_t = mp_sum(lambda n: 1 / (n + 1) ** 2, 200)
        expected = LAM * mp.sqrt(gamma_t * (mp.log(2) - mp.log(0.05)) / KAPPA["pinelis"])
    assert radius_for("pinelis", LAM, "1/(t+1)", 200, delta=0.05) == pytest.approx(
        float(expected), rel=1e-14)


@settings(max_examples=50, deadline=None)
@given(name=st.sampled_from(NAMES), lam=st.floats(0.01, 100.0), r1=st.floats(0.01, 1e4),
       r2=st.floats(0.01, 1e4), horizon=st.one_of(st.none(), st.integers(1, 10**6)))
def test_bound_decreases_in_radius(name, lam, r1, r2, horizon):
    low, high = sorted([r1, r2])
    small = probability_bound(name, lam, low, harmonic(), horizon).log_probability
    large = probability_bound(name, lam, high, harmonic(), horizon).log_probability
    assert small >= large
    if high > low * (1 + 1e-9):
        assert small > large


@settings(max_examples=50, deadline=None)
@given(name=st.sampled_from(NAMES), l1=st.floats(0.01, 100.0), l2=st.floats(0.01, 100.0),
       radius=st.floats(0.01, 1e4), horizon=st.one_of(st.none(), st.integers(1, 10**6)))
def test_bound_increases_in_lam(name, l1, l2, radius, horizon):
    low, high = sorted([l1, l2])
    small = probability_bound(name, low, radius, harmonic(), horizon).log_probability
    large = probability_bound(name, high, radius, harmonic(), horizon).log_probability
    assert small <= large
    if high > low * (1 + 1e-9):
        assert small < large


@pytest.mark.parametrize("name, lam, radius, schedule, term", [
    ("lemma1_paper", 30.0, 20.0, "1/(t+1)", lambda n: 1 / (n + 1) ** 2),
    ("azuma", 1.0, 3.0, constant(0.1), lambda n: mp.mpf(0.1) ** 2),
    ("pinelis", 0.5, 2.0, PowerSchedule(1.0, 1.0, 0.7), lambda n: (n + 1) ** mp.mpf(-1.4)),
    ("azuma", 2.0, 5.0, "exp(-t/50)", lambda n: mp.exp(-n / 25)),
])
def test_vacuous_horizon_vs_brute_force(name, lam, radius, schedule, term):
    # first T with 2·exp(−κr²/(λ²γ_T)) ≥ 1, by adding the squares one at a time
    with mp.workdps(50):
        gamma_t, expected = mp.mpf(0), None
        for n in range(10**5):
            gamma_t += term(mp.mpf(n))
            if 2 * mp.exp(-KAPPA[name] * mp.mpf(radius) ** 2 / (lam**2 * gamma_t)) >= 1:
                expected = n + 1
                break
    horizon = vacuous_horizon(name, lam, radius, schedule)
    assert horizon == expected
    assert probability_bound(name, lam, radius, schedule, horizon).vacuous is True
    assert probability_bound(name, lam, radius, schedule, horizon - 1).vacuous is False


def test_vacuous_horizon_unreachable():
    # the paper's example: γ = π²/6 is far below 2M²/(λ² ln 2), so (15) is never vacuous
    assert vacuous_horizon("lemma1_paper", LAM, M, "1/(t+1)") is None
    # Σ e^{-2t} = 1/(1 − e^{-2}) ≈ 1.157: reaches r²/(2 ln 2) ≈ 0.721 at r = 1, not 2.885 at r = 2
    assert vacuous_horizon("azuma", 1.0, 1.0, "exp(-t)") == 1
    assert vacuous_horizon("azuma", 1.0, 2.0, "exp(-t)") is None


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("lam", [0.0, -1.0, math.nan, math.inf, "abc", None])
def test_bad_lam(lam):
    with pytest.raises(ValueError, match="lam"):
        probability_bound("azuma", lam, 1.0, harmonic())
    with pytest.raises(ValueError, match="lam"):
        radius_for("azuma", lam, harmonic(), delta=0.1)
    with pytest.raises(ValueError, match="lam"):
        deterministic_radius(lam, harmonic(), 10)
    with pytest.raises(ValueError, match="lam"):
        deterministic_horizon(lam, 1.0, harmonic())
    with pytest.raises(ValueError, match="lam"):
        vacuous_horizon("azuma", lam, 1.0, harmonic())
    with pytest.raises(ValueError, match="lam"):
        claim2_constants(lam, 1.0)
    with pytest.raises(ValueError, match="lam"):
        gronwall(lam, 1.0, harmonic(), 10)


@pytest.mark.parametrize("radius", [0.0, -2.0, math.nan, math.inf])
def test_bad_radius(radius):
    with pytest.raises(ValueError, match="radius"):
        probability_bound("pinelis", 1.0, radius, harmonic())
    with pytest.raises(ValueError, match="radius"):
        max_lam_for("pinelis", radius, harmonic(), delta=0.1)
    with pytest.raises(ValueError, match="radius"):
        deterministic_horizon(1.0, radius, harmonic())
    with pytest.raises(ValueError, match="radius"):
        vacuous_horizon("pinelis", 1.0, radius, harmonic())


@pytest.mark.parametrize("kwargs, word", [
    ({"delta": 0.0}, "delta"), ({"delta": 1.0}, "delta"), ({"delta": 1.5}, "delta"),
    ({"delta": -0.1}, "delta"), ({"delta": math.nan}, "delta"),
    ({}, "delta"), ({"delta": 0.1, "log_delta": -2.0}, "delta"),
    ({"log_delta": 0.0}, "log_delta"), ({"log_delta": 1.0}, "log_delta"),
    ({"log_delta": -math.inf}, "log_delta"), ({"log_delta": math.nan}, "log_delta"),
])
def test_bad_delta(kwargs, word):
    with pytest.raises(ValueError, match=word):
        radius_for("azuma", 1.0, harmonic(), **kwargs)
    with pytest.raises(ValueError, match=word):
        max_lam_for("azuma", 1.0, harmonic(), **kwargs)


def test_unknown_bound_name():
    for call in [lambda: probability_bound("hoeffding", 1.0, 1.0, harmonic()),
                 lambda: radius_for("hoeffding", 1.0, harmonic(), delta=0.1),
                 lambda: max_lam_for("hoeffding", 1.0, harmonic(), delta=0.1),
                 lambda: vacuous_horizon("hoeffding", 1.0, 1.0, harmonic())]:
        with pytest.raises(ValueError, match="hoeffding"):
            call()


@pytest.mark.parametrize("eps", [0.0, -1.0, math.nan])
def test_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        claim2_constants(1.0, eps)
    with pytest.raises(ValueError, match="eps"):
        gronwall(1.0, eps, harmonic(), 10)


@pytest.mark.parametrize("theta0", [-1.0, math.nan, math.inf])
def test_bad_theta0(theta0):
    with pytest.raises(ValueError, match="theta0_norm"):
        gronwall(1.0, 1.0, harmonic(), 10, theta0)


def test_bad_schedule_propagates():
    with pytest.raises(ValueError, match="did you mean"):
        lemma1_paper(LAM, M, "1/t")
    with pytest.raises(ValueError, match="positive"):
        azuma(1.0, 1.0, "1-t/10", horizon=11)
    assert azuma(1.0, 1.0, "1-t/10", horizon=10).sum_of_squares == pytest.approx(
        float(mp_sum(lambda n: (1 - n / 10) ** 2, 10)), rel=1e-14)
    assert parse_schedule("1-t/10", horizon=10).partial_sum(10, 2) == pytest.approx(3.85)


# ----------------------------------------------------------------------------- exact to the step
def exact_first_horizon(lam: float, radius: float, term, limit: int = 10**5) -> int | None:
    """The first T with λ·Σ_{t<T} a(t) ≥ M in exact rational arithmetic (λ, M: their binary
    values; a(t) a Fraction)."""
    level, total = Fraction(radius) / Fraction(lam), Fraction(0)
    for n in range(limit):
        total += term(n)
        if total >= level:
            return n + 1
    return None


@pytest.mark.parametrize("lam, radius, text, term", [
    (1.0, 3.0, "0.3", lambda n: Fraction(3, 10)),  # Σ_{t<10} = 3 exactly; float 0.3 gives 11
    (10.0, 4.5, "0.3/(t+1)", lambda n: Fraction(3, 10) / (n + 1)),  # 0.3 + 0.15 = 0.45
    (2.0, 1.1, "0.1/(1+t/10)", lambda n: Fraction(1, 1) / (n + 10)),
    (1.0, 0.7, "0.7/(t+0.7)", lambda n: Fraction(7, 10) / (n + Fraction(7, 10))),
    (3.0, 2.5, "1/(10*t+3)", lambda n: Fraction(1, 10 * n + 3)),
    (1.0, 1.3, "0.1+0*t", lambda n: Fraction(1, 10)),
])
def test_deterministic_horizon_exact_rational(lam, radius, text, term):
    expected = exact_first_horizon(lam, radius, term)
    assert deterministic_horizon(lam, radius, text) == expected


@pytest.mark.parametrize("horizon", [1, 50, 777, 3000])
def test_power_schedule_with_decimal_exponent_exact_to_the_step(horizon):
    # a(t) = 0.3/(t+0.7)^0.6 with c = 3/10, t0 = 7/10, p = 3/5 exactly: the level Σ_{t<T*} a(t)
    # by direct summation at 60 digits is reached at T* (a tie), and a level 10^-25 above it
    # only at T* + 1. With c, t0, p rounded to float64 the sums move by ~1e-16 and both fail.
    schedule = parse_schedule("0.3/(t+0.7)**0.6")
    with mp.workdps(60):
        c, t0, p = mp.mpf(3) / 10, mp.mpf(7) / 10, mp.mpf(3) / 5
        level = mp.fsum(c / (n + t0) ** p for n in range(horizon))
        assert schedule.horizon_for_sum(level) == horizon
        assert schedule.horizon_for_sum(level * (1 + mp.mpf("1e-25"))) == horizon + 1


def test_power_schedule_exact_far_out_vs_hurwitz_zeta():
    # T* = 10^12 + 7: Σ_{t<T} (3/10)(t + 7/10)^(−3/5) = (3/10)(ζ(3/5, 7/10) − ζ(3/5, 7/10 + T))
    schedule = parse_schedule("0.3/(t+0.7)**0.6")
    target = 10**12 + 7
    with mp.workdps(60):
        c, t0, s = mp.mpf(3) / 10, mp.mpf(7) / 10, mp.mpf(3) / 5

        def total(horizon):
            return c * (mp.zeta(s, t0) - mp.zeta(s, t0 + horizon))

        step = c / (target + t0) ** s  # a(T*): the sum's increment from T* to T* + 1
        assert schedule.horizon_for_sum(total(target)) == target
        assert schedule.horizon_for_sum(total(target) - step / 2) == target
        assert schedule.horizon_for_sum(total(target) + step / 2) == target + 1


def test_text_power_law_keeps_exact_parameters():
    schedule = parse_schedule("0.3/(t+0.7)**0.6")
    assert (schedule.exact_c, schedule.exact_t0, schedule.exact_p) == (
        sp.Rational(3, 10), sp.Rational(7, 10), sp.Rational(3, 5))


# ----------------------------------------------------------------------------- the command line
KINDS = {  # schedule, horizon, Σ_{t<T} a(t) computed here
    "constant": ("0.1", 1000, 100.0),
    "step decay": ("0.1*0.5**floor(t/100)", 1000, 20 * (1 - 2**-10)),
    "cosine": ("0.5*0.1*(1+cos(pi*t/T))", 1000, 0.05 * 1001),
    "warmup": ("Min(1,(t+1)/100)*0.1/sqrt(t+1)", 1000,
               math.fsum(min(1, (k + 1) / 100) * 0.1 / math.sqrt(k + 1) for k in range(1000))),
    "linear decay": ("Max(0.01, 0.1*(1-t/T))", 1000,
                     float(sum(max(Fraction(1, 100), Fraction(1, 10) * (1 - Fraction(k, 1000)))
                               for k in range(1000)))),
    "exponential": ("0.1*0.99**t", 1000, 10 * (1 - 0.99**1000)),
    "piecewise": ("Piecewise((0.1, t < 100), (0.01, True))", 1000, 19.0),
    "harmonic": ("1/(t+1)", 1000, math.fsum(1 / (k + 1) for k in range(1000))),
}


@pytest.mark.parametrize("kind", KINDS)
def test_bound_command_for_each_kind(kind, capsys):
    text, horizon, sum_a = KINDS[kind]
    assert theory_main(["bound", "--lam", "1", "--radius", "10", "--schedule", text,
                        "--horizon", str(horizon), "--eps", "0.1", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["schedule"]["sum_a"] == pytest.approx(sum_a, rel=1e-13)
    assert table["bounds"]["deterministic"]["radius"] == pytest.approx(sum_a, rel=1e-13)
    expected = lemma1_paper(1.0, 10.0, text, horizon=horizon).exponent
    assert table["bounds"]["lemma1_paper"]["exponent"] == expected
    first = table["bounds"]["deterministic"]["horizon_for_radius"]
    values = parse_schedule(text, horizon=horizon)(np.arange(max(horizon, first or 0)))
    if first is not None:
        assert math.fsum(values[:first]) >= 10 > math.fsum(values[:first - 1])
    assert theory_main(["bound", "--lam", "1", "--radius", "10", "--schedule", text,
                        "--horizon", str(horizon)]) == 0
    assert "Σ_{t<T} a(t)" in capsys.readouterr().out


@pytest.mark.parametrize("text, word", [
    ("__import__('os').system('true')", "not allowed"),
    ("sqrt(-1)", "complex"),
    ("(-1)**(t/2)", "complex"),
    ("cos(pi*t/T)+1", "give a horizon"),
    ("0.1*0.5**floor(t/100)", "give a horizon"),
    ("lambda: 1", "not allowed"),
    ("1/t", "did you mean"),
])
def test_bound_command_bad_schedule_is_one_line_and_exit_2(text, word, capsys):
    assert theory_main(["bound", "--lam", "1", "--radius", "10", "--schedule", text]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "argument --schedule" in lines[0] and word in lines[0], lines
    assert captured.out == ""


def test_bound_table_for_values_uses_their_horizon():
    table = bound_table(1.0, 0.3, np.array([0.1, 0.2, 0.3]))
    assert table["input"]["horizon"] == 3
    assert table["schedule"]["sum_a"] == pytest.approx(0.6, rel=1e-15)
    assert table["schedule"]["gamma"] is None
    assert table["bounds"]["deterministic"]["horizon_for_radius"] == 2  # 0.1 + 0.2 ≥ 0.3
    assert table["bounds"]["pinelis"]["sum_of_squares"] == pytest.approx(0.14, rel=1e-15)
