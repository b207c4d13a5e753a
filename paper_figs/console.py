r"""The ``clipverify`` console command (setup.cfg ``console_scripts``): one name for the
toolkit's commands, each dispatched to the module that implements it::

    clipverify bound ...     = python -m theory bound ...
    clipverify run ...       = python -m simulations run ...
    clipverify rare ...      = python -m simulations rare ...
    clipverify verify ...    = python -m simulations verify ...
    clipverify problems      = python -m simulations problems
    clipverify figs ...      = python -m paper_figs ...

It lives in ``paper_figs``, the top of the house, because it is the one place allowed to
import all three packages.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from theory import command
from theory.command import main as run_command

__all__ = ["COMMANDS", "main"]

COMMANDS = {"bound": "python -m theory bound", "run": "python -m simulations run",
            "rare": "python -m simulations rare", "verify": "python -m simulations verify",
            "problems": "python -m simulations problems", "figs": "python -m paper_figs"}
USAGE = ("usage: clipverify {" + ",".join(COMMANDS) + "} ...\n\n"
         + "\n".join(f"  {name:<9} = {target} ..." for name, target in COMMANDS.items())
         + "\n\n'clipverify COMMAND --help' lists each command's flags.\n")


def dispatch(argv: list[str] | None) -> int:
    """Run ``clipverify COMMAND ARGS...`` by the module that implements ``COMMAND``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if not argv:
        raise ValueError(f"name a command: {', '.join(COMMANDS)} ('clipverify --help' says "
                         "what each does)")
    command, rest = argv[0], argv[1:]
    if command == "bound":
        from theory.__main__ import main as theory_main

        return theory_main(["bound", *rest])
    if command in ("run", "rare", "verify", "problems"):
        from simulations.verify.cli import main as simulations_main

        return simulations_main([command, *rest])
    if command == "figs":
        from paper_figs.__main__ import main as figs_main

        return figs_main(rest)
    raise ValueError(f"unknown command {command!r} (choose from {', '.join(COMMANDS)})")


def main(argv: Sequence[str] | None = None) -> int:
    """``clipverify``: returns the exit status; every way it ends is one line on stderr
    (:func:`theory.command.main`)."""
    return run_command(dispatch, argv, prog="clipverify")


if __name__ == "__main__":
    command.exit(main())
