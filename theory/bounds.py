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
from collections.abc import Callable
from dataclasses import asdict, dataclass

import mpmath as mp
import sympy as sp
from scipy.optimize import brentq

from theory.errors import BadArgument, positive
from theory.schedules import DPS, MAX_HORIZON, RESOLUTION, Schedule, as_schedule

#: what a schedule argument may be: a Schedule, an expression string, a number or an array of
#: values (see :func:`theory.schedules.as_schedule`)
ScheduleLike = Schedule | str | float

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

    def __repr__(self) -> str:
        value = "≥ 1 (vacuous)" if self.vacuous else \
            f"10^{self.log10_probability:.6g}" if self.probability is None \
            else f"{self.probability:.6g}"
        at = "with γ" if self.horizon is None else f"at T = {self.horizon}"
        return f"<{self.name}: {self.form} = {value} {at}; exponent {self.exponent:.6g}>"


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

    def __repr__(self) -> str:
        return f"<‖θ(T)‖ ≤ {self.form} = 10^{self.log10_norm:.6g} at T = {self.horizon}>"


def probability_bound(name: str, lam: float, radius: float, schedule: ScheduleLike,
                      horizon: int | None = None) -> ProbabilityBound:
    """2·exp(−κ·r²/(λ²·γ_T)) for the bound ``name`` in :data:`KAPPA` (see the module table).

    γ_T = Σ_{t<T} a(t)² with a horizon T, γ = Σ_{t≥0} a(t)² without; γ = ∞ gives exponent 0
    (the vacuous bound 2), γ_T = 0 (T = 0) gives probability 0.

    Example:
        >>> b = probability_bound("azuma", 1, 2, "0.5", horizon=4)   # γ_4 = 4·0.25 = 1: 2·e^(−2)
        >>> round(b.probability, 10), b.vacuous
        (0.2706705665, False)
    """
    kappa = _kappa(name)
    lam, radius = require_positive("lam", lam), require_positive("radius", radius)
    schedule, horizon = read_schedule(schedule, horizon)
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


def lemma1_paper(lam: float, radius: float, schedule: ScheduleLike,
                 horizon: int | None = None) -> ProbabilityBound:
    """Lemma 1 as printed: P(‖θ(s)−θ(0)‖ > M) ≤ 2·exp(−2M²/(λ²·Σ_{t<T} a(t)²)), (14);
    with γ in place of the partial sum, (15). Not a valid bound (see the module docstring).

    Example:
        >>> round(lemma1_paper(30, 1024, "1/(t+1)").log10_probability, 4)   # 2·e^(−2²¹/(150π²))
        -614.9087
    """
    return probability_bound("lemma1_paper", lam, radius, schedule, horizon)


def azuma(lam: float, radius: float, schedule: ScheduleLike,
          horizon: int | None = None) -> ProbabilityBound:
    """Textbook Azuma with increments bounded by c_t = λ·a(t): 2·exp(−M²/(2λ²·γ_T)).

    Example:
        >>> round(azuma(30, 1024, "1/(t+1)").exponent, 4)                   # 2²⁰/(2·900·π²/6)
        354.1432
    """
    return probability_bound("azuma", lam, radius, schedule, horizon)


def pinelis(lam: float, radius: float, schedule: ScheduleLike,
            horizon: int | None = None) -> ProbabilityBound:
    """Pinelis: P(max_{s≤T} ‖ξ(s)‖ ≥ r) ≤ 2·exp(−r²/(8λ²·γ_T)), ξ the martingale part.

    Example:
        >>> pinelis(1, 4, [1.0, 1.0]).exponent                              # 16/(8·1·2)
        1.0
    """
    return probability_bound("pinelis", lam, radius, schedule, horizon)


def radius_for(name: str, lam: float, schedule: ScheduleLike, horizon: int | None = None, *,
               delta: float | None = None, log_delta: float | None = None) -> float:
    """The radius r at which the bound ``name`` equals δ: r = λ·√(γ_T·ln(2/δ)/κ).

    δ is given as ``delta`` in (0, 1) or, for probabilities below float64, as its natural
    logarithm ``log_delta`` < 0. Inverse of :func:`probability_bound` in r.

    Example:
        >>> round(radius_for("pinelis", 30, "1/(t+1)", delta=0.05), 2)      # 30·√(8·π²/6·ln 40)
        209.02
    """
    kappa, lam = _kappa(name), require_positive("lam", lam)
    schedule, horizon = read_schedule(schedule, horizon)
    with mp.workdps(DPS):
        log_two_over_delta = mp.log(2) - _log_delta(delta, log_delta)
        gamma = _sum_of_squares(schedule, horizon)
        return float(mp.mpf(lam) * mp.sqrt(gamma * log_two_over_delta / kappa))


