r"""Step-size schedules a(t), t = 0, 1, 2, ... (the index starts at 0).

Two kinds of schedule:

* :class:`PowerSchedule`: a(t) = c / (t + t0)^p with c > 0 and t0 > 0 (p = 0 is the constant c,
  p = 1 the harmonic schedule). Its partial sums have closed forms in the Hurwitz zeta function
  ζ(s, q) = Σ_{k≥0} (k + q)^{-s} and the digamma function ψ:

      Σ_{t<T} (t + t0)^{-s} = ζ(s, t0) − ζ(s, t0 + T)      (s ≠ 1)
                            = ψ(t0 + T) − ψ(t0)             (s = 1)
                            = T                             (s = 0)

  so Σ_{t<T} a(t)^k = c^k · Σ_{t<T} (t + t0)^{-kp}, and γ = Σ_{t≥0} a(t)² = c²·ζ(2p, t0) when
  2p > 1 (for p = 1: c²·ψ′(t0); for a(t) = 1/(t+1): π²/6).

* :class:`ExpressionSchedule`: any expression in ``t`` that sympy parses. An expression that is a
  power law in disguise (``"0.05/(1+t/100)"`` = 5/(t + 100)) is recognised by
  :func:`parse_schedule` and becomes a :class:`PowerSchedule`. Other expressions are summed
  exactly term by term up to ``HEAD_TERMS`` terms and beyond that with the Euler–Maclaurin formula

      Σ_{t=N}^{T−1} f(t) = ∫_N^T f(x) dx + (f(N) − f(T))/2
                           + Σ_{j=1}^{m} B_{2j}/(2j)! · (f^{(2j−1)}(T) − f^{(2j−1)}(N)) + R_m,
      |R_m| ≤ 2ζ(2m)/(2π)^{2m} · ∫_N^T |f^{(2m)}(x)| dx,

  with m = ``EM_ORDER``, derivatives from sympy and integrals by mpmath quadrature; the bound on
  |R_m| (plus the quadrature's own error estimate) is returned as the stated error.

All sums are computed with mpmath at ``DPS`` significant digits, so that a single step is
resolved even at T ~ 10^15 (where float64 cannot tell Σ_{t<T} a(t) from Σ_{t<T+1} a(t)).
Nothing here calls a sympy routine that can stall without a time limit: sympy's convergence test
runs on a daemon thread with a timeout of ``SYMPY_TIMEOUT`` seconds.
"""

from __future__ import annotations

import functools
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import mpmath as mp
import numpy as np
import sympy as sp
from numpy.typing import ArrayLike
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    rationalize,
    standard_transformations,
)

#: The time index: a non-negative integer.
t = sp.Symbol("t", integer=True, nonnegative=True)

DPS = 40  #: significant decimal digits of every mpmath computation here
HEAD_TERMS = 4096  #: terms of an expression schedule summed one by one before Euler–Maclaurin
EM_ORDER = 4  #: number m of Bernoulli correction terms in the Euler–Maclaurin tail
SYMPY_TIMEOUT = 5.0  #: seconds allowed to sympy's convergence test before it counts as undecided
TIE_TOLERANCE = mp.mpf("1e-30")  #: relative slack under which a sum counts as reaching a level
MAX_HORIZON = 10**24  #: largest horizon searched by :meth:`Schedule.horizon_for_sum`
TINY_EXPONENT = 1e-15  #: below this |p·k|, power sums go through Euler–Maclaurin, not ζ(s, q)
QUAD_MAXDEGREE = 6  #: caps mpmath's tanh-sinh effort (an oscillating f gets a large error, fast)
DIRECT_LIMIT = 10**7  #: largest T summed term by term in float64 when Euler–Maclaurin is poor
GRID_DENSE = 10**5  #: t < GRID_DENSE checked one by one when positivity is not decided by sympy


@dataclass(frozen=True)
class SumEstimate:
    """A partial sum computed in mpmath with a bound on its error.

    ``value`` is an mpmath number (``mp.inf`` for a divergent infinite sum), ``error`` a bound on
    |value − exact| (0 up to rounding at ``DPS`` digits for closed forms), ``method`` names how
    it was obtained.
    """

    value: mp.mpf
    error: mp.mpf
    method: str

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class A2Verdict:
    """Assumption (A2): a(t) > 0, Σ a(t) = ∞, Σ a(t)² < ∞.

    ``holds`` is True, False, or None where neither sympy nor an analytic rule decides;
    ``sum_diverges`` and ``squares_converge`` are the two halves; ``reason`` says why in one line.
    """

    holds: bool | None
    sum_diverges: bool | None
    squares_converge: bool | None
    reason: str


