"""Command line: ``python -m theory bound --lam 30 --radius 1024 --schedule "1/(t+1)"``.

Prints the table of :func:`theory.table.bound_table` for a person, or with ``--json`` one JSON
object on stdout. Bad input ends with one line on stderr naming the argument, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from decimal import Decimal, InvalidOperation
from typing import NoReturn

from theory.schedules import MAX_HORIZON
from theory.table import bound_table, format_table


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr and exit status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _horizon(text: str) -> int:
    """A non-negative integer at most MAX_HORIZON = 10^24, written as 1000, 1_000, 1e15 or
    10**15 (10^15); its size is checked from the text before the integer is built."""
    wanted = f"expected a non-negative integer at most 10^24, got {text[:40]!r}"
    power = re.fullmatch(r"\s*(\d{1,25})\s*(?:\*\*|\^)\s*(\d{1,3})\s*", text)
    if power:
        value = Decimal(power.group(1)) ** int(power.group(2))
    else:
        try:
            value = Decimal(text.replace("_", ""))
        except InvalidOperation:
            raise argparse.ArgumentTypeError(wanted) from None
    if not value.is_finite() or value < 0 or value > MAX_HORIZON or \
            value != value.to_integral_value():
        raise argparse.ArgumentTypeError(wanted)
    return int(value)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m theory", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    bound = commands.add_parser(
        "bound", help="the paper's bounds beside the correct ones, with their horizons",
        description="The paper's bounds (Lemma 1 as printed, Claim 2's K) beside the correct "
                    "ones (deterministic radius, Azuma, Pinelis, Grönwall) for one setting.")
    bound.add_argument("--lam", type=_number, required=True, help="clipping threshold λ > 0")
    bound.add_argument("--radius", type=_number, required=True,
                       help="radius M > 0 (also the r of the martingale bound)")
    bound.add_argument("--schedule", required=True,
                       help='step sizes a(t), t = 0, 1, ...: an expression in t, e.g. "1/(t+1)", '
                            '"0.1*0.5**floor(t/100)", "0.05*(1+cos(pi*t/T))" (T: the horizon)')
    bound.add_argument("--horizon", type=_horizon, default=None,
                       help="horizon T (e.g. 1000, 1e15, 10**15); without it γ = Σ_{t≥0} a(t)²")
    bound.add_argument("--eps", type=_number, default=None,
                       help="ε > 0 of adaptive clipping: Claim 2's K, and Grönwall with --horizon")
    bound.add_argument("--theta0-norm", type=_number, default=0.0,
                       help="‖θ(0)‖ for the Grönwall bound (default 0)")
    bound.add_argument("--delta", type=_number, default=None,
                       help="δ in (0, 1): radius and largest λ at which a bound equals δ")
    bound.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        table = bound_table(args.lam, args.radius, args.schedule, horizon=args.horizon,
                            eps=args.eps, theta0_norm=args.theta0_norm, delta=args.delta)
    except ValueError as error:  # the message starts with the argument's name: "lam: ..."
        name, _, why = str(error).partition(":")
        parser.error(f"argument --{name.replace('_', '-')}:{why}")
    if args.json:
        json.dump(table, sys.stdout, allow_nan=False, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
