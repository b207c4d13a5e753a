r"""The paper's bounds and the correct ones, computed in log space, with their inverses.

Clipped SGD moves θ(t+1) = θ(t) − a(t)·g(t)/c(t). Write γ_T = Σ_{t<T} a(t)² for a horizon T
and γ = Σ_{t≥0} a(t)² without one (every bound takes ``horizon=None`` to mean γ).

Probability bounds. All three have the form 2·exp(−κ·r²/(λ²·γ_T)):

=================  ====  ==========================================================================
name               κ     statement
=================  ====  ==========================================================================
``lemma1_paper``   2     Lemma 1 as printed, (14)/(15): P(‖θ(s) − θ(0)‖ > M) ≤ 2exp(−2M²/(λ²γ_T)).
                         The arithmetic is right; the proof is not (M_s = ‖θ(0)‖ + Σ a‖g/c‖
                         is a sub-, not a super-martingale) and with a far-away minimiser
                         every path leaves the ball: kept, labelled "paper"
``azuma``          1/2   textbook Azuma–Hoeffding for a scalar martingale with increments
                         |Δ_t| ≤ c_t = λ·a(t): P(|X_T − X_0| ≥ r) ≤ 2exp(−r²/(2Σc_t²))
``pinelis``        1/8   Pinelis (1994) for the vector martingale ξ(s) = Σ_{t<s} a(t)M(t+1), whose
                         increments satisfy ‖a(t)M(t+1)‖ ≤ 2λa(t):
                         P(max_{s≤T} ‖ξ(s)‖ ≥ r) ≤ 2exp(−r²/(8λ²γ_T))
=================  ====  ==========================================================================

Deterministic facts. With classic clipping ‖g/c‖ ≤ λ, so ‖θ(s) − θ(0)‖ ≤ λ·Σ_{t<s} a(t) on
every path (:func:`deterministic_radius`; its inverse :func:`deterministic_horizon`). Claim 2's
constant (:func:`claim2_constants`) and the Grönwall growth of adaptive clipping
(:func:`gronwall`) complete the set.

Every probability is carried as a logarithm: 2e^{−1416.57} (the paper's example) has
log10 = −614.909 and no float64 value; ``probability`` is then None.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import mpmath as mp
import sympy as sp

from theory.schedules import DPS, Schedule, as_schedule

#: κ of each probability bound 2·exp(−κ·r²/(λ²·γ_T)), and the form it is printed with.
KAPPA = {"lemma1_paper": mp.mpf(2), "azuma": mp.mpf(1) / 2, "pinelis": mp.mpf(1) / 8}
FORMS = {
    "lemma1_paper": "2·exp(−2M²/(λ²·{g}))",
    "azuma": "2·exp(−M²/(2λ²·{g}))",
    "pinelis": "2·exp(−r²/(8λ²·{g}))",
}
LOG_SMALLEST = math.log(2.2250738585072014e-308)  #: ln of float64's smallest normal number


@dataclass(frozen=True)
class ProbabilityBound:
    """A bound P ≤ 2·exp(−exponent), carried in log space.

    ``log_probability`` and ``log10_probability`` are the natural and decimal logarithms of the
    bound; ``probability`` is its float value, or None where it underflows float64 (0.0 for
    horizon 0, where the exponent is inf and the logarithms are −inf);
    ``vacuous`` is True when the bound is ≥ 1; ``sum_of_squares`` is the γ_T (or γ) used.
    """

    name: str
    form: str
    exponent: float
    log_probability: float
    log10_probability: float
    probability: float | None
    vacuous: bool
    sum_of_squares: float
    horizon: int | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Claim2Constants:
    """Claim 2: ‖g/c‖ ≤ K·(1 + ‖θ‖) under adaptive clipping (17).

    ``k_tight`` = λ·max(1, ε) is the smallest valid K; ``k_paper`` = max(λε, λ, 1) is the
    paper's, valid and larger exactly when λ·max(1, ε) < 1.
    """

    k_tight: float
    k_paper: float
    paper_is_tight: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GrowthBound:
    """An upper bound on a norm, carried in log space (``norm`` is inf where it overflows)."""

    form: str
    log_norm: float
    log10_norm: float
    norm: float
    horizon: int

    def to_dict(self) -> dict:
        return asdict(self)


def probability_bound(name: str, lam: float, radius: float, schedule: Schedule | str,
                      horizon: int | None = None) -> ProbabilityBound:
    """2·exp(−κ·r²/(λ²·γ_T)) for the bound ``name`` in :data:`KAPPA` (see the module table).

    γ_T = Σ_{t<T} a(t)² with a horizon T, γ = Σ_{t≥0} a(t)² without; γ = ∞ gives exponent 0
    (the vacuous bound 2), γ_T = 0 (T = 0) gives probability 0.
    """
    kappa = _kappa(name)
    lam, radius = require_positive("lam", lam), require_positive("radius", radius)
    schedule = as_schedule(schedule, horizon)
    with mp.workdps(DPS):
        gamma = _sum_of_squares(schedule, horizon)
        if gamma == 0:  # T = 0: no step taken, the event is impossible
            exponent = mp.inf
        else:
            exponent = kappa * mp.mpf(radius) ** 2 / (mp.mpf(lam) ** 2 * gamma)
        log_probability = mp.log(2) - exponent
        symbol = "γ" if horizon is None else "Σ_{t<T}a(t)²"
        equation = {"lemma1_paper": " (15)" if horizon is None else " (14)"}.get(name, "")
        return ProbabilityBound(
            name=name,
            form=FORMS[name].format(g=symbol) + equation,
            exponent=float(exponent),
            log_probability=float(log_probability),
            log10_probability=float(log_probability / mp.log(10)),
            probability=(float(mp.exp(log_probability)) if log_probability > LOG_SMALLEST
                         else 0.0 if exponent == mp.inf else None),
            vacuous=bool(log_probability >= 0),
            sum_of_squares=float(gamma),
            horizon=horizon,
        )


def lemma1_paper(lam: float, radius: float, schedule: Schedule | str,
                 horizon: int | None = None) -> ProbabilityBound:
    """Lemma 1 as printed: P(‖θ(s)−θ(0)‖ > M) ≤ 2·exp(−2M²/(λ²·Σ_{t<T} a(t)²)), (14);
    with γ in place of the partial sum, (15). Not a valid bound (see the module docstring)."""
    return probability_bound("lemma1_paper", lam, radius, schedule, horizon)


def azuma(lam: float, radius: float, schedule: Schedule | str,
          horizon: int | None = None) -> ProbabilityBound:
    """Textbook Azuma with increments bounded by c_t = λ·a(t): 2·exp(−M²/(2λ²·γ_T))."""
    return probability_bound("azuma", lam, radius, schedule, horizon)


def pinelis(lam: float, radius: float, schedule: Schedule | str,
            horizon: int | None = None) -> ProbabilityBound:
    """Pinelis: P(max_{s≤T} ‖ξ(s)‖ ≥ r) ≤ 2·exp(−r²/(8λ²·γ_T)), ξ the martingale part."""
    return probability_bound("pinelis", lam, radius, schedule, horizon)


def radius_for(name: str, lam: float, schedule: Schedule | str, horizon: int | None = None, *,
               delta: float | None = None, log_delta: float | None = None) -> float:
    """The radius r at which the bound ``name`` equals δ: r = λ·√(γ_T·ln(2/δ)/κ).

    δ is given as ``delta`` in (0, 1) or, for probabilities below float64, as its natural
    logarithm ``log_delta`` < 0. Inverse of :func:`probability_bound` in r.
    """
    kappa, lam = _kappa(name), require_positive("lam", lam)
    schedule = as_schedule(schedule, horizon)
    with mp.workdps(DPS):
        log_two_over_delta = mp.log(2) - _log_delta(delta, log_delta)
        gamma = _sum_of_squares(schedule, horizon)
        return float(mp.mpf(lam) * mp.sqrt(gamma * log_two_over_delta / kappa))


def max_lam_for(name: str, radius: float, schedule: Schedule | str, horizon: int | None = None,
                *, delta: float | None = None, log_delta: float | None = None) -> float:
    """The largest λ for which the bound ``name`` at radius r is ≤ δ: λ = r·√(κ/(γ_T·ln(2/δ))).

    Inverse of :func:`probability_bound` in λ (the bound increases with λ).
    """
    kappa, radius = _kappa(name), require_positive("radius", radius)
    schedule = as_schedule(schedule, horizon)
    with mp.workdps(DPS):
        log_two_over_delta = mp.log(2) - _log_delta(delta, log_delta)
        gamma = _sum_of_squares(schedule, horizon)
        return float(mp.mpf(radius) * mp.sqrt(kappa / (gamma * log_two_over_delta)))


def vacuous_horizon(name: str, lam: float, radius: float, schedule: Schedule | str) -> int | None:
    """The first horizon T at which the bound ``name`` reaches 1 and says nothing:
    the smallest T with γ_T ≥ κ·r²/(λ²·ln 2), the level taken exactly (λ and r at their float
    values). None when γ stays below that level."""
    kappa = sp.Rational(str(_kappa(name)))
    lam, radius = require_positive("lam", lam), require_positive("radius", radius)
    level = kappa * sp.Rational(radius) ** 2 / (sp.Rational(lam) ** 2 * sp.log(2))
    return as_schedule(schedule).horizon_for_sum(level, power=2)


def deterministic_radius(lam: float, schedule: Schedule | str, horizon: int | None = None) -> float:
    """λ·Σ_{t<T} a(t): with classic clipping ‖θ(T) − θ(0)‖ ≤ this on every path (inf when
    ``horizon`` is None and Σ a(t) diverges)."""
    lam = require_positive("lam", lam)
    schedule = as_schedule(schedule, horizon)
    with mp.workdps(DPS):
        return float(mp.mpf(lam) * schedule.partial_sum_estimate(horizon, 1).value)


def deterministic_horizon(lam: float, radius: float, schedule: Schedule | str) -> int | None:
    """The smallest integer T with λ·Σ_{t<T} a(t) ≥ M, exact to the step (mpmath, 40 digits).

    Before T no path of classically clipped SGD can leave the ball of radius M about θ(0).
    None when λ·Σ_{t≥0} a(t) ≤ M (the partial sums stay below their limit). The level M/λ is
    taken exactly, λ and M at their float values. For λ = 30, M = 2¹⁰, a(t) = 1/(t+1): about
    3.7·10^14.
    """
    lam, radius = require_positive("lam", lam), require_positive("radius", radius)
    return as_schedule(schedule).horizon_for_sum(sp.Rational(radius) / sp.Rational(lam), power=1)


def claim2_constants(lam: float, eps: float) -> Claim2Constants:
    """Claim 2's K for adaptive clipping, c = max(‖g‖/(λ·max(‖θ‖, ε)), 1):

    ‖g/c‖ = min(‖g‖, λ·max(‖θ‖, ε)) ≤ K·(1 + ‖θ‖) with the smallest K = λ·max(1, ε)
    (sup over ‖θ‖ of λ·max(‖θ‖, ε)/(1 + ‖θ‖)), and the paper's K = max(λε, λ, 1).
    """
    lam, eps = require_positive("lam", lam), require_positive("eps", eps)
    tight = lam * max(1.0, eps)
    paper = max(lam * eps, lam, 1.0)
    return Claim2Constants(k_tight=tight, k_paper=paper, paper_is_tight=paper == tight)


def gronwall(lam: float, eps: float, schedule: Schedule | str, horizon: int,
             theta0_norm: float = 0.0) -> GrowthBound:
    """Grönwall bound for adaptive clipping: ‖θ(T)‖ ≤ max(‖θ(0)‖, ε)·Π_{t<T} (1 + λ·a(t)).

    Each step moves θ by at most a(t)·λ·max(‖θ(t)‖, ε), so max(‖θ‖, ε) grows by at most the
    factor 1 + λa(t); the bound is attained by a gradient aligned with θ and larger than the
    threshold. In log space: log max(‖θ(0)‖, ε) + Σ_{t<T} log(1 + λa(t)). For a(t) = 1/(t+1)
    the product is Γ(T+1+λ)/(Γ(1+λ)·Γ(T+1)) ~ T^λ/Γ(1+λ).
    """
    lam, eps = require_positive("lam", lam), require_positive("eps", eps)
    if not (theta0_norm >= 0 and math.isfinite(theta0_norm)):
        raise ValueError(f"theta0_norm: expected a finite number ≥ 0, got {theta0_norm}")
    schedule = as_schedule(schedule, horizon)
    with mp.workdps(DPS):
        log_product = schedule.log_product(lam, horizon).value
        log_norm = mp.log(max(theta0_norm, eps)) + log_product
        norm = float(mp.exp(log_norm)) if log_norm < math.log(1.7e308) else math.inf
        return GrowthBound(form="max(‖θ(0)‖, ε)·Π_{t<T}(1 + λa(t))", log_norm=float(log_norm),
                           log10_norm=float(log_norm / mp.log(10)), norm=norm, horizon=horizon)


def _sum_of_squares(schedule: Schedule, horizon: int | None) -> mp.mpf:
    return schedule.partial_sum_estimate(horizon, 2).value


def _kappa(name: str) -> mp.mpf:
    if name not in KAPPA:
        raise ValueError(f"bound: unknown bound {name!r}; expected one of {', '.join(KAPPA)}")
    return KAPPA[name]


def require_positive(argument: str, value: float) -> float:
    """``value`` as a float if it is a positive finite number, else ValueError naming it."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument}: expected a positive number, got {value!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{argument}: expected a positive finite number, got {value}")
    return value


def _log_delta(delta: float | None, log_delta: float | None) -> mp.mpf:
    """ln δ from exactly one of ``delta`` ∈ (0, 1) or ``log_delta`` < 0."""
    if delta is not None and log_delta is None:
        if not 0 < delta < 1:
            raise ValueError(f"delta: expected a probability in (0, 1), got {delta}")
        return mp.log(delta)
    if delta is not None or log_delta is None:
        raise ValueError("delta: give exactly one of delta (in (0, 1)) or log_delta (< 0)")
    if not (log_delta < 0 and math.isfinite(log_delta)):
        raise ValueError(f"log_delta: expected a finite number < 0, got {log_delta}")
    return mp.mpf(log_delta)