class Schedule(ABC):
    """A positive step-size schedule a(t), t = 0, 1, 2, ...

    Subclasses provide :attr:`expression` (a sympy expression in :data:`t`), :meth:`__call__`
    (vectorized float64 values), :meth:`_sum` (Σ_{t<T} a(t)^k in mpmath), and :meth:`a2`.
    """

    expression: sp.Expr
    source: str

    @abstractmethod
    def __call__(self, steps: ArrayLike) -> np.ndarray:
        """a(t) for an array of steps t, as float64."""

    @abstractmethod
    def _sum(self, horizon: int | None, power: float) -> SumEstimate:
        """Σ_{t<horizon} a(t)^power (horizon None: the infinite sum)."""

    @abstractmethod
    def a2(self) -> A2Verdict:
        """The (A2) verdict with its reason."""

    @abstractmethod
    def log_product(self, scale: float, horizon: int | None) -> SumEstimate:
        """Σ_{t<T} log(1 + scale·a(t)) = log Π_{t<T} (1 + scale·a(t))."""

    def partial_sum_estimate(self, horizon: int | None, power: float = 1) -> SumEstimate:
        """Σ_{t<T} a(t)^power with its error bound; ``horizon=None`` gives Σ_{t≥0}."""
        if horizon is not None:
            horizon = _check_horizon(horizon)
            if horizon == 0:
                return SumEstimate(mp.mpf(0), mp.mpf(0), "empty sum")
        with mp.workdps(DPS):
            return self._sum(horizon, power)

    def partial_sum(self, horizon: int | None, power: float = 1) -> float:
        """Σ_{t<T} a(t)^power as a float (``inf`` for a divergent infinite sum)."""
        return float(self.partial_sum_estimate(horizon, power).value)

    @property
    def gamma(self) -> float:
        """γ = Σ_{t≥0} a(t)² (``inf`` when the sum diverges)."""
        return self.partial_sum(None, 2)

    def horizon_for_sum(self, level: float, power: float = 1) -> int | None:
        """The smallest integer T ≥ 0 with Σ_{t<T} a(t)^power ≥ level, exact to the step.

        None when Σ_{t<MAX_HORIZON} a(t)^power < level (in particular when the infinite sum
        stays below ``level``): beyond MAX_HORIZON = 10^24, 40 digits no longer resolve a step.
        The sums are compared in mpmath at ``DPS`` digits; a sum within a relative
        ``TIE_TOLERANCE`` below the level counts as reaching it, so that an exact tie
        (Σ_{t<2} 1/(t+1) = 1.5) is not lost to rounding. The search bisects on the exponent
        k of 2^k, then alternates linear interpolation and bisection on the integers.
        """
        with mp.workdps(DPS):
            target = mp.mpf(level) * (1 - TIE_TOLERANCE)
            if target <= 0:
                return 0

            def total(horizon: int) -> mp.mpf:
                return self.partial_sum_estimate(horizon, power).value

            if total(MAX_HORIZON) < target:
                return None
            low_k, high_k = -1, MAX_HORIZON.bit_length()  # reached at 2^high_k (≥ MAX_HORIZON)
            while high_k - low_k > 1:
                middle = (low_k + high_k) // 2
                low_k, high_k = (low_k, middle) if total(2**middle) >= target else (middle, high_k)
            if high_k == 0:
                return 1
            low, high = 2**low_k, min(2**high_k, MAX_HORIZON)  # not reached at low, reached at high
            low_sum, high_sum, interpolate = total(low), total(high), True
            while high - low > 1:
                middle = (low + high) // 2
                if interpolate and high_sum > low_sum:
                    fraction = (target - low_sum) / (high_sum - low_sum)
                    step = int(mp.floor(fraction * (high - low)))
                    middle = min(max(low + step, low + 1), high - 1)
                value, interpolate = total(middle), not interpolate
                if value >= target:
                    high, high_sum = middle, value
                else:
                    low, low_sum = middle, value
            return high

    def describe(self) -> str:
        """One line naming the schedule and how its sums are computed."""
        return f"a(t) = {self.source}"


