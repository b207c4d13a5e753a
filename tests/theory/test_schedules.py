"""Tests for theory.schedules: step-size schedules a(t), t = 0, 1, 2, ... and their sums.

Every expected value is computed independently here: brute-force sums (mpmath ``mp.fsum`` over
40-digit terms, or ``math.fsum`` over float64 terms), telescoping series with known partial sums,
mpmath special functions (harmonic numbers, Hurwitz zeta via ``nsum``, ``sumem``) and sympy,
plus the numbers published with the paper (Ramaswamy, ICPRAM 2023).
"""

import json
import math
import re
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from theory import schedules as S
from theory.schedules import (
    ExpressionSchedule,
    PowerSchedule,
    Schedule,
    as_schedule,
    constant,
    harmonic,
    parse_schedule,
)

T_SYM = sp.Symbol("t")  # a plain symbol for the test's own sympy computations
PI2_OVER_6 = 1.6449340668  # π²/6, first ten digits


# ----------------------------------------------------------------------------- helpers
def mp_power_sum(c: float, t0: float, p: float, horizon: int, power: float = 1,
                 dps: int = 50) -> mp.mpf:
    """Σ_{t<T} (c/(t+t0)^p)^power by brute force at ``dps`` digits (float parameters exact)."""
    with mp.workdps(dps):
        c_, t0_, p_, k_ = mp.mpf(c), mp.mpf(t0), mp.mpf(p), mp.mpf(power)
        return mp.fsum((c_ / (n + t0_) ** p_) ** k_ for n in range(horizon))


def mp_expr_sum(text: str, horizon: int, dps: int = 50) -> mp.mpf:
    """Σ_{t<T} f(t) by brute force in mpmath, f parsed by sympy from ``text`` independently."""
    f = sp.lambdify(T_SYM, sp.sympify(text, locals={"t": T_SYM}), "mpmath")
    with mp.workdps(dps):
        return mp.fsum(f(mp.mpf(n)) for n in range(horizon))


def brute_horizon(term, level: float, limit: int = 10**6, dps: int = 50) -> int | None:
    """Smallest T with Σ_{t<T} term(t) ≥ level, by adding terms one at a time."""
    with mp.workdps(dps):
        level = mp.mpf(level)
        if level <= 0:
            return 0
        total = mp.mpf(0)
        for n in range(limit):
            total += term(mp.mpf(n))
            if total >= level:
                return n + 1
    return None


def rel_err(value, exact) -> float:
    return float(abs(mp.mpf(value) - mp.mpf(exact)) / abs(mp.mpf(exact)))


# ----------------------------------------------------------------------------- power family sums
POWER_CASES = [
    (1.0, 1.0, 0.0),
    (2.5, 0.5, 0.5),
    (0.3, 7.0, 0.7),
    (1.0, 1.0, 1.0),
    (5.0, 100.0, 1.0),
    (1.7, 0.25, 2.0),
    (0.05, 3.0, 1.3),
    (3.0, 2.0, -0.5),
]


@pytest.mark.parametrize("c, t0, p", POWER_CASES)
@pytest.mark.parametrize("horizon", [0, 1, 2, 17, 500])
@pytest.mark.parametrize("power", [1, 2])
def test_power_partial_sums_match_brute_force(c, t0, p, horizon, power):
    schedule = PowerSchedule(c, t0, p)
    exact = mp_power_sum(c, t0, p, horizon, power)
    estimate = schedule.partial_sum_estimate(horizon, power)
    if horizon == 0:
        assert estimate.value == 0 and schedule.partial_sum(0, power) == 0.0
        return
    assert rel_err(estimate.value, exact) < 1e-25
    assert schedule.partial_sum(horizon, power) == pytest.approx(float(exact), rel=1e-13)


@settings(max_examples=60, deadline=None)
@given(
    c=st.floats(0.01, 100.0),
    t0=st.floats(0.05, 1000.0),
    # |p| < 1e-6 (but p ≠ 0) is left to test_power_sum_tiny_negative_exponent
    p=st.one_of(st.just(0.0), st.floats(-1.0, 3.0).filter(lambda x: abs(x) >= 1e-6)),
    horizon=st.integers(1, 300),
    power=st.sampled_from([1, 2]),
)
def test_power_partial_sums_property(c, t0, p, horizon, power):
    schedule = PowerSchedule(c, t0, p)
    exact = mp_power_sum(c, t0, p, horizon, power)
    assert schedule.partial_sum(horizon, power) == pytest.approx(float(exact), rel=1e-13)


@pytest.mark.parametrize("p", [1e-10, -1e-10, 1e-30, -1e-20])
def test_power_sum_small_exponent(p):
    exact = mp_power_sum(1.0, 1.0, p, 10)
    assert rel_err(PowerSchedule(1.0, 1.0, p).partial_sum_estimate(10).value, exact) < 1e-30


@pytest.mark.parametrize("p", [-1e-30, -1e-42, -1e-60, -5e-324])
def test_power_sum_tiny_negative_exponent(p):
    # Σ_{t<10} (t+1)^{-p} = 10 + O(|p|): the closed form must agree with brute force
    exact = mp_power_sum(1.0, 1.0, p, 10)
    estimate = PowerSchedule(1.0, 1.0, p).partial_sum_estimate(10)
    assert abs(estimate.value - exact) <= estimate.error + mp.mpf("1e-30") * exact


def test_power_values_vectorized():
    schedule = PowerSchedule(2.5, 0.5, 0.7)
    steps = np.array([[0, 1, 2], [10, 1000, 10**9]])
    values = schedule(steps)
    assert values.shape == steps.shape
    for step, value in zip(steps.ravel(), values.ravel(), strict=True):
        assert value == pytest.approx(2.5 * (int(step) + 0.5) ** -0.7, rel=1e-15)


