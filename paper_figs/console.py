r"""The ``clipverify`` console command (setup.cfg ``console_scripts``): one name for the
toolkit's commands, each dispatched to the module that implements it::

    clipverify bound ...     = python -m theory bound ...
    clipverify run ...       = python -m simulations run ...
    clipverify verify ...    = python -m simulations verify ...
    clipverify problems      = python -m simulations problems
    clipverify figs ...      = python -m paper_figs ...

It lives in ``paper_figs``, the top of the house, because it is the one place allowed to
import all three packages.
"""

from __future__ import annotations

import sys

__all__ = ["COMMANDS", "main"]

COMMANDS = {"bound": "python -m theory bound", "run": "python -m simulations run",
            "verify": "python -m simulations verify",
            "problems": "python -m simulations problems", "figs": "python -m paper_figs"}
USAGE = ("usage: clipverify {" + ",".join(COMMANDS) + "} ...\n\n"
         + "\n".join(f"  {name:<9} = {target} ..." for name, target in COMMANDS.items())
         + "\n\n'clipverify COMMAND --help' lists each command's flags.\n")


def main(argv: list[str] | None = None) -> int:
    """Run ``clipverify COMMAND ARGS...``; returns the exit status (2 for an unknown
    command)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE) if argv else sys.stderr.write(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "bound":
        from theory.__main__ import main as theory_main

        return theory_main(["bound", *rest])
    if command in ("run", "verify", "problems"):
        from simulations.cli import main as simulations_main

        return simulations_main([command, *rest])
    if command == "figs":
        from paper_figs.__main__ import main as figs_main

        return figs_main(rest)
    sys.stderr.write(f"clipverify: error: unknown command {command!r} (choose from "
                     f"{', '.join(COMMANDS)})\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
