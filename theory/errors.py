"""Bad input, once for the whole toolkit: :class:`BadArgument`, a ``ValueError`` that names its
parameter (so that a command line can name the flag, and a scenario file the key, without
reading the message), the checks of numbers that raise it, and the refusal of sizes that
cannot fit in memory. Standard library only: every package imports it, the lightest first.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

__all__ = ["BadArgument", "available_memory", "format_bytes", "integer", "number",
           "positive", "real", "require_memory", "show"]


class BadArgument(ValueError):
    """Bad input for parameter ``param``: ``str(error)`` is ``"param: message"``."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message

    def renamed(self, param: str) -> BadArgument:
        """The same error for the parameter called ``param`` where it was given."""
        return BadArgument(param, self.message)


def show(value: Any) -> str:
    """``repr(value)`` on one line, cut to 80 characters (a tensor's spans several).

    Example:
        >>> show("two\\nlines"), show(10**4000)
        ("'two\\\\nlines'", 'an integer of about 4000 digits')
    """
    if isinstance(value, int) and value.bit_length() > 3000:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def integer(value: Any, name: str, lowest: int = 0, highest: int | None = None, *,
            strict: bool = False) -> int:
    """``value`` as an int if it is an integer (an integral float too unless ``strict``; never
    a bool) with ``lowest <= value`` and, given ``highest``, ``value < highest``; else
    :class:`BadArgument` naming ``name``.

    Example:
        >>> integer(1e3, "steps"), integer(7, "steps", 1, 10)
        (1000, 7)
    """
    number: int | None = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, numbers.Integral):
        number = int(value)
    elif not strict and isinstance(value, numbers.Real) and math.isfinite(value) \
            and float(value).is_integer():
        number = int(float(value))
    if number is None or number < lowest:
        raise BadArgument(name, f"expected an integer >= {lowest}, got {show(value)}")
    if highest is not None and number >= highest:
        raise BadArgument(name, f"expected an integer < {highest}, got {show(value)}")
    return number


def real(value: Any, name: str, low: float = -math.inf, high: float = math.inf, *,
         closed_low: bool = False, closed_high: bool = False) -> float:
    """``value`` as a float if it is a finite real number (not a bool) with ``low < value <
    high`` (``<=`` on a closed side); else :class:`BadArgument` naming ``name``.

    Example:
        >>> real(0.5, "delta", 0, 1)
        0.5
        >>> real(1, "delta", 0, 1)
        Traceback (most recent call last):
        theory.errors.BadArgument: delta: expected a finite number with 0 < delta < 1, got 1
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool) \
            and math.isfinite(value):
        x = float(value)
        above = low <= x if closed_low else low < x
        if above and (x <= high if closed_high else x < high):
            return x
    if math.isinf(low) and math.isinf(high):
        wanted = "a finite number"
    else:
        left, right = "<=" if closed_low else "<", "<=" if closed_high else "<"
        wanted = " ".join(filter(None, (
            "a finite number", "with", f"{low:g} {left}" if math.isfinite(low) else "",
            name.rsplit(".", 1)[-1], f"{right} {high:g}" if math.isfinite(high) else "")))
    raise BadArgument(name, f"expected {wanted}, got {show(value)}")


def number(value: Any, name: str) -> float:
    """``value`` as a float if it is a finite real number (not a bool).

    Example:
        >>> number(2, "x")
        2.0
    """
    return real(value, name)


def positive(value: Any, name: str) -> float:
    """``value`` as a float if it is a finite real number > 0 (not a bool).

    Example:
        >>> positive(3, "lam")
        3.0
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool) \
            and 0 < float(value) < math.inf:
        return float(value)
    raise BadArgument(name, f"expected a positive finite number, got {show(value)}")


def available_memory() -> int | None:
    """This machine's memory in bytes, or None where the system does not say.

    Example:
        >>> memory = available_memory()
        >>> memory is None or memory > 0
        True
    """
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes for a person: "512 bytes", "1.5 GiB".

    Example:
        >>> format_bytes(512), format_bytes(1536), format_bytes(3 * 1024**3)
        ('512 bytes', '1.5 KiB', '3.0 GiB')
    """
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def require_memory(name: str, need: float, what: str, available: int | None = None) -> None:
    """Refuse up front (:class:`BadArgument` naming ``name``) what would need ``need`` bytes,
    more than ``available`` (default: this machine's memory); ``what`` says what needs
    them.

    Example:
        >>> require_memory("paths", 1024, "the paths", available=2048)        # fits: nothing
        >>> require_memory("paths", 4096, "the paths", available=2048)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        theory.errors.BadArgument: paths: the paths would need about 4.0 KiB of memory, more ...
    """
    available = available_memory() if available is None else available
    if available is not None and need > available:
        raise BadArgument(name, f"{what} would need about {format_bytes(need)} of memory, more "
                                f"than the {format_bytes(available)} of this machine")