def test_gamma_of_harmonic_is_pi_squared_over_six():
    schedule = harmonic()
    exact = sp.pi**2 / 6
    assert schedule.gamma == pytest.approx(float(exact.evalf(30)), rel=1e-15)
    assert abs(schedule.gamma - PI2_OVER_6) < 1e-10
    with mp.workdps(50):
        assert abs(schedule.partial_sum_estimate(None, 2).value - mp.pi**2 / 6) < mp.mpf("1e-35")


def test_gamma_of_shifted_harmonic_is_trigamma():
    # 25/(t+100)^... : γ = 25·ψ'(100) = 25·(π²/6 − Σ_{k=1}^{99} 1/k²), exact rational part.
    schedule = PowerSchedule(5.0, 100.0, 1.0)
    rational = sum(Fraction(1, k * k) for k in range(1, 100))
    with mp.workdps(50):
        exact = 25 * (mp.pi**2 / 6 - mp.mpf(rational.numerator) / rational.denominator)
        assert rel_err(schedule.partial_sum_estimate(None, 2).value, exact) < 1e-30


@pytest.mark.parametrize("c, t0, p", [(1.0, 1.0, 0.7), (0.3, 2.5, 0.9), (2.0, 0.5, 2.0)])
def test_gamma_convergent_power_vs_sumem(c, t0, p):
    # 100 exact terms plus mpmath's own Euler–Maclaurin tail (sumem) for the rest
    with mp.workdps(30):
        def f(n):
            return (mp.mpf(c) / (n + mp.mpf(t0)) ** mp.mpf(p)) ** 2

        exact = mp.fsum(f(mp.mpf(n)) for n in range(100)) + mp.sumem(f, [100, mp.inf])
    assert PowerSchedule(c, t0, p).gamma == pytest.approx(float(exact), rel=1e-13)


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, -1.0])
def test_gamma_infinite_for_p_at_most_half(p):
    schedule = PowerSchedule(1.3, 2.0, p)
    assert schedule.gamma == math.inf
    assert schedule.partial_sum(None, 1) == math.inf


@settings(max_examples=30, deadline=None)
@given(p=st.floats(-2.0, 0.5))
def test_gamma_infinite_property(p):
    assert PowerSchedule(1.0, 1.0, p).gamma == math.inf


def test_harmonic_at_1e15_is_exact():
    schedule = parse_schedule("1/(t+1)")
    horizon = 10**15
    estimate = schedule.partial_sum_estimate(horizon)
    with mp.workdps(50):
        big = mp.mpf(horizon)
        asymptotic = mp.log(big) + mp.euler + 1 / (2 * big)
        # the next term of H_T is −1/(12T²) ≈ 8e-32: without it the two differ by that much
        assert abs(estimate.value - asymptotic) < mp.mpf("1e-30")
        assert abs(estimate.value - (asymptotic - 1 / (12 * big**2))) < mp.mpf("1e-36")
        # a single step is resolved (float64 cannot): Σ_{t<T+1} − Σ_{t<T} = 1/(T+1)
        step = schedule.partial_sum_estimate(horizon + 1).value - estimate.value
        assert rel_err(step, 1 / (big + 1)) < 1e-20
        assert rel_err(estimate.value, mp.harmonic(horizon)) < 1e-38


def test_expression_at_1e15_first_call():
    text = "1/((t+1)*log(t+2))"
    schedule = parse_schedule(text)
    assert isinstance(schedule, ExpressionSchedule)
    S._numeric.cache_clear()  # the first call: no cached derivatives or head sums
    estimate = schedule.partial_sum_estimate(10**15)
    # independent value: 1000 exact terms plus mpmath's own Euler–Maclaurin (sumem) for the rest
    with mp.workdps(40):
        def f(x):
            return 1 / ((x + 1) * mp.log(x + 2))

        head = mp.fsum(f(mp.mpf(n)) for n in range(1000))
        independent = head + mp.sumem(f, [1000, 10**15 - 1])
        assert abs(estimate.value - independent) <= estimate.error + mp.mpf("1e-30")
    assert estimate.error < mp.mpf("1e-20") * estimate.value


# ----------------------------------------------------------------------------- parse_schedule
@pytest.mark.parametrize(
    "text, c, t0, p",
    [
        ("1/(t+1)", 1.0, 1.0, 1.0),
        ("0.05/(1+t/100)", 5.0, 100.0, 1.0),
        ("(t+10)**-0.7", 1.0, 10.0, 0.7),
        ("1/(2*t+2)", 0.5, 1.0, 1.0),
        ("3", 3.0, None, 0.0),
        ("2^(-1)*(t+4)^(-2)", 0.5, 4.0, 2.0),
        ("1/sqrt(t+1)", 1.0, 1.0, 0.5),
        ("7/(3*t+6)**0.6", 7 / 3**0.6, 2.0, 0.6),
    ],
)
def test_parse_recognises_power_laws(text, c, t0, p):
    schedule = parse_schedule(text)
    assert isinstance(schedule, PowerSchedule)
    assert schedule.c == pytest.approx(c, rel=1e-12)
    assert schedule.p == pytest.approx(p, rel=1e-12, abs=1e-15)
    if t0 is not None:
        assert schedule.t0 == pytest.approx(t0, rel=1e-12)
    # values agree with the text evaluated by sympy on its own
    expression = sp.sympify(text.replace("^", "**"), locals={"t": T_SYM})
    steps = np.array([0, 1, 2, 5, 99, 12345, 10**8])
    expected = [float(expression.subs(T_SYM, int(k)).evalf(30)) for k in steps]
    np.testing.assert_allclose(schedule(steps), expected, rtol=1e-13, atol=0)


