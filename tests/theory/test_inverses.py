"""`theory bound` answers the question asked (issue 20): when a probability bound is vacuous
(already, from an exact T however large, never), the safe radius of θ at δ, and the inverses
of the Grönwall bound of adaptive clipping (the first T past M, the largest λ).

Every expected value is worked out by hand in a comment and recomputed independently here
(mpmath at enough digits, sympy's roots, exact fractions), never copied from the code."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from theory import bounds
from theory.schedules import from_values, harmonic, parse_schedule, warmup


def pinelis_level(lam: float, radius: float) -> mp.mpf:
    """γ_T at which 2·exp(−r²/(8λ²γ_T)) = 1: r²/(8λ² ln 2)."""
    return mp.mpf(radius) ** 2 / (8 * mp.mpf(lam) ** 2 * mp.log(2))


# ------------------------------------------------------------------------------ vacuity

def test_already_vacuous_from_the_first_step_without_a_horizon():
    # r = 1, λ = 30: level 1/(7200 ln 2) ≈ 2e-4 < a(0)² = 1, so vacuous from T = 1
    v = bounds.vacuity("pinelis", 30, 1, "1/(t+1)")
    assert (v.state, v.horizon, v.asked) == ("already", 1, None)
    assert v.text == "vacuous already (from T = 1)"


def test_constant_step_is_vacuous_from_an_exact_t_or_already_at_a_longer_horizon():
    # 0.1 is 1/10 exactly: γ_T = T/100 ≥ 1024²/(7200 ln 2) = 210.10…  ⇒  T = 21011
    with mp.workdps(50):
        expected = int(mp.ceil(100 * pinelis_level(30, 1024)))
    assert expected == 21011
    later = bounds.vacuity("pinelis", 30, 1024, "0.1", horizon=1000)
    assert (later.state, later.horizon) == ("from", expected)
    assert later.text == f"vacuous from T = {expected}"
    already = bounds.vacuity("pinelis", 30, 1024, "0.1", horizon=10**5)
    assert (already.state, already.horizon) == ("already", expected)
    assert already.text == f"vacuous already at T = 100000 (from T = {expected})"
    # the boundary: at the horizon T_v itself the bound is ≥ 1, one step before it is not
    at = bounds.vacuity("pinelis", 30, 1024, "0.1", horizon=expected)
    before = bounds.vacuity("pinelis", 30, 1024, "0.1", horizon=expected - 1)
    assert (at.state, before.state) == ("already", "from")
    assert bounds.pinelis(30, 1024, "0.1", expected).vacuous
    assert not bounds.pinelis(30, 1024, "0.1", expected - 1).vacuous


def test_never_vacuous_when_gamma_stays_below_the_level():
    # γ = π²/6 = 1.645 < 210.1 (Pinelis) and < 3361.8 (paper): no T makes either vacuous
    assert float(mp.pi**2 / 6) < float(pinelis_level(30, 1024))
    for name in ("pinelis", "lemma1_paper", "azuma"):
        v = bounds.vacuity(name, 30, 1024, "1/(t+1)")
        assert (v.state, v.horizon, v.text) == ("never", None, "never vacuous")


def test_never_vacuous_on_the_steps_an_array_gives():
    # ten steps of 0.1: Σ a² = 0.1 < 210.1; the array's length is its horizon
    v = bounds.vacuity("pinelis", 30, 1024, [0.1] * 10)
    assert (v.state, v.asked) == ("never", 10)
    assert v.text == "never vacuous (a(t) is given for t < 10)"


def test_divergent_squares_are_vacuous_from_an_exact_t_with_91_digits():
    # a(t) = 1/√(t+1): γ_T = H_T = ψ(T+1) + γ_E ≥ 210.10… (Pinelis); T ≈ e^(210.1 − 0.577)
    v = bounds.vacuity("pinelis", 30, 1024, "1/sqrt(t+1)")
    assert v.state == "from"
    found = v.horizon
    with mp.workdps(140):  # mpmath's own digamma, at 140 digits for a 91-digit T
        level = pinelis_level(30, 1024)
        harmonic_number = lambda n: mp.digamma(n + 1) + mp.euler  # noqa: E731
        assert harmonic_number(found) >= level > harmonic_number(found - 1)
        assert len(str(found)) == int(mp.floor((level - mp.euler) / mp.log(10))) + 1
    assert v.text.startswith(f"vacuous from T = ≈{str(found)[0]}.")


def test_paper_bound_with_divergent_squares_is_vacuous_from_a_1460_digit_t():
    # 2M²/(λ² ln 2) = 2·1024²/(900 ln 2) = 3361.8…: T ≈ e^(3361.8 − γ_E), 1460 digits
    v = bounds.vacuity("lemma1_paper", 30, 1024, "1/sqrt(t+1)")
    found = v.horizon
    with mp.workdps(1500):
        level = 2 * mp.mpf(1024) ** 2 / (900 * mp.log(2))
        assert abs(mp.log(found) - (level - mp.euler)) < 1e-6
        # H_T − H_{T−1} = 1/T: the level lies in [H_{T−1}, H_T) when ln T + γ_E + 1/(2T)
        # passes it at T and not at T − 1 (the asymptotic series, exact to 10^-2900 here)
        h = lambda n: mp.log(n) + mp.euler + 1 / (2 * n) - 1 / (12 * n**2)  # noqa: E731
        assert h(found) >= level > h(found - 1)
    assert len(str(found)) == 1460


def test_beyond_reach_is_said_so_and_not_called_never():
    # λ = 10^-3, r = 10^3: level = 10^12/(8 ln 2) and γ_T = H_T ≈ ln T: T ≈ e^(1.8·10^11)
    v = bounds.vacuity("pinelis", 1e-3, 1e3, "1/sqrt(t+1)")
    assert (v.state, v.horizon) == ("beyond", None)
    assert "diverges" in v.text and "never" not in v.text


# --------------------------------------------------------------- deterministic horizon

def test_deterministic_horizon_beyond_ten_to_the_24_is_exact():
    # 0.01/(t+1): 30·0.01·H_T ≥ 1024  ⇔  H_T ≥ 3413.3…: about 1483 digits
    found = bounds.deterministic_horizon(30, 1024, "0.01/(t+1)")
    with mp.workdps(1550):
        level = mp.mpf(1024) / 30 / mp.mpf("0.01")
        h = lambda n: mp.log(n) + mp.euler + 1 / (2 * n) - 1 / (12 * n**2)  # noqa: E731
        assert h(found) >= level > h(found - 1)
    # a constant 10^-30 (read as exactly 1/10^30): T = ⌈1024/(30·10^-30)⌉
    expected = math.ceil(Fraction(1024, 30) * 10**30)
    assert bounds.deterministic_horizon(30, 1024, "1e-30") == expected


def test_table_says_never_when_the_sum_of_steps_converges_below_m():
    # Σ 0.1·0.99^t = 10 and 30·10 = 300 < 1024
    table = bounds_table("0.1*0.99**t")
    assert table["bounds"]["deterministic"]["horizon_for_radius"] is None
    assert table["bounds"]["deterministic"]["reached"] is False


def bounds_table(schedule: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "theory", "bound", "--lam", "30", "--radius",
                           "1024", "--schedule", schedule, "--json", *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ------------------------------------------------------------------ Grönwall inverses

@pytest.mark.parametrize(("lam", "eps", "theta0", "radius", "schedule", "expected"), [
    (1, 1, 0, 8, "1", 4),            # 2^T > 8: 2^3 = 8 is not, 2^4 = 16 is
    (1, 1, 0, 10, "1/(t+1)", 10),    # Π(1 + 1/(t+1)) = T + 1 > 10: T = 10 (9 gives 10)
    (2, 1, 0, 100, "1/(t+1)", 13),   # (T+1)(T+2)/2 > 100: 14·15/2 = 105, 13·14/2 = 91
    (2, 1, 2, 100, "1/(t+1)", 9),    # 2·(T+1)(T+2)/2 > 100: 10·11 = 110, 9·10 = 90
    (1, 0.5, 0, 0.25, "1", 0),       # the bound starts at ε = 0.5 > M
])
def test_gronwall_horizon_against_hand_values(lam, eps, theta0, radius, schedule, expected):
    product = sp.Integer(1)
    a = sp.sympify(schedule.replace("t", "n"))
    n = sp.Symbol("n")
    start = max(theta0, eps)
    first = 0
    while not sp.Rational(start) * product > radius:  # an independent exact loop
        product *= 1 + lam * a.subs(n, first)
        first += 1
    assert first == expected
    assert bounds.gronwall_horizon(lam, eps, radius, schedule, theta0) == expected


def test_gronwall_horizon_is_none_on_a_schedule_that_ends_first():
    # (1 + 0.1)^5 = 1.61 < 10: five steps never pass M = 10 from ε = 1
    assert bounds.gronwall_horizon(1, 1, 10, [0.1] * 5) is None


def test_gronwall_max_lam_closed_forms():
    # constant c = 1/2, T = 3, M/ε = 8: (1 + λ/2)^3 = 8  ⇒  λ = 2
    assert bounds.gronwall_max_lam(1, 8, "0.5", horizon=3) == pytest.approx(2, rel=1e-15)
    # T = 1: 1 + λ·a(0) = M/ε: a(0) = 1/2, M/ε = 5  ⇒  λ = 8
    assert bounds.gronwall_max_lam(1, 5, "1/(t+2)", horizon=1) == pytest.approx(8, rel=1e-15)


@pytest.mark.parametrize("horizon", [2, 3, 7])
def test_gronwall_max_lam_is_the_root_of_the_product(horizon):
    # Π_{t<T}(1 + λ/(t+1)) = M/ε = 10: the positive real root of a polynomial, by sympy
    x = sp.Symbol("x", positive=True)
    polynomial = sp.prod([1 + x / (k + 1) for k in range(horizon)]) - 10
    root = max(float(r) for r in sp.Poly(polynomial, x).real_roots() if r > 0)
    lam = bounds.gronwall_max_lam(1, 10, "1/(t+1)", horizon=horizon)
    assert lam == pytest.approx(root, rel=1e-13)
    with mp.workdps(50):  # the largest: the bound is ≤ M at λ and > M just above it
        bound = lambda value: mp.fprod(1 + mp.mpf(value) / (k + 1) for k in range(horizon))  # noqa: E731
        assert bound(lam) <= 10 < bound(lam * (1 + 1e-14))


def test_gronwall_max_lam_on_an_expression_schedule():
    # Σ_{t<50} log(1 + λ·0.1·0.99^t) = ln(e/1) = 1, solved here by mpmath's findroot
    with mp.workdps(30):
        f = lambda lam: mp.fsum(mp.log(1 + lam * mp.mpf("0.1") * mp.mpf("0.99") ** k)  # noqa: E731
                                for k in range(50)) - 1
        root = mp.findroot(f, 0.3)
    lam = bounds.gronwall_max_lam(1, math.e, "0.1*0.99**t", horizon=50)
    assert lam == pytest.approx(float(root), rel=1e-12)


def test_gronwall_max_lam_refuses_m_below_the_start():
    with pytest.raises(ValueError, match="radius"):
        bounds.gronwall_max_lam(2, 1, "1/(t+1)", horizon=5)


# ------------------------------------------------------------ safe radius of θ at δ

def test_theta_radius_adds_drift_and_martingale_and_keeps_the_pathwise_minimum():
    # λ = 1, a = 1/(t+1), T = 4: Σa = 25/12, γ_4 = 205/144; δ = 0.1
    total, gamma = 25 / 12, 205 / 144
    martingale = math.sqrt(8 * gamma * math.log(2 / 0.1))
    r = bounds.theta_radius(1, "1/(t+1)", horizon=4, delta=0.1, drift_bound=0.01)
    assert r.martingale == pytest.approx(martingale, rel=1e-14)
    assert r.split == pytest.approx(0.01 * total + martingale, rel=1e-14)
    assert r.pathwise == pytest.approx(total, rel=1e-14)
    assert r.radius == pytest.approx(min(0.01 * total + martingale, total), rel=1e-14)
    # without h the drift is bounded by λ: ‖H‖ ≤ E‖g/c‖ ≤ λ = 1
    assert bounds.theta_radius(1, "1/(t+1)", horizon=4, delta=0.1).drift == \
        pytest.approx(total, rel=1e-14)
    # a long horizon and a small h: the split is the smaller one
    long = bounds.theta_radius(1, "1/(t+1)", horizon=10**6, delta=0.1, drift_bound=0.01)
    with mp.workdps(30):
        s, g = mp.harmonic(10**6), mp.zeta(2) - mp.zeta(2, 10**6 + 1)
        split = float(0.01 * s + mp.sqrt(8 * g * mp.log(20)))
    assert long.radius == pytest.approx(split, rel=1e-12) and long.radius < long.pathwise


# ------------------------------------------------------------------------ the API

def test_an_array_carries_its_length_as_horizon():
    values = [0.1] * 100
    assert bounds.pinelis(30, 1, values).horizon == 100
    # γ_100 = 100·0.01 = 1: exponent 1/(8·900·1)
    assert bounds.pinelis(30, 1, values).exponent == pytest.approx(1 / 7200, rel=1e-14)
    assert bounds.deterministic_radius(30, values) == pytest.approx(300, rel=1e-14)
    assert bounds.gronwall(1, 1, values).norm == pytest.approx(1.1**100, rel=1e-12)


def test_warmup_of_a_schedule_object():
    w = warmup(10, harmonic(), 100)
    steps = np.arange(100)
    assert np.allclose(w(steps), np.minimum(1, (steps + 1) / 10) / (steps + 1), rtol=1e-15)
    values = warmup(3, from_values([2.0, 2.0, 2.0, 2.0]))
    assert values.horizon == 4
    assert values(np.arange(4)).tolist() == pytest.approx([2 / 3, 4 / 3, 2.0, 2.0])


def test_reprs_are_readable():
    assert repr(parse_schedule("1/(t+1)")) == "PowerSchedule('1/(t+1)')"
    assert repr(from_values([0.5, 0.25])) == "SampledSchedule('[0.5, 0.25]', horizon=2)"
    value = 2 * math.exp(-1024**2 / (8 * 900 * math.pi**2 / 6))  # 7.086e-39
    assert repr(bounds.pinelis(30, 1024, "1/(t+1)")).startswith(
        f"<pinelis: 2·exp(−r²/(8λ²·γ)) = {value:.6g} with γ; exponent 88.5358")
    assert repr(bounds.lemma1_paper(30, 1024, "1/(t+1)", 10)).startswith(
        "<lemma1_paper: 2·exp(−2M²/(λ²·Σ_{t<T}a(t)²)) (14) = 10^-")
    assert repr(bounds.vacuity("pinelis", 30, 1024, "0.1")) == \
        "<pinelis: vacuous from T = 21011>"


# ------------------------------------------------------------------------ the table

def test_command_line_names_each_case_and_each_quantity():
    out = subprocess.run([sys.executable, "-m", "theory", "bound", "--lam", "30", "--radius",
                          "1024", "--schedule", "0.1", "--horizon", "1000", "--delta", "0.05",
                          "--eps", "0.1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "vacuous from T = 21011" in text and "never" not in text.split("deterministic")[0]
    assert "P(max_{s≤T} ‖ξ(s)‖ ≥ r)" in text and "P(‖θ(s) − θ(0)‖ > M)" in text
    assert "radius of ξ (martingale part)" in text
    assert "safe radius of θ(s) − θ(0), classic clipping" in text
    assert "radius of θ(T) at the horizon" in text  # Grönwall: ‖θ(T)‖
    # 0.1·(1 + 30·0.1)^T > 1024  ⇔  4^T > 10240: T = 7 (4^6 = 4096, 4^7 = 16384)
    assert "first T at which the bound passes M: 7" in text
    # largest λ: 0.1·(1 + 0.1λ)^1000 ≤ 1024  ⇔  λ = 10·(10240^(1/1000) − 1)
    assert f"{10 * (10240 ** (1 / 1000) - 1):.6g}"[:6] in text
