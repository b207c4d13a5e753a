r"""Formulas a person types or shares (schedules, ``[[bound]]`` expressions, activations), read
without running Python and evaluated under a budget.

:func:`parse` reads a formula in the names of a :class:`Grammar` (the symbols, functions with
their numbers of arguments, and constants a caller allows) and returns a sympy expression:

* the text is split by Python's tokenizer and every token must be a decimal number, an allowed
  name, or one of ``+ - * / ** ^ ( ) ,`` (and ``< > <= >=`` where the grammar has relations);
  ``^`` is a power, ``__`` is refused anywhere, and with ``implicit`` ``2t`` is ``2*t``;
* the token text is parsed by :mod:`ast` and built into sympy node by node from the leaves up
  (no ``eval``): numbers, names, + − * / ** and unary ±, calls of allowed functions with the
  right number of arguments (``(value, condition)`` pairs only in ``Piecewise``);
* before sympy evaluates a node whose operands are constants, its value is computed by
  :func:`evaluate` (so ``9**9**9`` is never multiplied out); a constant must be 0 or within
  10^−CONSTANT_DIGITS ≤ |c| ≤ 10^CONSTANT_DIGITS (float64's range), a real number and defined,
  and a constant exponent must satisfy |k| ≤ MAX_EXPONENT. Decimals are exact rationals
  (``0.1`` is 1/10), checked for size from their text before they are built.

:func:`evaluate` computes a sympy expression of these functions at given values in mpmath at
``DPS`` digits, node by node: before exp(x), sinh(x), cosh(x) and x^y it bounds the size of the
result from its operands (log10|x^y| = y·log10|x|) and refuses anything beyond
10^±EVAL_DIGITS, and it stops after ``seconds``. Every refusal is a :class:`FormulaError` (a
``ValueError`` ``"param: message"``, like ``theory.errors.BadArgument``) whose ``kind``
says why: ``"syntax"``, ``"overflow"``, ``"undefined"`` (log(0), 1/0), ``"complex"``,
``"time"``.
"""

from __future__ import annotations

import ast
import io
import math
import re
import time
import tokenize
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import mpmath as mp
import sympy as sp

from theory.errors import BadArgument

__all__ = ["CONSTANT_DIGITS", "EVAL_DIGITS", "MAX_EXPONENT", "FormulaError", "Grammar",
           "evaluate", "parse"]

CONSTANT_DIGITS = 308  #: a constant is 0 or 10^-308 ≤ |c| ≤ 10^308 (float64's range)
MAX_EXPONENT = 10_000  #: |k| of a constant exponent x**k
EVAL_DIGITS = 10**60  #: |log10 |v|| of any value reached by evaluate
EVAL_SECONDS = 1.0  #: default time budget of one evaluate call
DPS = 30  #: significant digits of evaluate
MAX_TEXT = 1000  #: longest formula accepted

_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_OPERATORS = {"+", "-", "*", "/", "**", "^", "(", ")", ","}
_RELATIONS = {"<", ">", "<=", ">="}
_COMPARE = {ast.Lt: sp.Lt, ast.Gt: sp.Gt, ast.LtE: sp.Le, ast.GtE: sp.Ge}


class FormulaError(BadArgument):
    """A refused formula: a :class:`~theory.errors.BadArgument` (``str(error)`` is ``"param:
    message"``) whose ``kind`` is syntax, overflow, undefined, complex or time."""

    def __init__(self, param: str, message: str, kind: str = "syntax"):
        super().__init__(param, message)
        self.kind = kind

    def renamed(self, param: str) -> FormulaError:
        """The same refusal for the parameter called ``param``."""
        return FormulaError(param, self.message, self.kind)


@dataclass(frozen=True)
class Grammar:
    """What a formula may contain: ``symbols`` (name → sympy symbol or number), ``functions``
    (name → (sympy function, least and most number of arguments; most None: any)),
    ``constants`` (name → sympy constant), ``implicit`` (``2t`` is ``2*t``), ``relations``
    (``< > <= >=`` and ``(value, condition)`` pairs for ``Piecewise``), ``notes`` (name → a
    remark added when that unknown name is used)."""

    symbols: Mapping[str, sp.Basic]
    functions: Mapping[str, tuple[Callable[..., Any], int, int | None]]
    constants: Mapping[str, sp.Basic] = field(default_factory=lambda: {"pi": sp.pi, "E": sp.E})
    implicit: bool = False
    relations: bool = False
    notes: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> set[str]:
        return {*self.symbols, *self.functions, *self.constants}

    def described(self) -> str:
        """One phrase listing what is allowed."""
        relations = " < > <= >=" if self.relations else ""
        return (f"numbers, {', '.join(sorted([*self.symbols, *self.constants]))}, "
                f"+ - * / ** ^ ( ) ,{relations} and the functions "
                f"{', '.join(sorted(self.functions))}")


