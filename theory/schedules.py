r"""Step-size schedules a(t), t = 0, 1, 2, ... (the index starts at 0).

Three kinds of schedule (text is read by :func:`parse_schedule`, which never runs Python: a
token whitelist, a node-by-node check of sympy's translation, evaluation without builtins):

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
  |R_m| (plus the quadrature's own error estimate) is returned as the stated error. An
  expression with T (the horizon: cosine decay ``0.05*(1+cos(pi*t/T))``), or positive on the
  horizon only, is given for t < T only (:attr:`Schedule.horizon`).

* :class:`SampledSchedule`: a(t) on a finite horizon t < n from its float64 values: a numpy
  array or sequence, a Python callable, or an expression that is not smooth (floor, ceil, Min,
  Max, Abs, Piecewise: step decay, warmup, linear decay to a floor). Its sums are the
  correctly rounded ``math.fsum`` of the values; nothing symbolic is computed, except where a
  horizon is settled exactly (below).

A schedule given on a finite horizon has no Σ_{t≥0} (γ raises ValueError), and (A2), a
statement about t → ∞, is "not applicable" for it.

All sums are computed with mpmath at ``DPS`` significant digits, so that a single step is
resolved even at T ~ 10^15 (where float64 cannot tell Σ_{t<T} a(t) from Σ_{t<T+1} a(t)).
Nothing here calls a sympy routine that can stall without a time limit: sympy's convergence test
runs on a daemon thread with a timeout of ``SYMPY_TIMEOUT`` seconds, and is not run at all on
sin, cos, tan of arguments with numbers beyond ``TRIG_NUMBER`` (where it stalls). Horizons are
at most ``MAX_HORIZON`` = 10^24.

Horizons (:meth:`Schedule.horizon_for_sum`: the first T with Σ_{t<T} a(t)^k ≥ level) are exact
where rounding could decide them: a level at or above the limit Σ_{t≥0} a(t)^k (sympy's closed
form) is never reached, since a(t) > 0 keeps every partial sum strictly below it; and where a
partial sum is within its error of the level, the comparison is made in exact rationals (sympy's
closed form of Σ_{t<T}, or the terms as Fractions for T ≤ ``EXACT_TERMS``). Only irrational
terms within 10^−35 of the level are still compared at ``DPS`` digits.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeAlias

import mpmath as mp
import numpy as np
import sympy as sp
from numpy.typing import ArrayLike

from theory import formula
from theory.errors import BadArgument, integer
from theory.formula import FormulaError, Grammar

#: The time index: a non-negative integer.
t = sp.Symbol("t", integer=True, nonnegative=True)

DPS = 40  #: significant decimal digits of every mpmath computation here
HEAD_TERMS = 4096  #: terms of an expression schedule summed one by one before Euler–Maclaurin
EM_ORDER = 4  #: number m of Bernoulli correction terms in the Euler–Maclaurin tail
SYMPY_TIMEOUT = 5.0  #: seconds allowed to sympy's convergence test before it counts as undecided
RESOLUTION = mp.mpf(10) ** (5 - DPS)  #: relative rounding of a DPS-digit sum, at most
EXACT_TERMS = 10**5  #: largest T whose Σ_{t<T} is summed in exact rationals to settle a near-tie
MAX_HORIZON = 10**24  #: largest horizon searched by :meth:`Schedule.horizon_for_sum`
#: most digits of a horizon beyond MAX_HORIZON found exactly for a power law whose sum has a
#: digamma or linear closed form (ψ at 4000 digits takes milliseconds; Python writes ints of up
#: to 4300 digits)
MAX_DIGITS = 4000
#: the same for the other power laws, whose sums need the Hurwitz zeta function at that many
#: digits (mpmath: 0.5 s at 300 digits, minutes at 4000)
MAX_ZETA_DIGITS = 250
TINY_EXPONENT = 1e-15  #: below this |p·k|, power sums go through Euler–Maclaurin, not ζ(s, q)
QUAD_MAXDEGREE = 6  #: caps mpmath's tanh-sinh effort (an oscillating f gets a large error, fast)
DIRECT_LIMIT = 10**7  #: largest T summed term by term in float64 when Euler–Maclaurin is poor
GRID_DENSE = 10**5  #: t < GRID_DENSE checked one by one when positivity is not decided by sympy
SAMPLED_LIMIT = 10**8  #: largest horizon of a schedule summed value by value (SampledSchedule)
CALLABLE_LIMIT = 10**7  #: largest horizon on which a Python callable is evaluated and kept
CHUNK = 1 << 20  #: values evaluated at a time by a direct sum


#: A level for :meth:`Schedule.horizon_for_sum`, taken at its exact value.
Level: TypeAlias = "float | int | Fraction | mp.mpf | sp.Expr"


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

    def __repr__(self) -> str:
        return (f"SumEstimate({mp.nstr(self.value, 16)} ± {mp.nstr(self.error, 3)}, "
                f"{self.method!r})")


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

    expression: sp.Expr | None
    source: str
    #: a(t) is given (and checked positive) for t < horizon only; None: for every t ≥ 0.
    horizon: int | None = None

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
        """Σ_{t<T} a(t)^power with its error bound; ``horizon=None`` gives Σ_{t≥0}.

        A schedule given on a finite horizon n (:attr:`horizon`) has sums for T ≤ n only.

        Example:
            >>> harmonic().partial_sum_estimate(3, 2)           # 1 + 1/4 + 1/9 = 49/36
            SumEstimate(1.361111111111111 ± 0.0, 'Hurwitz zeta ζ(s, t0) − ζ(s, t0+T)')
        """
        if horizon is not None:
            horizon = _check_horizon(horizon)
        self._check_within(horizon)
        if horizon == 0:
            return SumEstimate(mp.mpf(0), mp.mpf(0), "empty sum")
        with mp.workdps(DPS):
            try:
                return self._sum(horizon, power)
            except (OverflowError, MemoryError) as error:  # exp(exp(t)): 2^(10^1779) bits
                raise BadArgument("schedule", f"the sums of a(t) = {self.source} overflow "
                                 f"({type(error).__name__})") from None

    def partial_sum(self, horizon: int | None, power: float = 1) -> float:
        """Σ_{t<T} a(t)^power as a float (``inf`` for a divergent infinite sum).

        Example:
            >>> harmonic().partial_sum(4), harmonic().partial_sum(None)   # 25/12, Σ 1/(t+1) = ∞
            (2.0833333333333335, inf)
        """
        return float(self.partial_sum_estimate(horizon, power).value)

    @property
    def gamma(self) -> float:
        """γ = Σ_{t≥0} a(t)² (``inf`` when the sum diverges; ValueError on a finite horizon).

        Example:
            >>> parse_schedule("0.1*0.5**t").gamma               # 0.01/(1 − 1/4)
            0.013333333333333334
        """
        return self.partial_sum(None, 2)

    def _check_within(self, horizon: int | None) -> None:
        """ValueError unless Σ_{t<horizon} is defined: horizon ≤ :attr:`horizon` when finite."""
        if self.horizon is not None and (horizon is None or horizon > self.horizon):
            wanted = "Σ_{t≥0}" if horizon is None else f"the horizon {horizon}"
            raise BadArgument("horizon", f"a(t) = {self.source} is given for t < {self.horizon} "
                             f"only (a finite horizon), so {wanted} is beyond it")

    def horizon_for_sum(self, level: Level, power: float = 1) -> int | None:
        """The smallest integer T ≥ 0 with Σ_{t<T} a(t)^power ≥ level, exact to the step.

        ``level`` is taken exactly (a float, Fraction or mpmath number as its binary or rational
        value, or a sympy number such as κr²/(λ² ln 2)). None when no T ≤ MAX_HORIZON = 10^24
        reaches it (beyond 10^24, 40 digits no longer resolve a step), in particular when
        ``level`` ≥ sup_T Σ_{t<T} a(t)^power = Σ_{t≥0} a(t)^power: a(t) > 0, so every partial
        sum is strictly below the limit (Σ_{t<T} 0.1·0.99^t = 10(1 − 0.99^T) < 10 never reaches
        10). The limit is sympy's closed form where it has one (geometric sums, c^k·ζ(pk, t0)),
        compared with the level exactly. On a finite horizon n (:attr:`horizon`) the search stops
        at n: None when Σ_{t<n} < level. The search bisects on the exponent k of 2^k, then
        alternates linear interpolation and bisection on the integers, with sums at ``DPS``
        digits; :meth:`_first_reaching` then settles the answer with comparisons that are exact
        where the sum is within its error of the level.
        """
        exact_level = _exact_level(level)
        with mp.workdps(DPS):
            target = _mp(exact_level)
            if not exact_level > 0:
                return 0

            limit = MAX_HORIZON if self.horizon is None else self.horizon
            if isinstance(self, PowerSchedule) and self.exact_p <= 0 and power > 0:
                # a(t) ≥ a(0) for every t: the level is reached by T = ⌈level/a(0)^power⌉
                first = (_mp(self.exact_c) * _mp(self.exact_t0) ** -_mp(self.exact_p)) ** power
                limit = min(limit, int(mp.ceil(target / first)) + 1)
            if self.horizon is None and self._converges(power) and \
                    self._at_or_above_limit(exact_level, target, power):
                return None

            def total(horizon: int) -> mp.mpf:
                return self.partial_sum_estimate(min(horizon, limit), power).value

            if total(limit) < target:
                return self._first_reaching(None, exact_level, power, limit)
            low_k, high_k = -1, limit.bit_length()  # reached at 2^high_k (≥ limit)
            while high_k - low_k > 1:
                middle = (low_k + high_k) // 2
                low_k, high_k = (low_k, middle) if total(2**middle) >= target else (middle, high_k)
            if high_k == 0:
                return self._first_reaching(1, exact_level, power, limit)
            low, high = 2**low_k, min(2**high_k, limit)  # not reached at low, reached at high
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
            return self._first_reaching(high, exact_level, power, limit)

    def _at_or_above_limit(self, level: sp.Expr, target: mp.mpf, power: float) -> bool:
        """Whether level ≥ Σ_{t≥0} a(t)^power (finite), so that no partial sum reaches it.

        Decided exactly against sympy's closed form of the limit where it has one; otherwise
        against the DPS-digit estimate, where a level within its error of the limit counts as
        at the limit."""
        supremum = self._supremum(power)
        if supremum is not None:
            try:
                return bool(level >= supremum)
            except TypeError:  # sympy cannot order them
                pass
        estimate = self.partial_sum_estimate(None, power)
        return bool(target >= estimate.value - estimate.error - abs(target) * RESOLUTION)

    def _supremum(self, power: float) -> sp.Expr | None:
        """Σ_{t≥0} a(t)^power in closed form (a sympy number), or None where there is none."""
        return None

    def _first_reaching(self, candidate: int | None, level: sp.Expr, power: float,
                        limit: int) -> int | None:
        """The first T ≤ limit with Σ_{t<T} a(t)^power ≥ level by :meth:`_reaches`, starting from
        the search's ``candidate`` (None: not reached at the limit). The float or DPS-digit sums
        near the level may be wrong by their error, so the answer is confirmed (reached at T, not
        at T − 1) and otherwise searched for by doubling steps and bisection."""
        reached = candidate is not None and self._reaches(candidate, level, power)
        if not reached and (candidate == limit or not self._reaches(limit, level, power)):
            return None
        start = limit if candidate is None else candidate
        step = 1
        if reached or candidate is None:  # find a T below that is not reached
            high = start
            while True:
                low = max(high - step, 0)
                if low == 0 or not self._reaches(low, level, power):
                    break
                high, step = low, 2 * step
        else:  # not reached, but reached at the limit: find the first T above that is
            low = start
            while True:
                high = min(low + step, limit)
                if self._reaches(high, level, power):
                    break
                low, step = high, 2 * step
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if self._reaches(middle, level, power) else (middle, high)
        return high

    def _reaches(self, horizon: int, level: sp.Expr, power: float) -> bool:
        """Σ_{t<T} a(t)^power ≥ level. Decided by :meth:`partial_sum_estimate` where the two
        differ by more than its error (plus the rounding of DPS digits), else by the exact
        rational sum of :meth:`_exact_sum`; where that is not available (irrational terms,
        T > EXACT_TERMS), a sum within that error of the level counts as reaching it."""
        with mp.workdps(DPS):
            target = _mp(level)
            estimate = self.partial_sum_estimate(horizon, power)
            slack = estimate.error + abs(target) * RESOLUTION
            if abs(estimate.value - target) > slack:
                return bool(estimate.value > target)
            exact = self._exact_sum(horizon, power)
            if exact is not None:
                try:
                    return bool(sp.Rational(exact.numerator, exact.denominator) >= level)
                except TypeError:  # sympy cannot order them
                    pass
            return True

    def _exact_sum(self, horizon: int, power: float) -> Fraction | None:
        """Σ_{t<T} a(t)^power in exact rationals, or None where it is not available: T beyond
        EXACT_TERMS, a power that is not an integer, or a term that is not rational."""
        if self.expression is None or horizon > EXACT_TERMS or not float(power).is_integer():
            return None
        term = _rational_function(self.expression)
        if term is None:
            return None
        values = []
        for step in range(horizon):
            value = term(Fraction(step))
            if not isinstance(value, Fraction):
                return None
            values.append(value ** int(power))
        return _rational_sum(values)

    def _converges(self, power: float) -> bool:
        """Whether Σ_{t≥0} a(t)^power is known to be finite (power laws: p·power > 1)."""
        if isinstance(self, PowerSchedule):
            return bool(self.exact_p * sp.nsimplify(power) > 1)
        if isinstance(self, ExpressionSchedule) and self.horizon is None:
            return _sympy_converges(self.expression ** sp.nsimplify(power)) is True
        return False

    def sum_reaches(self, level: Level, power: float = 1) -> bool | None:
        """Whether some horizon T has Σ_{t<T} a(t)^power ≥ level: False where a finite horizon
        n has Σ_{t<n} below it or the level is at or above a convergent Σ_{t≥0}, True where
        the sum diverges (p·power ≤ 1 for a power law, sympy's test for an expression), None
        where neither is known.

        Example:
            >>> parse_schedule("0.1*0.99**t").sum_reaches(10)   # Σ 0.1·0.99^t = 10, never reached
            False
            >>> parse_schedule("1/sqrt(t+1)").sum_reaches(1e6, power=2)
            True
        """
        exact_level = _exact_level(level)
        if self.horizon is not None:
            return bool(self._reaches(self.horizon, exact_level, power))
        if self._converges(power):
            with mp.workdps(DPS):
                return not self._at_or_above_limit(exact_level, _mp(exact_level), power)
        if isinstance(self, PowerSchedule):
            return True
        if isinstance(self, ExpressionSchedule):
            return True if _sympy_converges(self.expression ** sp.nsimplify(power)) is False \
                else None
        return None

    def describe(self) -> str:
        """One line naming the schedule and how its sums are computed."""
        return f"a(t) = {self.source}"

    def __repr__(self) -> str:
        given = "" if self.horizon is None else f", horizon={self.horizon}"
        return f"{type(self).__name__}({self.source!r}{given})"


class PowerSchedule(Schedule):
    """a(t) = c / (t + t0)^p with c > 0, t0 > 0 (p = 0: the constant c; p = 1: harmonic).

    c, t0 and p are kept exactly (sympy numbers: ``0.3`` read from text is 3/10, a float passed
    here is its own binary value) and enter the mpmath sums at ``DPS`` digits, so that sums and
    :meth:`horizon_for_sum` are exact to the step; ``.c``, ``.t0``, ``.p`` are their floats.
    """

    def __init__(self, c: float | sp.Expr = 1.0, t0: float | sp.Expr = 1.0,
                 p: float | sp.Expr = 1.0, source: str | None = None):
        exact = []
        for name, value in (("c", c), ("t0", t0), ("p", p)):
            try:
                if isinstance(value, float | int) and not math.isfinite(value):
                    number, as_float = sp.nan, float(value)  # sp.Rational(nan) would be 0
                else:
                    number = sp.Rational(value) if isinstance(value, float | int) \
                        else sp.sympify(value)
                    as_float = float(number)
            except (TypeError, ValueError, OverflowError):
                raise BadArgument("schedule", f"{name} must be a real number, got "
                                              f"{value!r}") from None
            exact.append((number, as_float))
        (self.exact_c, c), (self.exact_t0, t0), (self.exact_p, p) = exact
        if not (c > 0 and math.isfinite(c)):
            raise BadArgument("schedule", f"c must be a positive number, got {c}")
        if not (t0 > 0 and math.isfinite(t0)):
            raise BadArgument("schedule", f"t0 must be positive (a(0) = c/t0^p), got {t0}")
        if not math.isfinite(p):
            raise BadArgument("schedule", f"p must be finite, got {p}")
        self.c, self.t0, self.p = c, t0, p
        self.expression = self.exact_c * (t + self.exact_t0) ** (-self.exact_p)
        self.source = source or _power_text(c, t0, p)

    def __call__(self, steps: ArrayLike) -> np.ndarray:
        steps = np.asarray(steps, dtype=np.float64)
        return self.c * (steps + self.t0) ** (-self.p)

    def _sum(self, horizon: int | None, power: float) -> SumEstimate:
        scale = _mp(self.exact_c) ** power
        exponent = _mp(self.exact_p) * power
        t0 = _mp(self.exact_t0)
        if horizon is None:
            if exponent <= 1:
                return SumEstimate(mp.inf, mp.mpf(0), f"diverges: Σ (t+t0)^-{_num(exponent)}")
            return SumEstimate(scale * mp.zeta(exponent, t0), mp.mpf(0), "Hurwitz zeta ζ(s, t0)")
        if exponent == 0:
            return SumEstimate(scale * horizon, mp.mpf(0), "c^k·T")
        if abs(exponent) < TINY_EXPONENT:  # mpmath's ζ(s, q) loses all digits for s → 0⁻
            terms = (t + self.exact_t0) ** (-sp.Float(exponent, DPS))
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
            shift = mp.mpf(scale) * _mp(self.exact_c)
            if horizon is None:
                if self.p <= 1:
                    return SumEstimate(mp.inf, mp.mpf(0), "diverges with Σ a(t)")
                return _expression_schedule_of(self).log_product(scale, horizon)
            horizon = _check_horizon(horizon)
            if self.p == 0:
                return SumEstimate(horizon * mp.log1p(shift), mp.mpf(0), "T·log(1 + s·c)")
            if self.exact_p == 1:
                t0 = _mp(self.exact_t0)
                value = (mp.loggamma(horizon + t0 + shift) - mp.loggamma(horizon + t0)
                         - mp.loggamma(t0 + shift) + mp.loggamma(t0))
                return SumEstimate(value, mp.mpf(0), "log-gamma closed form")
        return _expression_schedule_of(self).log_product(scale, horizon)

    def a2(self) -> A2Verdict:
        """(A2) for c/(t+t0)^p: Σa = ∞ iff p ≤ 1, Σa² < ∞ iff p > 1/2; holds iff 1/2 < p ≤ 1."""
        diverges = bool(self.exact_p <= 1)
        converges = bool(self.exact_p > sp.Rational(1, 2))
        holds = diverges and converges
        why = (f"p = {_num(self.p)}: Σ a(t) {'diverges' if diverges else 'converges'} "
               f"(needs p ≤ 1), Σ a(t)² {'converges' if converges else 'diverges'} (needs p > 1/2)")
        return A2Verdict(holds, diverges, converges, why)

    def _supremum(self, power: float) -> sp.Expr | None:
        """Σ_{t≥0} a(t)^k = c^k·ζ(pk, t0) (Hurwitz zeta), for pk > 1."""
        exponent = self.exact_p * sp.nsimplify(power)
        return self.exact_c ** sp.nsimplify(power) * sp.zeta(exponent, self.exact_t0) \
            if exponent > 1 else None

    def horizon_for_sum(self, level: Level, power: float = 1) -> int | None:
        """The smallest T with Σ_{t<T} a(t)^power ≥ level (see :meth:`Schedule.horizon_for_sum`),
        and beyond MAX_HORIZON where the sum diverges (p·power ≤ 1): exact to the step up to
        10^MAX_DIGITS (10^MAX_ZETA_DIGITS where the sum needs the Hurwitz zeta function) by
        :meth:`_horizon_beyond`; None beyond that, or where the level is never reached.

        Example:
            >>> a = PowerSchedule(1, 1, 0.5)               # a(t) = 1/√(t+1)
            >>> a.horizon_for_sum(2, power=2)              # 1 + 1/2 + 1/3 + 1/4 ≥ 2
            4
            >>> len(str(a.horizon_for_sum(200, power=2)))  # ψ(T+1) + γ_E ≥ 200: T ≈ e^199.4
            87
        """
        found = super().horizon_for_sum(level, power)
        if found is None and self.exact_p * sp.nsimplify(power) <= 1:
            return self._horizon_beyond(_exact_level(level), power)
        return found

    def _horizon_beyond(self, level: sp.Expr, power: float) -> int | None:
        """The first T with c^k·F(T) ≥ level, F(T) = Σ_{t<T} (t + t0)^{−s}, s = p·k ≤ 1, for
        T beyond MAX_HORIZON:

            s = 0:  F(T) = T, so T = ⌈level/c^k⌉ (exact, sympy);
            s = 1:  F(T) = ψ(T + t0) − ψ(t0);
            else:   F(T) = ζ(s, t0) − ζ(s, T + t0).

        With y = T + t0 real, F increases in y: Newton steps y ← y + (level − c^k·F)/(c^k·y^{−s})
        (the derivative of F is ≈ y^{−s}) from the asymptotic inverse (ln y ≈ level/c^k + ψ(t0),
        resp. y^{1−s}/(1−s) ≈ level/c^k − ζ(s, t0)), at (digits of T) + 30 digits, so that one
        step a(T)^k ≈ c^k·y^{−s} is resolved; then T = ⌈y − t0⌉, moved until F(T) ≥ level/c^k >
        F(T − 1). None where T would have more digits than allowed."""
        k = sp.nsimplify(power)
        s, scale, t0 = self.exact_p * k, self.exact_c ** k, self.exact_t0
        with mp.workdps(30):
            ratio = _mp(level / scale)
            if s == 0:
                log10_y = mp.log10(ratio)
            elif s == 1:
                log10_y = (ratio + mp.digamma(_mp(t0))) / mp.log(10)
            else:
                one = 1 - _mp(s)
                log10_y = mp.log10((ratio - mp.zeta(_mp(s), _mp(t0))) * one) / one
        digits = int(mp.ceil(log10_y)) + 1
        closed = s == 0 or (s == 1 and isinstance(t0, sp.Rational) and t0.q <= 1000)
        if digits > (MAX_DIGITS if closed else MAX_ZETA_DIGITS):
            return None
        if s == 0:
            return max(int(sp.ceiling(level / scale)), 1)
        with mp.workdps(digits + 30):
            target, q, exponent = _mp(level / scale), _mp(t0), _mp(s)
            if s == 1:
                # ψ(t0) by sympy's closed form (Gauss's digamma theorem for a rational t0)
                base = _mp(sp.digamma(t0)) if closed else mp.digamma(q)

                def total(y: mp.mpf) -> mp.mpf:
                    return _digamma_large(y) - base
            else:
                base = mp.zeta(exponent, q)

                def total(y: mp.mpf) -> mp.mpf:
                    return base - mp.zeta(exponent, y)
            y = mp.mpf(10) ** log10_y
            for _ in range(100):
                step = (target - total(y)) / y ** -exponent
                y += step
                if abs(step) < mp.mpf(1) / 4:
                    break
            horizon = max(int(mp.ceil(y - q)), 1)
            while total(horizon + q) < target:
                horizon += 1
            while horizon > 1 and total(horizon - 1 + q) >= target:
                horizon -= 1
            return horizon

    def describe(self) -> str:
        return (f"a(t) = {self.source}  [power family: c = {_num(self.c)}, t0 = {_num(self.t0)}, "
                f"p = {_num(self.p)}; closed-form sums]")


class ExpressionSchedule(Schedule):
    """a(t) given by a sympy expression in t (summed exactly, then by Euler–Maclaurin)."""

    expression: sp.Expr

    def __init__(self, expression: sp.Expr, source: str | None = None,
                 horizon: int | None = None):
        self.expression = sp.sympify(expression)
        self.source = source or str(self.expression)
        self.horizon = None if horizon is None else _check_horizon(horizon)
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

    def _supremum(self, power: float) -> sp.Expr | None:
        """Σ_{t≥0} a(t)^power by sympy's summation (geometric: Σ 0.1·0.99^t = 10), if it has a
        closed form within SYMPY_TIMEOUT seconds."""
        return None if self.horizon is not None else \
            _sympy_limit(self.expression ** sp.nsimplify(power))

    def _exact_sum(self, horizon: int, power: float) -> Fraction | None:
        """Σ_{t<T} a(t)^power in exact rationals: sympy's closed form where it is rational
        (geometric: Σ_{t<T} 0.1·0.99^t = 10 − 10·0.99^T), else term by term."""
        if horizon <= EXACT_TERMS:
            closed = _sympy_partial_sum(self.expression ** sp.nsimplify(power))
            if closed is not None:
                value = closed.subs(COUNT, horizon)
                if isinstance(value, sp.Rational):
                    return Fraction(int(value.p), int(value.q))
        return super()._exact_sum(horizon, power)

    def log_product(self, scale: float, horizon: int | None) -> SumEstimate:
        """Σ_{t<T} log(1 + s·a(t)), summed like any expression (Euler–Maclaurin beyond the head)."""
        self._check_within(horizon)
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
        if self.horizon is not None:
            return _finite_a2(self.horizon)
        diverges, converges = self.a2_parts()
        parts = [f"Σ a(t) {_verdict_word(diverges, 'diverges', 'converges')}",
                 f"Σ a(t)² {_verdict_word(converges, 'converges', 'diverges')}"]
        holds = None if None in (diverges, converges) else bool(diverges and converges)
        if diverges is False or converges is False:
            holds = False
        return A2Verdict(holds, diverges, converges, ", ".join(parts) + " (sympy)")

    def describe(self) -> str:
        given = "" if self.horizon is None else f"given for t < {self.horizon}; "
        return (f"a(t) = {self.source}  [expression; {given}exact sum of the first {HEAD_TERMS} "
                f"terms, Euler–Maclaurin (m = {EM_ORDER}) beyond]")


class SampledSchedule(Schedule):
    """a(t) on a finite horizon t < n from its float64 values: an array, a Python callable, or an
    expression that is not smooth (floor, Min, Max, Piecewise, …: step decay, warmup, linear
    decay with a floor). Sums are the correctly rounded float64 sums of the values,

        Σ_{t<T} a(t)^k = math.fsum(a(0)^k, …, a(T−1)^k),

    with the stated error ε/2·|sum| (the rounding of the sum) plus 4·T·ε·max a(t)^k (the
    rounding of the terms; none for k = 1 and given values). Horizons are settled exactly
    (:meth:`horizon_for_sum`). (A2), a statement about t → ∞, does not apply.
    """

    horizon: int  #: always finite here

    def __init__(self, values: Callable[[np.ndarray], np.ndarray], horizon: int, source: str,
                 expression: sp.Expr | None = None, exact_values: bool = False):
        self.horizon = _check_horizon(horizon)
        if self.horizon < 1:
            raise BadArgument("horizon", f"a schedule given by its values needs a horizon ≥ 1, "
                             f"got {horizon}")
        if self.horizon > SAMPLED_LIMIT:
            raise BadArgument("horizon", f"a(t) = {source} is summed value by value, up to "
                             f"T = {SAMPLED_LIMIT:.0e}; got {horizon}")
        self._values, self.source, self.expression = values, source, expression
        self._exact_values = exact_values

    def __call__(self, steps: ArrayLike) -> np.ndarray:
        steps = np.asarray(steps, dtype=np.float64)
        with np.errstate(all="ignore"):
            values = self._values(steps)
        return np.broadcast_to(np.asarray(values, dtype=np.float64), steps.shape).copy()

    def _terms(self, begin: int, end: int, power: float) -> np.ndarray:
        values = self(np.arange(begin, end, dtype=np.float64))
        return values if power == 1 else values ** float(power)

    def _within(self, horizon: int | None) -> int:
        """``horizon``, checked ≤ n by :meth:`_check_within` (which refuses None here)."""
        self._check_within(horizon)
        if horizon is None:  # unreachable: _check_within refuses Σ_{t≥0} on a finite horizon
            raise BadArgument("horizon", f"a(t) = {self.source} has sums for T ≤ "
                                         f"{self.horizon} only")
        return horizon

    def _sum(self, horizon: int | None, power: float) -> SumEstimate:
        end = self._within(horizon)
        partial, largest = [], 0.0
        for begin in range(0, end, CHUNK):
            terms = self._terms(begin, min(begin + CHUNK, end), power)
            partial.append(_fsum(terms))
            largest = max(largest, float(np.max(terms)))
        exact = self._exact_values and power == 1
        value, eps = _fsum(partial), float(np.finfo(np.float64).eps)
        # the rounding of the correctly rounded sum, and of the terms unless they are given
        error = abs(value) * eps / 2 + (0.0 if exact else 4 * end * eps * largest)
        return SumEstimate(mp.mpf(value), mp.mpf(error),
                           "fsum of the given values" if exact else "direct float64 summation")

    def log_product(self, scale: float, horizon: int | None) -> SumEstimate:
        """Σ_{t<T} log(1 + s·a(t)) = math.fsum(log1p(s·a(t)))."""
        end = self._within(None if horizon is None else _check_horizon(horizon))
        terms = np.log1p(float(scale) * self(np.arange(end, dtype=np.float64)))
        return SumEstimate(mp.mpf(_fsum(terms)), mp.mpf(0), "direct float64 summation")

    def horizon_for_sum(self, level: Level, power: float = 1) -> int | None:
        """The smallest T ≤ n with Σ_{t<T} a(t)^power ≥ level, exactly; None if Σ_{t<n} < level.

        Located on the float64 running sums, then settled by :meth:`Schedule._first_reaching`:
        where math.fsum of the values is within its error of the level, by the exact rational
        sum of the schedule's expression (0.1·0.5^⌊t/100⌋ is 1/10·(1/2)^⌊t/100⌋, whose sum
        stays below 20 though the float64 values 0.1000000000000000055… pass it) or of the given
        float64 values."""
        exact_level = _exact_level(level)
        if not exact_level > 0:
            return 0
        with mp.workdps(DPS):
            target = float(_mp(exact_level))
        running = np.cumsum(self._terms(0, self.horizon, power))
        candidate = None if not running[-1] >= target else \
            min(int(np.searchsorted(running, target)) + 1, self.horizon)
        return self._first_reaching(candidate, exact_level, power, self.horizon)

    def _exact_sum(self, horizon: int, power: float) -> Fraction | None:
        """The exact rational Σ_{t<T} a(t)^power of the expression (see
        :meth:`Schedule._exact_sum`), or of the given float64 values when there is none."""
        if self.expression is not None:
            return super()._exact_sum(horizon, power)
        if horizon > EXACT_TERMS or not float(power).is_integer():
            return None
        values = self(np.arange(horizon, dtype=np.float64))
        return _rational_sum([Fraction(float(value)) ** int(power) for value in values])

    def a2(self) -> A2Verdict:
        return _finite_a2(self.horizon)

    def describe(self) -> str:
        return (f"a(t) = {self.source}  [given for t < {self.horizon}; sums of the float64 "
                "values by math.fsum]")


#: Functions a schedule's text may use: name → (sympy function, least and most arguments).
FUNCTIONS = {
    **{name: (f, 1, 1) for name, f in {
        "sqrt": sp.sqrt, "exp": sp.exp, "ln": sp.log, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
        "atan": sp.atan, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "floor": sp.floor,
        "ceil": sp.ceiling, "ceiling": sp.ceiling, "Abs": sp.Abs, "abs": sp.Abs}.items()},
    "log": (sp.log, 1, 2), "Min": (sp.Min, 1, None), "Max": (sp.Max, 1, None),
    "min": (sp.Min, 1, None), "max": (sp.Max, 1, None), "Piecewise": (sp.Piecewise, 1, None),
}
CONSTANTS = {"pi": sp.pi, "E": sp.E, "True": sp.true}
#: Functions that make a(t) not smooth: such a schedule is summed value by value on a horizon.
NONSMOOTH = (sp.floor, sp.ceiling, sp.Min, sp.Max, sp.Piecewise, sp.Abs, sp.sign, sp.Heaviside,
             sp.frac, sp.Mod)
#: Steps t at which a(t) is evaluated (under the budget of theory.formula) before it is summed.
PROBES = (0, 1, 2, 10, 100, HEAD_TERMS, 10**6, 10**9, 10**15, MAX_HORIZON)
#: sympy's convergence test is not run on sin, cos, tan of arguments with a number beyond this
#: (its trigonometric rewriting expands sin(k·t) along the digits of k: 12 s for k = 10^6).
TRIG_NUMBER = 1000


def parse_schedule(text: str, horizon: int | None = None) -> Schedule:
    """Parse ``text`` as a(t), t = 0, 1, …, and check that a(t) > 0 on the horizon (or all t ≥ 0).

    The text is read by :func:`theory.formula.parse`, which never runs Python: numbers, ``t``,
    ``T`` = the horizon, + − * / ** ^ ( ) , < > <= >=, and the names of :data:`FUNCTIONS` and
    :data:`CONSTANTS`, every constant within 10^±308 and every constant exponent at most 10^4
    in size. ``^`` is a power, multiplication may be implicit (``2t``), decimals are exact
    rationals (``0.05`` is 1/20). A smooth a(t) is then evaluated at the steps :data:`PROBES`
    under formula's budget, so that a(t) beyond 10^±(10^60) (a tower like
    ``(t+2)^(t+2)^(t+2)``, whose sums would never finish) is refused. What comes out:

    * a power law c/(t + t0)^p in any spelling: :class:`PowerSchedule` (closed-form sums, exact
      c, t0, p);
    * a smooth expression (exp, cos, …; cosine decay ``0.05*(1+cos(pi*t/T))`` with T the
      horizon): :class:`ExpressionSchedule`, given for t < horizon where it is positive only there;
    * an expression with floor, ceil, Min, Max, Abs or Piecewise (step decay, warmup, linear
      decay): :class:`SampledSchedule` on the horizon, which it needs.

    Raises ValueError (one line, starting "schedule:" or "horizon:") for text that is not
    allowed or does not parse, a name other than those above, a complex value, a(0) undefined
    (``"1/t"``: the index starts at 0, so the hint suggests ``1/(t+1)``), a(t) ≤ 0 on the
    horizon, or T / a non-smooth function without a horizon.

    Example:
        >>> a = parse_schedule("0.05/(1+t/100)")            # a power law: 5/(t + 100)
        >>> a, a.c, a.t0, a.p
        (PowerSchedule('0.05/(1+t/100)'), 5.0, 100.0, 1.0)
    """
    if not isinstance(text, str) or not text.strip():
        raise BadArgument("schedule", "expected an expression in t such as '1/(t+1)'")
    text = text.strip()
    if horizon is not None:
        horizon = _check_horizon(horizon)
    expression = _parse(text, horizon)
    try:
        return _make_schedule(expression, text, horizon)
    except Exception as error:  # sympy or numpy refusing an odd combination (exp(True), …)
        raise _cannot("evaluate", text, error) from None


def _make_schedule(expression: sp.Expr, text: str, horizon: int | None) -> Schedule:
    """The schedule of a parsed expression (see :func:`parse_schedule`), checked positive."""
    finite = horizon if _uses_horizon(text) else None
    if not expression.has(t):
        schedule: Schedule = _constant_schedule(expression, text)
    elif expression.has(*NONSMOOTH):
        if horizon is None:
            raise BadArgument("schedule", f"{text!r} uses floor/ceil/Min/Max/Abs/Piecewise, so "
                                          "it is "
                             "summed value by value on a horizon: give a horizon")
        schedule = SampledSchedule(_lambdify(expression, text), horizon, text, expression)
    else:
        _check_first_value(expression, text)
        _check_size(expression, text, finite)
        schedule = (_as_power_schedule(expression, text) if finite is None else None) \
            or ExpressionSchedule(expression, text, finite)
    domain = check_positive(schedule, horizon)
    if isinstance(schedule, ExpressionSchedule) and domain is not None:
        schedule.horizon = domain
    return schedule


def _parse(text: str, horizon: int | None) -> sp.Expr:
    """``text`` as a real sympy expression in :data:`t` by :func:`theory.formula.parse` (see
    :func:`parse_schedule`); T becomes the horizon."""
    symbols: dict[str, sp.Basic] = {"t": t}
    if _uses_horizon(text):
        if horizon is None:
            raise FormulaError("schedule", f"{text!r} uses T, the horizon: give a horizon")
        symbols["T"] = sp.Integer(horizon)
    grammar = Grammar(symbols, FUNCTIONS, CONSTANTS, implicit=True, relations=True,
                      notes={"I": " (complex numbers are not step sizes)"})
    expression = formula.parse(text, grammar, "schedule")
    if expression.has(sp.I, sp.zoo, sp.nan, sp.oo, -sp.oo) or any(
            power.base.is_negative and power.exp.is_integer is not True
            for power in expression.atoms(sp.Pow)):
        raise FormulaError("schedule", f"{text!r} is complex-valued or infinite ({expression}); "
                                       "a step size is a positive real number")
    return expression


def _cannot(what: str, text: str, error: Exception) -> ValueError:
    """The one-line ValueError for text that sympy or numpy could not handle."""
    if isinstance(error, ValueError) and str(error).startswith(("schedule:", "horizon:")):
        return error
    why = " ".join(str(error).split()) or type(error).__name__
    goal = "an expression in t" if what == "parse" else "a step size"
    return ValueError(f"schedule: cannot {what} {text!r} as {goal} ({why})")


def _check_size(expression: sp.Expr, text: str, horizon: int | None) -> None:
    """Refuse a(t) whose value at a step of :data:`PROBES` (below the horizon) is beyond
    formula's budget (10^±(10^60), one second): its sums would run out of memory or time."""
    for step in PROBES:
        if horizon is not None and step >= horizon:
            return
        try:
            formula.evaluate(expression, {t: step}, "schedule", what=f"a(t) = {text}")
        except FormulaError as error:
            if error.kind in ("overflow", "time"):
                raise FormulaError("schedule", f"{error.message} at t = {step}",
                                   error.kind) from None


