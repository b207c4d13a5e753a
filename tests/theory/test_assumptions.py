"""Tests for theory.assumptions: the symbolic check of (A1), activations are C² on ℝ, and
(A2) for step schedules (not applicable on a finite horizon)."""

import dataclasses
import math
import time

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.assumptions import ALIASES, KNOWN_ACTIVATIONS, A1Verdict, X, a1, a2, activation_expr

# Known smoothness orders (largest k <= 2 with f in C^k), from the textbook definitions.
EXPECTED_ORDER = {
    "tanh": 2,
    "sigmoid": 2,
    "softplus": 2,
    "gelu": 2,
    "gelu_tanh": 2,
    "silu": 2,
    "identity": 2,
    "elu": 1,
    "softsign": 1,
    "relu": 0,
    "leaky_relu": 0,
}

# Independent numpy implementations of the named activations.
NUMPY_ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "gelu": lambda x: np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x]),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "identity": lambda x: x,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
}


def test_every_known_activation_has_an_expected_order():
    assert set(EXPECTED_ORDER) == set(KNOWN_ACTIVATIONS) == set(NUMPY_ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(EXPECTED_ORDER))
def test_known_activation_order(name):
    verdict = a1(name)
    assert isinstance(verdict, A1Verdict)
    assert verdict.activation == name
    assert verdict.order == EXPECTED_ORDER[name]
    assert verdict.holds is (EXPECTED_ORDER[name] == 2)
    assert verdict.reason and "\n" not in verdict.reason


@pytest.mark.parametrize("name", sorted(NUMPY_ACTIVATIONS))
def test_known_expressions_match_independent_numpy(name):
    pts = np.array([-3.0, -1.3, -0.2, 0.0, 0.4, 1.1, 2.5])
    f = sp.lambdify(X, activation_expr(name), modules=["numpy", "scipy"])
    got = np.array([float(f(v)) for v in pts])
    np.testing.assert_allclose(got, NUMPY_ACTIVATIONS[name](pts), rtol=1e-12, atol=1e-12)


def test_reasons_name_the_failing_derivative_and_point():
    assert a1("elu").reason == "second derivative jumps at x = 0 (from 1 to 0)"
    assert a1("relu").reason == "first derivative jumps at x = 0 (from 0 to 1)"
    assert "second derivative" in a1("softsign").reason
    assert "compositions" in a1("tanh").reason


@pytest.mark.parametrize(
    ("alias", "name"),
    [("Logistic", "sigmoid"), ("SWISH", "silu"), ("LeakyReLU", "leaky_relu"),
     ("gelu-tanh", "gelu_tanh"), (" Linear ", "identity"), ("TANH", "tanh")],
)  # fmt: skip
def test_aliases_and_case(alias, name):
    assert a1(alias) == a1(name)
    assert activation_expr(alias) == KNOWN_ACTIVATIONS[name]


def test_every_alias_points_to_a_known_name():
    assert set(ALIASES.values()) <= set(KNOWN_ACTIVATIONS)


@pytest.mark.parametrize(
    ("expr", "order"),
    [("x**3", 2), ("Abs(x)**3", 2), ("x*Abs(x)", 1), ("Abs(x)", 0), ("Heaviside(x)", -1),
     ("sign(x)", -1), ("1/x", -1), ("sqrt(x)", -1), ("exp(erf(x))", 2),
     ("Abs(x)**Rational(4, 3)", 1), ("Max(0, x)**2", 1), ("Max(0, x)**3", 2),
     ("log(cosh(x))", 2), ("Min(x, 1)*Abs(x - 2)", 0)],
)  # fmt: skip
def test_custom_string_expressions(expr, order):
    verdict = a1(expr)
    assert verdict.order == order
    assert verdict.holds is (order == 2)


def test_sympy_expression_input_with_plain_symbol():
    x = sp.Symbol("x")  # no real=True: the module substitutes its own real x
    assert a1(sp.Abs(x) ** 3).order == 2
    assert a1(x * sp.Abs(x)).order == 1
    assert a1(sp.tanh(x)).holds is True


def test_piecewise_c2_by_construction():
    # x**2 and x**2 + (x - 1)**3 agree with their first two derivatives at x = 1.
    f = sp.Piecewise((X**2, X < 1), (X**2 + (X - 1) ** 3, True))
    verdict = a1(f)
    assert verdict.holds is True and verdict.order == 2
    assert "x = 1" in verdict.reason
    # Same as a string; and with (x - 1)**2 the second derivative jumps by 2 at x = 1.
    assert a1("Piecewise((x**2, x < 1), (x**2 + (x - 1)**3, True))").order == 2
    bad = a1("Piecewise((x**2, x < 1), (x**2 + (x - 1)**2, True))")
    assert bad.order == 1 and bad.reason == "second derivative jumps at x = 1 (from 2 to 4)"


def test_flat_function_glued_to_zero_is_c2():
    assert a1("Piecewise((exp(-1/x), x > 0), (0, True))").holds is True