class PowerSchedule(Schedule):
    """a(t) = c / (t + t0)^p with c > 0, t0 > 0 (p = 0: the constant c; p = 1: harmonic)."""

    def __init__(self, c: float = 1.0, t0: float = 1.0, p: float = 1.0, source: str | None = None):
        c, t0, p = float(c), float(t0), float(p)
        if not (c > 0 and math.isfinite(c)):
            raise ValueError(f"schedule: c must be a positive number, got {c}")
        if not (t0 > 0 and math.isfinite(t0)):
            raise ValueError(f"schedule: t0 must be positive (a(0) = c/t0^p), got {t0}")
        if not math.isfinite(p):
            raise ValueError(f"schedule: p must be finite, got {p}")
        self.c, self.t0, self.p = c, t0, p
        self.expression = sp.nsimplify(c) * (t + sp.nsimplify(t0)) ** (-sp.nsimplify(p))
        self.source = source or _power_text(c, t0, p)

    def __call__(self, steps: ArrayLike) -> np.ndarray:
        steps = np.asarray(steps, dtype=np.float64)
        return self.c * (steps + self.t0) ** (-self.p)

    def _sum(self, horizon: int | None, power: float) -> SumEstimate:
        scale = mp.mpf(self.c) ** power
        exponent = mp.mpf(self.p) * power
        t0 = mp.mpf(self.t0)
        if horizon is None:
            if exponent <= 1:
                return SumEstimate(mp.inf, mp.mpf(0), f"diverges: Σ (t+t0)^-{_num(exponent)}")
            return SumEstimate(scale * mp.zeta(exponent, t0), mp.mpf(0), "Hurwitz zeta ζ(s, t0)")
        if exponent == 0:
            return SumEstimate(scale * horizon, mp.mpf(0), "c^k·T")
        if abs(exponent) < TINY_EXPONENT:  # mpmath's ζ(s, q) loses all digits for s → 0⁻
            terms = (t + sp.nsimplify(self.t0)) ** (-sp.Float(exponent, DPS))
            estimate = _sum_expression(terms, horizon)
            return SumEstimate(scale * estimate.value, scale * estimate.error, estimate.method)
        if exponent == 1:
            value = mp.digamma(t0 + horizon) - mp.digamma(t0)
            return SumEstimate(scale * value, mp.mpf(0), "digamma ψ(t0+T) − ψ(t0)")
        value = mp.zeta(exponent, t0) - mp.zeta(exponent, t0 + horizon)
        return SumEstimate(scale * value, mp.mpf(0), "Hurwitz zeta ζ(s, t0) − ζ(s, t0+T)")

    def log_product(self, scale: float, horizon: int | None) -> SumEstimate:
        """Σ_{t<T} log(1 + s·a(t)); for p = 1 in closed form via log-gamma:

        Π_{t<T} (1 + s·c/(t+t0)) = Γ(T+t0+sc)·Γ(t0) / (Γ(t0+sc)·Γ(T+t0)).
        """
        with mp.workdps(DPS):
            shift = mp.mpf(scale) * self.c
            if horizon is None:
                if self.p <= 1:
                    return SumEstimate(mp.inf, mp.mpf(0), "diverges with Σ a(t)")
                return _expression_schedule_of(self).log_product(scale, horizon)
            horizon = _check_horizon(horizon)
            if self.p == 0:
                return SumEstimate(horizon * mp.log1p(shift), mp.mpf(0), "T·log(1 + s·c)")
            if self.p == 1:
                t0 = mp.mpf(self.t0)
                value = (mp.loggamma(horizon + t0 + shift) - mp.loggamma(horizon + t0)
                         - mp.loggamma(t0 + shift) + mp.loggamma(t0))
                return SumEstimate(value, mp.mpf(0), "log-gamma closed form")
        return _expression_schedule_of(self).log_product(scale, horizon)

    def a2(self) -> A2Verdict:
        """(A2) for c/(t+t0)^p: Σa = ∞ iff p ≤ 1, Σa² < ∞ iff p > 1/2; holds iff 1/2 < p ≤ 1."""
        diverges, converges = self.p <= 1, self.p > 0.5
        holds = diverges and converges
        why = (f"p = {_num(self.p)}: Σ a(t) {'diverges' if diverges else 'converges'} "
               f"(needs p ≤ 1), Σ a(t)² {'converges' if converges else 'diverges'} (needs p > 1/2)")
        return A2Verdict(holds, diverges, converges, why)

    def describe(self) -> str:
        return (f"a(t) = {self.source}  [power family: c = {_num(self.c)}, t0 = {_num(self.t0)}, "
                f"p = {_num(self.p)}; closed-form sums]")