def _uses_horizon(text: str) -> bool:
    return re.search(r"(?<![A-Za-z_0-9])T(?![A-Za-z_0-9])", text) is not None


def _lambdify(expression: sp.Expr, text: str) -> Callable[[np.ndarray], np.ndarray]:
    try:
        return sp.lambdify(t, expression, "numpy")
    except Exception as error:  # a function numpy's printer does not know
        why = " ".join(str(error).split())
        raise BadArgument("schedule", f"cannot evaluate {text!r} with numpy ({why})") from None


def _check_first_value(expression: sp.Expr, text: str) -> None:
    """a(0) must be defined: ``1/t`` is refused with the hint ``1/(t+1)``."""
    first = expression.subs(t, 0)
    if not first.is_finite:
        shifted = expression.subs(t, t + 1)
        hint = (f": did you mean {str(shifted).replace(' ', '')}?"
                if shifted.subs(t, 0).is_positive else "")
        raise BadArgument("schedule", f"a(0) of {text!r} is undefined, and the index starts at "
                         f"t = 0{hint}")


def _constant_schedule(expression: sp.Expr, text: str) -> PowerSchedule:
    value = sp.N(expression, DPS)
    if not (value.is_real and value.is_finite):
        raise BadArgument("schedule", f"{text!r} = {value} is not a real number")
    if not value > 0:
        raise BadArgument("schedule", f"a(t) = {text} must be positive, got {float(value):g}")
    return PowerSchedule(expression, 1, 0, source=text)


