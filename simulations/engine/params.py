r"""Declared parameters: what a clip rule, a problem or a law takes, said once by its owner.

A :class:`Param` is a parameter's name, type (``int``, ``float``, ``str`` or ``bool``), help
text, default and accepted range. The owners declare theirs
(:data:`simulations.engine.rules.RULE_PARAMS`,
``PARAMS`` of each problem and :data:`simulations.engine.problems.LAWS`), and everything else reads
the declarations: the owners' own checks, :meth:`simulations.engine.spec.RunSpec.from_dict` (which
coerces every value to its declared type, so that ``mean = 100`` and ``mean = 100.0`` are one
run with one key), the command line's flags, their help and refusals, and the listing of
``python -m simulations problems``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from theory.errors import BadArgument

__all__ = ["Param", "find", "takers"]


@dataclass(frozen=True)
class Param:
    """A declared parameter.

    ``type``: ``int``, ``float``, ``str`` or ``bool``; ``low``/``high``: the value v must
    satisfy low ≤ v ≤ high (low < v with ``above``); ``choices``: the allowed strings;
    ``many``: a list of values (one value is accepted and kept as it is); ``default``: None
    where there is none or the owner chooses; ``keep_int`` (a float parameter): an integral
    value is kept as an int, so that 3 and 3.0 are one value, written 3 (the degrees of
    freedom, once declared int: the keys of runs with an integer value do not change).
    """

    name: str
    type: type
    help: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    above: bool = False
    choices: tuple[str, ...] = ()
    many: bool = False
    keep_int: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag: ``--`` and the name with ``-`` for ``_``."""
        return "--" + self.name.replace("_", "-")

    def expected(self) -> str:
        """What the parameter accepts, in words (for error messages)."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type is bool:
            return "true or false"
        if self.type is str:
            return "a string"
        what = "an integer" if self.type is int else "a number"
        if self.low is not None and self.high is not None:
            what += f" in {'(' if self.above else '['}{self.low:g}, {self.high:g}]"
        elif self.low is not None:
            what += f" {'>' if self.above else '>='} {self.low:g}"
        elif self.type is float:
            what = "a finite number"
        return f"{what} or a list of them" if self.many else what

    def coerce(self, value: Any, where: str | None = None) -> Any:
        """``value`` as the declared type (an integral float for an int, an int for a float,
        a list as a tuple), checked; :class:`~theory.errors.BadArgument` naming ``where``
        (default: the name) otherwise."""
        if self.many and isinstance(value, (list, tuple, np.ndarray)):
            items = value.tolist() if isinstance(value, np.ndarray) else value
            return tuple(self._one(v, where, value) for v in items)
        return self._one(value, where, value)

    def _one(self, value: Any, where: str | None, given: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        out: Any = None
        if self.type is bool:
            out = value if isinstance(value, bool) else None
        elif self.type is str:
            out = value if isinstance(value, str) and (
                not self.choices or value in self.choices) else None
        elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            if self.type is float:
                out = int(value) if self.keep_int and float(value).is_integer() \
                    else float(value)
            elif float(value).is_integer():
                out = int(value)
            if out is not None and not self._in_range(out):
                out = None
        if out is None:
            raise BadArgument(where or self.name, f"expected {self.expected()}, got {given!r}")
        return out

    def _in_range(self, v: float) -> bool:
        low_ok = self.low is None or (v > self.low if self.above else v >= self.low)
        return low_ok and (self.high is None or v <= self.high)

    def parse(self, text: str) -> Any:
        """The value of a command-line word (an integer may be written 1000, 1_000 or 1e3, at
        most 31 digits), checked as :meth:`coerce` does; ``ValueError`` otherwise."""
        value: Any = text
        if self.type is int:
            try:
                value = Decimal(text.replace("_", ""))
                value = int(value) if value.is_finite() and value.adjusted() <= 30 and \
                    value == value.to_integral_value() else text  # 1e100000000: not built
            except InvalidOperation:
                pass
        elif self.type is float:
            try:
                value = float(text)
            except ValueError:
                pass
        try:
            return self._one(value, None, text)
        except BadArgument as error:
            raise ValueError(error.message) from None


def find(params: Iterable[Param], name: str) -> Param | None:
    """The parameter called ``name`` among ``params``, or None."""
    return next((p for p in params if p.name == name), None)


def takers(owners: dict[str, tuple[Param, ...]], name: str) -> tuple[str, ...]:
    """The owners (rules, laws, problems) that declare a parameter called ``name``."""
    return tuple(o for o, params in owners.items() if find(params, name) is not None)
