"""One table of everything the theory says for a setting: the paper's bounds beside the true ones.

:func:`bound_table` returns a plain dict, ready for JSON (inf and NaN become None), with the keys
``input``, ``schedule`` and ``bounds``; :func:`format_table` renders it for a person. Both back
``python -m theory bound``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import sympy as sp

from theory import bounds
from theory.bounds import ScheduleLike
from theory.errors import BadArgument
from theory.records import to_json
from theory.schedules import PowerSchedule

PROBABILITY_BOUNDS = {
    "lemma1_paper": "Lemma 1 as printed (paper)",
    "azuma": "Azuma, increments ≤ λa(t)",
    "pinelis": "Pinelis, martingale part ξ",
}
#: the event each probability bound is about: the quantity its radius bounds
EVENTS = {
    "lemma1_paper": "P(‖θ(s) − θ(0)‖ > M)",
    "azuma": "P(|X(T) − X(0)| ≥ r), X scalar",
    "pinelis": "P(max_{s≤T} ‖ξ(s)‖ ≥ r)",
}


def bound_table(lam: float, radius: float, schedule: ScheduleLike, horizon: int | None = None,
                eps: float | None = None, theta0_norm: float = 0.0,
                delta: float | None = None, drift_bound: float | None = None) -> dict[str, Any]:
    """Every bound of :mod:`theory.bounds` for λ, radius M (= r), a schedule and an optional
    horizon T (an array schedule's length where none is given), ε (Claim 2, the Grönwall growth
    of adaptive clipping from ‖θ(0)‖ = ``theta0_norm`` with a horizon, and its inverses: the
    first T at which it passes M, and with a horizon the largest λ) and δ (the radius of ξ and
    the safe radius of θ at δ, with ``drift_bound`` h ≥ sup‖H‖, default λ; the largest λ).
    Each probability bound says whether it is vacuous already, from which T, or never
    (:func:`theory.bounds.vacuity`). Raises ValueError naming the argument on bad input.

    Example:
        >>> table = bound_table(30, 1024, "0.1", horizon=1000)
        >>> table["bounds"]["pinelis"]["vacuity"]["text"]
        'vacuous from T = 21011'
        >>> table["bounds"]["deterministic"]["horizon_for_radius"]   # 30·0.1·T ≥ 1024
        342
    """
    bounds.require_positive("lam", lam)
    bounds.require_positive("radius", radius)
    if eps is not None:
        bounds.require_positive("eps", eps)
    if delta is not None and not 0 < delta < 1:
        raise BadArgument("delta", f"expected a probability in (0, 1), got {delta}")
    if not 0 <= theta0_norm < math.inf:
        raise BadArgument("theta0_norm", f"expected a finite number ≥ 0, got {theta0_norm}")
    schedule, horizon = bounds.read_schedule(schedule, horizon)
    verdict = schedule.a2()
    # γ = Σ_{t≥0} a(t)² only where it is defined and needed (no horizon) or free (closed form)
    wanted = schedule.horizon is None and (horizon is None or isinstance(schedule, PowerSchedule))
    table: dict[str, Any] = {
        "input": {"lam": lam, "radius": radius, "schedule": schedule.source, "horizon": horizon,
                  "eps": eps, "theta0_norm": theta0_norm, "delta": delta,
                  "drift_bound": drift_bound},
        "schedule": {
            "expression": schedule.source,
            "description": schedule.describe(),
            "finite_horizon": schedule.horizon,
            "gamma": schedule.gamma if wanted else None,
            "a2": verdict.holds,
            "a2_reason": verdict.reason,
            "sum_a": schedule.partial_sum(horizon, 1) if horizon is not None else None,
            "sum_a2": schedule.partial_sum(horizon, 2) if horizon is not None else None,
        },
    }
    results: dict[str, Any] = {}
    for name in PROBABILITY_BOUNDS:
        result = bounds.probability_bound(name, lam, radius, schedule, horizon).to_dict()
        vacuity = bounds.vacuity(name, lam, radius, schedule, horizon)
        result["event"] = EVENTS[name]
        result["vacuity"] = vacuity.to_dict()
        result["vacuous_from"] = vacuity.horizon
        results[name] = result
    first = bounds.deterministic_horizon(lam, radius, schedule)
    results["deterministic"] = {
        "bounds": "‖θ(T) − θ(0)‖",
        "radius": bounds.deterministic_radius(lam, schedule, horizon),
        "horizon_for_radius": first,
        "reached": True if first is not None
        else schedule.sum_reaches(sp.Rational(radius) / sp.Rational(lam), power=1),
    }
    if eps is not None:
        results["claim2"] = bounds.claim2_constants(lam, eps).to_dict()
        adaptive: dict[str, Any] = {"bounds": "‖θ(T)‖", "first_horizon_above_radius":
                                    bounds.gronwall_horizon(lam, eps, radius, schedule,
                                                            theta0_norm)}
        if horizon is not None:
            adaptive.update(bounds.gronwall(lam, eps, schedule, horizon, theta0_norm).to_dict())
            adaptive["max_lam"] = _or_none(lambda: bounds.gronwall_max_lam(
                eps, radius, schedule, horizon, theta0_norm))
        results["gronwall"] = adaptive
    if delta is not None:
        theta = bounds.theta_radius(lam, schedule, horizon, delta=delta, drift_bound=drift_bound)
        results["inverses"] = {
            "delta": delta,
            "pinelis_radius": theta.martingale,  # radius_for("pinelis", …), computed once
            "lemma1_paper_radius": bounds.radius_for("lemma1_paper", lam, schedule, horizon,
                                                     delta=delta),
            "theta": theta.to_dict(),
            "pinelis_max_lam": bounds.max_lam_for("pinelis", radius, schedule, horizon,
                                                  delta=delta),
            "lemma1_paper_max_lam": bounds.max_lam_for("lemma1_paper", radius, schedule, horizon,
                                                       delta=delta),
        }
    table["bounds"] = results
    return to_json(table)


def format_table(table: dict[str, Any]) -> str:
    """The table of :func:`bound_table` as text for a terminal.

    Example:
        >>> print(format_table(bound_table(30, 1024, "0.1", horizon=1000)).splitlines()[0])
        λ = 30, M = r = 1024, horizon T = 1000
    """
    given, schedule, results = table["input"], table["schedule"], table["bounds"]
    horizon, finite = given["horizon"], schedule.get("finite_horizon")
    gamma_missing = ("not defined (a finite horizon)" if finite is not None
                     else "∞ (diverges)" if horizon is None else "not needed (a horizon is given)")
    lines = [
        f"λ = {_g(given['lam'])}, M = r = {_g(given['radius'])}, "
        + (f"horizon T = {horizon}" if horizon is not None else "no horizon (γ = Σ_{t≥0} a(t)²)"),
        schedule["description"],
        f"  γ = Σ_{{t≥0}} a(t)² = {_g(schedule['gamma'], gamma_missing)}",
        f"  (A2) {_holds(schedule['a2'])}: {schedule['a2_reason']}",
    ]
    if horizon is not None:
        lines.append(f"  Σ_{{t<T}} a(t) = {_g(schedule['sum_a'])},  "
                     f"Σ_{{t<T}} a(t)² = {_g(schedule['sum_a2'])}")
    lines += ["", f"{'probability bound':<28} {'event':<32} {'exponent':>12} {'log10 P':>12} "
                  f"{'P':>11}  form"]
    for name, label in PROBABILITY_BOUNDS.items():
        row = results[name]
        probability = "underflow" if row["probability"] is None else f"{row['probability']:.4g}"
        probability = "≥ 1" if row["vacuous"] else probability
        lines += [f"{label:<28} {row['event']:<32} {_g(row['exponent']):>12} "
                  f"{_g(row['log10_probability']):>12} {probability:>11}  {row['form']}",
                  f"    └ {row['vacuity']['text']}"]
    deterministic = results["deterministic"]
    lines += [
        "",
        "deterministic (classic clipping, every path): ‖θ(T) − θ(0)‖ ≤ λ·Σ_{t<T} a(t)",
        f"  radius of θ(T) − θ(0) at the horizon: {_g(deterministic['radius'], '∞')}"
        + ("" if horizon is not None else " (no horizon)"),
        f"  first T with λ·Σ_{{t<T}} a(t) ≥ M: {_first(deterministic)}"
        "  (no path can leave the ball before it)",
    ]
    if "claim2" in results:
        claim2 = results["claim2"]
        lines += ["", f"Claim 2 (ε = {_g(given['eps'])}): ‖g/c‖ ≤ K(1 + ‖θ‖) with "
                      f"smallest K = λ·max(1, ε) = {_g(claim2['k_tight'])}, "
                      f"paper's K = max(λε, λ, 1) = {_g(claim2['k_paper'])}"]
    if "gronwall" in results:
        lines += _gronwall_lines(given, results["gronwall"])
    if "inverses" in results:
        lines += _inverse_lines(given, results["inverses"], horizon)
    return "\n".join(lines)


def _first(deterministic: dict[str, Any]) -> str:
    if deterministic["horizon_for_radius"] is not None:
        return bounds.show_integer(deterministic["horizon_for_radius"])
    return {False: "never (λ·Σ a(t) stays below M)",
            True: "beyond 10^24 (Σ a(t) diverges; too far to find exactly)",
            None: "not for T ≤ 10^24"}[deterministic["reached"]]


def _gronwall_lines(given: dict[str, Any], growth: dict[str, Any]) -> list[str]:
    start = f"‖θ(0)‖ = {_g(given['theta0_norm'])}"
    lines = [f"Grönwall (adaptive clipping, {start}): ‖θ(T)‖ ≤ max(‖θ(0)‖, ε)·Π_{{t<T}}"
             "(1 + λa(t))"]
    if "log10_norm" in growth:
        lines.append(f"  radius of θ(T) at the horizon: 10^{_g(growth['log10_norm'])}")
    first = growth["first_horizon_above_radius"]
    lines.append("  first T at which the bound passes M: "
                 + (bounds.show_integer(first) + "  (‖θ(T)‖ ≤ M on every path before it)"
                    if first is not None else "none for T ≤ 10^24"))
    if "max_lam" in growth:
        lines.append("  largest λ with the bound ≤ M at T: "
                     + _g(growth["max_lam"], "none (M ≤ max(‖θ(0)‖, ε))"))
    return lines


def _inverse_lines(given: dict[str, Any], inverse: dict[str, Any], horizon: int | None
                   ) -> list[str]:
    theta = inverse["theta"]
    h = "λ" if given["drift_bound"] is None else f"h = {_g(given['drift_bound'])}"
    upto = "T" if horizon is not None else "∞"
    return [
        "", f"inverses at δ = {_g(inverse['delta'])}:",
        f"  radius of ξ (martingale part): P(max_{{s≤{upto}}} ‖ξ(s)‖ ≥ r) ≤ δ at "
        f"r = {_g(inverse['pinelis_radius'])} (Pinelis)",
        f"  safe radius of θ(s) − θ(0), classic clipping, s ≤ {upto}, probability ≥ 1 − δ: "
        f"{_g(theta['radius'], '∞')}",
        f"    drift {h}·Σ a(t) = {_g(theta['drift'], '∞')} + martingale r = "
        f"{_g(theta['martingale'])} = {_g(theta['split'], '∞')}; every path: λ·Σ a(t) = "
        f"{_g(theta['pathwise'], '∞')}",
        f"  radius of θ(s) − θ(0) by Lemma 1 as printed (not valid): M = "
        f"{_g(inverse['lemma1_paper_radius'])}",
        f"  largest λ for radius {_g(given['radius'])}: Pinelis "
        f"{_g(inverse['pinelis_max_lam'])};  paper {_g(inverse['lemma1_paper_max_lam'])}",
    ]


def _or_none(compute: Callable[[], float]) -> float | None:
    """``compute()``, or None where it refuses its input (BadArgument)."""
    try:
        return compute()
    except BadArgument:
        return None


def _g(value: Any, missing: str = "—") -> str:
    if value is None:
        return missing
    if isinstance(value, int) and not isinstance(value, bool):
        return bounds.show_integer(value)
    return f"{value:.10g}"


def _holds(value: bool | None) -> str:
    return {True: "holds", False: "fails", None: "undecided"}[value]