def as_schedule(spec: Schedule | str | float | ArrayLike | Callable,
                horizon: int | None = None) -> Schedule:
    """A schedule from a :class:`Schedule`, an expression string (:func:`parse_schedule`), a
    number (constant), a sequence / numpy array of values a(0), …, a(n−1) (a finite horizon n),
    or a Python callable a(t) (vectorized over a numpy array of t, or scalar), which needs the
    horizon on which it is evaluated.

    Raises ValueError when the horizon exceeds what a finite schedule covers, or a(t) ≤ 0.

    Example:
        >>> as_schedule(0.1), as_schedule([0.1, 0.05]).horizon
        (PowerSchedule('0.1'), 2)
    """
    if horizon is not None:
        horizon = _check_horizon(horizon)
    if isinstance(spec, Schedule):
        if spec.horizon is not None:
            spec._check_within(horizon if horizon is not None else spec.horizon)
            return spec
        check_positive(spec, horizon)
        return spec
    if isinstance(spec, str):
        return parse_schedule(spec, horizon)
    if isinstance(spec, int | float | np.floating | np.integer) and not isinstance(spec, bool):
        if not (spec > 0 and math.isfinite(spec)):
            raise BadArgument("schedule", f"a constant step size must be positive and finite, "
                             f"got {spec}")
        return PowerSchedule(c=float(spec), t0=1.0, p=0.0, source=str(spec))
    if callable(spec):
        return from_callable(spec, horizon)
    if isinstance(spec, list | tuple | np.ndarray):
        schedule = from_values(spec)
        schedule._check_within(horizon if horizon is not None else schedule.horizon)
        return schedule
    raise BadArgument("schedule", f"expected a Schedule, an expression string, a number, an array "
                     f"of values or a callable, got {spec!r}")