@pytest.mark.parametrize(
    "text",
    ["exp(-t/1000)", "1/((t+1)*log(t+2))", "(2+sin(t))/(t+1)", "1/(t+1)+1/(t+2)",
     "1/((t+1)*(t+2))", "1-t/10"],
)
def test_parse_keeps_other_expressions(text):
    schedule = parse_schedule(text, horizon=10 if text == "1-t/10" else None)
    assert isinstance(schedule, ExpressionSchedule)
    expression = sp.sympify(text, locals={"t": T_SYM})
    steps = np.array([[0, 1, 2], [7, 9, 3]]) if text == "1-t/10" else \
        np.array([[0, 1, 2], [10, 4096, 10**6]])
    values = schedule(steps)
    assert values.shape == steps.shape and values.dtype == np.float64
    for step, value in zip(steps.ravel(), values.ravel(), strict=True):
        assert value == pytest.approx(float(expression.subs(T_SYM, int(step)).evalf(30)),
                                      rel=1e-13)


def test_constant_and_as_schedule():
    three = parse_schedule("3")
    assert np.array_equal(three(np.arange(5)), np.full(5, 3.0))
    assert three.partial_sum(7) == 21.0 and three.partial_sum(7, 2) == 63.0
    assert three.gamma == math.inf
    assert as_schedule(0.25).partial_sum(8) == 2.0
    assert constant(0.5).partial_sum(10**15) == 5e14
    assert isinstance(as_schedule("1/(t+1)"), PowerSchedule)
    with pytest.raises(ValueError):
        as_schedule(True)
    with pytest.raises(ValueError, match="positive"):
        as_schedule([1, -2])
    with pytest.raises(ValueError):
        as_schedule(object())


# ----------------------------------------------------------------------------- expression sums
EXPRESSIONS = ["1/((t+1)*log(t+2))", "exp(-t/1000)", "(2+sin(t))/(t+1)"]


@pytest.mark.parametrize("text", EXPRESSIONS)
@pytest.mark.parametrize("horizon", [1, 10, 4096])
def test_expression_head_is_exact(text, horizon):
    estimate = parse_schedule(text).partial_sum_estimate(horizon)
    exact = mp_expr_sum(text, horizon)
    assert estimate.error == 0
    assert rel_err(estimate.value, exact) < 1e-35


def test_expression_squares_head_is_exact():
    estimate = parse_schedule("1/((t+1)*log(t+2))").partial_sum_estimate(1000, 2)
    with mp.workdps(50):
        exact = mp.fsum(1 / ((n + 1) * mp.log(n + 2)) ** 2 for n in range(1000))
    assert rel_err(estimate.value, exact) < 1e-35


@pytest.mark.parametrize("text", ["1/((t+1)*log(t+2))", "exp(-t/1000)"])
def test_euler_maclaurin_1e4_vs_mp_brute_force(text):
    estimate = parse_schedule(text).partial_sum_estimate(10**4)
    assert "Euler" in estimate.method
    exact = mp_expr_sum(text, 10**4)
    assert abs(estimate.value - exact) <= estimate.error + mp.mpf("1e-35") * exact
    assert estimate.error < mp.mpf("1e-20") * exact


def test_euler_maclaurin_1e5_vs_mp_brute_force():
    text = "1/((t+1)*log(t+2))"
    estimate = parse_schedule(text).partial_sum_estimate(10**5)
    exact = mp_expr_sum(text, 10**5, dps=40)
    assert abs(estimate.value - exact) <= estimate.error + mp.mpf("1e-35") * exact
    assert estimate.error < mp.mpf("1e-20") * exact


@pytest.mark.parametrize("horizon", [10**5, 10**6])
def test_euler_maclaurin_vs_float_brute_force(horizon):
    estimate = parse_schedule("1/((t+1)*log(t+2))").partial_sum_estimate(horizon)
    steps = np.arange(horizon, dtype=np.float64)
    terms = 1.0 / ((steps + 1.0) * np.log(steps + 2.0))
    brute = math.fsum(terms)
    # each float64 term is within 4 ulp, so the exactly rounded sum is within 4ε·Σ + ½ulp
    slack = 4 * np.finfo(np.float64).eps * brute
    assert abs(float(estimate.value) - brute) <= float(estimate.error) + slack
    assert estimate.error < mp.mpf("1e-20") * estimate.value


# a(t) with partial sums known in closed form (telescoping): Σ_{t<T} a(t) = closed(T)
TELESCOPING = [
    ("1/((t+1)*(t+2))", lambda T: 1 - 1 / (T + 1)),
    ("log(1+1/(t+1))", lambda T: mp.log(T + 1)),
    ("atan(1/(t**2+t+1))", lambda T: mp.atan(T)),
]


@pytest.mark.parametrize("text, closed", TELESCOPING)
@pytest.mark.parametrize("horizon", [10**4, 10**5, 10**6, 10**15])
def test_euler_maclaurin_vs_telescoping_closed_form(text, closed, horizon):
    schedule = parse_schedule(text)
    assert isinstance(schedule, ExpressionSchedule)
    estimate = schedule.partial_sum_estimate(horizon)
    with mp.workdps(50):
        exact = closed(mp.mpf(horizon))
        assert abs(estimate.value - exact) <= estimate.error + mp.mpf("1e-36")
    assert estimate.error < mp.mpf("1e-25") * exact