def max_lam_for(name: str, radius: float, schedule: ScheduleLike, horizon: int | None = None,
                *, delta: float | None = None, log_delta: float | None = None) -> float:
    """The largest λ for which the bound ``name`` at radius r is ≤ δ: λ = r·√(κ/(γ_T·ln(2/δ))).

    Inverse of :func:`probability_bound` in λ (the bound increases with λ).

    Example:
        >>> round(max_lam_for("pinelis", 1, [1.0, 1.0], delta=2 * math.exp(-1)), 12)  # √(1/(8·2·1))
        0.25
    """
    kappa, radius = _kappa(name), require_positive("radius", radius)
    schedule, horizon = read_schedule(schedule, horizon)
    with mp.workdps(DPS):
        log_two_over_delta = mp.log(2) - _log_delta(delta, log_delta)
        gamma = _sum_of_squares(schedule, horizon)
        return float(mp.mpf(radius) * mp.sqrt(kappa / (gamma * log_two_over_delta)))


def vacuous_horizon(name: str, lam: float, radius: float, schedule: ScheduleLike,
                    horizon: int | None = None) -> int | None:
    """The first horizon T at which the bound ``name`` reaches 1 and says nothing:
    the smallest T with γ_T ≥ κ·r²/(λ²·ln 2), the level taken exactly (λ and r at their float
    values), exact to the step even where T has thousands of digits (a power law, see
    :meth:`theory.schedules.PowerSchedule.horizon_for_sum`). None when no T reaches it;
    :func:`vacuity` says whether that is "never" or "too far to find". ``horizon`` is needed
    only to read a schedule that uses T; a schedule given on t < n is searched up to n.

    Example:
        >>> vacuous_horizon("pinelis", 30, 1024, "0.1")     # 0.01·T ≥ 1024²/(8·900·ln 2)
        21011
        >>> vacuous_horizon("pinelis", 30, 1024, "1/(t+1)") is None   # γ = π²/6 stays below
        True
    """
    schedule = read_schedule(schedule, horizon)[0]
    return schedule.horizon_for_sum(_vacuity_level(name, lam, radius), power=2)


def _vacuity_level(name: str, lam: float, radius: float) -> sp.Expr:
    """κ·r²/(λ²·ln 2), exactly: the γ_T at which 2·exp(−κr²/(λ²γ_T)) = 1."""
    kappa = sp.Rational(str(_kappa(name)))
    lam, radius = require_positive("lam", lam), require_positive("radius", radius)
    return kappa * sp.Rational(radius) ** 2 / (sp.Rational(lam) ** 2 * sp.log(2))


@dataclass(frozen=True)
class Vacuity:
    """When the bound ``name`` becomes vacuous (≥ 1) as the horizon T grows.

    ``state`` is one of

    * ``"already"``: vacuous at the horizon asked (``asked``; the first step T = 1 without
      one), from T = ``horizon`` ≤ it on;
    * ``"from"``: not vacuous at the horizon asked, vacuous from T = ``horizon`` (exact) on;
    * ``"beyond"``: Σ a(t)² diverges, so the bound becomes vacuous, but at a T too large to
      find exactly (beyond 10^24, or beyond 10^4000 for a power law);
    * ``"never"``: vacuous at no T (Σ_{t≥0} a(t)² ≤ the level, or a(t) is given on t < n
      only and Σ_{t<n} a(t)² stays below it);
    * ``"undecided"``: not vacuous for T ≤ 10^24, and whether Σ a(t)² diverges is not known.

    ``text`` says it in words.
    """

    name: str
    state: str
    horizon: int | None
    asked: int | None
    text: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __repr__(self) -> str:
        return f"<{self.name}: {self.text}>"