def from_values(values: ArrayLike, source: str | None = None) -> SampledSchedule:
    """a(t) = values[t] for t < n = len(values): a finite horizon n; sums by math.fsum.

    Example:
        >>> from_values([0.125, 0.125, 0.25]).partial_sum(3)
        0.5
    """
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadArgument("schedule", "the values must be real numbers") from None
    if array.ndim != 1 or array.size == 0:
        raise BadArgument("schedule", f"expected a non-empty 1-D sequence of values, got shape "
                         f"{array.shape}")
    bad = np.flatnonzero(~((array > 0) & np.isfinite(array)))
    if bad.size:
        raise BadArgument("schedule", f"the values must be positive and finite, but a({bad[0]}) = "
                         f"{array[bad[0]]:g}")
    array.setflags(write=False)

    def lookup(steps: np.ndarray) -> np.ndarray:
        index = np.asarray(steps)
        whole = index.astype(np.int64)
        if np.any(whole != index) or np.any(whole < 0) or np.any(whole >= array.size):
            raise BadArgument("horizon", f"the schedule has {array.size} values, a(t) for integer "
                             f"t < {array.size} only")
        return array[whole]

    text = source or (f"[{array.size} values: {array[0]:.6g}, …, {array[-1]:.6g}]"
                      if array.size > 2 else f"[{', '.join(f'{v:.6g}' for v in array)}]")
    return SampledSchedule(lookup, array.size, text, exact_values=True)