def test_piecewise_undefined_or_wrong_at_a_point_is_not_continuous():
    # Both one-sided limits agree; only the value at x = 0 is missing or wrong.
    assert a1("Piecewise((x, x > 0), (x, x < 0))").order == -1
    verdict = a1("Piecewise((1, Eq(x, 0)), (x, True))")
    assert verdict.order == -1 and "x = 0" in verdict.reason


@settings(max_examples=15, deadline=None)
@given(
    coeffs=st.lists(st.integers(-5, 5), min_size=1, max_size=4),
    c=st.integers(-4, 4).filter(lambda v: v != 0),
    b=st.integers(-3, 3),
    m=st.integers(0, 3),
)
def test_polynomial_glued_with_power_has_order_m_minus_1(coeffs, c, b, m):
    # p + c (x - b)^m differs from p at x = b in its m-th derivative only: C^(m-1), not C^m.
    p = sum(a * X**i for i, a in enumerate(coeffs))
    f = sp.Piecewise((p, X < b), (p + c * (X - b) ** m, True))
    assert a1(f).order == min(m - 1, 2)


def _second_difference(f, t, h=1e-5):
    return (f(t + h) - 2.0 * f(t) + f(t - h)) / h**2


@pytest.mark.parametrize("name", ["elu", "tanh", "softsign", "gelu"])
def test_numeric_second_derivative_jump_agrees(name):
    # Independent check: finite-difference f'' just left and right of 0 (numpy formulas).
    f = NUMPY_ACTIVATIONS[name]
    delta = 1e-3
    jump = abs(
        _second_difference(f, np.array([delta]))[0] - _second_difference(f, np.array([-delta]))[0]
    )
    smooth = jump < 0.05
    assert smooth == (a1(name).order == 2)
    if name == "elu":
        assert jump == pytest.approx(1.0, abs=0.01)


def test_undecided_is_none_not_a_guess():
    # sympy cannot prove 1 + erf(x) > 0; the function is C², so False would be wrong.
    verdict = a1("1/(1 + erf(x))")
    assert verdict.holds is not False
    assert (verdict.holds is None) == (verdict.order is None)
    if verdict.holds is None:
        assert verdict.reason.startswith("undecided")


@pytest.mark.parametrize("expr", ["log(erf(x))", "1/erf(x)", "sqrt(erf(x))", "erf(1/x)"])
def test_fallback_never_claims_c2_for_functions_undefined_somewhere(expr):
    # continuous_domain cannot handle erf; these are undefined for x <= 0 or at x = 0.
    assert a1(expr).holds is not True


def test_verdict_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        a1("tanh").holds = False  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad", ["mish", "tanhh", "a*x", "x + y", "x +", "gelu(x)", "x > 0", None, [1]]
)
def test_bad_input_raises_value_error(bad):
    with pytest.raises(ValueError, match="activation") as err:
        a1(bad)
    assert "relu" in str(err.value) and "softplus" in str(err.value)


def test_unknown_name_is_reported_as_such():
    with pytest.raises(ValueError, match="unknown activation name"):
        activation_expr("Mish")


def test_all_known_activations_are_quick():
    start = time.perf_counter()
    for name in KNOWN_ACTIVATIONS:
        a1(name)
    assert time.perf_counter() - start < 3.0


# ----------------------------------------------------------------------------- (A2)
@pytest.mark.parametrize("schedule, horizon", [
    ("0.1*0.5**floor(t/100)", 1000),
    ("0.5*0.1*(1+cos(pi*t/T))", 1000),
    ("Min(1,(t+1)/100)*0.1/sqrt(t+1)", 1000),
    ("Max(0.01, 0.1*(1-t/T))", 1000),
    ("1-t/10", 10),  # positive on the horizon only
    (np.array([0.1, 0.2]), None),
    ([0.3, 0.2, 0.1], 3),
    (lambda steps: 0.1 / (steps + 1.0), 50),
])
def test_a2_not_applicable_on_a_finite_horizon(schedule, horizon):
    verdict = a2(schedule, horizon)
    assert verdict.holds is None and verdict.sum_diverges is None
    assert "not applicable" in verdict.reason and "finite horizon" in verdict.reason


@pytest.mark.parametrize("schedule, holds", [
    ("1/(t+1)", True), ("0.3/(t+0.7)**0.6", True), ("0.1", False), ("(t+1)**-0.5", False),
    ("0.1*0.99**t", False),
])
def test_a2_for_schedules_on_all_t(schedule, holds):
    # c/(t+t0)^p: (A2) iff 1/2 < p ≤ 1 (p = 1/2: Σa² = Σ1/(t+1) diverges); 0.99^t: Σa < ∞
    assert a2(schedule, 1000).holds is holds


@pytest.mark.parametrize("text", [
    "__import__('pathlib').Path(MARK).touch()", "(lambda: open(MARK, 'w'))()",
    "Symbol('y').func(0) + x", "x.func(MARK)",
])
def test_an_activation_string_never_runs_code(tmp_path, text):
    """Strings were read by sympy's parse_expr, which evaluates Python: now by theory.formula."""
    marker = tmp_path / "ran"
    with pytest.raises(ValueError, match="activation"):
        a1(text.replace("MARK", repr(str(marker))))
    assert not marker.exists()