def test_convergent_expression_infinite_sums():
    with mp.workdps(50):
        ratio = mp.exp(-mp.mpf(1) / 1000)
        total = parse_schedule("exp(-t/1000)").partial_sum_estimate(None)
        assert abs(total.value - 1 / (1 - ratio)) <= total.error + mp.mpf("1e-30")
        squares = parse_schedule("exp(-t/1000)").partial_sum_estimate(None, 2)
        assert abs(squares.value - 1 / (1 - ratio**2)) <= squares.error + mp.mpf("1e-30")
        one = parse_schedule("1/((t+1)*(t+2))").partial_sum_estimate(None)
        assert abs(one.value - 1) <= one.error + mp.mpf("1e-35")
    assert parse_schedule("1/((t+1)*log(t+2))").partial_sum(None) == math.inf


def test_oscillating_falls_back_to_direct_summation():
    text = "(2+sin(t))/(t+1)"
    schedule = parse_schedule(text)
    estimate = schedule.partial_sum_estimate(10**5)
    assert "direct" in estimate.method
    exact = mp_expr_sum(text, 10**5, dps=40)
    assert abs(estimate.value - exact) <= estimate.error
    assert estimate.error < mp.mpf("1e-8")

    horizon = 10**6
    estimate = schedule.partial_sum_estimate(horizon)
    assert "direct" in estimate.method
    brute = math.fsum((2.0 + math.sin(n)) / (n + 1.0) for n in range(horizon))
    assert abs(float(estimate.value) - brute) <= float(estimate.error)


def test_oscillating_beyond_direct_limit_states_honest_error():
    horizon = 2 * 10**7
    estimate = parse_schedule("(2+sin(t))/(t+1)").partial_sum_estimate(horizon)
    parts = []
    for begin in range(0, horizon, 10**6):
        steps = np.arange(begin, begin + 10**6, dtype=np.float64)
        parts.append(math.fsum((2.0 + np.sin(steps)) / (steps + 1.0)))
    brute = math.fsum(parts)
    assert abs(float(estimate.value) - brute) <= float(estimate.error)


# ----------------------------------------------------------------------------- rejection
def test_one_over_t_suggests_shift():
    with pytest.raises(ValueError, match="did you mean") as caught:
        parse_schedule("1/t")
    suggestion = re.search(r"did you mean (.+)\?", str(caught.value)).group(1)
    suggested = sp.sympify(suggestion, locals={"t": T_SYM})
    assert sp.simplify(suggested - 1 / (T_SYM + 1)) == 0
    assert isinstance(parse_schedule(suggestion), PowerSchedule)


def test_positivity_on_horizon():
    with pytest.raises(ValueError, match="positive"):
        parse_schedule("1-t/10")
    with pytest.raises(ValueError, match="positive"):
        parse_schedule("1-t/10", horizon=11)
    schedule = parse_schedule("1-t/10", horizon=10)
    assert schedule.partial_sum(10) == pytest.approx(5.5, rel=1e-15)
    with pytest.raises(ValueError, match="positive"):
        parse_schedule("0")
    with pytest.raises(ValueError, match="positive"):
        parse_schedule("-1/(t+1)")


@pytest.mark.parametrize("text, word", [("1/(x+1)", "unknown symbol"), ("1/(", "cannot parse"),
                                        ("", "expected"), ("   ", "expected")])
def test_bad_text_rejected(text, word):
    with pytest.raises(ValueError, match=word):
        parse_schedule(text)


@pytest.mark.parametrize("kwargs, word", [
    ({"c": 0.0}, "c must"), ({"c": -1.0}, "c must"), ({"c": math.inf}, "c must"),
    ({"t0": 0.0}, "t0 must"), ({"t0": -2.0}, "t0 must"), ({"p": math.nan}, "p must"),
])
def test_power_schedule_rejects_bad_parameters(kwargs, word):
    with pytest.raises(ValueError, match=word):
        PowerSchedule(**kwargs)


@pytest.mark.parametrize("horizon", [-1, 2.5, "10", True])
def test_bad_horizon_rejected(horizon):
    with pytest.raises(ValueError, match="horizon"):
        harmonic().partial_sum(horizon)


def test_schedule_undefined_at_later_step_rejected():
    # a(2) = 1/0: not a positive step size; parse_schedule must reject it like a(0) undefined
    with pytest.raises(ValueError, match=r"a\(2\) = inf"):
        parse_schedule("1/(t-2)**2")


def test_no_hint_when_the_shifted_schedule_is_not_positive_either():
    # log(t) is undefined at 0, and log(t+1) vanishes there: suggesting it would mislead
    with pytest.raises(ValueError, match="undefined") as error:
        parse_schedule("log(t)")
    assert "did you mean" not in str(error.value)


# ----------------------------------------------------------------------------- (A2)
@settings(max_examples=40, deadline=None)
@given(p=st.floats(-3.0, 4.0), c=st.floats(0.01, 10.0), t0=st.floats(0.1, 100.0))
def test_a2_power_rule(p, c, t0):
    verdict = PowerSchedule(c, t0, p).a2()
    assert verdict.holds is (0.5 < p <= 1)
    assert verdict.sum_diverges is (p <= 1)
    assert verdict.squares_converge is (p > 0.5)


@pytest.mark.parametrize("p, holds", [(0.5, False), (math.nextafter(0.5, 1), True),
                                      (1.0, True), (math.nextafter(1.0, 2), False)])
def test_a2_power_rule_boundaries(p, holds):
    assert PowerSchedule(1.0, 1.0, p).a2().holds is holds