def from_callable(function: Callable, horizon: int | None, source: str | None = None
                  ) -> SampledSchedule:
    """a(t) = function(t) for t < horizon, evaluated once (on the numpy array of t if the
    callable accepts it, else t by t on Python ints) and kept as values.

    Example:
        >>> from_callable(lambda t: 0.5 ** t, 4).partial_sum(4)    # 1 + 1/2 + 1/4 + 1/8
        1.875
    """
    if horizon is None:
        raise BadArgument("horizon", "a schedule given as a Python callable needs a horizon")
    horizon = _check_horizon(horizon)
    if not 1 <= horizon <= CALLABLE_LIMIT:
        raise BadArgument("horizon", f"a callable schedule is evaluated on 1 ≤ T ≤ "
                         f"{CALLABLE_LIMIT:.0e} steps, got {horizon}")
    name = source or f"{getattr(function, '__name__', 'callable')}(t)"
    steps = np.arange(horizon)
    try:
        values = np.asarray(function(steps), dtype=np.float64)
        if values.shape != steps.shape:
            raise TypeError("not vectorized")
    except Exception:  # noqa: BLE001  (a scalar callable: evaluate it t by t)
        try:
            values = np.array([function(int(k)) for k in steps], dtype=np.float64)
        except Exception as error:  # the user's function failed
            why = " ".join(str(error).split()) or type(error).__name__
            raise BadArgument("schedule", f"{name} failed ({why})") from None
    return from_values(values, source=name)


