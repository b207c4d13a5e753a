"""One table of everything the theory says for a setting: the paper's bounds beside the true ones.

:func:`bound_table` returns a plain dict, ready for JSON (inf and NaN become None), with the keys
``input``, ``schedule`` and ``bounds``; :func:`format_table` renders it for a person. Both back
``python -m theory bound``.
"""

from __future__ import annotations

import math
from typing import Any

from theory import bounds
from theory.errors import BadArgument
from theory.records import to_json
from theory.schedules import PowerSchedule, Schedule, as_schedule

PROBABILITY_BOUNDS = {
    "lemma1_paper": "Lemma 1 as printed (paper)",
    "azuma": "Azuma, increments ≤ λa(t)",
    "pinelis": "Pinelis, max_s ‖ξ(s)‖ ≥ r",
}


def bound_table(lam: float, radius: float, schedule: Schedule | str, horizon: int | None = None,
                eps: float | None = None, theta0_norm: float = 0.0,
                delta: float | None = None) -> dict[str, Any]:
    """Every bound of :mod:`theory.bounds` for λ, radius M (= r), a schedule and an optional
    horizon T, ε (Claim 2; with a horizon, the Grönwall growth from ‖θ(0)‖ = ``theta0_norm``)
    and δ (the inverses). Raises ValueError naming the argument on bad input."""
    bounds.require_positive("lam", lam)
    bounds.require_positive("radius", radius)
    if eps is not None:
        bounds.require_positive("eps", eps)
    if delta is not None and not 0 < delta < 1:
        raise BadArgument("delta", f"expected a probability in (0, 1), got {delta}")
    if not 0 <= theta0_norm < math.inf:
        raise BadArgument("theta0_norm", f"expected a finite number ≥ 0, got {theta0_norm}")
    schedule = as_schedule(schedule, horizon)
    if horizon is None:  # values or a callable: their own horizon
        horizon = schedule.horizon
    verdict = schedule.a2()
    # γ = Σ_{t≥0} a(t)² only where it is defined and needed (no horizon) or free (closed form)
    wanted = schedule.horizon is None and (horizon is None or isinstance(schedule, PowerSchedule))
    table: dict[str, Any] = {
        "input": {"lam": lam, "radius": radius, "schedule": schedule.source, "horizon": horizon,
                  "eps": eps, "theta0_norm": theta0_norm, "delta": delta},
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
        result["vacuous_from"] = bounds.vacuous_horizon(name, lam, radius, schedule)
        results[name] = result
    results["deterministic"] = {
        "radius": bounds.deterministic_radius(lam, schedule, horizon),
        "horizon_for_radius": bounds.deterministic_horizon(lam, radius, schedule),
    }
    if eps is not None:
        results["claim2"] = bounds.claim2_constants(lam, eps).to_dict()
        if horizon is not None:
            results["gronwall"] = bounds.gronwall(lam, eps, schedule, horizon,
                                                  theta0_norm).to_dict()
    if delta is not None:
        results["inverses"] = {
            "delta": delta,
            "pinelis_radius": bounds.radius_for("pinelis", lam, schedule, horizon, delta=delta),
            "lemma1_paper_radius": bounds.radius_for("lemma1_paper", lam, schedule, horizon,
                                                     delta=delta),
            "pinelis_max_lam": bounds.max_lam_for("pinelis", radius, schedule, horizon,
                                                  delta=delta),
            "lemma1_paper_max_lam": bounds.max_lam_for("lemma1_paper", radius, schedule, horizon,
                                                       delta=delta),
        }
    table["bounds"] = results
    return to_json(table)


def format_table(table: dict[str, Any]) -> str:
    """The table of :func:`bound_table` as text for a terminal."""
    given, schedule, results = table["input"], table["schedule"], table["bounds"]
    horizon, finite = given["horizon"], schedule.get("finite_horizon")
    gamma_missing = ("not defined (a finite horizon)" if finite is not None
                     else "∞ (diverges)" if horizon is None else "not needed (a horizon is given)")
    never = "never" if finite is None else f"not for T ≤ {finite}"
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
    lines += ["", f"{'probability bound':<30} {'exponent':>12} {'log10 P':>12} {'P':>11}  "
                  f"{'vacuous from T':>16}  form"]
    for name, label in PROBABILITY_BOUNDS.items():
        row = results[name]
        probability = "underflow" if row["probability"] is None else f"{row['probability']:.4g}"
        probability = "≥ 1" if row["vacuous"] else probability
        lines.append(f"{label:<30} {_g(row['exponent']):>12} {_g(row['log10_probability']):>12} "
                     f"{probability:>11}  {_g(row['vacuous_from'], never):>16}  {row['form']}")
    deterministic = results["deterministic"]
    lines += [
        "",
        "deterministic (classic clipping, every path): ‖θ(T) − θ(0)‖ ≤ λ·Σ_{t<T} a(t)",
        f"  radius at the horizon: {_g(deterministic['radius'], '∞')}"
        + ("" if horizon is not None else " (no horizon)"),
        f"  first T with λ·Σ_{{t<T}} a(t) ≥ M: {_g(deterministic['horizon_for_radius'], never)}"
        "  (no path can leave the ball before it)",
    ]
    if "claim2" in results:
        claim2 = results["claim2"]
        lines += ["", f"Claim 2 (ε = {_g(given['eps'])}): ‖g/c‖ ≤ K(1 + ‖θ‖) with "
                      f"smallest K = λ·max(1, ε) = {_g(claim2['k_tight'])}, "
                      f"paper's K = max(λε, λ, 1) = {_g(claim2['k_paper'])}"]
    if "gronwall" in results:
        growth = results["gronwall"]
        lines.append(f"Grönwall (adaptive clipping, ‖θ(0)‖ = {_g(given['theta0_norm'])}): "
                     f"‖θ(T)‖ ≤ {growth['form']} = 10^{_g(growth['log10_norm'])}")
    if "inverses" in results:
        inverse = results["inverses"]
        lines += ["", f"inverses at δ = {_g(inverse['delta'])}:",
                  f"  radius r with Pinelis bound = δ: {_g(inverse['pinelis_radius'])};  "
                  f"paper's M: {_g(inverse['lemma1_paper_radius'])}",
                  f"  largest λ for radius {_g(given['radius'])}: Pinelis "
                  f"{_g(inverse['pinelis_max_lam'])};  paper {_g(inverse['lemma1_paper_max_lam'])}"]
    return "\n".join(lines)


def _g(value: Any, missing: str = "—") -> str:
    if value is None:
        return missing
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value}" if abs(value) < 10**6 else f"{value} (≈{value:.3e})"
    return f"{value:.10g}"


def _holds(value: bool | None) -> str:
    return {True: "holds", False: "fails", None: "undecided"}[value]
