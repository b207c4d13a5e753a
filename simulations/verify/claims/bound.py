r"""A bound of the user's own, declared in a scenario as a ``[[bound]]`` table::

    [[bound]]
    name = "azuma-exit"                              # the claim id of its rows
    event = "exit"                                   # exit, xi or blowup
    expression = "2*exp(-M**2/(2*lam**2*sum_a2))"    # P(event) ≤ this
    radius = [2.0, 3.0]                              # optional: default the scenario's [radii]

The events, measured on every path of the run:

* ``exit``: max_{s≤T} ‖θ(s) − θ(0)‖ > M (``[radii] exit`` by default);
* ``xi``: max_{s≤T} ‖ξ(s)‖ ≥ r, on the paths where ξ is tracked (``[radii] xi``);
* ``blowup``: max_{s≤T} ‖θ(s)‖ > M (``[radii] blowup``).

The expression is a formula in the symbols ``lam`` (λ), ``eps`` (ε, for rules that have one),
``M`` and ``r`` (both the row's radius), ``T`` (steps), ``sum_a`` = Σ_{t<T} a(t),
``sum_a2`` = Σ_{t<T} a(t)², ``gamma`` = γ = Σ_{t≥0} a(t)² (inf when (A2) fails), with numbers,
+ − * / ** (or ^), and the functions exp, log, sqrt, Min, Max, Abs and the constants pi, E.
It is read by :func:`theory.formula.parse`, which runs no Python of the user's (no attribute
access, subscripts, strings, other names, nothing with ``__``) and refuses constants beyond
10^±308, constant exponents beyond 10^4 and functions called with the wrong number of
arguments. When the scenario is loaded the formula is evaluated on :data:`GRID` (every value
of the symbols it uses at the middle of the others, all low, all high): a value that is not a
real number there (log(0), 1/0, sqrt(−1)) or beyond 10^±(10^60) refuses the file in one line.
The bound is evaluated by :func:`theory.formula.evaluate` in mpmath at 30 digits (2e^{−1416}
is 10^−614.9, not an underflow to 0) and judged by the probability rule of
:mod:`simulations.verify.claims.verdicts`.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath as mp
import numpy as np
import sympy

from simulations.verify.claims.context import Context, fmt
from simulations.verify.claims.registry import Claim
from simulations.verify.claims.result import ClaimResult
from simulations.verify.claims.verdicts import clopper_pearson, probability_verdict
from theory import formula
from theory.errors import BadArgument
from theory.formula import FormulaError, Grammar

__all__ = ["EVENTS", "GRID", "SYMBOLS", "bound_claim", "check_on_grid", "grid_points",
           "log10_bound", "parse_expression"]

SYMBOLS = ("lam", "eps", "M", "r", "T", "sum_a", "sum_a2", "gamma")
FUNCTIONS = {"exp": (sympy.exp, 1, 1), "log": (sympy.log, 1, 2), "sqrt": (sympy.sqrt, 1, 1),
             "Min": (sympy.Min, 1, None), "Max": (sympy.Max, 1, None), "Abs": (sympy.Abs, 1, 1)}
GRAMMAR = Grammar({s: sympy.Symbol(s, positive=True) for s in SYMBOLS}, FUNCTIONS)
#: Low, middle and high values of each symbol at which a formula is checked when it is loaded
#: (M and r, both the radius, take the same value; values away from 0 and 1 on purpose).
GRID = {"lam": (0.37, 3.1, 47.0), "eps": (1e-3, 0.29, 5.3), "M": (0.53, 2.9, 1100.0),
        "T": (7.0, 1000.0, 1e6), "sum_a": (0.31, 7.3, 1900.0), "sum_a2": (1e-4, 0.27, 3.3),
        "gamma": (0.21, 1.64, 37.0)}
EVENTS = {"exit": ("max_{s≤T}‖θ(s)−θ(0)‖ > {R}", "running_max", "max_deviation"),
          "xi": ("max_{s≤T}‖ξ(s)‖ ≥ {R}", "xi", "xi_max"),
          "blowup": ("max_{s≤T}‖θ(s)‖ > {R}", "running_max", "max_norm")}
TABLE_KEYS = {"name", "event", "expression", "radius"}


def parse_expression(text: str, where: str = "bound") -> sympy.Expr:
    """The sympy expression of ``text`` (module docstring), or :class:`BadArgument` naming
    ``where`` and what is not allowed."""
    try:
        return formula.parse(text, GRAMMAR, where)
    except FormulaError as error:
        raise BadArgument(where, error.message) from None


def check_on_grid(expr: sympy.Expr, text: str, where: str = "bound") -> None:
    """:class:`BadArgument` naming ``where`` unless ``expr`` is a real number within formula's
    budget at every point of :func:`grid_points` of the symbols it uses."""
    for point in grid_points({s.name for s in expr.free_symbols}):
        values = {sympy.Symbol(k, positive=True): v for k, v in point.items()}
        try:
            formula.evaluate(expr, values, where, what=repr(text))
        except FormulaError as error:
            at = ", ".join(f"{k} = {v:g}" for k, v in point.items())
            raise BadArgument(where, f"{error.message}{' at ' + at if at else ''}") from None


def grid_points(names: set[str]) -> list[dict[str, float]]:
    """The points of :data:`GRID` for the symbols ``names``: all at the middle value, each one
    at its low and high value with the others at the middle, all low, all high (r = M)."""
    used = sorted({"M" if n == "r" else n for n in names})

    def point(choice: dict[str, int]) -> dict[str, float]:
        values = {n: GRID[n][choice.get(n, 1)] for n in used}
        return values | ({"r": values["M"]} if "r" in names else {})

    choices = [{}, {n: 0 for n in used}, {n: 2 for n in used}]
    choices += [{n: i} for n in used for i in (0, 2)]
    return [point(c) for c in choices]


def log10_bound(expr: sympy.Expr, values: dict[str, float]) -> float:
    """log10 of the expression at ``values`` (symbol name → number, inf allowed): −inf when it
    is ≤ 0, inf when it is infinite, from :func:`theory.formula.evaluate` at 30 digits so that
    it neither under- nor overflows; ``ValueError`` when it is not a real number."""
    missing = {s.name for s in expr.free_symbols} - {k for k, v in values.items()
                                                    if v is not None}
    if missing:
        raise ValueError(f"the bound needs {', '.join(sorted(missing))}, which this scenario "
                         f"does not have")
    subs = {sympy.Symbol(k, positive=True): v for k, v in values.items() if v is not None}
    value = formula.evaluate(expr, subs, "bound")
    if value <= 0:
        return -math.inf
    return float(mp.log10(value))


def _radii(scenario, event: str, radius: Any) -> tuple[float, ...]:
    if radius is not None:
        return tuple(float(r) for r in (radius if isinstance(radius, list) else [radius]))
    return {"exit": scenario.exit_radii, "xi": scenario.xi_radii,
            "blowup": (scenario.blowup_radius,)}[event]


def bound_claim(table: dict[str, Any], where: str = "bound") -> Claim:
    """The claim of a ``[[bound]]`` table (module docstring); ``ValueError`` naming the key that
    is wrong."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: a [[bound]] entry is a table")
    unknown = set(table) - TABLE_KEYS
    if unknown:
        raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown key (expected "
                         f"{', '.join(sorted(TABLE_KEYS))})")
    name, event, text = table.get("name"), table.get("event"), table.get("expression")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: required, the claim id of the bound's rows")
    if event not in EVENTS:
        raise ValueError(f"{where}.event: expected one of {', '.join(EVENTS)}, got {event!r}")
    try:
        source = text if isinstance(text, str) else ""  # "" is refused as an empty text
        expr = parse_expression(source, f"{where}.expression")
        check_on_grid(expr, source, f"{where}.expression")
    except BadArgument as error:
        raise BadArgument(error.param, f"{error.message} (bound {name!r})") from None
    radius = table.get("radius")
    if radius is not None:
        values = radius if isinstance(radius, list) else [radius]
        if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) or
                             not 0 < v < math.inf for v in values):
            raise ValueError(f"{where}.radius: expected positive numbers, got {radius!r}")
    event_text, observer, array = EVENTS[event]

    def applicable(scenario) -> str | None:
        if not _radii(scenario, event, radius):
            return f"needs a radius (radius = [...] in [[bound]], or [radii] {event})"
        if "eps" in {s.name for s in expr.free_symbols} and scenario.clip.get("eps") is None:
            return "the expression uses eps, which this clip rule does not have"
        if "gamma" in {s.name for s in expr.free_symbols} and \
                scenario.run.schedule_obj().horizon is not None:
            return ("the expression uses gamma = Σ_{t≥0} a(t)², which a schedule defined on a "
                    "finite horizon does not have (use sum_a2)")
        return None

    def check(ctx: Context) -> list[ClaimResult]:
        values_at = ctx.sim.arrays[array]
        n = len(values_at)
        sum_a = float(np.sum(ctx.a))
        gamma = None if ctx.schedule.horizon is not None else float(ctx.schedule.gamma)
        base = {"lam": ctx.lam, "eps": ctx.rule.eps, "T": ctx.steps, "sum_a": sum_a,
                "sum_a2": float(np.sum(ctx.a**2))} | ({} if gamma is None else {"gamma": gamma})
        norm0 = float(np.linalg.norm(ctx.theta0()))
        reach = {"exit": ctx.lam * sum_a, "xi": 2 * ctx.lam * sum_a,
                 "blowup": norm0 + ctx.lam * sum_a}[event]
        out = []
        for R in _radii(ctx.scenario, event, radius):
            lg = log10_bound(expr, base | {"M": R, "r": R})
            k = int(np.sum(values_at >= R) if event == "xi" else np.sum(~(values_at <= R)))
            lo, hi = clopper_pearson(k, n)
            impossible = ctx.rule.kind == "classic" and (reach < R if event == "xi"
                                                         else reach <= R)
            verdict, why = probability_verdict(k, n, lg, impossible=impossible)
            if impossible:
                why += f" (classic clipping reaches at most {fmt(reach)} < {fmt(R)})"
            shown = f"P ≤ {10**lg:.4g}" if -300 < lg < 300 else f"P ≤ 10^{lg:.6g}"
            out.append(ctx.row(
                statement=f"P({event_text.replace('{R}', fmt(R))}) ≤ {text}", prediction=shown,
                measurement=f"{k}/{n} = {fmt(k / n)}", interval=(lo, hi), verdict=verdict,
                reason=why, prediction_value=lg, measurement_value=k / n,
                details={"event": event, "expression": text, "radius": R, "log10_bound": lg,
                         "exits": k, "paths": n, "symbols": base | {"M": R, "r": R}}))
        return out

    return Claim(id=name, statement=f"P({event_text.replace('{R}', 'R')}) ≤ {text}", check=check,
                 observers=(observer,), needs=applicable,
                 source=f"[[bound]] {name}: P({event}) ≤ {text}, radius {radius!r}")