class ExpressionSchedule(Schedule):
    """a(t) given by a sympy expression in t (summed exactly, then by Euler–Maclaurin)."""

    def __init__(self, expression: sp.Expr, source: str | None = None):
        self.expression = sp.sympify(expression)
        self.source = source or str(self.expression)
        self._numpy = sp.lambdify(t, self.expression, "numpy")

    def __call__(self, steps: ArrayLike) -> np.ndarray:
        steps = np.asarray(steps, dtype=np.float64)
        with np.errstate(all="ignore"):
            values = self._numpy(steps)
        return np.broadcast_to(np.asarray(values, dtype=np.float64), steps.shape).copy()

    def _sum(self, horizon: int | None, power: float) -> SumEstimate:
        terms = self.expression ** sp.nsimplify(power)
        if horizon is None and _sympy_converges(terms) is False:
            return SumEstimate(mp.inf, mp.mpf(0), "diverges (sympy's convergence test)")
        return _sum_expression(terms, horizon)

    def log_product(self, scale: float, horizon: int | None) -> SumEstimate:
        """Σ_{t<T} log(1 + s·a(t)), summed like any expression (Euler–Maclaurin beyond the head)."""
        if horizon is None and self.a2_parts()[0] is True:
            return SumEstimate(mp.inf, mp.mpf(0), "diverges with Σ a(t)")
        with mp.workdps(DPS):
            return _sum_expression(sp.log(1 + sp.nsimplify(scale) * self.expression), horizon)

    def a2_parts(self) -> tuple[bool | None, bool | None]:
        """(Σ a diverges, Σ a² converges) by sympy's convergence test, None where undecided."""
        converges = _sympy_converges(self.expression)
        squares = _sympy_converges(self.expression**2)
        return (None if converges is None else not converges), squares

    def a2(self) -> A2Verdict:
        diverges, converges = self.a2_parts()
        parts = [f"Σ a(t) {_verdict_word(diverges, 'diverges', 'converges')}",
                 f"Σ a(t)² {_verdict_word(converges, 'converges', 'diverges')}"]
        holds = None if None in (diverges, converges) else bool(diverges and converges)
        if diverges is False or converges is False:
            holds = False
        return A2Verdict(holds, diverges, converges, ", ".join(parts) + " (sympy)")

    def describe(self) -> str:
        return (f"a(t) = {self.source}  [expression; exact sum of the first {HEAD_TERMS} terms, "
                f"Euler–Maclaurin (m = {EM_ORDER}) beyond]")