def harmonic(c: float = 1.0, t0: float = 1.0) -> PowerSchedule:
    """a(t) = c/(t + t0); the paper's "a(t) = 1/t" is harmonic() = 1/(t+1).

    Example:
        >>> round(harmonic().gamma, 10)                          # π²/6
        1.6449340668
    """
    return PowerSchedule(c, t0, 1.0)


def constant(c: float) -> PowerSchedule:
    """a(t) = c.

    Example:
        >>> constant(0.25).partial_sum(8)
        2.0
    """
    return PowerSchedule(c, 1.0, 0.0, source=_num(c))


def cosine(peak: float, horizon: int, floor: float = 0.0) -> Schedule:
    """Cosine decay over the horizon T: a(t) = floor + (peak − floor)·(1 + cos(πt/T))/2.

    Example:
        >>> cosine(0.1, 100)([0, 50]).round(12).tolist()         # peak, then half of it at T/2
        [0.1, 0.05]
    """
    return parse_schedule(f"{floor!r} + ({peak!r} - {floor!r})*(1 + cos(pi*t/T))/2", horizon)


def step_decay(initial: float, factor: float, every: int, horizon: int) -> Schedule:
    """Step decay: a(t) = initial·factor^⌊t/every⌋ (e.g. 0.1·0.5^⌊t/100⌋) on t < horizon.

    Example:
        >>> step_decay(0.1, 0.5, 100, 300)([0, 99, 100, 250]).tolist()
        [0.1, 0.1, 0.05, 0.025]
    """
    if not (isinstance(every, int | np.integer) and every >= 1):
        raise BadArgument("every", f"expected an integer ≥ 1, got {every!r}")
    return parse_schedule(f"{initial!r}*{factor!r}**floor(t/{int(every)})", horizon)