def vacuity(name: str, lam: float, radius: float, schedule: ScheduleLike,
            horizon: int | None = None) -> Vacuity:
    """Whether the bound ``name`` is vacuous already, becomes vacuous from an exact T, or never
    (see :class:`Vacuity`): the first T with γ_T ≥ κ·r²/(λ²·ln 2) by :func:`vacuous_horizon`,
    compared with the horizon asked (an array schedule's own length where none is given).

    Example:
        >>> vacuity("pinelis", 30, 1024, "0.1").text
        'vacuous from T = 21011'
        >>> vacuity("pinelis", 30, 1024, "0.1", horizon=10**5).text
        'vacuous already at T = 100000 (from T = 21011)'
        >>> vacuity("pinelis", 30, 1024, "1/(t+1)").text
        'never vacuous'
        >>> vacuity("lemma1_paper", 30, 1024, "1/sqrt(t+1)").state   # ψ(T+1) + γ_E ≥ 3362.5
        'from'
    """
    read, asked = read_schedule(schedule, horizon)
    level = _vacuity_level(name, lam, radius)
    first = read.horizon_for_sum(level, power=2)
    if first is not None:
        if first <= (asked or 1):
            at = f" at T = {asked}" if asked is not None else ""
            return Vacuity(name, "already", first, asked,
                           f"vacuous already{at} (from T = {show_integer(first)})")
        return Vacuity(name, "from", first, asked, f"vacuous from T = {show_integer(first)}")
    reaches = read.sum_reaches(level, power=2)
    if reaches is False:
        within = "" if read.horizon is None else f" (a(t) is given for t < {read.horizon})"
        return Vacuity(name, "never", None, asked, "never vacuous" + within)
    if reaches:
        return Vacuity(name, "beyond", None, asked, "vacuous from some T > 10^24 (Σ a(t)² "
                                                    "diverges; T too large to find exactly)")
    return Vacuity(name, "undecided", None, asked,
                   "not vacuous for T ≤ 10^24; beyond, undecided (Σ a(t)² may converge)")


def show_integer(value: int) -> str:
    """An integer for a person: in full below 10^6, else with its size, and beyond 10^30 as
    a mantissa and the number of digits (the exact value is in the JSON).

    Example:
        >>> show_integer(374314574624759)
        '374314574624759 (≈3.743e+14)'
        >>> show_integer(10**100 + 7)
        '≈1.000e+100 (101 digits)'
    """
    if abs(value) < 10**6:
        return f"{value}"
    if abs(value) < 10**30:
        return f"{value} (≈{value:.3e})"
    digits = str(abs(value))
    return f"≈{digits[0]}.{digits[1:4]}e+{len(digits) - 1} ({len(digits)} digits)"


def deterministic_radius(lam: float, schedule: ScheduleLike, horizon: int | None = None) -> float:
    """λ·Σ_{t<T} a(t): with classic clipping ‖θ(T) − θ(0)‖ ≤ this on every path (inf when
    ``horizon`` is None and Σ a(t) diverges).

    Example:
        >>> deterministic_radius(2, "1/(t+1)", horizon=3)    # 2·(1 + 1/2 + 1/3)
        3.6666666666666665
    """
    lam = require_positive("lam", lam)
    schedule, horizon = read_schedule(schedule, horizon)
    with mp.workdps(DPS):
        return float(mp.mpf(lam) * schedule.partial_sum_estimate(horizon, 1).value)


def deterministic_horizon(lam: float, radius: float, schedule: ScheduleLike,
                          horizon: int | None = None) -> int | None:
    """The smallest integer T with λ·Σ_{t<T} a(t) ≥ M, exact to the step (mpmath, 40 digits;
    beyond 10^24 for a power law, as many digits as T has).

    Before T no path of classically clipped SGD can leave the ball of radius M about θ(0).
    None when λ·Σ_{t≥0} a(t) ≤ M (the partial sums stay below their limit), or T is too far to
    find. The level M/λ is taken exactly, λ and M at their float values. ``horizon`` reads a
    schedule that uses T.

    Example:
        >>> deterministic_horizon(30, 1024, "1/(t+1)")      # ψ(T+1) + γ_E ≥ 1024/30
        374314574624759
    """
    lam, radius = require_positive("lam", lam), require_positive("radius", radius)
    schedule = read_schedule(schedule, horizon)[0]
    return schedule.horizon_for_sum(sp.Rational(radius) / sp.Rational(lam), power=1)


