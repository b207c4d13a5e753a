"""The ``rare`` command: a rare probability estimated by adaptive multilevel splitting from the
flags, saved in (or reused from) the run store."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path
from typing import Any

from simulations.verify.cli import dryrun, flags
from theory.command import Formatter, count, positive_number
from theory.errors import BadArgument

#: the flags of run's "run" group that ``rare`` takes too
RARE_RUN_FLAGS = ("steps", "batch", "seed", "dtype", "device", "threads", "compile", "dry_run",
                  "quiet")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """The ``rare`` subcommand: run's problem, clip-rule and schedule flags (added by the same
    functions, so the same parsing and the same checks), the flags of ``RARE_RUN_FLAGS``, and
    the splitting flags."""
    from simulations.engine.catalog import EVENTS, IMPORTANCE

    rare = commands.add_parser(
        "rare", formatter_class=Formatter,
        help="estimate a rare probability P(max_{s<=T} z(s) >= L) or P(z(T) >= L) by "
             "adaptive multilevel splitting",
        description="Estimate p = P(max_{s≤T} z(s) ≥ L), or P(z(T) ≥ L) with --endpoint, by "
                    "adaptive multilevel splitting (simulations/engine/rare.py), "
                    "z(s) = ‖θ(s) − θ(0)‖ "
                    "(exit), ‖ξ(s)‖ (xi) or ‖θ(s)‖ (blowup); prints the mean over replicas, its "
                    "95%% interval, the relative error and the cost in trajectory-steps, and "
                    "with --levels the whole curve P(max_{s≤T} z(s) ≥ ℓ) from the same run.",
        epilog="example: python -m simulations rare --problem quadratic --noise discrete "
               "--values -1000 1000 --probs 0.5 0.5 --theta0 0 --clip classic --lam 1 "
               "--schedule 1 --steps 200 --event exit --level 99.5 --particles 100 "
               "--kill 20 --replicas 20")
    flags.add_problem_flags(rare, required=False)
    flags.add_rule_flags(rare, required=False)
    flags.add_run_flags(rare, only=RARE_RUN_FLAGS)
    rare.add_argument_group("scenario").add_argument(
        "--scenario", type=Path, default=None, metavar="TOML",
        help="take the chain (problem, clip rule, schedule, steps, batch, seed, dtype) from "
             "this scenario file instead of the problem, clip and run flags")
    group = rare.add_argument_group("splitting")
    group.add_argument("--event", required=True, choices=EVENTS,
                       help="the score z: exit ‖θ(s) − θ(0)‖, xi ‖ξ(s)‖, blowup ‖θ(s)‖")
    group.add_argument("--level", required=True, type=positive_number, help="the level L > 0")
    group.add_argument("--endpoint", action="store_true",
                       help="the event z(T) ≥ L at the horizon instead of the running maximum")
    group.add_argument("--levels", type=positive_number, nargs="+", default=None, metavar="ℓ",
                       help="also estimate P(max_{s≤T} z(s) ≥ ℓ) at these levels 0 < ℓ ≤ L "
                            "from the same run (needs --importance max, no --endpoint)")
    group.add_argument("--particles", type=count, default=100, help="particles N ≥ 2")
    group.add_argument("--replicas", type=count, default=20, help="independent replicas n ≥ 2")
    group.add_argument("--kill", type=count, default=None,
                       help="rank k < N of the level among the scores (default: N // 10)")
    group.add_argument("--importance", choices=IMPORTANCE, default="scaled",
                       help="importance function: (z − L)/√(Σ_{t≥s} a²) or the running max")
    group.add_argument("--max-iterations", type=count, default=100_000,
                       help="iterations after which a replica is stopped")
    group.add_argument("--json", action="store_true", help="print the result as JSON")
    rare.add_argument_group("output").add_argument(
        "--out", type=Path, default=None,
        help="folder of the run store: the estimate goes into OUT/runs/<key>, and the same "
             "command again reuses it")
    return rare


def rare(args: argparse.Namespace, parser: argparse.ArgumentParser,
         argv: list[str] | None = None) -> int:
    """The ``rare`` command: :func:`simulations.engine.rare.ams` from the flags, with ``--out``
    saved in (or reused from) the run store ``OUT/runs``; returns the exit status."""
    import json

    from simulations.engine.rare import Splitting, ams
    from simulations.engine.spec import Execution
    from simulations.engine.store import RunStore, rare_key

    try:
        chain = _chain(args, parser)
        splitting = Splitting(
            event=args.event, level=args.level, endpoint=args.endpoint, levels=args.levels,
            importance=args.importance, particles=args.particles, replicas=args.replicas,
            kill=args.kill, max_iterations=args.max_iterations)
        device, device_text = flags.device(args.device)
        execution = Execution(device=device, compile=args.compile)
        if args.dry_run:
            return dryrun.rare(chain, splitting, execution)
        if args.out is not None:
            flags.writable(args.out)
        store = None if args.out is None else RunStore(args.out / "runs")
        result = None if store is None else store.load_rare(chain, splitting)
        if store is not None and result is not None:
            print(f"reusing the estimate saved in {store.folder(rare_key(chain, splitting))}",
                  file=sys.stderr)
        else:
            result = ams(chain, splitting, execution)
            if store is not None:
                given = sys.argv[1:] if argv is None else argv
                command = shlex.join([*flags.PROG.split(), *given])
                path = store.save_rare(result, chain, splitting, device=device_text,
                                       command=command)
                print(f"saved: {path}", file=sys.stderr)
    except ValueError as error:
        parser.error(flags.message(error))
    except OSError as error:
        flags.cannot_write(parser, args.out, error)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    z = {"exit": "‖θ(s) − θ(0)‖", "xi": "‖ξ(s)‖", "blowup": "‖θ(s)‖"}[args.event]
    low, high = result.interval
    event = (z.replace("(s)", f"({chain.steps})") if args.endpoint else
             f"max_{{s≤{chain.steps}}} {z}")
    print(f"P({event} ≥ {args.level:g}) = " + (
        f"{result.probability:.4g}, 95% interval [{low:.4g}, {high:.4g}], relative error "
        f"{result.relative_error:.3g}" if result.inconclusive is None else
        f"inconclusive: {result.inconclusive}"))
    if result.curve is not None:
        c = result.curve
        print(f"{'level ℓ':>10}  {'P(max ≥ ℓ)':>10}  {'95% interval':>23}  {'rel. err.':>9}")
        for lv, p, (lo, hi), rel in zip(c.levels, c.probability, c.interval, c.relative_error,
                                        strict=True):
            shown = (f"[{lo:>9.4g}, {hi:>9.4g}]  {rel:>9.3g}" if math.isfinite(lo) else
                     f"{'inconclusive (no spread)':>23}")
            print(f"{lv:>10.6g}  {p:>10.4g}  {shown}")
    print(f"{result.replicas} replicas × {args.particles} particles: "
          f"{result.trajectory_steps} trajectory-steps, {result.iterations} iterations"
          + (f", {result.extinct} replicas extinct" if result.extinct else "")
          + (f", {result.capped} stopped at --max-iterations" if result.capped else ""))
    return 0


def _chain(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The chain to split: the scenario's (``--scenario``; a problem, clip or run flag given
    with it is refused) or the flags' (``--problem`` and ``--schedule`` required)."""
    from simulations.engine.spec import Chain
    from simulations.verify.scenarios import load_scenario

    if args.scenario is None:
        for dest in ("problem", "schedule"):
            if getattr(args, dest) is None:
                raise BadArgument(dest, "required (or a --scenario file)")
        return Chain.from_dict({
            "problem": {"name": args.problem, **flags.problem_kwargs(args)},
            "clip": flags.clip(args),
            "schedule": args.schedule, "steps": args.steps, "batch": args.batch,
            "seed": args.seed, "dtype": args.dtype})
    chain_flags = {a.dest for g in parser._action_groups
                   if g.title in ("problem", "clip rule and step sizes")
                   for a in g._group_actions} | {"steps", "batch", "seed", "dtype"}
    for dest in sorted(chain_flags - {"help"}):
        if hasattr(args, dest) and getattr(args, dest) != parser.get_default(dest):
            raise BadArgument(dest, "the chain comes from --scenario; leave the flag out or "
                                    "edit the file")
    return load_scenario(args.scenario).run.chain
