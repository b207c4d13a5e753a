"""The ``run`` command: run clipped SGD on many paths from the flags, save the run in the store
and print a summary table (see :mod:`simulations.verify.cli`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from simulations.verify.cli import dryrun, flags
from theory.command import Formatter, lasting_imports


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """The ``run`` subcommand and its flag groups: problem, clip rule and step sizes, run,
    output."""
    run = commands.add_parser(
        "run", formatter_class=Formatter,
        help="run clipped SGD on many paths, save the result and print a summary",
        description="Run R paths of clipped SGD θ(t+1) = θ(t) − a(t)·g(t)/c(t) for T steps, "
                    "save arrays.npz and result.json into OUT/runs/<key> and print the exit "
                    "statistics per radius. Problem flags without a default shown take the chosen "
                    "problem's own (python -m simulations problems lists them).",
        epilog="example: python -m simulations run --problem quadratic --noise normal "
               "--mean 100 --sd 1 --dim 1 --theta0 0 --clip classic --lam 1 "
               "--schedule \"1/(t+1)\" --paths 10000 --steps 1000 --radius 2 --out runs/far")
    flags.add_problem_flags(run)
    flags.add_rule_flags(run)
    flags.add_run_flags(run)
    group = run.add_argument_group("output")
    group.add_argument("--out", required=True, type=Path,
                       help="folder of the run store: the run goes into OUT/runs/<key> "
                            "(created if needed)")
    return run


def run_spec(args: argparse.Namespace):
    """The :class:`~simulations.engine.spec.RunSpec` of the ``run`` flags."""
    from simulations.engine.spec import RunSpec

    return RunSpec.from_dict({
        "problem": {"name": args.problem, **flags.problem_kwargs(args)}, "clip": flags.clip(args),
        "schedule": args.schedule, "paths": args.paths, "steps": args.steps,
        "batch": args.batch, "seed": args.seed, "dtype": args.dtype, "record": args.record,
        "radii": args.radii, "keep_paths": args.keep_paths, "xi_paths": args.xi_paths})


def format_summary(sim, result_path: Path) -> str:
    """The table printed after a run: exits per radius, blow-ups, and where the files are."""
    setting = sim.setting
    what = f"{setting['problem']}, {setting['clip']} clipping"
    if sim.run is not None:
        law = getattr(sim.run.make_problem(), "law", None)
        what = (f"{setting['problem']}{f' ({law.describe()})' if law else ''}, "
                f"{sim.run.make_rule().describe()}")
    lines = [f"{what}, a(t) = {setting['schedule']}: {sim.paths} paths × {sim.steps} steps, "
             f"batch {setting['batch']}, seed {setting['seed']}"]
    if "first_exit" not in sim.arrays:
        lines.append("(exits not recorded)")
    elif not setting["radii"]:
        lines.append("(no --radius given: no exit statistics)")
    else:
        norm = "first_exit_norm" in sim.arrays
        head = (f"{'radius M':>12}  {'exit fraction':>13}  {'exits':>8}  "
                f"{'first exit: min':>15}  {'median':>8}  {'max':>8}")
        lines += ["exits: ‖θ(s) − θ(0)‖ > M for some s ≤ T"
                  + ("  (‖θ(s)‖ > M: last column)" if norm else ""),
                  head + (f"  {'‖θ‖ exit fraction':>17}" if norm else "")]
        rows = zip(sim.radius_summary(),
                   sim.radius_summary("first_exit_norm") if norm else [None] * len(
                       setting["radii"]), strict=True)
        for row, row_norm in rows:
            first = row["first_exit_step"]
            steps = ("—", "—", "—") if first is None else (
                first["min"], f"{first['median']:g}", first["max"])
            line = (f"{row['radius']:>12g}  {row['exit_fraction']:>13.4f}  {row['exits']:>8}  "
                    f"{steps[0]:>15}  {steps[1]:>8}  {steps[2]:>8}")
            if row_norm is not None:
                line += f"  {row_norm['exit_fraction']:>17.4f}"
            lines.append(line)
    lines.append(f"blown up: {sim.blown_up} of {sim.paths} paths")
    lines.append(f"saved: {result_path} and {result_path.with_name('arrays.npz')}")
    return "\n".join(lines)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser,
        argv: list[str] | None = None) -> int:
    """The ``run`` command (see the module docstring); returns the exit status."""
    with lasting_imports():  # numba, sympy
        from simulations.engine.distributed import communicator
        from simulations.engine.run import has_checkpoint, simulate
        from simulations.engine.spec import Execution
        from simulations.engine.store import RunStore

    try:
        spec = run_spec(args)
        device, device_text = flags.device(args.device)
        checkpoint = args.out / "checkpoints" / spec.key()
        execution = Execution(
            device=device, chunk_size=args.chunk_size, backend=args.backend,
            compile=args.compile, checkpoint_dir=checkpoint,
            checkpoint_every=args.checkpoint_every, resume=args.resume,
            progress=False if args.quiet else None, threads=args.threads,
            rank_timeout=args.rank_timeout)
        if args.dry_run:
            return dryrun.run(spec, execution)
        flags.writable(args.out)
    except ValueError as error:
        parser.error(flags.message(error))
    store = RunStore(args.out / "runs")
    command = shlex.join([*flags.PROG.split(), *(sys.argv[1:] if argv is None else argv)])
    rank = communicator(None).rank
    try:  # rank 0 alone reads and writes the store; every rank computes
        sim = store.load(spec) if args.resume and rank == 0 else None
        if communicator(None).broadcast(sim is None):
            sim = simulate(spec, execution)
            if rank != 0:
                return 0
            path = store.save(sim, device=device_text, command=command)
        elif rank != 0:
            return 0
        else:
            path = store.folder(spec.key()) / "result.json"
            print(f"reusing the run saved in {path.parent}", file=sys.stderr)
    except ValueError as error:
        parser.error(flags.message(error))
    except OSError as error:
        flags.cannot_write(parser, args.out, error)
    except KeyboardInterrupt:
        if has_checkpoint(checkpoint):
            print(f"interrupted: the state up to the last checkpoint is in {checkpoint}; "
                  "rerun the same command with --resume to continue", file=sys.stderr)
        else:
            print(f"interrupted before the first checkpoint: nothing is saved in {checkpoint}; "
                  "rerun the same command (with --resume or without) to start again",
                  file=sys.stderr)
        return 130
    print(format_summary(sim, path))
    return 0