def warmup(steps: int, after: Schedule | str | float | ArrayLike, horizon: int | None = None
           ) -> Schedule:
    """Linear warmup: a(t) = min(1, (t+1)/steps)·b(t) on t < horizon, where ``after`` = b is
    an expression in t, a number, a :class:`Schedule` (warmup of any schedule: schedules
    compose) or an array of values (whose length is the horizon where none is given).

    Example:
        >>> w = warmup(4, harmonic(), horizon=8)           # (t+1)/4 · 1/(t+1) = 1/4 for t < 4
        >>> w(range(6)).round(4).tolist()
        [0.25, 0.25, 0.25, 0.25, 0.2, 0.1667]
        >>> warmup(2, "0.1*0.99**t", horizon=100).horizon
        100
    """
    if not (isinstance(steps, int | np.integer) and steps >= 1):
        raise BadArgument("steps", f"expected an integer ≥ 1, got {steps!r}")
    if isinstance(after, str):
        return parse_schedule(f"Min(1, (t+1)/{int(steps)})*({after})", horizon)
    base = as_schedule(after, horizon)
    horizon = base.horizon if horizon is None else horizon
    if horizon is None:
        raise BadArgument("horizon", "a warmup is given on a horizon: give one")
    ramp = sp.Min(1, (t + 1) / sp.Integer(int(steps)))
    text = f"Min(1, (t+1)/{int(steps)})*({base.source})"
    if base.expression is not None:
        return _make_schedule(ramp * base.expression, text, horizon)
    values = base(np.arange(horizon, dtype=np.float64))
    return from_values(np.minimum(1.0, (np.arange(horizon) + 1.0) / int(steps)) * values, text)


def check_positive(schedule: Schedule, horizon: int | None = None) -> int | None:
    """Raise ValueError unless a(t) > 0 for every t < horizon (every t ≥ 0 without one).

    Returns the horizon on which positivity was shown: None when a(t) > 0 for every t ≥ 0,
    else ``horizon``. Power schedules are positive by construction, sampled ones are checked
    value by value on their horizon. For expressions: sympy's assumption system first (t a
    non-negative integer); where it cannot decide, the values at every t below
    min(horizon, GRID_DENSE) and at log-spaced t up to the horizon (or 10^15) are checked, and
    with a horizon, the same check without it says whether a(t) > 0 beyond it too.

    Example:
        >>> check_positive(parse_schedule("1/(t+1)")) is None      # positive for every t ≥ 0
        True
        >>> check_positive(ExpressionSchedule(2 - t), 2)          # 2 − t > 0 for t < 2 only
        2
    """
    if isinstance(schedule, PowerSchedule):
        return None
    if horizon is not None and schedule.horizon is None and \
            isinstance(schedule, ExpressionSchedule) and not schedule.expression.is_positive:
        _check_values(schedule, horizon)
        try:
            return _check_values(schedule, None)
        except ValueError:  # positive on the horizon only
            return _check_horizon(horizon)
    return _check_values(schedule, horizon)


def _check_values(schedule: Schedule, horizon: int | None) -> int | None:
    """The value checks of :func:`check_positive`."""
    if isinstance(schedule, SampledSchedule):
        end, steps = schedule.horizon, None
    else:
        if schedule.expression is not None and schedule.expression.is_positive:
            return None
        end = 10**15 if horizon is None else _check_horizon(horizon)
        dense = np.arange(min(end, GRID_DENSE), dtype=np.float64)
        sparse = np.unique(np.floor(np.geomspace(max(GRID_DENSE, 1), max(end - 1, 1), 2000)))
        steps = np.concatenate([dense, sparse[sparse < end]])
    for begin in range(0, end, CHUNK) if steps is None else [0]:
        chunk = np.arange(begin, min(begin + CHUNK, end), dtype=np.float64) \
            if steps is None else steps
        values = schedule(chunk)
        bad = np.flatnonzero(~((values > 0) & np.isfinite(values)))
        if bad.size:
            where = int(chunk[bad[0]])
            scope = "for t ≥ 0" if horizon is None and schedule.horizon is None \
                else f"on the horizon t < {end}"
            kind = "positive and finite"
            if np.isnan(values[bad[0]]) and schedule.expression is not None:
                value = sp.N(schedule.expression.subs(t, where))
                if value.is_real is False:
                    kind = "real (it is complex there)"
            raise BadArgument("schedule", f"a(t) = {schedule.source} must be {kind} {scope}, "
                             f"but a({where}) = {values[bad[0]]:g}")
    return None if horizon is None and schedule.horizon is None else end


def _as_power_schedule(expression: sp.Expr, source: str) -> PowerSchedule | None:
    """Recognise c·(t + t0)^(−p) in an algebraic expression (numbers, t, +, ·, powers): then
    −a/a′ = (t + t0)/p is linear in t, with exact slope 1/p and intercept t0/p, and
    c = a(0)·t0^p exactly.

    The fit is accepted only if it reproduces the expression at several t to 1e-12 relative.
    """
    if not all(isinstance(node, sp.Add | sp.Mul | sp.Pow | sp.Symbol | sp.Number)
               for node in sp.preorder_traversal(expression)):
        return None
    derivative = sp.diff(expression, t)
    if derivative == 0:
        return None
    ratio = sp.cancel(sp.powsimp(-expression / derivative, force=True))
    ratio = ratio.replace(lambda x: x.is_Pow and x.exp.is_Number and float(x.exp) == 1.0,
                          lambda x: x.base)
    ratio = sp.expand(ratio)
    if not ratio.is_polynomial(t) or sp.degree(ratio, t) != 1:
        return None
    slope, intercept = sp.Poly(ratio, t).all_coeffs()
    p, t0 = 1 / slope, intercept / slope
    first = expression.subs(t, 0)
    if not (t0.is_positive and first.is_positive):
        return None
    try:
        candidate = PowerSchedule(first * t0**p, t0, p, source=source)
    except ValueError:
        return None
    probe = np.array([0.0, 1.0, 7.0, 1e3, 1e6, 1e12])
    expected = np.array([float(expression.subs(t, int(s))) for s in probe])
    if not np.allclose(candidate(probe), expected, rtol=1e-12, atol=0):
        return None
    return candidate


def _expression_schedule_of(schedule: PowerSchedule) -> ExpressionSchedule:
    return ExpressionSchedule(schedule.expression, schedule.source)


class _Numeric:
    """Callables for f(x) = expression(t = x): f in mpmath, f in numpy, the exact prefix sums of
    the first HEAD_TERMS terms, and (computed only when Euler–Maclaurin needs them) the odd
    derivatives f′, f‴, … and f^(2m) for the remainder. Hashed by identity: a key of
    _cached_segment."""

    def __init__(self, f: sp.Expr, x: sp.Symbol):
        self._f, self._x = f, x
        self.f = _mpmath(x, f)
        self.f_numpy = sp.lambdify(x, f, "numpy")
        self.head = _head_prefix_sums(self.f)

    @functools.cached_property
    def _derivatives(self) -> tuple[list, Callable]:
        derivatives = [self._f]
        for _ in range(2 * EM_ORDER):
            derivatives.append(sp.diff(derivatives[-1], self._x))
        odd = [_mpmath(self._x, derivatives[2 * j - 1]) for j in range(1, EM_ORDER + 1)]
        return odd, _mpmath(self._x, derivatives[-1])

    @property
    def odd_derivatives(self) -> list:
        return self._derivatives[0]

    @property
    def top_derivative(self) -> Callable:
        return self._derivatives[1]

    def segment(self, low: mp.mpf) -> tuple[mp.mpf, mp.mpf, mp.mpf]:
        """:func:`_integrate` over the whole segment [low, 8·low], cached."""
        return _cached_segment(self, low)


