"""The command lines' common ground: every command of the toolkit (``python -m theory``, ``python
-m simulations``, ``python -m paper_figs``, ``python -m torch_impl.experiments``,
``clipverify``) ends in one line on stderr whatever happens:

* bad input (an argparse error, :class:`~theory.errors.BadArgument`, any ``ValueError``):
  ``PROG: error: ...``, exit status 2;
* a fault (a file that cannot be read or written, a full disk, memory, a bug): ``PROG: error:
  ...``, exit status 1 (``CLIPVERIFY_TRACEBACK=1`` in the environment shows the traceback of a
  bug instead);
* Ctrl-C: ``PROG: interrupted``, exit status 130.

:class:`Parser` is argparse with one-line errors, :class:`Formatter` shows the defaults,
``count``/``natural``/``number``/``positive_number`` are argument types for integers written as
1000, 1_000, 1e3 or 10**3 and finite numbers, and :func:`main` runs a command under the rules
above. Standard library only, so that ``--help`` stays light.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from theory.errors import BadArgument, integer, positive, real

__all__ = ["Formatter", "Parser", "count", "describe", "exit", "flag_of", "integer_type",
           "lasting_imports", "main", "natural", "number", "one_line", "positive_number",
           "read_integer", "traceback_wanted"]

#: longest argument text read as a number (Decimal and int() are slow on huge texts)
MAX_TEXT = 100


def one_line(text: object) -> str:
    """``str(text)`` with every run of white space (newlines too) as one space.

    Example:
        >>> one_line("two\\n   lines")
        'two lines'
    """
    return " ".join(str(text).split())


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr and exit status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


class Formatter(argparse.HelpFormatter):
    """Shows "(default: X)" after the help of every flag with a default worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.required or default is None or default is argparse.SUPPRESS
                or default is False or default == []
                or "%(default)" in text or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


# ---- argument types ---------------------------------------------------------------------------

def read_integer(text: str) -> int | None:
    """The integer written as 1000, 1_000, 1e3, 10**3 or 10^3, or None if ``text`` is none
    (or longer than :data:`MAX_TEXT`, or a power above 10**4300).

    Example:
        >>> read_integer("10**15"), read_integer("1e3"), read_integer("1_000"), read_integer("1.5")
        (1000000000000000, 1000, 1000, None)
    """
    if len(text) > MAX_TEXT:
        return None
    power = re.fullmatch(r"\s*(\d+)\s*(?:\*\*|\^)\s*(\d+)\s*", text)
    if power:
        base, exponent = int(power.group(1)), int(power.group(2))
        if base > 1 and exponent * len(power.group(1)) > 4300:
            return None
        return base ** exponent
    try:
        value = Decimal(text.replace("_", ""))
    except InvalidOperation:
        return None
    if not value.is_finite() or value != value.to_integral_value() or value.adjusted() > 4300:
        return None
    return int(value)


