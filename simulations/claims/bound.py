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
It is checked before sympy sees it: the text is parsed as a Python expression and every node must
be one of those (no attribute access, no subscripts, no strings, no other names, nothing with
``__``), so no Python code of the user's runs. The bound is evaluated in log space, log10 of it
from sympy's expand_log at 30 digits (2e^{−1416} is −614.9, not an underflow to 0), and judged by
the probability rule of :mod:`simulations.claims.verdicts`.
"""

from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np
import sympy

from simulations.claims.context import Context, fmt
from simulations.claims.registry import Claim
from simulations.claims.result import ClaimResult
from simulations.claims.verdicts import clopper_pearson, probability_verdict

__all__ = ["EVENTS", "SYMBOLS", "bound_claim", "log10_bound", "parse_expression"]

SYMBOLS = ("lam", "eps", "M", "r", "T", "sum_a", "sum_a2", "gamma")
FUNCTIONS = {"exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt, "Min": sympy.Min,
             "Max": sympy.Max, "Abs": sympy.Abs}
CONSTANTS = {"pi": sympy.pi, "E": sympy.E}
EVENTS = {"exit": ("max_{s≤T}‖θ(s)−θ(0)‖ > {R}", "running_max", "max_deviation"),
          "xi": ("max_{s≤T}‖ξ(s)‖ ≥ {R}", "xi", "xi_max"),
          "blowup": ("max_{s≤T}‖θ(s)‖ > {R}", "running_max", "max_norm")}
_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow,
          ast.BitXor, ast.USub, ast.UAdd, ast.Constant, ast.Name, ast.Load, ast.Call)
TABLE_KEYS = {"name", "event", "expression", "radius"}


def parse_expression(text: str, where: str = "bound") -> sympy.Expr:
    """The sympy expression of ``text`` (module docstring), or ``ValueError`` naming what is
    not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: expression must be a non-empty string")
    if "__" in text or len(text) > 1000:
        raise ValueError(f"{where}: expression may not contain '__' (or exceed 1000 characters)")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"{where}: expression is not a formula: {error.msg}") from None
    allowed = set(SYMBOLS) | set(FUNCTIONS) | set(CONSTANTS)
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise ValueError(f"{where}: expression may not use {type(node).__name__} "
                             f"(only numbers, {', '.join(SYMBOLS)}, + - * / **, and "
                             f"{', '.join([*FUNCTIONS, *CONSTANTS])})")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or
                                               not isinstance(node.value, (int, float))):
            raise ValueError(f"{where}: expression may only contain numbers, got "
                             f"{node.value!r}")
        if isinstance(node, ast.Name) and node.id not in allowed:
            raise ValueError(f"{where}: unknown name {node.id!r} in expression (expected "
                             f"{', '.join([*SYMBOLS, *FUNCTIONS, *CONSTANTS])})")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or
                                           node.func.id not in FUNCTIONS or node.keywords):
            raise ValueError(f"{where}: only {', '.join(FUNCTIONS)} may be called")
    namespace = {s: sympy.Symbol(s, positive=True) for s in SYMBOLS} | FUNCTIONS | CONSTANTS
    expr = sympy.sympify(text, locals=namespace, convert_xor=True)
    extra = {s.name for s in expr.free_symbols} - set(SYMBOLS)
    if extra:
        raise ValueError(f"{where}: unknown symbols {', '.join(sorted(extra))}")
    return expr


def log10_bound(expr: sympy.Expr, values: dict[str, float]) -> float:
    """log10 of the expression at ``values`` (symbol name → number): −inf when it is ≤ 0,
    computed as expand_log(log(expr))/ln 10 at 30 digits so that it neither under- nor
    overflows; ``ValueError`` when it is not a real number."""
    subs = {sympy.Symbol(k, positive=True): sympy.Float(v, 30) if math.isfinite(v) else
            sympy.oo for k, v in values.items() if v is not None}
    value = expr.subs(subs)
    if value.free_symbols:
        raise ValueError(f"the bound needs {', '.join(sorted(map(str, value.free_symbols)))}, "
                         f"which this scenario does not have")
    number = value.evalf(30)
    if number == 0 or number is sympy.S.Zero:
        return -math.inf
    if not number.is_real:
        if number.is_infinite:
            return math.inf
        raise ValueError(f"the bound is not a real number: {number}")
    if number < 0:
        return -math.inf
    log = sympy.expand_log(sympy.log(value), force=True).evalf(30)
    return float(log / sympy.log(10).evalf(30))


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
    expr = parse_expression(text, f"{where}.expression")
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
            shown = f"P ≤ {10**lg:.4g}" if lg > -300 else f"P ≤ 10^{lg:.6g}"
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