@functools.lru_cache(maxsize=64)
def _numeric(expression: sp.Expr) -> _Numeric:
    x = sp.Symbol("x", positive=True)
    return _Numeric(expression.subs(t, x), x)


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
        partial.append(_fsum(values))
        largest = max(largest, float(np.max(np.abs(values))))
    error = 4 * horizon * np.finfo(np.float64).eps * largest
    return SumEstimate(mp.mpf(_fsum(partial)), mp.mpf(error), "direct float64 summation")


def _in_time(work: Callable[[], object]) -> object:
    """``work()`` on a daemon thread: its result, or None after SYMPY_TIMEOUT seconds or where
    it raises (sympy raises NotImplementedError and others where it cannot decide)."""
    answer: list = []

    def run() -> None:
        try:
            answer.append(work())
        except Exception:  # noqa: BLE001
            answer.append(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(SYMPY_TIMEOUT)
    return answer[0] if answer else None


@functools.lru_cache(maxsize=256)
def _sympy_converges(expression: sp.Expr) -> bool | None:
    """Σ_{t≥0} expression converges? sympy's test on a daemon thread, None after the timeout."""
    if _stalls_sympy(expression):
        return None
    answer = _in_time(lambda: sp.Sum(expression, (t, 0, sp.oo)).is_convergent())
    if answer not in (True, False, sp.true, sp.false):
        return None
    return bool(answer)


@functools.lru_cache(maxsize=256)
def _sympy_limit(expression: sp.Expr) -> sp.Expr | None:
    """Σ_{t≥0} expression in closed form by sympy's summation (a finite real number), or None
    (no closed form, or none within SYMPY_TIMEOUT seconds)."""
    if _stalls_sympy(expression):
        return None
    value = _in_time(lambda: sp.Sum(expression, (t, 0, sp.oo)).doit())
    if not isinstance(value, sp.Expr) or value.has(sp.Sum) or not value.is_number or \
            value.is_extended_real is not True or value.is_finite is not True:
        return None
    return value


#: The number of terms T of a partial sum in sympy's closed forms Σ_{t<T}.
COUNT = sp.Symbol("T", integer=True, positive=True)


@functools.lru_cache(maxsize=256)
def _sympy_partial_sum(expression: sp.Expr) -> sp.Expr | None:
    """Σ_{t<T} expression in closed form in :data:`COUNT` = T by sympy's summation, when it
    has one in powers, sums and products only (a geometric sum), within SYMPY_TIMEOUT."""
    if _stalls_sympy(expression):
        return None
    value = _in_time(lambda: sp.Sum(expression, (t, 0, COUNT - 1)).doit())
    if not isinstance(value, sp.Expr) or not all(
            isinstance(node, sp.Add | sp.Mul | sp.Pow | sp.Symbol | sp.Number)
            for node in sp.preorder_traversal(value)):
        return None
    return value


@functools.lru_cache(maxsize=64)
def _rational_function(expression: sp.Expr) -> Callable[[Fraction], object] | None:
    """expression(t) in exact rational arithmetic: every rational number of the expression is
    passed in as a Fraction, floor/ceiling/Min/Max/Abs act on Fractions; a term that is not
    rational (sqrt, exp, π) comes out as a float. None where it cannot be compiled."""
    numbers = sorted(expression.atoms(sp.Rational), key=str)
    names = sp.symbols(f"q0:{len(numbers)}")
    values = [Fraction(int(number.p), int(number.q)) for number in numbers]
    try:
        function = sp.lambdify(
            (t, *names), expression.xreplace(dict(zip(numbers, names, strict=True))),
            modules=[{"floor": math.floor, "ceiling": math.ceil, "Min": min, "Max": max,
                      "Abs": abs}, "math"])
    except Exception:  # noqa: BLE001  (a function the printer does not know)
        return None
    return lambda step: function(step, *values)


def _rational_sum(values: list[Fraction]) -> Fraction:
    """The exact sum of ``values``, added in pairs (a running sum would reduce a growing
    fraction at every term: 10^4 terms of 0.1·0.99^t take a minute that way)."""
    while len(values) > 1:
        values = [sum(values[i:i + 2], Fraction(0)) for i in range(0, len(values), 2)]
    return values[0] if values else Fraction(0)


def _digamma_large(y: mp.mpf) -> mp.mpf:
    """ψ(y) for y ≥ 10^20 at the working precision by its asymptotic series,
    ψ(y) = ln y − 1/(2y) − Σ_{j≥1} B_{2j}/(2j·y^{2j}), cut where y^{−2j} < 10^{−dps}
    (mpmath's ψ spends seconds on Bernoulli numbers at thousands of digits)."""
    terms = int(mp.mp.dps / (2 * mp.log10(y))) + 2
    value = mp.log(y) - 1 / (2 * y)
    for j in range(1, terms + 1):
        value -= mp.bernoulli(2 * j) / (2 * j * y ** (2 * j))
    return value


def _exact_level(level: Level) -> sp.Expr:
    """``level`` at its exact value as a sympy number (a float or mpmath number: its binary
    value; a Fraction: itself)."""
    if isinstance(level, mp.mpf):
        if not mp.isfinite(level):
            raise ValueError(f"level: expected a finite number, got {level}")
        mantissa, exponent = level.man_exp
        return sp.Integer(mantissa) * sp.Integer(2) ** exponent
    if isinstance(level, Fraction):
        return sp.Rational(level.numerator, level.denominator)
    if isinstance(level, float | int | np.floating | np.integer):
        if not math.isfinite(level):
            raise ValueError(f"level: expected a finite number, got {level}")
        return sp.Rational(float(level)) if isinstance(level, float | np.floating) \
            else sp.Integer(int(level))
    return sp.sympify(level)


def _stalls_sympy(expression: sp.Expr) -> bool:
    """Whether a sin, cos or tan of ``expression`` has a number beyond TRIG_NUMBER in its
    argument (numerator or denominator), on which sympy's convergence test stalls."""
    for function in expression.atoms(sp.sin, sp.cos, sp.tan):
        for number in function.args[0].atoms(sp.Rational, sp.Float):
            size = abs(number) if isinstance(number, sp.Float) else max(abs(number.p), number.q)
            if size > TRIG_NUMBER:
                return True
    return False


def _check_horizon(horizon: object) -> int:
    horizon = integer(horizon, "horizon")
    if horizon > MAX_HORIZON:
        shown = horizon if horizon < 10**30 else f"an integer of {len(str(horizon))} digits"
        raise BadArgument("horizon", f"expected a non-negative integer at most 10^24 (beyond "
                                     f"it {DPS} digits no longer resolve one step), got {shown}")
    return horizon


def _verdict_word(value: bool | None, yes: str, no: str) -> str:
    return "undecided" if value is None else (yes if value else no)


def _num(value: float) -> str:
    return f"{float(value):.10g}"


def _power_text(c: float, t0: float, p: float) -> str:
    if p == 0:
        return _num(c)
    base = f"(t+{_num(t0)})" if p == 1 else f"(t+{_num(t0)})^{_num(p)}"
    return f"{_num(c)}/{base}"


def _mp(value: sp.Expr) -> mp.mpf:
    """An exact sympy number as an mpmath number at the working precision (rationals exactly
    rounded, anything else evaluated by sympy at 10 digits beyond it)."""
    if isinstance(value, sp.Rational):
        return mp.mpf(value.p) / value.q
    return mp.mpf(sp.N(value, mp.mp.dps + 10)._mpf_)


def _finite_a2(horizon: int) -> A2Verdict:
    return A2Verdict(None, None, None,
                     f"not applicable: a(t) is given for t < {horizon} only (a finite horizon); "
                     "(A2) is about Σ a(t) and Σ a(t)² as t → ∞")


def _fsum(values: Iterable[float]) -> float:
    """math.fsum, with inf where the exact sum overflows float64 (fsum raises there)."""
    try:
        return math.fsum(values)
    except OverflowError:
        return math.inf
