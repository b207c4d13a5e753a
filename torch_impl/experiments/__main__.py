"""``python -m torch_impl.experiments NAME [options]``: run one reproduction. Bad usage is one
line on stderr and exit status 2, a fault one line and 1, Ctrl-C one line and 130
(:func:`theory.command.main`)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from theory import command
from theory.command import main as run_command
from torch_impl.experiments import ALIASES, EXPERIMENTS

PROG = "python -m torch_impl.experiments"
USAGE = (f"usage: {PROG} {{{'|'.join(EXPERIMENTS)}}} [--quick] [--out DIR]\n(aliases: "
         + ", ".join(f"{seed} = {name}" for seed, name in ALIASES.items()) + ")")


def dispatch(argv: list[str] | None) -> int:
    """Dispatch ``NAME`` (or its seed alias) to ``torch_impl.experiments.NAME.main(rest)``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    choices = f"choose one of {', '.join(EXPERIMENTS)} (or {', '.join(ALIASES)})"
    if not argv:
        raise ValueError(f"name an experiment: {choices}")
    name, rest = ALIASES.get(argv[0], argv[0]), argv[1:]
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; {choices}")
    module = importlib.import_module(f"torch_impl.experiments.{name}")
    return module.main(rest)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m torch_impl.experiments``: :func:`dispatch` with one-line errors."""
    return run_command(dispatch, argv, prog=PROG)


if __name__ == "__main__":
    command.exit(main())
