"""The paper's standing assumptions, decided symbolically.

(A1) The activation functions are twice continuously differentiable (C²) on ℝ.

:func:`a1` decides (A1) for one activation, given by name (see :data:`KNOWN_ACTIVATIONS` and
:data:`ALIASES`), as a sympy expression in one variable ``x``, or as a string sympy can parse.
Method, all symbolic:

1. ``Max``, ``Min``, ``Abs``, ``Heaviside`` and ``sign`` are rewritten into ``Piecewise`` and
   the result is folded (``sp.piecewise_fold``) so that f = Piecewise((f_i, c_i), ...) with
   smooth-looking pieces f_i (a non-piecewise f is the single piece (f, True)).
2. The breakpoints are the finite boundary points of the condition sets ``c_i.as_set()``; they
   cut ℝ into open intervals, on each of which one piece is active.
3. For k = 0, 1, 2, the k-th derivative of each active piece must be continuous on its open
   interval (``sympy.calculus.util.continuous_domain``; where that raises, e.g. for ``erf``, a
   conservative structural check: sums, products and compositions of functions continuous on
   ℝ, with denominators and logarithm arguments that sympy proves positive or negative), and
   contain no ``DiracDelta`` or non-finite value; at each breakpoint c the one-sided limits
   (``sp.limit`` with ``dir='-'`` / ``'+'``) of the k-th derivatives must be finite and equal,
   and for k = 0 equal to f(c). By the mean value theorem this makes f C^k on ℝ.
4. The first k that fails gives the order k - 1; where sympy cannot decide a step, the answer
   is undecided (``holds=None``, ``order=None``) rather than a guess.

Only quick sympy operations are used (no ``simplify`` of whole derivatives); the known
activations are decided in milliseconds. String input is read by :func:`theory.formula.parse`
(:data:`GRAMMAR`: ``x``, numbers, + − * / ** ^, the functions of :data:`FUNCTIONS`, pi, E,
relations for ``Piecewise``), which runs no Python and refuses oversized constants.

(A2) The step sizes satisfy a(t) > 0, Σ a(t) = ∞ and Σ a(t)² < ∞. These conditions are checked
by :mod:`theory.schedules`; ``a2(schedule)`` in this module delegates to that check.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import sympy as sp
from sympy.calculus.util import continuous_domain
from sympy.core.function import AppliedUndef

from theory import formula
from theory.formula import FormulaError, Grammar
from theory.schedules import A2Verdict, Schedule, as_schedule

__all__ = [
    "ALIASES", "KNOWN_ACTIVATIONS", "X", "A1Verdict", "A2Verdict", "a1", "a2", "activation_expr",
]

X = sp.Symbol("x", real=True)
"""The real variable every activation is expressed in."""

KNOWN_ACTIVATIONS: MappingProxyType[str, sp.Expr] = MappingProxyType(
    {
        "tanh": sp.tanh(X),
        "sigmoid": 1 / (1 + sp.exp(-X)),
        "softplus": sp.log(1 + sp.exp(X)),
        "gelu": X / 2 * (1 + sp.erf(X / sp.sqrt(2))),
        "gelu_tanh": X
        / 2
        * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (X + sp.Rational(44715, 10**6) * X**3))),
        "silu": X / (1 + sp.exp(-X)),
        "elu": sp.Piecewise((X, X > 0), (sp.exp(X) - 1, True)),
        "relu": sp.Max(0, X),
        "leaky_relu": sp.Max(X, X / 100),
        "identity": X,
        "softsign": X / (1 + sp.Abs(X)),
    }
)
"""Canonical activation names and their expressions in :data:`X` (ELU with α = 1, leaky ReLU
with slope 0.01, ``gelu`` exact, ``gelu_tanh`` the tanh approximation)."""

ALIASES: MappingProxyType[str, str] = MappingProxyType(
    {
        "logistic": "sigmoid",
        "expit": "sigmoid",
        "gelu_exact": "gelu",
        "gelu_erf": "gelu",
        "gelu_approx": "gelu_tanh",
        "gelu_approximate": "gelu_tanh",
        "approx_gelu": "gelu_tanh",
        "swish": "silu",
        "leakyrelu": "leaky_relu",
        "lrelu": "leaky_relu",
        "linear": "identity",
        "id": "identity",
    }
)
"""Other accepted names (case-insensitive; ``-`` and spaces read as ``_``)."""

#: Functions an activation's text may use: name → (sympy function, least and most arguments).
FUNCTIONS = {
    **{name: (f, 1, 1) for name, f in {
        "exp": sp.exp, "sqrt": sp.sqrt, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
        "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "sech": sp.sech, "atan": sp.atan,
        "asinh": sp.asinh, "erf": sp.erf, "erfc": sp.erfc, "Abs": sp.Abs, "sign": sp.sign}.items()},
    "log": (sp.log, 1, 2), "Heaviside": (sp.Heaviside, 1, 2), "Max": (sp.Max, 1, None),
    "Min": (sp.Min, 1, None), "Piecewise": (sp.Piecewise, 1, None), "Eq": (sp.Eq, 2, 2),
    "Rational": (sp.Rational, 2, 2),
}
GRAMMAR = Grammar({"x": X}, FUNCTIONS, {"pi": sp.pi, "E": sp.E, "True": sp.true},
                  relations=True)

_DERIVATIVE_WORDS = ("f", "first derivative", "second derivative")

# Functions that are continuous on all of ℝ, as functions of a real argument.
_CONTINUOUS_ON_R = (
    sp.exp, sp.sin, sp.cos, sp.sinh, sp.cosh, sp.tanh, sp.sech, sp.atan, sp.asinh,
    sp.erf, sp.erfc, sp.Abs,
)  # fmt: skip


@dataclass(frozen=True)
class A1Verdict:
    """Outcome of checking (A1) for one activation.

    Attributes:
        holds: True if the activation is C² on ℝ, False if not, None if sympy could not decide.
        activation: the canonical name, or the expression as a string.
        reason: one human-readable line explaining the verdict.
        order: the largest k ≤ 2 with f ∈ C^k(ℝ); -1 if f is not continuous, None if undecided.
    """

    holds: bool | None
    activation: str
    reason: str
    order: int | None


class _Undecided(Exception):
    """Raised internally when sympy cannot decide a step."""


def _known_names() -> str:
    return ", ".join(sorted(KNOWN_ACTIVATIONS)) + " (aliases: " + ", ".join(sorted(ALIASES)) + ")"


def _bad(activation: object, why: str) -> ValueError:
    return ValueError(
        f"activation={activation!r}: {why}; give one of the known names {_known_names()}, "
        "or a sympy expression (or string) in the single variable x"
    )


def _canonical_name(activation: str) -> str | None:
    key = activation.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    return key if key in KNOWN_ACTIVATIONS else None


def _resolve(activation: str | sp.Expr) -> tuple[sp.Expr, str]:
    """Return the expression of ``activation`` in :data:`X` and its label."""
    if isinstance(activation, str):
        name = _canonical_name(activation)
        if name is not None:
            return KNOWN_ACTIVATIONS[name], name
        if activation.strip().isidentifier() and activation.strip() != "x":
            raise _bad(activation, "unknown activation name")
        try:
            expr = formula.parse(activation, GRAMMAR, "activation")
        except FormulaError as exc:
            raise _bad(activation, f"not a known name and not a formula ({exc.message})") \
                from None
    else:
        try:
            expr = sp.sympify(activation, strict=True)
        except sp.SympifyError as exc:
            raise _bad(activation, "not a sympy expression") from exc
    if not isinstance(expr, sp.Expr):
        raise _bad(activation, f"not a scalar expression (got {type(expr).__name__})")
    expr = expr.subs({s: X for s in expr.free_symbols if getattr(s, "name", None) == "x"})
    others = expr.free_symbols - {X}
    if others:
        names = ", ".join(sorted(str(s) for s in others))
        raise _bad(activation, f"free symbol(s) other than x: {names}")
    undefined = expr.atoms(AppliedUndef)
    if undefined:
        names = ", ".join(sorted(str(u) for u in undefined))
        raise _bad(activation, f"undefined function(s): {names}")
    return expr, str(expr)


def activation_expr(activation: str | sp.Expr) -> sp.Expr:
    """Return the sympy expression in :data:`X` of a named or given activation.

    Args:
        activation: a known name or alias (case-insensitive), a sympy expression in ``x``, or a
            string :func:`theory.formula.parse` reads in :data:`GRAMMAR`.

    Raises:
        ValueError: unknown name, unparsable string, or an expression with a free symbol other
            than ``x`` (or an undefined function).

    Example:
        >>> activation_expr("softplus")
        log(exp(x) + 1)
    """
    return _resolve(activation)[0]


def _provably_continuous(expr: sp.Expr) -> bool:
    """True if ``expr`` is built from functions continuous on ℝ so that it is (else False)."""
    if not expr.has(X):
        return expr.is_finite is True
    if expr == X:
        return True
    if isinstance(expr, (sp.Add, sp.Mul)):
        return all(_provably_continuous(a) for a in expr.args)
    if isinstance(expr, _CONTINUOUS_ON_R):
        return _provably_continuous(expr.args[0])
    if isinstance(expr, sp.log):
        return expr.args[0].is_positive is True and _provably_continuous(expr.args[0])
    if isinstance(expr, sp.Pow):
        base, exp = expr.args
        if not _provably_continuous(base):
            return False
        if exp.is_integer and exp.is_nonnegative:
            return True
        if exp.is_integer and exp.is_negative:
            return base.is_positive is True or base.is_negative is True
        return base.is_positive is True and _provably_continuous(exp)
    return False


def _not_finite(expr: sp.Expr) -> bool:
    return expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo)


def _continuous_on(expr: sp.Expr, interval: sp.Set) -> sp.Set:
    """Points of ``interval`` where ``expr`` is not continuous (EmptySet if none).

    Raises _Undecided where neither ``continuous_domain`` nor the structural check decides.
    """
    try:
        domain = continuous_domain(expr, X, interval)
    except Exception as exc:  # NotImplementedError for erf and the like
        if _provably_continuous(expr):
            return sp.S.EmptySet
        raise _Undecided(f"sympy cannot decide where {expr} is continuous") from exc
    return interval - domain


def _limit(expr: sp.Expr, point: sp.Expr, direction: str) -> sp.Expr:
    try:
        value = sp.limit(expr, X, point, dir=direction)
    except Exception as exc:  # sympy's limit raises assorted errors on hard inputs
        raise _Undecided(f"sympy cannot take the limit of {expr} at x = {point}") from exc
    if isinstance(value, sp.Limit) or value.has(X):
        raise _Undecided(f"sympy cannot take the limit of {expr} at x = {point}")
    return value


def _equal(a: sp.Expr, b: sp.Expr) -> bool:
    diff = a - b
    zero = diff.is_zero
    if zero is None:
        zero = diff.equals(0)
    if zero is None:
        raise _Undecided(f"sympy cannot decide whether {a} = {b}")
    return bool(zero)


def _pieces(expr: sp.Expr) -> tuple[list[sp.Expr], list[tuple[sp.Expr, sp.Boolean]]]:
    """Sorted finite breakpoints and the (piece, condition) pairs of the folded Piecewise."""
    folded = sp.piecewise_fold(expr.rewrite(sp.Piecewise))
    pairs = list(folded.args) if isinstance(folded, sp.Piecewise) else [(folded, sp.true)]
    if any(piece.has(sp.Piecewise) for piece, _ in pairs):
        raise _Undecided("sympy could not fold the expression into a single Piecewise")
    points: set[sp.Expr] = set()
    for _, cond in pairs:
        if cond is sp.true:
            continue
        try:
            boundary = cond.as_set().boundary
        except Exception as exc:  # as_set raises NotImplementedError on hard conditions
            raise _Undecided(f"sympy cannot solve the condition {cond}") from exc
        if not isinstance(boundary, sp.FiniteSet):
            raise _Undecided(f"the condition {cond} has no finite set of breakpoints")
        points |= {p for p in boundary if p.is_finite}
    return sorted(points, key=lambda p: float(p)), pairs


def _active(pairs: list[tuple[sp.Expr, sp.Boolean]], point: sp.Expr) -> sp.Expr | None:
    """The piece active at ``point``, or None where f is undefined there."""
    for piece, cond in pairs:
        truth = cond.subs(X, point) if cond is not sp.true else sp.true
        if truth is sp.true:
            return piece
        if truth is not sp.false:
            raise _Undecided(f"sympy cannot decide the condition {cond} at x = {point}")
    return None


def _kth_failure(k: int, word: str, intervals: list, points: list, values: list) -> str | None:
    """Why the k-th derivative (``word``) of the piecewise f fails on its ``intervals`` or
    across its break ``points`` (``values``: f there), or None where it does not."""
    derivs = [(interval, sp.diff(piece, X, k)) for interval, piece in intervals]
    for interval, d in derivs:
        if d.has(sp.DiracDelta):
            return f"{word} contains DiracDelta"
        if _not_finite(d):
            return f"{word} takes non-finite values ({d})"
        bad = _continuous_on(d, interval)
        if bad != sp.S.EmptySet:
            return f"{word} is not continuous (or undefined) at {_fmt_set(bad)}"
    for i, c in enumerate(points):
        left = _limit(derivs[i][1], c, "-")
        right = _limit(derivs[i + 1][1], c, "+")
        for side, lim in (("left", left), ("right", right)):
            if lim.is_finite is not True:
                return f"{word} has no finite limit at x = {c} from the {side} ({lim})"
        if not _equal(left, right):
            return f"{word} jumps at x = {c} (from {left} to {right})"
        if k == 0 and (_not_finite(values[i]) or not _equal(values[i], left)):
            return f"f is not continuous at x = {c} (f({c}) = {values[i]}, limit {left})"
    return None


def _fmt_set(points: sp.Set) -> str:
    if isinstance(points, sp.FiniteSet):
        return "x = " + ", ".join(str(p) for p in points)
    return f"x in {points}"


def _inside(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """A point inside the open interval (a, b) (either end may be infinite)."""
    if a == -sp.oo and b == sp.oo:
        return sp.Integer(0)
    if a == -sp.oo:
        return b - 1
    if b == sp.oo:
        return a + 1
    return (a + b) / 2


def _first_failure(expr: sp.Expr) -> tuple[int, str]:
    """The first k in 0, 1, 2 at which f fails to be C^k and why; (3, why) if f is C²."""
    if expr.has(sp.DiracDelta):
        return 0, "f contains DiracDelta, so it is not a function on ℝ"
    points, pairs = _pieces(expr)
    edges = [-sp.oo, *points, sp.oo]
    intervals = []  # (interval, active piece)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        piece = _active(pairs, _inside(a, b))
        if piece is None:
            return 0, f"f is undefined on ({a}, {b})"
        intervals.append((sp.Interval.open(a, b), piece))
    values = []
    for c in points:
        piece = _active(pairs, c)
        if piece is None:
            return 0, f"f is undefined at x = {c}"
        values.append(piece.subs(X, c))
    for k, word in enumerate(_DERIVATIVE_WORDS):
        why = _kth_failure(k, word, intervals, points, values)
        if why is not None:
            return k, why
    if points:
        where = ", ".join(str(c) for c in points)
        return 3, f"f, f′, f″ are continuous on each piece and agree across x = {where}"
    return 3, "f, f′, f″ are compositions of functions continuous on ℝ"


def a1(activation: str | sp.Expr) -> A1Verdict:
    """Decide (A1), "the activation is C² on ℝ", symbolically for one activation.

    Args:
        activation: a known name or alias (case-insensitive, see :data:`KNOWN_ACTIVATIONS` and
            :data:`ALIASES`), a sympy expression in ``x``, or a string in :data:`GRAMMAR`.

    Returns:
        An :class:`A1Verdict`; ``holds`` is None (and ``order`` None) where sympy cannot decide.

    Raises:
        ValueError: unknown name, unparsable string, or an expression with a free symbol other
            than ``x`` (or an undefined function).

    Example:
        >>> a1("tanh").holds, a1("relu").holds
        (True, False)
    """
    expr, label = _resolve(activation)
    try:
        k, reason = _first_failure(expr)
    except _Undecided as exc:
        return A1Verdict(holds=None, activation=label, reason=f"undecided: {exc}", order=None)
    return A1Verdict(holds=k > 2, activation=label, reason=reason, order=k - 1)


def a2(schedule: Schedule | str | float, horizon: int | None = None) -> A2Verdict:
    """(A2) for a step-size schedule: a(t) > 0, Σ a(t) = ∞, Σ a(t)² < ∞.

    ``schedule`` is a :class:`~theory.schedules.Schedule`, an expression in t or a number;
    positivity is checked on ``horizon`` (all t ≥ 0 without one) and raises ValueError.
    The power family c/(t+t0)^p is decided analytically (1/2 < p ≤ 1), other expressions by
    sympy's convergence test (undecided after a time limit). A schedule given on a finite
    horizon only (values, a callable, text with T or with floor/Min/Max/Piecewise, or positive
    on the horizon only) gets ``holds=None`` with the reason "not applicable": (A2) is a
    statement about t → ∞.

    Example:
        >>> a2("1/(t+1)").holds, a2("1/sqrt(t+1)").holds       # Σa² = π²/6, Σa² = ∞
        (True, False)
    """
    return as_schedule(schedule, horizon).a2()