@pytest.mark.parametrize("p", [sp.Rational(1, 3), sp.Rational(1, 2), sp.Rational(7, 10),
                               sp.Integer(1), sp.Rational(3, 2)])
def test_a2_power_rule_agrees_with_sympy(p):
    term = (T_SYM + 1) ** (-p)
    diverges = not sp.Sum(term, (T_SYM, 0, sp.oo)).is_convergent()
    squares = bool(sp.Sum(term**2, (T_SYM, 0, sp.oo)).is_convergent())
    verdict = PowerSchedule(1.0, 1.0, float(p)).a2()
    assert (verdict.sum_diverges, verdict.squares_converge) == (diverges, squares)


@pytest.mark.parametrize("text, holds, diverges, squares", [
    ("1/((t+1)*log(t+2))", True, True, True),
    ("exp(-t/1000)", False, False, True),
    ("1/sqrt(t+1)", False, True, False),
])
def test_a2_expression_verdicts(text, holds, diverges, squares):
    expression = sp.sympify(text, locals={"t": S.t})
    verdict = ExpressionSchedule(expression, text).a2()
    assert (verdict.holds, verdict.sum_diverges, verdict.squares_converge) == \
        (holds, diverges, squares)
    assert parse_schedule(text).a2().holds is holds


# ----------------------------------------------------------------------------- horizon_for_sum
def _power_term(c, t0, p):
    return lambda n: mp.mpf(c) / (n + mp.mpf(t0)) ** mp.mpf(p)


@pytest.mark.parametrize("schedule, term, level", [
    (harmonic(), _power_term(1, 1, 1), 1.0),
    (harmonic(), _power_term(1, 1, 1), 2.3),
    (harmonic(), _power_term(1, 1, 1), 10.0),
    (PowerSchedule(0.3, 7.0, 0.7), _power_term(0.3, 7.0, 0.7), 12.345),
    (PowerSchedule(2.0, 0.5, 2.0), _power_term(2.0, 0.5, 2.0), 8.5),
    (constant(0.25), _power_term(0.25, 1, 0), 1.0),
    (constant(0.3), _power_term(0.3, 1, 0), 7.7),
])
def test_horizon_for_sum_power_vs_loop(schedule, term, level):
    assert schedule.horizon_for_sum(level) == brute_horizon(term, level)


def test_horizon_for_sum_squares_vs_loop():
    schedule = PowerSchedule(1.0, 1.0, 0.7)
    assert schedule.horizon_for_sum(2.0, power=2) == brute_horizon(
        lambda n: (n + 1) ** mp.mpf(-1.4), 2.0)


@settings(max_examples=25, deadline=None)
@given(level=st.floats(0.01, 6.0), c=st.floats(0.5, 3.0), t0=st.floats(0.5, 20.0),
       p=st.sampled_from([0.0, 0.5, 0.7, 1.0]))
def test_horizon_for_sum_property(level, c, t0, p):
    schedule = PowerSchedule(c, t0, p)
    term = _power_term(c, t0, p)
    expected = brute_horizon(term, level, limit=20_000)
    assume(expected is not None)
    assert schedule.horizon_for_sum(level) == expected


@pytest.mark.parametrize("text, level", [
    ("1/((t+1)*log(t+2))", 2.5),
    ("1/((t+1)*log(t+2))", 4.0),  # beyond the exact head: Euler–Maclaurin in the search
    ("exp(-t/1000)", 999.0),
])
def test_horizon_for_sum_expression_vs_loop(text, level):
    f = sp.lambdify(T_SYM, sp.sympify(text, locals={"t": T_SYM}), "mpmath")
    expected = brute_horizon(f, level)
    assert parse_schedule(text).horizon_for_sum(level) == expected


def test_horizon_for_sum_exact_tie():
    # Σ_{t<2} 1/(t+1) = 1 + 1/2 = 1.5 exactly: reached at T = 2, not 3
    assert harmonic().horizon_for_sum(1.5) == 2
    assert constant(0.5).horizon_for_sum(3.0) == 6


def test_horizon_for_sum_unreachable():
    # Σ exp(-t) = 1/(1 − 1/e) ≈ 1.582, Σ 1/(t+1)² = π²/6 ≈ 1.645
    assert parse_schedule("exp(-t)").horizon_for_sum(1.6) is None
    assert PowerSchedule(1.0, 1.0, 2.0).horizon_for_sum(1.65) is None
    assert harmonic().horizon_for_sum(1.0, power=2) == 1
    assert harmonic().horizon_for_sum(1.7, power=2) is None
    assert parse_schedule("exp(-t)").horizon_for_sum(1.5) == brute_horizon(
        lambda n: mp.exp(-n), 1.5)


@pytest.mark.parametrize("level", [0.0, -1.0, -1e300])
def test_horizon_for_sum_nonpositive_level(level):
    assert harmonic().horizon_for_sum(level) == 0
    assert parse_schedule("exp(-t)").horizon_for_sum(level) == 0


def test_schedule_is_abstract():
    with pytest.raises(TypeError):
        Schedule()


# ----------------------------------------------------------------------------- schedules in use
# Each sum is checked against a closed form or an exact rational (Fraction) sum written here.
COSINE_T = 1000


def fraction_sum(term, horizon: int, power: int = 1) -> Fraction:
    return sum((term(k) ** power for k in range(horizon)), Fraction(0))