@dataclass(frozen=True)
class SafeRadius:
    """A radius for θ under classic clipping that holds with probability ≥ 1 − δ.

    θ(s) − θ(0) = −Σ_{t<s} a(t)·H(θ(t)) − ξ(s) splits into a drift, at most ``drift`` =
    h·Σ_{t<T} a(t) with h ≥ sup ‖H‖ (h = λ: ‖H‖ ≤ E‖g/c‖ ≤ λ), and the martingale part ξ,
    at most ``martingale`` = r_δ = λ·√(8·γ_T·ln(2/δ)) for all s ≤ T except with probability δ
    (Pinelis). So with probability ≥ 1 − δ, max_{s≤T} ‖θ(s) − θ(0)‖ ≤ ``split`` = drift +
    martingale; on every path it is ≤ ``pathwise`` = λ·Σ_{t<T} a(t), and ``radius`` is the
    smaller of the two. The split is the smaller only where h < λ is known. inf where Σ a(t)
    diverges (no horizon).
    """

    delta: float
    drift: float
    martingale: float
    split: float
    pathwise: float
    radius: float
    horizon: int | None

    def to_dict(self) -> dict:
        return asdict(self)

    def __repr__(self) -> str:
        return (f"<P(max_{{s≤T}} ‖θ(s) − θ(0)‖ > {self.radius:.6g}) ≤ {self.delta:g}: drift "
                f"{self.drift:.6g} + martingale {self.martingale:.6g} = {self.split:.6g}; "
                f"every path ≤ {self.pathwise:.6g}>")


def theta_radius(lam: float, schedule: ScheduleLike, horizon: int | None = None, *,
                 delta: float, drift_bound: float | None = None) -> SafeRadius:
    """The safe radius for θ(s) − θ(0), s ≤ T, under classic clipping at δ: the drift
    h·Σ_{t<T} a(t) plus the martingale radius r_δ of :func:`radius_for` ("pinelis"), next to
    the pathwise λ·Σ_{t<T} a(t) (see :class:`SafeRadius`); ``drift_bound`` is h (default λ).

    Example:
        >>> r = theta_radius(1, "1/(t+1)", horizon=3, delta=0.5, drift_bound=0.1)
        >>> round(r.drift, 6), round(r.martingale, 6)   # 0.1·11/6, √(8·49/36·ln 4)
        (0.183333, 3.885255)
        >>> r.radius == r.pathwise == 11 / 6            # every path: ≤ λ·Σa, the smaller here
        True
    """
    lam = require_positive("lam", lam)
    h = lam if drift_bound is None else require_positive("drift_bound", drift_bound)
    schedule, horizon = read_schedule(schedule, horizon)
    with mp.workdps(DPS):
        total = schedule.partial_sum_estimate(horizon, 1).value
    martingale = radius_for("pinelis", lam, schedule, horizon, delta=delta)
    drift, pathwise = float(h * total), float(lam * total)
    split = drift + martingale
    return SafeRadius(delta=delta, drift=drift, martingale=martingale, split=split,
                      pathwise=pathwise, radius=min(split, pathwise), horizon=horizon)


def claim2_constants(lam: float, eps: float) -> Claim2Constants:
    """Claim 2's K for adaptive clipping, c = max(‖g‖/(λ·max(‖θ‖, ε)), 1):

    ‖g/c‖ = min(‖g‖, λ·max(‖θ‖, ε)) ≤ K·(1 + ‖θ‖) with the smallest K = λ·max(1, ε)
    (sup over ‖θ‖ of λ·max(‖θ‖, ε)/(1 + ‖θ‖)), and the paper's K = max(λε, λ, 1).

    Example:
        >>> claim2_constants(0.5, 0.1)           # λ·max(1, ε) = 0.5 < max(λε, λ, 1) = 1
        Claim2Constants(k_tight=0.5, k_paper=1.0, paper_is_tight=False)
    """
    lam, eps = require_positive("lam", lam), require_positive("eps", eps)
    tight = lam * max(1.0, eps)
    paper = max(lam * eps, lam, 1.0)
    return Claim2Constants(k_tight=tight, k_paper=paper, paper_is_tight=paper == tight)


