"""The ``problems`` command: the problems of the catalog and the flags each takes."""

from __future__ import annotations

import argparse
import inspect
import re
from typing import Any

from simulations.verify.cli.flags import shown
from theory.command import Formatter


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """The ``problems`` subcommand (no flags)."""
    problems = commands.add_parser(
        "problems", formatter_class=Formatter,
        help="list the problems of the catalog and the flags each takes",
        description="List the problems of the catalog and the flags each takes.")
    return problems


def print_problems() -> None:
    """Print each problem of the catalog, its first docstring line and its flags."""
    from simulations.engine.problems import PROBLEMS, problem_params

    for name, factory in PROBLEMS.items():
        first = (inspect.getdoc(factory) or "").strip().splitlines()[0]
        first = re.sub(r":\w+:`~?([^`]*)`", r"\1", first).replace("``", "").rstrip(":")
        flags = []
        for param in problem_params(name):
            flag = param.flag
            if param.type is bool:
                flag = f"{flag}/--no-{flag[2:]}"
            flags.append(" ".join(filter(None, (flag, shown(param.default)))))
        print(f"{name:<20}{first}")
        print(f"{'':<20}flags: {', '.join(flags)}")