def parse_schedule(text: str, horizon: int | None = None) -> Schedule:
    """Parse ``text`` as a(t) and check that a(t) > 0 on the horizon (or for all t ≥ 0).

    Accepts ``^`` for powers and implicit multiplication; decimals are read as exact rationals
    (``0.05`` is 1/20). The text goes through sympy's ``parse_expr``, which evaluates Python:
    do not pass untrusted strings. A power law c/(t + t0)^p in any
    spelling becomes a :class:`PowerSchedule`; anything else an :class:`ExpressionSchedule`.
    Raises ValueError for text sympy cannot parse, a symbol other than t, a(0) undefined
    (``"1/t"``: the index starts at 0, so the hint suggests ``1/(t+1)``), or a(t) ≤ 0.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("schedule: expected an expression in t such as '1/(t+1)'")
    try:
        transformations = (*standard_transformations, convert_xor, rationalize,
                           implicit_multiplication_application)
        expression = parse_expr(text, local_dict={"t": t}, transformations=transformations)
        expression = sp.sympify(expression)
    except Exception as error:  # sympy raises many kinds (SyntaxError, TokenError, TypeError…)
        raise ValueError(
            f"schedule: cannot parse {text!r} as an expression in t ({error})") from None
    if not isinstance(expression, sp.Expr):
        raise ValueError(f"schedule: {text!r} is not an expression in t")
    unknown = sorted(str(s) for s in expression.free_symbols if s != t)
    if unknown:
        raise ValueError(f"schedule: unknown symbol(s) {', '.join(unknown)} in {text!r}; "
                         "a schedule is an expression in t only")
    first = expression.subs(t, 0)
    if not first.is_finite:
        shifted = expression.subs(t, t + 1)
        hint = (f": did you mean {str(shifted).replace(' ', '')}?"
                if shifted.subs(t, 0).is_positive else "")
        raise ValueError(f"schedule: a(0) of {text!r} is undefined, and the index starts at "
                         f"t = 0{hint}")
    schedule = _as_power_schedule(expression, text.strip()) or ExpressionSchedule(
        expression, text.strip())
    check_positive(schedule, horizon)
    return schedule


def as_schedule(spec: Schedule | str | float, horizon: int | None = None) -> Schedule:
    """A schedule from a :class:`Schedule`, an expression string, or a number (constant)."""
    if isinstance(spec, Schedule):
        check_positive(spec, horizon)
        return spec
    if isinstance(spec, str):
        return parse_schedule(spec, horizon)
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return PowerSchedule(c=float(spec), t0=1.0, p=0.0, source=str(spec))
    raise ValueError(
        f"schedule: expected a Schedule, an expression string or a number, got {spec!r}")


def harmonic(c: float = 1.0, t0: float = 1.0) -> PowerSchedule:
    """a(t) = c/(t + t0); the paper's "a(t) = 1/t" is harmonic() = 1/(t+1)."""
    return PowerSchedule(c, t0, 1.0)


def constant(c: float) -> PowerSchedule:
    """a(t) = c."""
    return PowerSchedule(c, 1.0, 0.0, source=_num(c))


def check_positive(schedule: Schedule, horizon: int | None = None) -> None:
    """Raise ValueError unless a(t) > 0 for every t < horizon (every t ≥ 0 without one).

    Power schedules are positive by construction. For expressions: sympy's assumption system
    first (t a non-negative integer); where it cannot decide, the values at every t below
    min(horizon, GRID_DENSE) and at log-spaced t up to the horizon (or 10^15) are checked.
    """
    if isinstance(schedule, PowerSchedule):
        return
    expression = schedule.expression
    if horizon is None and expression.is_positive:
        return
    end = 10**15 if horizon is None else _check_horizon(horizon)
    dense = np.arange(min(end, GRID_DENSE), dtype=np.float64)
    sparse = np.unique(np.floor(np.geomspace(max(GRID_DENSE, 1), max(end - 1, 1), 2000)))
    steps = np.concatenate([dense, sparse[sparse < end]])
    values = schedule(steps)
    bad = np.flatnonzero(~((values > 0) & np.isfinite(values)))
    if bad.size:
        where = int(steps[bad[0]])
        scope = "for t ≥ 0" if horizon is None else f"on the horizon t < {horizon}"
        raise ValueError(f"schedule: a(t) = {schedule.source} must be positive and finite {scope}, "
                         f"but a({where}) = {values[bad[0]]:g}")


def _as_power_schedule(expression: sp.Expr, source: str) -> PowerSchedule | None:
    """Recognise c·(t + t0)^(−p): then −a/a′ = (t + t0)/p is linear in t.

    The fit is accepted only if it reproduces the expression at several t to 1e-12 relative.
    """
    derivative = sp.diff(expression, t)
    if derivative == 0:
        value = float(expression)
        return PowerSchedule(value, 1.0, 0.0, source=source) if value > 0 else None
    ratio = sp.cancel(sp.powsimp(-expression / derivative, force=True))
    ratio = ratio.replace(lambda x: x.is_Pow and x.exp.is_Number and float(x.exp) == 1.0,
                          lambda x: x.base)
    ratio = sp.expand(ratio)
    if not ratio.is_polynomial(t) or sp.degree(ratio, t) != 1:
        return None
    slope, intercept = sp.Poly(ratio, t).all_coeffs()
    p, t0 = float(1 / slope), float(intercept / slope)
    try:
        first = float(expression.subs(t, 0))
    except TypeError:
        return None
    if not (t0 > 0 and first > 0):
        return None
    candidate = PowerSchedule(first * t0**p, t0, p, source=source)
    probe = np.array([0.0, 1.0, 7.0, 1e3, 1e6, 1e12])
    expected = np.array([float(expression.subs(t, int(s))) for s in probe])
    if not np.allclose(candidate(probe), expected, rtol=1e-12, atol=0):
        return None
    return candidate