def parse(text: str, grammar: Grammar, param: str = "formula") -> sp.Expr:
    """The sympy expression of ``text`` (module docstring); :class:`FormulaError` naming
    ``param`` for anything else.

    Example:
        >>> x = sp.Symbol("x")
        >>> parse("2x^2 + 1", Grammar({"x": x}, {}, implicit=True))
        2*x**2 + 1
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError(param, "expected a formula, got an empty text")
    if len(text) > MAX_TEXT:
        raise FormulaError(param, f"the text is {len(text)} characters long; at most {MAX_TEXT}")
    if "__" in text:
        raise FormulaError(param, f"'__' is not allowed in {text!r}")
    code, numbers = _code(text.strip(), grammar, param)
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as error:
        raise FormulaError(param, f"cannot parse {text!r} ({error.msg})") from None
    try:
        expr = _Builder(grammar, numbers, param, text).build(tree.body)
    except RecursionError:
        raise FormulaError(param, f"{text!r} is nested too deeply") from None
    except (TypeError, ValueError, ArithmeticError, AttributeError) as error:
        if isinstance(error, FormulaError):
            raise
        why = " ".join(str(error).split()) or type(error).__name__  # sympy refusing exp(True)
        raise FormulaError(param, f"cannot parse {text!r} ({why})") from None
    if not isinstance(expr, sp.Expr):
        raise FormulaError(param, f"{text!r} is not a formula with a number as its value")
    return expr


def _code(text: str, grammar: Grammar, param: str) -> tuple[str, dict[str, sp.Rational]]:
    """The text as Python source of whitelisted tokens: numbers become the names ``__n0``,
    ``__n1``, ... (their exact values in the dict), ``^`` becomes ``**``, and with
    ``grammar.implicit`` a ``*`` joins a number, name or ``)`` to a following one or ``(``."""
    words: list[str] = []
    numbers: dict[str, sp.Rational] = {}
    unknown: list[str] = []
    previous = ""
    for kind, value in _tokens(text, param):
        if kind == tokenize.NUMBER and _NUMBER.fullmatch(value):
            word = f"__n{len(numbers)}"
            numbers[word] = _number(value, param)
        elif kind == tokenize.NAME and value.isidentifier():
            word = value
            if value not in grammar.names():
                unknown.append(value)
        elif kind == tokenize.OP and (value in _OPERATORS or
                                      (grammar.relations and value in _RELATIONS)):
            word = "**" if value == "^" else value
        else:
            raise FormulaError(param, f"{value!r} is not allowed in {text!r}: a formula here "
                                      f"is {grammar.described()}")
        if grammar.implicit and _juxtaposed(previous, word, grammar):
            words.append("*")
        words.append(word)
        previous = word
    if unknown:
        notes = "".join(grammar.notes.get(name, "") for name in sorted(set(unknown)))
        raise FormulaError(param, f"unknown symbol(s) {', '.join(sorted(set(unknown)))} in "
                                  f"{text!r}{notes}; a formula here is {grammar.described()}")
    return " ".join(words), numbers


def _tokens(text: str, param: str) -> list[tuple[int, str]]:
    skip = (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as error:
        why = " ".join(str(error).split())
        raise FormulaError(param, f"cannot parse {text!r} ({why})") from None
    return [(t.type, t.string) for t in tokens if t.type not in skip and t.string.strip()]


def _juxtaposed(previous: str, word: str, grammar: Grammar) -> bool:
    """Whether ``previous word`` is an implicit product (``2t``, ``2(t+1)``, ``(t+1)t``)."""
    ends = previous == ")" or (previous.isidentifier() and previous not in grammar.functions)
    starts = word == "(" or word.isidentifier()
    return ends and starts


def _number(text: str, param: str) -> sp.Rational:
    """A decimal number as an exact rational, its size checked from the text first."""
    value = Decimal(text)
    if value != 0 and abs(value.adjusted()) > CONSTANT_DIGITS:
        raise FormulaError(param, f"the number {text} is beyond 10^±{CONSTANT_DIGITS} "
                                  "(overflow)", "overflow")
    return sp.Rational(text)


class _Builder:
    """Builds sympy from the leaves of an ``ast`` tree up, checking every constant node before
    sympy evaluates it (module docstring)."""

    def __init__(self, grammar: Grammar, numbers: dict[str, sp.Rational], param: str,
                 text: str):
        self.grammar, self.numbers, self.param, self.text = grammar, numbers, param, text
        self.values: dict[sp.Basic, mp.mpf] = {}

    def build(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Constant) and node.value is True and "True" in \
                self.grammar.constants:  # the one keyword a grammar may name
            return self.grammar.constants["True"]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.build(node.operand)
            if isinstance(node.op, ast.UAdd):
                return operand
            return self._checked(sp.Mul(-1, operand, evaluate=False), lambda: -operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Compare) and self.grammar.relations and len(node.ops) == 1 \
                and type(node.ops[0]) in _COMPARE:
            left, right = self.build(node.left), self.build(node.comparators[0])
            return _COMPARE[type(node.ops[0])](left, right)
        raise FormulaError(self.param, f"{type(node).__name__} is not allowed in {self.text!r}: "
                                       f"a formula here is {self.grammar.described()}")

    def _name(self, name: str) -> sp.Basic:
        if name in self.numbers:
            return self.numbers[name]
        if name in self.grammar.functions:
            raise FormulaError(self.param, f"{name} is a function: write {name}(...)")
        return {**self.grammar.constants, **self.grammar.symbols}[name]

    def _binary(self, node: ast.BinOp) -> sp.Basic:
        left, right = self.build(node.left), self.build(node.right)
        if not all(isinstance(side, sp.Expr) for side in (left, right)):
            raise FormulaError(self.param, f"arithmetic on a condition in {self.text!r}")
        unevaluated, evaluated = _BINARY[type(node.op)]
        if isinstance(node.op, ast.Pow) and not right.free_symbols:
            exponent = self._value(right)
            if not abs(exponent) <= MAX_EXPONENT:
                raise FormulaError(self.param, f"a constant exponent must be at most "
                                               f"{MAX_EXPONENT} in size, got {right} in "
                                               f"{self.text!r}", "overflow")
        return self._checked(unevaluated(left, right), lambda: evaluated(left, right))

    def _call(self, node: ast.Call) -> sp.Basic:
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name not in self.grammar.functions or node.keywords:
            raise FormulaError(self.param, f"only the functions {', '.join(self.grammar.functions)}"
                                           f" may be called in {self.text!r}")
        function, least, most = self.grammar.functions[name]
        if not least <= len(node.args) <= (most if most is not None else len(node.args)):
            wanted = str(least) if least == most else \
                f"{least} to {most}" if most is not None else f"at least {least}"
            raise FormulaError(self.param, f"{name} takes {wanted} argument(s), got "
                                           f"{len(node.args)} in {self.text!r}")
        args: list[Any] = [self._pair(a) if name == "Piecewise" else self.build(a)
                           for a in node.args]
        if function is sp.Rational:
            return self._checked(sp.Mul(args[0], sp.Pow(args[1], -1, evaluate=False),
                                        evaluate=False), lambda: args[0] / args[1])
        return self._checked(function(*args, evaluate=False), lambda: function(*args))

    def _pair(self, node: ast.AST) -> tuple[sp.Basic, sp.Basic]:
        if not (isinstance(node, ast.Tuple) and len(node.elts) == 2):
            raise FormulaError(self.param, f"Piecewise takes (value, condition) pairs in "
                                           f"{self.text!r}")
        value, condition = (self.build(e) for e in node.elts)
        return value, condition

    def _checked(self, unevaluated: sp.Basic, evaluated: Callable[[], sp.Basic]) -> sp.Basic:
        """``evaluated()``, after a constant ``unevaluated`` passed the size rules."""
        if isinstance(unevaluated, sp.Expr) and not unevaluated.free_symbols:
            value = self._value(unevaluated)
            if value != 0 and not abs(mp.log10(abs(value))) <= CONSTANT_DIGITS:
                raise FormulaError(self.param, f"the constant {unevaluated} is beyond "
                                               f"10^±{CONSTANT_DIGITS} (overflow) in "
                                               f"{self.text!r}", "overflow")
        result = evaluated()
        if isinstance(result, sp.Basic) and result.has(sp.zoo, sp.nan):  # x/0, log(0)*x
            raise FormulaError(self.param, f"{self.text!r} divides by zero or takes log(0) "
                                           f"({result})", "undefined")
        return result

    def _value(self, expr: sp.Expr) -> mp.mpf:
        return evaluate(expr, {}, self.param, cache=self.values, what=repr(self.text))


_BINARY: dict[type, tuple[Callable[[Any, Any], sp.Basic], Callable[[Any, Any], sp.Basic]]] = {
    ast.Add: (lambda a, b: sp.Add(a, b, evaluate=False), lambda a, b: a + b),
    ast.Sub: (lambda a, b: sp.Add(a, sp.Mul(-1, b, evaluate=False), evaluate=False),
              lambda a, b: a - b),
    ast.Mult: (lambda a, b: sp.Mul(a, b, evaluate=False), lambda a, b: a * b),
    ast.Div: (lambda a, b: sp.Mul(a, sp.Pow(b, -1, evaluate=False), evaluate=False),
              lambda a, b: a / b),
    ast.Pow: (lambda a, b: sp.Pow(a, b, evaluate=False), lambda a, b: a**b),
}


def evaluate(expr: sp.Basic, values: Mapping[sp.Basic, Any], param: str = "formula",
             seconds: float = EVAL_SECONDS, cache: dict | None = None,
             what: str | None = None) -> mp.mpf:
    """The real value of ``expr`` at ``values`` (symbol → number; inf allowed) in mpmath at
    ``DPS`` digits, within 10^±EVAL_DIGITS and ``seconds`` (module docstring); a
    :class:`FormulaError` naming ``param`` otherwise (``what`` names the formula in it).

    Example:
        >>> x = sp.Symbol("x")
        >>> evaluate(2 * x**2 + 1, {x: 3})
        mpf('19.0')
    """
    evaluator = _Evaluator(values, param, time.monotonic() + seconds,
                           what or str(expr), {} if cache is None else cache)
    try:
        with mp.workdps(DPS):
            return evaluator.value(expr)
    except RecursionError:
        raise evaluator.refuse("nested too deeply", "time") from None
    except (TypeError, ValueError, ArithmeticError) as error:
        if isinstance(error, FormulaError):
            raise
        raise evaluator.refuse(f"cannot be evaluated ({type(error).__name__})", "undefined") \
            from None


class _Evaluator:
    """Node-by-node mpmath evaluation with a size guard and a deadline (see :func:`evaluate`)."""

    def __init__(self, values: Mapping[sp.Basic, Any], param: str, deadline: float, what: str,
                 cache: dict):
        self.values = {k: mp.mpf(v) for k, v in values.items()}
        self.param, self.deadline, self.what, self.cache = param, deadline, what, cache

    def refuse(self, message: str, kind: str) -> FormulaError:
        return FormulaError(self.param, f"{self.what}: {message}", kind)

    def value(self, expr: sp.Basic) -> Any:
        if time.monotonic() > self.deadline:
            raise self.refuse("evaluation ran past its time budget", "time")
        if expr in self.values:
            return self.values[expr]
        if expr in self.cache:
            return self.cache[expr]
        result = self._compute(expr)
        if isinstance(result, mp.mpc) or (isinstance(result, mp.mpf) and mp.isnan(result)):
            raise self.refuse(f"{expr} is not a real number", "complex")
        if not expr.free_symbols:
            self.cache[expr] = result
        return result

    def _compute(self, expr: sp.Basic) -> Any:
        if expr in (sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise self.refuse(f"{expr} is undefined (a division by zero or log(0))", "undefined")
        if expr is sp.I or isinstance(expr, sp.Symbol):
            raise self.refuse(f"{expr} has no value here", "complex" if expr is sp.I
                              else "undefined")
        if isinstance(expr, sp.Rational):
            return mp.mpf(expr.p) / expr.q
        if isinstance(expr, sp.Float):
            return mp.mpf(expr._mpf_)
        if isinstance(expr, sp.NumberSymbol):
            return mp.mpf(expr.evalf(DPS + 5)._mpf_)
        if isinstance(expr, sp.logic.boolalg.BooleanAtom):
            return bool(expr)
        handler = _HANDLERS.get(expr.func)
        if handler is None:
            handler = next((h for kind, h in _HANDLERS.items() if isinstance(expr, kind)), None)
        if handler is None:
            raise self.refuse(f"cannot evaluate {expr.func.__name__}", "undefined")
        return handler(self, expr)

    def args(self, expr: sp.Basic) -> list:
        return [self.value(a) for a in expr.args]

    def size(self, digits: Any, what: str) -> None:
        """Refuse a result with log10|result| = ``digits`` beyond EVAL_DIGITS."""
        if mp.isfinite(digits) and abs(digits) > EVAL_DIGITS:
            raise self.refuse(f"{what} is beyond 10^±10^{int(math.log10(EVAL_DIGITS))} "
                              "(overflow)", "overflow")

    def power(self, expr: sp.Pow) -> Any:
        base, exponent = self.args(expr)
        if base == 0:
            if exponent < 0:
                raise self.refuse(f"{expr} is undefined (a division by zero)", "undefined")
            return mp.mpf(0) ** exponent
        if base < 0 and not (mp.isfinite(exponent) and exponent == mp.floor(exponent)):
            raise self.refuse(f"{expr} is a negative number to a fractional power (complex)",
                              "complex")
        if mp.isfinite(base):
            self.size(exponent * mp.log10(abs(base)), str(expr))
        return base**exponent

    def exponential(self, expr: sp.Basic) -> Any:
        (x,) = self.args(expr)
        self.size(x / mp.log(10), str(expr))
        return _MP_FUNCTIONS[expr.func](x)

    def logarithm(self, expr: sp.Basic) -> Any:
        x = self.args(expr)[0]
        if x == 0:
            raise self.refuse(f"{expr} is undefined (the logarithm of 0)", "undefined")
        if x < 0:
            raise self.refuse(f"{expr} is the logarithm of a negative number (complex)",
                              "complex")
        return mp.log(x)

    def simple(self, expr: sp.Basic) -> Any:
        function = _MP_FUNCTIONS[expr.func]
        args = self.args(expr)
        if expr.func in (sp.tan,) and mp.cos(args[0]) == 0:
            raise self.refuse(f"{expr} is undefined", "undefined")
        return function(*args)

    def piecewise(self, expr: sp.Piecewise) -> Any:
        for value, condition in expr.args:
            if self.value(condition):
                return self.value(value)
        raise self.refuse(f"{expr} has no piece for these values", "undefined")


def _add(ev: _Evaluator, expr: sp.Basic) -> Any:
    return mp.fsum(ev.args(expr))


def _mul(ev: _Evaluator, expr: sp.Basic) -> Any:
    return mp.fprod(ev.args(expr))


def _relation(ev: _Evaluator, expr: sp.Basic) -> bool:
    left, right = ev.args(expr)
    return bool({sp.StrictLessThan: left < right, sp.StrictGreaterThan: left > right,
                 sp.LessThan: left <= right, sp.GreaterThan: left >= right,
                 sp.Equality: left == right, sp.Unequality: left != right}[type(expr)])


_MP_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    sp.exp: mp.exp, sp.sinh: mp.sinh, sp.cosh: mp.cosh, sp.sin: mp.sin, sp.cos: mp.cos,
    sp.tan: mp.tan, sp.atan: mp.atan, sp.tanh: mp.tanh, sp.asinh: mp.asinh, sp.sech: mp.sech,
    sp.erf: mp.erf, sp.erfc: mp.erfc, sp.floor: mp.floor, sp.ceiling: mp.ceil, sp.Abs: abs,
    sp.Min: lambda *a: min(a), sp.Max: lambda *a: max(a), sp.sign: mp.sign,
    sp.Heaviside: lambda x, *h: mp.mpf(1) if x > 0 else (
        (h[0] if h else mp.mpf(1) / 2) if x == 0 else mp.mpf(0)),
}
_HANDLERS: dict[Any, Callable[[_Evaluator, Any], Any]] = {
    sp.Add: _add, sp.Mul: _mul, sp.Pow: _Evaluator.power, sp.log: _Evaluator.logarithm,
    sp.exp: _Evaluator.exponential, sp.sinh: _Evaluator.exponential,
    sp.cosh: _Evaluator.exponential, sp.Piecewise: _Evaluator.piecewise,
    sp.logic.boolalg.And: lambda ev, e: all(ev.args(e)),
    sp.logic.boolalg.Or: lambda ev, e: any(ev.args(e)),
    sp.logic.boolalg.Not: lambda ev, e: not ev.args(e)[0],
    sp.core.relational.Relational: _relation,
    **{f: _Evaluator.simple for f in _MP_FUNCTIONS if f not in (sp.exp, sp.sinh, sp.cosh)},
}