def gronwall(lam: float, eps: float, schedule: ScheduleLike, horizon: int | None = None,
             theta0_norm: float = 0.0) -> GrowthBound:
    """Grönwall bound for adaptive clipping: ‖θ(T)‖ ≤ max(‖θ(0)‖, ε)·Π_{t<T} (1 + λ·a(t)).

    Each step moves θ by at most a(t)·λ·max(‖θ(t)‖, ε), so max(‖θ‖, ε) grows by at most the
    factor 1 + λa(t); the bound is attained by a gradient aligned with θ and larger than the
    threshold. In log space: log max(‖θ(0)‖, ε) + Σ_{t<T} log(1 + λa(t)). For a(t) = 1/(t+1)
    the product is Γ(T+1+λ)/(Γ(1+λ)·Γ(T+1)) ~ T^λ/Γ(1+λ). ``horizon`` may be left out for a
    schedule given on t < n (then T = n).

    Example:
        >>> gronwall(1, 0.5, "1/(t+1)", horizon=3).norm      # 0.5·(2·3/2·4/3) = 0.5·4
        2.0
    """
    lam, eps = require_positive("lam", lam), require_positive("eps", eps)
    start = _start(theta0_norm, eps)
    schedule, horizon = read_schedule(schedule, horizon)
    if horizon is None:
        raise BadArgument("horizon", "the Grönwall bound needs a horizon T")
    with mp.workdps(DPS):
        log_product = schedule.log_product(lam, horizon).value
        log_norm = mp.log(start) + log_product
        norm = float(mp.exp(log_norm)) if log_norm < math.log(1.7e308) else math.inf
        return GrowthBound(form="max(‖θ(0)‖, ε)·Π_{t<T}(1 + λa(t))", log_norm=float(log_norm),
                           log10_norm=float(log_norm / mp.log(10)), norm=norm, horizon=horizon)


def gronwall_horizon(lam: float, eps: float, radius: float, schedule: ScheduleLike,
                     theta0_norm: float = 0.0, horizon: int | None = None) -> int | None:
    """The first T at which the Grönwall bound passes M: the smallest T ≥ 0 with
    max(‖θ(0)‖, ε)·Π_{t<T}(1 + λa(t)) > M, i.e. Σ_{t<T} log(1 + λa(t)) > ln(M/max(‖θ(0)‖, ε)).
    Before it, adaptive clipping keeps ‖θ(T)‖ ≤ M on every path. The log-product (closed form
    in log-gamma for p = 1, else summed as :meth:`Schedule.log_product` does, at 40 digits)
    increases with T; the search doubles T, then bisects, up to 10^24 (or the n of a schedule
    given on t < n). A product within 10^−35 (relative) of M counts as not passing it. None
    where no such T is found there. ``horizon`` reads a schedule that uses T.

    Example:
        >>> gronwall_horizon(1, 1, 8, "1")      # 2^T > 8 first at T = 4 (2^3 = 8 is not > 8)
        4
        >>> gronwall_horizon(1, 1, 10, "1/(t+1)")   # Π (1 + 1/(t+1)) = T + 1 > 10 at T = 10
        10
    """
    lam, eps = require_positive("lam", lam), require_positive("eps", eps)
    radius = require_positive("radius", radius)
    start = _start(theta0_norm, eps)
    schedule = read_schedule(schedule, horizon)[0]
    limit = MAX_HORIZON if schedule.horizon is None else schedule.horizon
    with mp.workdps(DPS):
        level = mp.log(mp.mpf(radius)) - mp.log(start)
        slack = RESOLUTION * max(1, abs(level))  # a tie at 40 digits is not a pass
        return _first_integer(lambda n: schedule.log_product(lam, n).value > level + slack,
                              limit)


