"""Progress of long work on stderr, on any stderr: a tqdm bar on a terminal (or in a notebook),
and elsewhere (a log file, a pipe, CI) one plain line at most every few seconds, so that a run
that takes an hour is never silent.

:func:`bar` is what the engine's runners (:func:`simulations.engine.run.simulate`, the splitting
of :func:`simulations.engine.rare.ams`), the verification runner and ``paper_figs`` call; they
report at the end of a block of steps, of an iteration or of a figure, never per step, so
that showing progress adds no host synchronisation to the step loop.

``enabled``: ``None`` (the default everywhere) shows a bar on a terminal and lines
elsewhere, unless a command's ``--quiet`` has called :func:`set_quiet`; ``True`` always a
bar; ``False`` nothing. The seconds between lines are ``CLIPVERIFY_PROGRESS_SECONDS`` in the
environment (default 5).
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

from tqdm.auto import tqdm

__all__ = ["INTERVAL_ENV", "Lines", "bar", "clock", "interval", "mode", "set_quiet"]

#: the environment variable with the seconds between two progress lines
INTERVAL_ENV = "CLIPVERIFY_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 5.0

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Make ``enabled=None`` mean no progress at all (a command's ``--quiet``) or the
    default again."""
    global _quiet
    _quiet = bool(quiet)


def interval() -> float:
    """Seconds between two progress lines: ``CLIPVERIFY_PROGRESS_SECONDS`` if it is a number
    > 0, else 5."""
    try:
        seconds = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return seconds if 0 < seconds < math.inf else DEFAULT_INTERVAL


def mode(enabled: bool | None = None) -> str:
    """How progress is shown: ``"bar"``, ``"lines"`` or ``"off"`` (see the module
    docstring)."""
    if enabled is False or (enabled is None and _quiet):
        return "off"
    if enabled or sys.stderr.isatty() or "ipykernel" in sys.modules:
        return "bar"
    return "lines"


def clock(seconds: float) -> str:
    """``seconds`` as "0.4 s", "12 s", "3 min 4 s" or "2 h 5 min"."""
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


class Lines:
    """The part of tqdm's interface the toolkit uses (``update``, ``set_postfix_str``,
    ``close``) and :meth:`say`, as one line on stderr when at least :func:`interval` seconds have
    passed since the last: ``desc: n/total unit (x%), elapsed, about y left[, postfix]``."""

    def __init__(self, total: float | None = None, desc: str = "", unit: str = "it"):
        self.total, self.desc, self.unit = total, desc, unit
        self.n: float = 0
        self.postfix = ""
        self.every = interval()
        self.start = self.last = time.monotonic()

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(self.line(now - self.start), file=sys.stderr, flush=True)

    def due(self) -> bool:
        """Whether the next :meth:`update` prints (so that a caller computes its postfix only
        then)."""
        return time.monotonic() - self.last >= self.every

    def line(self, elapsed: float) -> str:
        """The progress line after ``elapsed`` seconds."""
        done = f"{self.n:g} {self.unit}"
        if self.total:
            fraction = min(1.0, self.n / self.total)
            done = f"{self.n:g}/{self.total:g} {self.unit} ({100 * fraction:.0f}%)"
            left = elapsed * (1 - fraction) / fraction if fraction > 0 else math.inf
            done += f", {clock(elapsed)}" + (f", about {clock(left)} left"
                                              if math.isfinite(left) else "")
        else:
            done += f", {clock(elapsed)}"
        return f"{self.desc}: {done}" + (f", {self.postfix}" if self.postfix else "")

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def say(self, text: str) -> None:
        """Print ``text`` as its own line on stderr."""
        print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _Bar(tqdm):
    """tqdm with :meth:`Lines.due` (always true: tqdm throttles its own display)."""

    def due(self) -> bool:
        return not self.disable

    def say(self, text: str) -> None:
        """Print ``text`` above the bar (nothing when it is disabled)."""
        if not self.disable:
            tqdm.write(text, file=sys.stderr)


def bar(total: float | None = None, desc: str = "", unit: str = "it",
        enabled: bool | None = None, leave: bool = False) -> Any:
    """A progress reporter for ``total`` units of work (None: unknown): a tqdm bar, a
    :class:`Lines` or a disabled bar, as :func:`mode` says for ``enabled``."""
    how = mode(enabled)
    if how == "lines":
        return Lines(total, desc, unit)
    return _Bar(total=total, desc=desc, unit=unit, leave=leave, disable=how == "off",
                file=sys.stderr)