@pytest.mark.parametrize("text, term", [
    ("0.1*0.5**floor(t/100)", lambda k: Fraction(1, 10) * Fraction(1, 2) ** (k // 100)),
    ("Max(0.01, 0.1*(1-t/T))",
     lambda k: max(Fraction(1, 100), Fraction(1, 10) * (1 - Fraction(k, COSINE_T)))),
    ("Piecewise((0.1, t < 100), (0.01, True))",
     lambda k: Fraction(1, 10) if k < 100 else Fraction(1, 100)),
    ("max(0.001, min(0.1, (t+1)/1000))",
     lambda k: max(Fraction(1, 1000), min(Fraction(1, 10), Fraction(k + 1, 1000)))),
])
@pytest.mark.parametrize("power", [1, 2])
def test_nonsmooth_schedule_sums_are_exact_rational_sums(text, term, power):
    schedule = parse_schedule(text, horizon=COSINE_T)
    assert isinstance(schedule, S.SampledSchedule) and schedule.horizon == COSINE_T
    for horizon in (1, 99, 100, 101, 777, COSINE_T):
        exact = fraction_sum(term, horizon, power)
        estimate = schedule.partial_sum_estimate(horizon, power)
        # the float64 terms are within 4 ulp of the exact ones, the fsum is correctly rounded
        assert abs(Fraction(float(estimate.value)) - exact) <= Fraction(float(estimate.error)) \
            + Fraction(2**-52) * exact


def test_step_decay_closed_form():
    # Σ_{t<1000} 0.1·0.5^⌊t/100⌋ = 10·Σ_{k<10} 2^−k = 20·(1 − 2^−10), squares: (4/3)(1 − 4^−10)
    schedule = S.step_decay(0.1, 0.5, 100, horizon=1000)
    assert schedule.source == "0.1*0.5**floor(t/100)"
    assert schedule.partial_sum(1000) == pytest.approx(20 * (1 - 2**-10), rel=1e-15)
    assert schedule.partial_sum(1000, 2) == pytest.approx(4 / 3 * (1 - 4**-10), rel=1e-15)


@pytest.mark.parametrize("horizon", [1, 2, 10, 1000, 5000])
def test_cosine_with_the_horizon_closed_form(horizon):
    # Σ_{t<T} cos(πt/T) = 1 and Σ_{t<T} cos²(πt/T) = T/2 (T ≥ 2), so for a = 0.05(1 + cos(πt/T)):
    # Σ a = 0.05(T + 1), Σ a² = 0.0025(3T/2 + 2)
    schedule = parse_schedule("0.5*0.1*(1+cos(pi*t/T))", horizon=horizon)
    assert schedule.horizon == horizon
    cos_squares = horizon / 2 if horizon >= 2 else 1
    assert schedule.partial_sum(horizon) == pytest.approx(0.05 * (horizon + 1), rel=1e-13)
    assert schedule.partial_sum(horizon, 2) == pytest.approx(
        0.0025 * (horizon + 2 + cos_squares), rel=1e-13)
    named = S.cosine(0.1, horizon)
    assert named.partial_sum(horizon) == pytest.approx(0.05 * (horizon + 1), rel=1e-13)


def test_warmup_vs_loop():
    schedule = S.warmup(100, "0.1/sqrt(t+1)", horizon=3000)
    brute = math.fsum(min(1.0, (k + 1) / 100) * 0.1 / math.sqrt(k + 1) for k in range(3000))
    assert schedule.partial_sum(3000) == pytest.approx(brute, rel=1e-14)
    assert schedule(np.array([0, 99, 2999])) == pytest.approx(
        [0.1 / 100, 0.1 / 10, 0.1 / math.sqrt(3000)], rel=1e-15)


def test_exponential_decay_closed_form():
    schedule = parse_schedule("0.1*0.99**t")
    with mp.workdps(50):
        q = mp.mpf(99) / 100
        for horizon in (10, 1000, 10**5):
            exact = 10 * (1 - q**horizon)
            assert rel_err(schedule.partial_sum_estimate(horizon).value, exact) < 1e-15
        assert rel_err(schedule.partial_sum_estimate(None).value, 10) < 1e-15
        assert rel_err(schedule.gamma, mp.mpf(1) / 100 / (1 - q**2)) < 1e-15


def test_a_level_at_the_limit_of_the_sums_is_never_reached():
    # Σ_{t<T} 0.1·0.99^t = 10(1 − 0.99^T) < 10 for every T; Σ 1/(t+1)² < π²/6 likewise
    assert parse_schedule("0.1*0.99**t").horizon_for_sum(10.0) is None
    assert parse_schedule("0.1*0.99**t").horizon_for_sum(9.5) == brute_horizon(
        lambda n: mp.mpf("0.1") * mp.mpf("0.99") ** n, 9.5)
    with mp.workdps(50):
        assert PowerSchedule(1, 1, 2).horizon_for_sum(mp.pi**2 / 6) is None


def test_arrays_sequences_and_callables():
    values = np.array([0.5, 0.25, 0.125, 0.1])
    for spec in (values, list(values), tuple(values)):
        schedule = as_schedule(spec)
        assert schedule.horizon == 4
        assert schedule.partial_sum(4) == 0.975 and schedule.partial_sum(2) == 0.75
        assert schedule.partial_sum(4, 2) == pytest.approx(0.25 + 1 / 16 + 1 / 64 + 0.01)
        assert schedule.horizon_for_sum(0.75) == 2 and schedule.horizon_for_sum(0.976) is None
        assert np.array_equal(schedule(np.arange(4)), values)
    vectorized = as_schedule(lambda steps: 0.1 / np.sqrt(steps + 1.0), horizon=500)

    def scalar(step: int) -> float:
        return 0.1 / math.sqrt(step + 1)

    for schedule in (vectorized, as_schedule(scalar, horizon=500)):
        assert schedule.partial_sum(500) == pytest.approx(
            math.fsum(0.1 / math.sqrt(k + 1) for k in range(500)), rel=1e-15)
    assert as_schedule(scalar, horizon=5).source == "scalar(t)"


@pytest.mark.parametrize("spec, horizon, word", [
    ([0.1, 0.0], None, "positive"),
    ([0.1, math.nan], None, "positive"),
    ([[0.1, 0.2]], None, "1-D"),
    ([], None, "non-empty"),
    (np.array([0.1, 0.2]), 3, "horizon"),
    (lambda steps: 0.1, None, "horizon"),
    (lambda steps: -1.0 + 0 * steps, 10, "positive"),
    (lambda steps: 1 / 0, 10, "failed"),
])
def test_bad_values_and_callables(spec, horizon, word):
    with pytest.raises(ValueError, match=word):
        as_schedule(spec, horizon=horizon)


def test_finite_horizon_is_enforced():
    schedule = parse_schedule("0.5*0.1*(1+cos(pi*t/T))", horizon=100)
    assert as_schedule(schedule, horizon=50) is schedule
    for call in (lambda: schedule.partial_sum(101), lambda: schedule.gamma,
                 lambda: as_schedule(schedule, horizon=101),
                 lambda: schedule.log_product(1.0, None)):
        with pytest.raises(ValueError, match="horizon: .* t < 100 only"):
            call()
    # the search for a level stops at the horizon: Σ_{t<100} a(t) = 0.05·101 = 5.05
    assert schedule.horizon_for_sum(5.05) == 100
    assert schedule.horizon_for_sum(5.06) is None
    expected = brute_horizon(lambda n: mp.mpf("0.05") * (1 + mp.cos(mp.pi * n / 100)), 3.0)
    assert schedule.horizon_for_sum(3.0) == expected


def test_linear_decay_horizon_for_sum_vs_exact_loop():
    schedule = parse_schedule("Max(0.01, 0.1*(1-t/T))", horizon=1000)
    term = lambda k: max(Fraction(1, 100), Fraction(1, 10) * (1 - Fraction(k, 1000)))  # noqa: E731
    for level in (0.05, 1.0, 10.0, 50.0):
        total, expected = Fraction(0), None
        for k in range(1000):
            total += term(k)
            if total >= Fraction(level):
                expected = k + 1
                break
        assert schedule.horizon_for_sum(level) == expected


@pytest.mark.parametrize("text", ["0.1*0.5**floor(t/100)", "Min(1, (t+1)/100)*0.1",
                                  "cos(pi*t/T)+1", "Piecewise((0.1, t < 5), (0.01, True))"])
def test_finite_kinds_need_a_horizon(text):
    with pytest.raises(ValueError, match="give a horizon"):
        parse_schedule(text)


def test_finite_kinds_sum_as_a_loop_does():
    for text in ["0.1*0.5**floor(t/100)", "0.5*0.1*(1+cos(pi*t/T))", "Max(0.01,0.1*(1-t/T))",
                 "Min(1,(t+1)/100)*0.1/sqrt(t+1)"]:
        schedule = parse_schedule(text, horizon=10**5)
        terms = np.asarray(schedule(np.arange(10**5)), dtype=np.float64)
        assert math.isclose(float(schedule.partial_sum(10**5)), math.fsum(terms), rel_tol=1e-12)
        assert math.isclose(float(schedule.partial_sum(10**5, 2)), math.fsum(terms**2),
                            rel_tol=1e-12)


# ----------------------------------------------------------------------------- safety
def test_text_is_not_executed(tmp_path):
    marker = tmp_path / "ran"
    for text in [f"__import__('os').system('touch {marker}')",
                 f"0*__import__('pathlib').Path('{marker}').touch() + 1",
                 f"(lambda: open('{marker}', 'w'))() and 1"]:
        with pytest.raises(ValueError, match="not allowed|unknown"):
            parse_schedule(text)
    assert not marker.exists()


@pytest.mark.parametrize("text", [
    "len('ab')",  # a builtin: sympy's parse_expr would call it and return 2
    "(lambda x: 1)(0)+0*t",
    "t.__class__",
    "t.subs(t, 1)",
    "Symbol('x')+1",
    "Rational(1, 2)",
    "[0.1][0]",
    "{1: 0.1}[1]",
    "0.1 if t else 0.2",
    "x+1",
    "t == 1",
    "t; 0.1",
    "N(1)",
    "S(1)",
])
def test_python_and_unknown_names_refused(text):
    with pytest.raises(ValueError, match="schedule: .*(not allowed|unknown|cannot parse)"):
        parse_schedule(text, horizon=10)


@pytest.mark.parametrize("text", ["10**10**10", "2**(10**9)", "10**(t*0+10**9)",
                                  "10**((t+1)/(t+1)*10**9)"])
def test_huge_constant_powers_refused(text):
    with pytest.raises(ValueError, match="exponent"):
        parse_schedule(text)


@pytest.mark.parametrize("text", ["sqrt(-1)", "I", "1+I", "exp(I*t)+2", "(-1)**(t/2)",
                                  "(-2)**(0.5)+t", "log(-1)+1", "sqrt(t-5)"])
def test_complex_valued_schedules_refused(text):
    with pytest.raises(ValueError, match="complex"):
        parse_schedule(text, horizon=10)


def test_allowed_syntax_still_parses():
    for text, value in [("2^(-1)", 0.5), ("2t+1", 1.0), ("E**(-t)", 1.0), ("ceil(t/2)+1", 1.0),
                        ("abs(1-t)+1", 2.0), ("1e-3*(t+1)", 0.001), (".5", 0.5)]:
        assert parse_schedule(text, horizon=10)(np.array([0]))[0] == pytest.approx(value)


# ----------------------------------------------------------------------------- simulations run
SIM_KINDS = {  # a(t) written out here in plain Python, independently of the parser
    "0.1": lambda k: 0.1,
    "0.1*0.5**floor(t/100)": lambda k: 0.1 * 0.5 ** (k // 100),
    "0.5*0.1*(1+cos(pi*t/T))": lambda k: 0.05 * (1 + math.cos(math.pi * k / 200)),
    "Min(1,(t+1)/100)*0.1/sqrt(t+1)": lambda k: min(1, (k + 1) / 100) * 0.1 / math.sqrt(k + 1),
    "Max(0.01, 0.1*(1-t/T))": lambda k: max(0.01, 0.1 * (1 - k / 200)),
    "0.1*0.99**t": lambda k: 0.1 * 0.99**k,
}


@pytest.mark.parametrize("text", SIM_KINDS)
def test_simulations_run_for_each_kind(text, tmp_path, capsys):
    # y ~ N(100, 1), θ(0) = 0, classic clipping with λ = 1: every gradient is clipped to length 1
    # toward y, so θ(s) = Σ_{t<s} a(t) and every path leaves the ball of radius M at the first
    # s with Σ_{t<s} a(t) > M (M chosen between two partial sums, away from ties)
    from simulations.verify import cli

    steps = 200
    partial = np.cumsum([SIM_KINDS[text](k) for k in range(steps)])
    radius = float((partial[59] + partial[60]) / 2)  # first exit at step 61
    status = cli.main(["run", "--problem", "quadratic", "--noise", "normal", "--mean", "100",
                       "--sd", "1", "--dim", "1", "--theta0", "0", "--clip", "classic", "--lam",
                       "1", "--schedule", text, "--paths", "8", "--steps", str(steps),
                       "--radius", str(radius), "--seed", "0", "--quiet", "--out",
                       str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    (saved,) = tmp_path.rglob("result.json")  # OUT/result.json or OUT/runs/<key>/result.json
    result = json.loads(saved.read_text())
    assert result["setting"]["schedule"] == text
    (row,) = result["radii"]
    assert row["exit_fraction"] == 1.0
    assert row["first_exit_step"]["min"] == row["first_exit_step"]["max"] == 61


@pytest.mark.parametrize("text, word", [("__import__('os')", "not allowed"),
                                        ("sqrt(-1)", "complex"), ("I", "complex"),
                                        ("(-1)**(t/2)", "complex"), ("x/(t+1)", "unknown")])
def test_simulations_run_bad_schedule_is_one_line_and_exit_2(text, word, tmp_path, capsys):
    from simulations.verify import cli

    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "--problem", "quadratic", "--clip", "classic", "--lam", "1",
                  "--schedule", text, "--paths", "4", "--steps", "10", "--quiet", "--out",
                  str(tmp_path)])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "argument --schedule" in lines[0] and word in lines[0], lines


def test_positive_beyond_the_horizon_keeps_all_t():
    # sympy cannot decide (2 + sin t)/(t+1) > 0, the values can: the schedule stays one on all
    # t ≥ 0 (infinite sums, (A2)); 1 − t/10 is positive on t < 10 only
    schedule = parse_schedule("(2+sin(t))/(t+1)", horizon=1000)
    assert schedule.horizon is None and schedule.partial_sum(None) == math.inf
    assert parse_schedule("1-t/10", horizon=10).horizon == 10
    assert parse_schedule("0.05*(1+cos(pi*t/1000))", horizon=1000).horizon == 1000


ALPHABET = ["t", "T", "1", "0.5", "2", "10", "+", "-", "*", "/", "**", "^", "(", ")", ",", "<",
            ">=", "sqrt", "exp", "log", "cos", "floor", "Min", "Max", "Piecewise", "pi", "E",
            "True", "abs", "ceil", "tanh", "1e-3", "(t+1)"]


@settings(max_examples=150, deadline=None)
@given(words=st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=8),
       spaced=st.booleans(), horizon=st.sampled_from([None, 50]))
def test_any_text_of_allowed_tokens_is_a_schedule_or_one_line_value_error(words, spaced,
                                                                          horizon):
    text = (" " if spaced else "").join(words)
    try:
        schedule = parse_schedule(text, horizon=horizon)
        total = schedule.partial_sum(20)
    except ValueError as error:
        assert "\n" not in str(error) and str(error).startswith(("schedule:", "horizon:"))
    else:
        values = schedule(np.arange(20))
        assert np.all(values > 0) and total == pytest.approx(math.fsum(values), rel=1e-12)


@pytest.mark.parametrize("horizon", [10**24 + 1, 10**100, 10**4000],
                         ids=["10^24+1", "10^100", "10^4000"])
def test_absurd_horizons_are_refused_in_one_line(horizon):
    with pytest.raises(ValueError, match="horizon: .*at most 10\\^24") as error:
        parse_schedule("1/(t+1)", horizon=horizon)
    assert "\n" not in str(error.value) and len(str(error.value)) < 200
    with pytest.raises(ValueError, match="at most 10\\^24"):
        parse_schedule("1/(t+1)").partial_sum(horizon)


@pytest.mark.parametrize("text", ["((9**99)**99)**99", "(9**99)**99/(t+1)", "exp(exp(exp(5)))",
                                  "exp(exp(exp(5)))+t"])
def test_nested_constants_are_refused_at_every_level(text):
    """The exponent guard looked at one level: 9**99 is within it, (9**99)**99 is not."""
    with pytest.raises(ValueError, match="schedule: .*(beyond|exponent)"):
        parse_schedule(text)