def _typed(check: Callable[[Any], Any], read: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type: ``check(read(text))``, a refusal as argparse's one-line error."""
    def parse(text: str) -> Any:
        value = read(text)
        try:
            return check(text if value is None else value)
        except BadArgument as error:
            raise argparse.ArgumentTypeError(error.message.replace(
                f"got {value!r}", f"got {text!r}")) from None
    return parse


def _float(text: str) -> float | None:
    try:
        return float(text) if len(text) <= MAX_TEXT else None
    except ValueError:
        return None


def integer_type(lowest: int, highest: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer ``lowest <= n (< highest)`` written as :func:`read_integer`
    reads it.

    Example:
        >>> integer_type(1)("1e3")
        1000
    """
    return _typed(lambda value: integer(value, "", lowest, highest), read_integer)


#: an integer >= 1
count = integer_type(1)
#: an integer >= 0
natural = integer_type(0)
#: a finite number
number = _typed(lambda value: real(value, ""), _float)
#: a finite number > 0
positive_number = _typed(lambda value: positive(value, ""), _float)


def flag_of(param: str, flags: Mapping[str, str] | None = None) -> str:
    """The flag of a library parameter: ``flags[param]`` where given, else ``--`` and its last
    dotted part with dashes (``clip.lam`` → ``--lam``, ``theta0_norm`` → ``--theta0-norm``).

    Example:
        >>> flag_of("clip.lam"), flag_of("theta0_norm"), flag_of("lam", {"lam": "-l"})
        ('--lam', '--theta0-norm', '-l')
    """
    name = (flags or {}).get(param, param.rsplit(".", 1)[-1])
    return name if name.startswith("-") else "--" + name.replace("_", "-")


# ---- running a command ------------------------------------------------------------------------

def traceback_wanted() -> bool:
    """Whether ``CLIPVERIFY_TRACEBACK`` asks for the traceback of a bug (a developer's switch;
    by default every fault is one line).

    Example:
        >>> isinstance(traceback_wanted(), bool)
        True
    """
    return bool(os.environ.get("CLIPVERIFY_TRACEBACK"))


def describe(error: BaseException) -> str:
    """``error`` in one line: ``Type: message``.

    Example:
        >>> describe(ValueError("bad\\nvalue"))
        'ValueError: bad value'
    """
    return f"{type(error).__name__}: {one_line(error)}"


def _fault(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return f"out of memory{': ' + one_line(error) if str(error) else ''}"
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return where + (error.strerror or one_line(error) or type(error).__name__)
    return f"internal error: {describe(error)}"


def main(command: Callable[[list[str] | None], int | None], argv: Sequence[str] | None, *,
         prog: str, flags: Mapping[str, str] | None = None) -> int:
    """Run ``command(argv)`` and return its exit status, every way it can end as one line on
    stderr (see the module docstring). A :class:`~theory.errors.BadArgument` names its flag
    (:func:`flag_of` with ``flags``).

    Example:
        >>> main(lambda argv: 0, [], prog="demo")
        0
        >>> main(lambda argv: int("x"), [], prog="demo")   # one line on stderr, status 2
        2
    """
    argv = None if argv is None else list(argv)
    try:
        status = command(argv)
        return 0 if status is None else int(status)
    except BadArgument as error:
        message = f"argument {flag_of(error.param, flags)}: {one_line(error.message)}"
    except ValueError as error:
        message = one_line(error) or type(error).__name__
    except KeyboardInterrupt:
        _say(f"{prog}: interrupted")
        return 130
    except Exception as error:  # a fault: disk, memory, a bug
        if traceback_wanted() and not isinstance(error, OSError):
            raise
        _say(f"{prog}: error: {_fault(error)}")
        return 1
    _say(f"{prog}: error: {message}")
    return 2


@contextlib.contextmanager
def lasting_imports() -> Iterator[None]:
    """Run the block (the imports of torch, numba, sympy) with the cyclic garbage collector off,
    then, if it imported a module, freeze (:func:`gc.freeze`) the objects alive, and switch the
    collector back on. Those modules make millions of objects that live as long as the process;
    Python would walk them all in several full collections during the imports and in every
    full collection after (about 0.4 s of ``python -m simulations run``'s start). A block that
    imports nothing (the modules are loaded already: a second command in one process) freezes
    nothing.

    Example:
        >>> with lasting_imports():
        ...     import fractions
        >>> gc.isenabled()
        True
    """
    enabled, modules = gc.isenabled(), len(sys.modules)
    gc.disable()
    try:
        yield
    finally:
        if len(sys.modules) > modules:
            gc.freeze()
        if enabled:
            gc.enable()


def exit(status: int) -> NoReturn:
    """End the process with ``status``, as ``python -m ...`` does after :func:`main`. After
    Ctrl-C (130) the interpreter is left at once: Python would otherwise end by SIGINT where the
    interrupt landed in code a C extension runs (a lazy import of torch), whatever
    :func:`main` returned. Otherwise the objects alive now are frozen (:func:`gc.freeze`)
    before the interpreter ends, so that its last garbage collections skip the millions that
    torch, numba and sympy hold (about 0.7 s of the exit); every ``atexit`` handler still runs
    and every object is still freed by its reference count (the files are closed by then).

    Example:
        >>> try:
        ...     exit(3)
        ... except SystemExit as end:
        ...     print(end.code)
        3
    """
    if status == 130:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(130)
    gc.freeze()
    sys.exit(status)


def _say(line: str) -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
