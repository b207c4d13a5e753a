"""The ``verify`` command: hold the claims against Monte Carlo paths of a suite or of scenario
files and print (and save) the verdicts (see :mod:`simulations.verify.runner`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from simulations.verify.cli import dryrun, flags
from theory.command import Formatter
from theory.errors import BadArgument


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """The ``verify`` subcommand and its flags."""
    verify = commands.add_parser(
        "verify", formatter_class=Formatter,
        help="hold every claim of the paper against Monte Carlo paths and print the verdicts",
        description="Run a suite of scenarios (or your own TOML scenarios), hold each claim "
                    "against the paths and print the table of predictions, measurements with "
                    "95%% intervals and verdicts; report.md, report.json and report.tex go "
                    "into --out.",
        epilog="examples: python -m simulations verify; python -m simulations verify --suite "
               "paper --full; python -m simulations verify --scenario my.toml --claims T1,ODE")
    verify.add_argument("--suite", default=None,
                        help="a built-in suite (default: paper, unless --scenario is given)")
    verify.add_argument("--scenario", type=Path, action="append", default=[], metavar="TOML",
                        help="a scenario file (repeat for several); the format is in "
                             "simulations/verify/scenarios.py and "
                             "simulations/verify/suites/paper/*.toml")
    verify.add_argument("--claims", type=flags.claims, default=None,
                        help="the claims to check, separated by commas: ids (e.g. T1,L1-det), "
                             "modules (mypkg.my_claim) or files (./my_claim.py); each is "
                             "checked on every scenario it applies to, whether or not the "
                             "scenario lists it (default: each scenario's own claims)")
    verify.add_argument("--full", action="store_true",
                        help="the scenarios' [full] sizes (more paths and steps)")
    verify.add_argument("--json", action="store_true",
                        help="print the rows as JSON on stdout instead of the table")
    verify.add_argument("--out", type=Path, default=Path("runs/verify"),
                        help="folder for report.md, report.json, report.tex and runs/")
    verify.add_argument("--resume", action="store_true",
                        help="reuse the runs already saved in OUT/runs with the same spec")
    verify.add_argument("--check", action="store_true",
                        help="exit with status 1 when a verdict differs from the scenario's "
                             "[expect] table")
    flags.add_device_flags(verify.add_argument)
    flags.add_cost_flags(verify.add_argument)
    return verify


def verify(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The ``verify`` command (see :mod:`simulations.verify.runner`); returns the exit status."""
    from simulations.verify import report
    from simulations.verify.claims import applicable
    from simulations.verify.runner import verify as run_verify
    from simulations.verify.scenarios import load_scenario, load_suite

    try:
        if args.suite is not None and args.scenario:
            raise BadArgument("scenario", "give a --suite or --scenario files, not both")
        scenarios = ([load_scenario(p) for p in args.scenario] if args.scenario
                     else load_suite(args.suite or "paper"))
        scenarios = [sc.sized(args.full) for sc in scenarios]
        if args.claims and not any(applicable(c, sc) is None for sc in scenarios
                                   for c in args.claims):
            raise BadArgument("claims", "none of " + ", ".join(args.claims) + " applies to any "
                                     "of the scenarios")
        device, _ = flags.device(args.device)
        if args.dry_run:
            return dryrun.verify(scenarios, args.claims, str(device))
        flags.writable(args.out)
    except ValueError as error:
        parser.error(flags.message(error))
    try:
        rows = run_verify(scenarios, args.claims, out=args.out, resume=args.resume,
                          progress=False if args.quiet else None, device=str(device))
    except ValueError as error:
        parser.error(flags.message(error))
    except OSError as error:
        flags.cannot_write(parser, args.out, error)
    except KeyboardInterrupt:
        print(f"interrupted: the scenarios finished so far are saved in {args.out / 'runs'}; "
              "rerun the same command with --resume to continue", file=sys.stderr)
        return 130
    report.write(rows, args.out)
    if args.json:
        sys.stdout.write(report.as_json(rows))
    else:
        print(report.text(rows))
        print(f"saved: {', '.join(str(args.out / f) for f in report.FILES)}")
    if args.check:
        expect = {sc.name: sc.expect for sc in scenarios}
        wrong = report.unexpected(rows, expect)
        for row, wanted in wrong:
            print(f"unexpected: {row.scenario} {row.claim}: {row.verdict}, expected "
                  f"{wanted}", file=sys.stderr)
        return 1 if wrong else 0
    return 0