def _expression_schedule_of(schedule: PowerSchedule) -> ExpressionSchedule:
    return ExpressionSchedule(schedule.expression, schedule.source)


@dataclass(frozen=True, eq=False)  # hashed by identity: a key of _cached_segment
class _Numeric:
    """Callables for f(x) = expression(t = x): f in mpmath, its odd derivatives f′, f‴, …,
    f^(2m) for the remainder, f in numpy, and the exact prefix sums of the first HEAD_TERMS."""

    f: Callable
    odd_derivatives: list
    top_derivative: Callable
    f_numpy: Callable
    head: list

    def segment(self, low: mp.mpf) -> tuple[mp.mpf, mp.mpf, mp.mpf]:
        """:func:`_integrate` over the whole segment [low, 8·low], cached."""
        return _cached_segment(self, low)


@functools.lru_cache(maxsize=64)
def _numeric(expression: sp.Expr) -> _Numeric:
    x = sp.Symbol("x", positive=True)
    f = expression.subs(t, x)
    derivatives = [f]
    for _ in range(2 * EM_ORDER):
        derivatives.append(sp.diff(derivatives[-1], x))
    odd = [_mpmath(x, derivatives[2 * j - 1]) for j in range(1, EM_ORDER + 1)]
    f_mp = _mpmath(x, f)
    return _Numeric(f_mp, odd, _mpmath(x, derivatives[-1]), sp.lambdify(x, f, "numpy"),
                    _head_prefix_sums(f_mp))


def _mpmath(x: sp.Symbol, expression: sp.Expr) -> Callable:
    """An mpmath callable, with common subexpressions evaluated once (high derivatives swell)."""
    return sp.lambdify(x, expression, "mpmath", cse=True)


@functools.lru_cache(maxsize=4096)
def _cached_segment(numeric: _Numeric, low: mp.mpf) -> tuple[mp.mpf, mp.mpf, mp.mpf]:
    with mp.workdps(DPS):
        return _integrate(numeric, low, low * 8)


def _head_prefix_sums(f: Callable) -> list:
    """[Σ_{t<k} f(t) for k = 0..HEAD_TERMS] in mpmath (computed once per expression)."""
    with mp.workdps(DPS):
        sums, total = [mp.mpf(0)], mp.mpf(0)
        for step in range(HEAD_TERMS):
            total += f(mp.mpf(step))
            sums.append(total)
    return sums


def _sum_expression(expression: sp.Expr, horizon: int | None) -> SumEstimate:
    """Σ_{t<T} f(t): exact for T ≤ HEAD_TERMS, else head + Euler–Maclaurin tail (see module).

    Where the Euler–Maclaurin bound is poor (an oscillating f, say) and T ≤ DIRECT_LIMIT, the
    float64 sum of all T terms is used instead when its error bound, 4·T·ε·max|f|, is smaller.
    """
    with mp.workdps(DPS):
        numeric = _numeric(expression)
        if horizon is not None and horizon <= HEAD_TERMS:
            return SumEstimate(numeric.head[horizon], mp.mpf(0), "direct summation")
        estimate = _euler_maclaurin(numeric, horizon)
        poor = not estimate.error <= mp.mpf("1e-12") * abs(estimate.value)
        if horizon is not None and horizon <= DIRECT_LIMIT and poor:
            direct = _direct_float_sum(numeric.f_numpy, horizon)
            if not estimate.error <= direct.error:
                return direct
        return estimate


