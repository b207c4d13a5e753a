"""Command line: ``python -m theory bound --lam 30 --radius 1024 --schedule "1/(t+1)"``.

Prints the table of :func:`theory.table.bound_table` for a person, or with ``--json`` one JSON
object on stdout. Bad input ends with one line on stderr naming the argument, exit status 2
(:mod:`theory.command`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from theory import command
from theory.command import Parser, natural, number
from theory.command import main as run_command
from theory.table import bound_table, format_table

PROG = "python -m theory"


def build_parser() -> Parser:
    """The parser of ``python -m theory``.

    Example:
        >>> args = build_parser().parse_args(["bound", "--lam", "1", "--radius", "2",
        ...                                   "--schedule", "0.1"])
        >>> args.lam, args.radius, args.schedule
        (1.0, 2.0, '0.1')
    """
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    bound = commands.add_parser(
        "bound", help="the paper's bounds beside the correct ones, with their horizons",
        description="The paper's bounds (Lemma 1 as printed, Claim 2's K) beside the correct "
                    "ones (deterministic radius, Azuma, Pinelis, Grönwall) for one setting.")
    bound.add_argument("--lam", type=number, required=True, help="clipping threshold λ > 0")
    bound.add_argument("--radius", type=number, required=True,
                       help="radius M > 0 (also the r of the martingale bound)")
    bound.add_argument("--schedule", required=True,
                       help='step sizes a(t), t = 0, 1, ...: an expression in t, e.g. "1/(t+1)", '
                            '"0.1*0.5**floor(t/100)", "0.05*(1+cos(pi*t/T))" (T: the horizon)')
    bound.add_argument("--horizon", type=natural, default=None,
                       help="horizon T (e.g. 1000, 1e15, 10**15); without it γ = Σ_{t≥0} a(t)²")
    bound.add_argument("--eps", type=number, default=None,
                       help="ε > 0 of adaptive clipping: Claim 2's K, the first T at which the "
                            "Grönwall bound passes --radius, and with --horizon the bound and "
                            "the largest λ")
    bound.add_argument("--theta0-norm", type=number, default=0.0,
                       help="‖θ(0)‖ for the Grönwall bound (default 0)")
    bound.add_argument("--delta", type=number, default=None,
                       help="δ in (0, 1): the radius of ξ and the safe radius of θ at δ, and "
                            "the largest λ at which a bound equals δ")
    bound.add_argument("--drift-bound", type=number, default=None,
                       help="h ≥ sup ‖H(θ)‖ for the safe radius of θ at δ (default λ)")
    bound.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m theory``: every way it ends is one line on stderr
    (:func:`theory.command.main`); returns the exit status.

    Example:
        >>> main(["bound", "--lam", "1", "--radius", "2", "--schedule", "0.1",
        ...       "--json"])  # doctest: +ELLIPSIS
        {"input": {"lam": 1.0, "radius": 2.0, "schedule": "0.1", ...}}
        0
    """
    return run_command(_bound, argv, prog=PROG)


def _bound(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    table = bound_table(args.lam, args.radius, args.schedule, horizon=args.horizon,
                        eps=args.eps, theta0_norm=args.theta0_norm, delta=args.delta,
                        drift_bound=args.drift_bound)
    if args.json:
        json.dump(table, sys.stdout, allow_nan=False, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(format_table(table))
    return 0


if __name__ == "__main__":
    command.exit(main())
