"""Horizons at the supremum: the first T with Σ_{t<T} a(t) ≥ M, decided exactly where the float or
40-digit partial sums reach M only within their rounding (issue 19).

Every expected answer is worked out by hand in a comment and checked against an independent slow
loop in exact rationals (:func:`exact_first`)."""

from __future__ import annotations

from fractions import Fraction

import mpmath as mp
import pytest
import sympy as sp

from theory import schedules as S
from theory.bounds import deterministic_horizon
from theory.schedules import ExpressionSchedule, from_values, parse_schedule


def step_decay_term(n: int) -> Fraction:
    """a(t) = 0.1·0.5^⌊t/100⌋ with 0.1 = 1/10 and 0.5 = 1/2 exactly."""
    return Fraction(1, 10) * Fraction(1, 2) ** (n // 100)


def geometric_term(n: int) -> Fraction:
    """a(t) = 0.1·0.99^t = (1/10)·(99/100)^t."""
    return Fraction(1, 10) * Fraction(99, 100) ** n


def exact_first(term, level: Fraction, limit: int) -> int | None:
    """The smallest T ≤ limit with Σ_{t<T} term(t) ≥ level, adding exact terms one at a time."""
    total = Fraction(0)
    for n in range(limit):
        total += term(n)
        if total >= level:
            return n + 1
    return None


# ----------------------------------------------------------------------------- step decay
# On t < 10^4 there are 100 blocks of 100 steps: Σ_{t<10^4} a(t) = 100·(1/10)·Σ_{k<100} 2^−k
# = 10·2·(1 − 2^−100) = 20(1 − 2^−100) < 20, the largest partial sum (a(t) > 0). The float64
# values fl(0.1)·2^−k sum to more than 20 from T ≈ 5400 on (fl(0.1) = 0.1 + 5.6e-18), and their
# correctly rounded sum is 20.0 from T = 5271: the horizon used to say 5271.
STEP_TEXT, STEP_HORIZON = "0.1*0.5**floor(t/100)", 10**4
STEP_SUPREMUM = 20 * (1 - Fraction(1, 2**100))


def test_step_decay_never_reaches_twenty():
    assert sum(step_decay_term(n) for n in range(STEP_HORIZON)) == STEP_SUPREMUM
    schedule = parse_schedule(STEP_TEXT, STEP_HORIZON)
    assert schedule.horizon_for_sum(20.0) is None
    assert deterministic_horizon(1.0, 20.0, schedule) is None


def test_step_decay_reaches_its_supremum_at_the_last_step():
    # the supremum itself is reached exactly at T = 10^4 (the last term completes it), and a
    # level 2^−200 above it not at all
    schedule = parse_schedule(STEP_TEXT, STEP_HORIZON)
    assert schedule.horizon_for_sum(STEP_SUPREMUM) == STEP_HORIZON
    assert schedule.horizon_for_sum(STEP_SUPREMUM + Fraction(1, 2**200)) is None


def test_step_decay_just_below_the_supremum():
    # level ≈ 20 − 10^−3: after k whole blocks the sum is 20(1 − 2^−k), which passes 19.999 once
    # 2^−k ≤ 5·10^−5, i.e. in block k = 14: 20(1 − 2^−14) = 19.998779…, short by 2.2107e-4,
    # which takes ⌈2.2107e-4 / (0.1·2^−14)⌉ = ⌈36.2⌉ = 37 steps: T = 1400 + 37 = 1437.
    # level 20 − 10^−14, the float 20 − 3·2^−48: 50 whole blocks sum to 20 − 20·2^−50 =
    # 20 − 5·2^−48, short by 2·2^−48; a step of block 50 adds 0.1·2^−50 = 2^−48/40, so 80 steps
    # reach it exactly (a tie): T = 5000 + 80 = 5080.
    # The float64 values (fl(0.1)·2^−k, 1.1e-15 over in total) reach it a dozen steps early.
    schedule = parse_schedule(STEP_TEXT, STEP_HORIZON)
    for level, expected in [(float(STEP_SUPREMUM) - 1e-3, 1437), (20 - 1e-14, 5080)]:
        assert exact_first(step_decay_term, Fraction(level), STEP_HORIZON) == expected
        assert schedule.horizon_for_sum(level) == expected
        assert deterministic_horizon(1.0, level, schedule) == expected


# ----------------------------------------------------------------------------- geometric
# Σ_{t<T} 0.1·0.99^t = 10(1 − 0.99^T) < 10 = Σ_{t≥0}: approached, never reached. At 40 digits
# the partial sums equal 10 from T ≈ 9000 on, and within 10^−30 of it (the old tie tolerance)
# from T = 6874 = ⌈30·ln 10 / −ln 0.99⌉: a finite horizon used to say 6874.
GEOMETRIC = sp.Rational(1, 10) * sp.Rational(99, 100) ** S.t


def test_geometric_never_reaches_its_limit():
    assert parse_schedule("0.1*0.99**t").horizon_for_sum(10.0) is None
    assert deterministic_horizon(1.0, 10.0, "0.1*0.99**t") is None
    assert ExpressionSchedule(GEOMETRIC, horizon=10**4).horizon_for_sum(10.0) is None
    # but λ = 0.1 is fl(0.1) = 0.1000000000000000055…, so λ·Σ_{t≥0} a(t) = 10·fl(0.1) > 1 = M:
    # the ball is left once 0.99^T ≤ 1 − 1/(10·fl(0.1)) = 5.55e-17, i.e. at T = 3725
    assert geometric_first(Fraction(1) / Fraction(0.1), 10**4) == 3725
    assert deterministic_horizon(0.1, 1.0, "0.1*0.99**t") == 3725


def geometric_first(level: Fraction, limit: int) -> int | None:
    """The smallest T ≤ limit with 10(1 − 0.99^T) ≥ level, T by T in exact rationals."""
    power = Fraction(1)  # 0.99^T
    for horizon in range(limit + 1):
        if 10 * (1 - power) >= level:
            return horizon
        power *= Fraction(99, 100)
    return None


@pytest.mark.parametrize("horizon", [None, 10**4])
def test_geometric_just_below_its_limit(horizon):
    # 10(1 − 0.99^T) ≥ 10 − 10^−6 ⇔ 0.99^T ≤ 10^−7 ⇔ T ≥ 7·ln 10 / −ln 0.99 = 1603.7…: T = 1604;
    # 10 − 10^−32: 0.99^T ≤ 10^−33 ⇔ T ≥ 33·ln 10 / −ln 0.99 = 7560.1…: T = 7561 (within
    # 10^−30 of the level from T = 6874, the old tie tolerance; the old limit test said never)
    schedule = ExpressionSchedule(GEOMETRIC, horizon=horizon)
    assert exact_first(geometric_term, Fraction(10 - 1e-6), 10**4) == 1604
    assert schedule.horizon_for_sum(10 - 1e-6) == 1604
    assert geometric_first(10 - Fraction(1, 10**32), 10**4) == 7561
    with mp.workdps(50):  # 10 − 10^−32 within 10^−49
        assert schedule.horizon_for_sum(10 - mp.mpf(10) ** -32) == 7561


# ----------------------------------------------------------------------------- infinite sums
def test_divergent_sums_still_give_their_first_horizon():
    harmonic = parse_schedule("1/(t+1)")
    # H_10 = 2.928968…, H_11 = 3.019877…: T = 11
    assert exact_first(lambda n: Fraction(1, n + 1), Fraction(3), 100) == 11
    assert harmonic.horizon_for_sum(3.0) == 11
    # H_2 = 3/2 exactly: a tie, reached at T = 2; 10^−36 above it only at T = 3 (H_3 = 11/6)
    assert harmonic.horizon_for_sum(1.5) == 2
    with mp.workdps(50):
        assert harmonic.horizon_for_sum(mp.mpf(3) / 2 + mp.mpf(10) ** -36) == 3
    # 10·(3/10) = 3 exactly (10·fl(0.3) < 3 would say 11)
    assert parse_schedule("0.3").horizon_for_sum(3.0) == 10


# ----------------------------------------------------------------------------- given values
def test_given_values_compared_exactly():
    # 1 + 2^−53 + (2^−53 − 2^−105) = 1 + 2^−52 − 2^−105 < 1 + 2^−52, but math.fsum rounds it to
    # 1 + 2^−52: the level is not reached by the exact values
    values = [1.0, 2.0**-53, 2.0**-53 - 2.0**-105]
    level = 1 + 2.0**-52
    assert sum(map(Fraction, values)) < Fraction(level)
    assert from_values(values).horizon_for_sum(level) is None
    assert from_values(values).horizon_for_sum(1 + Fraction(1, 2**53)) == 2
