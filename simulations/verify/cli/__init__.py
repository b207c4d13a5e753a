r"""Command line: ``python -m simulations run ...``, ``python -m simulations rare ...``,
``python -m simulations problems`` and ``python -m simulations verify [--suite paper] [--full]
[--scenario my.toml] [--claims T1,ODE] [--json] [--out DIR]``.

``run`` turns its flags into a :class:`simulations.engine.spec.RunSpec` (through
:meth:`~simulations.engine.spec.RunSpec.from_dict`, like every other caller), runs
:func:`simulations.engine.run.simulate` with checkpoints in ``OUT/checkpoints/<key>``, saves the
result in the run store ``OUT/runs/<key>/`` (:mod:`simulations.engine.store`; ``<key>`` the spec's
content hash) and prints a summary table::

    python -m simulations run --problem quadratic --noise normal --mean 100 --sd 1 --dim 1 \
        --theta0 0 --clip classic --lam 1 --schedule "1/(t+1)" --paths 10000 --steps 1000 \
        --radius 2 --seed 0 --out runs/far

Each problem takes only its own flags (``python -m simulations problems`` lists them); a flag
the chosen problem, law or rule does not take is refused. Bad input ends with one line on
stderr naming the flag (the library's :class:`~theory.errors.BadArgument` names the
parameter) and exit status 2; a file that cannot be written (a full disk) with one line and
exit status 1; Ctrl-C with one line saying where the last checkpoint is and exit status 130
(rerun the same command with ``--resume`` to continue; ``--resume`` also reuses a run already
saved with the same spec).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from simulations.verify.cli import problems, rare, run, verify
from simulations.verify.cli.flags import PARAM_FLAGS, PROG
from theory.command import Formatter, Parser, lasting_imports
from theory.command import main as run_command


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (see :func:`parsers`)."""
    return parsers()[0]


def parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser of every command and each command's own, added by its module. It imports only
    light modules (:mod:`simulations.engine.catalog`, :mod:`simulations.engine.spec`), neither
    torch nor scipy: each command imports what it runs."""
    parser = Parser(prog=PROG, formatter_class=Formatter,
                     description="Monte Carlo runs of clipped SGD: 'run' simulates and saves, "
                                 "'rare' estimates a rare probability by splitting, "
                                 "'problems' lists the catalog, 'verify' holds the paper's "
                                 "claims against the paths. 'python -m simulations run "
                                 "--help' lists every flag.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                     metavar="{run,rare,problems,verify}")
    return parser, {name: module.add_parser(commands)
                    for name, module in (("run", run), ("problems", problems),
                                         ("verify", verify), ("rare", rare))}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulations``: every way a command ends is one line on stderr
    (:func:`theory.command.main`); returns the exit status."""
    return run_command(_main, argv, prog=PROG, flags=PARAM_FLAGS)


def _main(argv: list[str] | None) -> int:
    from simulations.engine.progress import set_quiet
    from simulations.engine.threads import set_default_threads

    parser, command = parsers()
    args = parser.parse_args(argv)
    # --threads (run, rare, verify) is the default of every run the command makes, those that
    # build their own settings too (rare.ams, the AMS claims of verify)
    set_default_threads(getattr(args, "threads", None))
    set_quiet(getattr(args, "quiet", False))  # the runs a command makes without its Execution
    if args.command != "problems":  # launched by torchrun: split the work across the ranks
        from simulations.engine.distributed import init_from_env

        with lasting_imports():  # it imports torch
            init_from_env(args.rank_timeout)
    if args.command == "problems":
        problems.print_problems()
        return 0
    if args.command == "verify":
        return verify.verify(args, command["verify"])
    if args.command == "rare":
        return rare.rare(args, command["rare"], argv)
    return run.run(args, command["run"], argv)