def _euler_maclaurin(numeric: _Numeric, horizon: int | None) -> SumEstimate:
    """head + ∫_N^T f + (f(N) − f(T))/2 + Σ_j B_2j/(2j)!·(f^(2j−1)(T) − f^(2j−1)(N)) ± bound."""
    f, head = numeric.f, numeric.head
    start = mp.mpf(HEAD_TERMS)
    end = mp.inf if horizon is None else mp.mpf(horizon)
    integral, quad_error, remainder = mp.mpf(0), mp.mpf(0), mp.mpf(0)
    for low, high in _segments(start, end):
        if high == end:  # the last, partial segment: integrated anew for each horizon
            value, error, top = _integrate(numeric, low, high)
        else:  # whole segments [N·8^k, N·8^(k+1)] are shared by every horizon beyond them
            value, error, top = numeric.segment(low)
        integral, quad_error, remainder = integral + value, quad_error + error, remainder + top
    tail = integral + f(start) / 2 - (0 if horizon is None else f(end) / 2)
    for j, derivative in enumerate(numeric.odd_derivatives, start=1):
        at_end = 0 if horizon is None else derivative(end)
        tail += mp.bernoulli(2 * j) / mp.factorial(2 * j) * (at_end - derivative(start))
    bound = 2 * mp.zeta(2 * EM_ORDER) / (2 * mp.pi) ** (2 * EM_ORDER) * remainder
    if not mp.isfinite(tail):
        return SumEstimate(mp.inf, mp.mpf(0), "diverges (Euler–Maclaurin tail)")
    return SumEstimate(head[-1] + tail, bound + quad_error,
                       f"{HEAD_TERMS} terms + Euler–Maclaurin (m = {EM_ORDER})")


def _integrate(numeric: _Numeric, low: mp.mpf, high: mp.mpf) -> tuple[mp.mpf, mp.mpf, mp.mpf]:
    """(∫ f, its quadrature error, ∫ |f^(2m)|) over [low, high]. The last one only bounds the
    remainder, so it is computed at 15 digits, and doubled to cover its own quadrature error."""
    value, error = mp.quad(numeric.f, [low, high], error=True, maxdegree=QUAD_MAXDEGREE)
    with mp.workdps(15):
        top = numeric.top_derivative
        remainder = 2 * mp.quad(lambda x: abs(top(x)), [low, high], maxdegree=QUAD_MAXDEGREE)
    return value, abs(error), remainder


def _segments(start: mp.mpf, end: mp.mpf) -> list[tuple[mp.mpf, mp.mpf]]:
    """[start, 8·start], [8·start, 64·start], ... up to end (inf allowed: the last is [·, inf])."""
    points = [start]
    while points[-1] * 8 < (end if mp.isfinite(end) else mp.mpf(10) ** 40):
        points.append(points[-1] * 8)
    points.append(end)
    return list(zip(points[:-1], points[1:], strict=True))


def _direct_float_sum(f_numpy: Callable, horizon: int) -> SumEstimate:
    """math.fsum of the float64 terms, in chunks; error ≤ 4·T·ε·max|f| (term rounding)."""
    partial, largest, chunk = [], 0.0, 1 << 20
    for begin in range(0, horizon, chunk):
        steps = np.arange(begin, min(begin + chunk, horizon), dtype=np.float64)
        values = np.broadcast_to(np.asarray(f_numpy(steps), dtype=np.float64), steps.shape)
        partial.append(math.fsum(values))
        largest = max(largest, float(np.max(np.abs(values))))
    error = 4 * horizon * np.finfo(np.float64).eps * largest
    return SumEstimate(mp.mpf(math.fsum(partial)), mp.mpf(error), "direct float64 summation")


@functools.lru_cache(maxsize=256)
def _sympy_converges(expression: sp.Expr) -> bool | None:
    """Σ_{t≥0} expression converges? sympy's test on a daemon thread, None after the timeout."""
    answer: list = []

    def decide() -> None:
        try:
            answer.append(sp.Sum(expression, (t, 0, sp.oo)).is_convergent())
        except Exception:  # sympy raises NotImplementedError and others where it cannot decide
            answer.append(None)

    worker = threading.Thread(target=decide, daemon=True)
    worker.start()
    worker.join(SYMPY_TIMEOUT)
    if not answer or answer[0] not in (True, False, sp.true, sp.false):
        return None
    return bool(answer[0])


def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer):
        if isinstance(horizon, float) and horizon.is_integer():
            horizon = int(horizon)
        else:
            raise ValueError(f"horizon: expected a non-negative integer, got {horizon!r}")
    if horizon < 0:
        raise ValueError(f"horizon: expected a non-negative integer, got {horizon}")
    return int(horizon)


def _verdict_word(value: bool | None, yes: str, no: str) -> str:
    return "undecided" if value is None else (yes if value else no)


def _num(value: float) -> str:
    return f"{float(value):.10g}"


def _power_text(c: float, t0: float, p: float) -> str:
    if p == 0:
        return _num(c)
    base = f"(t+{_num(t0)})" if p == 1 else f"(t+{_num(t0)})^{_num(p)}"
    return f"{_num(c)}/{base}"