def gronwall_max_lam(eps: float, radius: float, schedule: ScheduleLike,
                     horizon: int | None = None, theta0_norm: float = 0.0) -> float:
    """The largest λ for which the Grönwall bound at T stays within M:
    max(‖θ(0)‖, ε)·Π_{t<T}(1 + λa(t)) ≤ M. With m = max(‖θ(0)‖, ε) and L = ln(M/m):

    * constant a(t) = c: (1 + λc)^T ≤ e^L, so λ = (e^{L/T} − 1)/c (closed form);
    * T = 1: λ = (e^L − 1)/a(0) (closed form);
    * otherwise the root of Σ_{t<T} log(1 + λa(t)) = L, which increases with λ, by Brent's
      method in the bracket [L/S, (e^L − 1)/S], S = Σ_{t<T} a(t) (from 1 + λS ≤ Π ≤ e^{λS}),
      then lowered to the largest float whose bound is ≤ M.

    inf for T = 0; BadArgument where m > M (no λ > 0 will do) or m = M (only λ = 0).

    Example:
        >>> gronwall_max_lam(1, 8, "1", horizon=3)            # (1 + λ)^3 ≤ 8: λ = 1
        1.0
        >>> gronwall_max_lam(1, 10, "1/(t+1)", horizon=2)    # (1 + λ)(1 + λ/2) = 10: λ = 3
        3.0
    """
    eps, radius = require_positive("eps", eps), require_positive("radius", radius)
    start = _start(theta0_norm, eps)
    schedule, horizon = read_schedule(schedule, horizon)
    if horizon is None:
        raise BadArgument("horizon", "the largest λ for the Grönwall bound needs a horizon T")
    if horizon == 0:
        return math.inf
    if not start < radius:
        raise BadArgument("radius", f"M = {radius:g} is not above max(‖θ(0)‖, ε) = {start:g}, "
                                    "where the Grönwall bound starts: no λ > 0 keeps it ≤ M")
    with mp.workdps(DPS):
        level = mp.log(mp.mpf(radius) / mp.mpf(start))
        total = schedule.partial_sum_estimate(horizon, 1).value
        if getattr(schedule, "p", None) == 0:
            first = schedule.partial_sum_estimate(1, 1).value
            return float((mp.expm1(level / horizon)) / first)
        if horizon == 1:
            return float(mp.expm1(level) / total)

        def excess(lam: float) -> float:
            return float(schedule.log_product(lam, horizon).value - level)

        low, high = float(level / total), float(mp.expm1(level) / total)
        lam = low if excess(low) >= 0 else brentq(excess, low, high, xtol=1e-300)
        while excess(lam) > 0:
            lam = math.nextafter(lam, 0.0)
        return lam


def _start(theta0_norm: float, eps: float) -> float:
    """max(‖θ(0)‖, ε), with ‖θ(0)‖ checked finite and ≥ 0."""
    if not (theta0_norm >= 0 and math.isfinite(theta0_norm)):
        raise BadArgument("theta0_norm", f"expected a finite number ≥ 0, got {theta0_norm}")
    return max(theta0_norm, eps)


def _first_integer(passed: Callable[[int], bool], limit: int) -> int | None:
    """The smallest n in [0, limit] with ``passed(n)``, for ``passed`` false then true as n
    grows (doubling, then bisection); None where ``passed(limit)`` is false."""
    if passed(0):
        return 0
    high = 1
    while not passed(min(high, limit)):
        if high >= limit:
            return None
        high *= 2
    low, high = high // 2, min(high, limit)  # not passed at low, passed at high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if passed(middle) else (middle, high)
    return high


def read_schedule(schedule: ScheduleLike, horizon: int | None) -> tuple[Schedule, int | None]:
    """The schedule (:func:`theory.schedules.as_schedule`) and the horizon a bound uses:
    ``horizon``, or where it is None, the n of a schedule given on t < n only (an array of n
    values carries its length).

    Example:
        >>> read_schedule([0.1, 0.1, 0.05], None)
        (SampledSchedule('[3 values: 0.1, …, 0.05]', horizon=3), 3)
    """
    read = as_schedule(schedule, horizon)
    return read, read.horizon if horizon is None else horizon


def _sum_of_squares(schedule: Schedule, horizon: int | None) -> mp.mpf:
    return schedule.partial_sum_estimate(horizon, 2).value


def _kappa(name: str) -> mp.mpf:
    if name not in KAPPA:
        raise BadArgument("bound", f"unknown bound {name!r}; expected one of {', '.join(KAPPA)}")
    return KAPPA[name]


def require_positive(argument: str, value: float) -> float:
    """``value`` as a float if it is a positive finite number, else BadArgument naming it.

    Example:
        >>> require_positive("lam", 3)
        3.0
    """
    return positive(value, argument)


def _log_delta(delta: float | None, log_delta: float | None) -> mp.mpf:
    """ln δ from exactly one of ``delta`` ∈ (0, 1) or ``log_delta`` < 0."""
    if delta is not None and log_delta is None:
        if not 0 < delta < 1:
            raise BadArgument("delta", f"expected a probability in (0, 1), got {delta}")
        return mp.log(delta)
    if delta is not None or log_delta is None:
        raise BadArgument("delta", "give exactly one of delta (in (0, 1)) or log_delta (< 0)")
    if not (log_delta < 0 and math.isfinite(log_delta)):
        raise BadArgument("log_delta", f"expected a finite number < 0, got {log_delta}")
    return mp.mpf(log_delta)
