r"""``python -m paper_figs [--quick] [--out DIR] [--from DIR] [--only NAME ...]
[--scenario TOML ...] [--dry-run] [--quiet]``.

Writes every figure (PDF, PNG and CSV each) and the tables of a write-up into ``--out``
(default ``paper-figures``). Simulation results are kept in the run store ``OUT/runs`` (one
folder per run spec, :mod:`simulations.engine.store`, written atomically), so a rerun, or an
interrupted run started again, reuses everything already computed; ``--from DIR`` draws every
figure from ``DIR/runs`` without simulating and copies the tables from ``DIR/tables``.
``OUT/manifest.json`` lists what was written and what is missing. ``--out`` and ``--from``
are relative to the current folder. Exit status 0 when everything was made, 1 when something
failed or is missing (a full disk stops the run there, in one line), 2 on bad usage (an empty
or unwritable ``--out``, a ``--from`` without runs or with a damaged ``manifest.json``: one line
on stderr). A saved run in ``--from`` whose arrays do not match their SHA-256 is not drawn
(:mod:`simulations.engine.store`).

``--scenario FILE`` (repeatable) draws, instead of the built-in figures, the figures that apply
to the claims of each scenario file (:mod:`paper_figs.scenario`): ``OUT/<name>_<figure>.*``,
its run kept in ``OUT/runs``, at its ``[run]`` size with ``--quick`` and with its ``[full]``
overrides otherwise. ``--only`` then picks among those figures (``tables`` is refused); with
``--from DIR`` the scenario's run is read from ``DIR/runs``. A missing or invalid file is one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from theory import command
from theory.command import Formatter, Parser
from theory.files import atomic_path, writable

PROG = "python -m paper_figs"

FIGURES = ("fig_blowup", "fig_growth", "fig_claim2", "fig_equilibria", "fig_ode",
           "fig_lemma3", "fig_schedules", "fig_marchaud", "fig_assumptions")
#: the figures drawn for a ``--scenario``: those of ``FIGURES`` with ``draw_scenario``, and these
SCENARIO_ONLY = ("fig_bounds",)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(prog=PROG, formatter_class=Formatter,
                    description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--quick", action="store_true",
                        help="small runs (under 3 minutes on 2 cores)")
    parser.add_argument("--out", default="paper-figures",
                        help="output folder (default: %(default)s)")
    parser.add_argument("--from", dest="source", default=None, metavar="DIR",
                        help="draw from the saved results of an earlier run in DIR")
    parser.add_argument("--only", nargs="+", choices=(*FIGURES, *SCENARIO_ONLY, "tables"),
                        default=None, metavar="NAME",
                        help=f"make only these ({', '.join(FIGURES)}, tables; with --scenario "
                        f"also {', '.join(SCENARIO_ONLY)})")
    parser.add_argument("--scenario", action="append", type=Path, default=None,
                        metavar="TOML", help="draw the figures of this scenario's claims "
                        "instead of the built-in ones (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what the runs would cost (trajectory-steps, peak memory, "
                             "the time estimated from short calibration runs on this machine) "
                             "instead of making them; nothing is written")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress (otherwise a bar on a terminal, a line every few "
                             "seconds elsewhere)")
    return parser.parse_args(argv)


def _folder(text: str | None, flag: str) -> Path | None:
    """The folder ``text`` of ``flag``, relative to the current folder (None stays None); an
    empty path is refused (``ValueError``)."""
    if text is None:
        return None
    if not text.strip():
        raise ValueError(f"{flag}: an empty path; name a folder ('.' for this one)")
    return Path(text).absolute()


def check_folders(args: argparse.Namespace) -> bool:
    """Resolve ``--out`` and ``--from`` against the current folder and return whether the runs
    are quick (``--quick``, or what ``--from``'s ``manifest.json`` says). Raises ``ValueError``
    (one line) for an empty path, a ``--from`` without ``runs`` and a damaged
    ``manifest.json``."""
    args.out, args.source = _folder(args.out, "--out"), _folder(args.source, "--from")
    if args.source is None:
        return args.quick
    if not (args.source / "runs").is_dir():
        raise ValueError(f"--from {args.source}: no runs folder there")
    saved = args.source / "manifest.json"
    if not saved.exists():
        return args.quick
    try:
        quick = json.loads(saved.read_text(encoding="utf-8"))["quick"]
        if not isinstance(quick, bool):
            raise TypeError(f"quick is {quick!r}, not true or false")
    except (OSError, ValueError, KeyError, TypeError) as err:
        why = " ".join(str(err).split())[:120] or type(err).__name__
        raise ValueError(f"--from {args.source}: {saved.name} is damaged ({why})") from None
    return quick  # the sizes of the saved runs


def check_out(out: Path) -> None:
    """Create ``--out`` (the last check, so that bad input leaves nothing behind); a folder
    that cannot be written (a file on its way, a read-only folder) is a ``ValueError``."""
    try:
        writable(out)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot write there: {err.strerror or err}") from None


def write_manifest(out: Path, manifest: dict) -> None:
    """``OUT/manifest.json``, written atomically."""
    with atomic_path(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def scenario_main(args: argparse.Namespace, quick: bool) -> int:
    """``--scenario``: the figures of each scenario's claims (see the module docstring)."""
    from paper_figs import scenario
    from paper_figs.runs import Context
    from simulations.engine.store import RunStore

    if args.only and "tables" in args.only:
        raise ValueError("--only tables: the tables are not drawn for a --scenario")
    scenarios = scenario.load(args.scenario, full=not quick)
    if args.dry_run:
        from simulations.verify.cli.dryrun import verify_costs

        return _print_costs(verify_costs(scenarios) if args.source is None else [],
                            "not included: drawing the figures (seconds each)")
    check_out(args.out)
    store = (RunStore(args.source / "runs", read_only=True) if args.source is not None
             else RunStore(args.out / "runs"))
    ctx = Context(store=store, out=args.out, quick=quick)
    manifest: dict = {"quick": quick, "from": None if args.source is None
                      else str(args.source), "scenarios": {}, "figures": {}, "failed": {},
                      "seconds": {}}
    modules = scenario.figure_modules((*FIGURES, *SCENARIO_ONLY))
    for sc in scenarios:
        scenario.scenario_figures(ctx, sc, modules, manifest, args.source,
                                  None if args.only is None else set(args.only))
    write_manifest(args.out, manifest)
    print(f"paper_figs: {len(manifest['figures'])} figures of {len(scenarios)} scenario(s) into "
          f"{args.out}" + (f"; failed: {', '.join(manifest['failed'])}" if manifest["failed"]
                           else ""))
    return 1 if manifest["failed"] else 0


def figures_main(args: argparse.Namespace, quick: bool) -> int:
    """The built-in figures and the tables (see the module docstring)."""
    from paper_figs import scenario, tables
    from paper_figs.runs import Context
    from simulations.engine.progress import bar as progress_bar
    from simulations.engine.progress import mode
    from simulations.engine.store import RunStore

    drawn_for_scenarios = sorted(set(args.only or ()) & set(SCENARIO_ONLY))
    if drawn_for_scenarios:
        raise ValueError(f"--only {drawn_for_scenarios[0]}: drawn for a --scenario only")
    if args.dry_run:
        return dry_run(args, quick)
    check_out(args.out)
    store = (RunStore(args.source / "runs", read_only=True) if args.source is not None
             else RunStore(args.out / "runs"))
    ctx = Context(store=store, out=args.out, quick=quick)
    wanted = args.only or (*FIGURES, "tables")
    manifest: dict = {"quick": quick, "from": None if args.source is None else str(args.source),
                      "figures": {}, "tables": {}, "failed": {}, "seconds": {}}
    lines = mode() == "lines"
    bar = progress_bar(len(wanted), "paper_figs", "item", False if lines else None)
    for i, name in enumerate(wanted, 1):
        bar.set_postfix_str(name)
        start = time.perf_counter()
        try:
            if name == "tables":
                status = tables.make(args.out / "tables", quick, args.source)
                manifest["tables"] = {"written": [str(p) for p in status.written],
                                      "missing": status.missing}
                for line in status.missing:
                    print(f"tables: {line}", file=sys.stderr)
            else:
                module = importlib.import_module(f"paper_figs.{name}")
                manifest["figures"][module.NAME] = [str(p) for p in module.make(ctx)]
        except Exception as err:  # one figure failing must not lose the others
            scenario.record_failure(manifest, name, err)
        manifest["seconds"][name] = round(time.perf_counter() - start, 2)
        bar.update(1)
        if lines:
            print(f"paper_figs {i}/{len(wanted)} {name}: {manifest['seconds'][name]:.1f} s",
                  file=sys.stderr, flush=True)
    bar.close()
    write_manifest(args.out, manifest)
    print(f"paper_figs: {len(manifest['figures'])} figures into {args.out}"
          + (f"; failed: {', '.join(manifest['failed'])}" if manifest["failed"] else ""))
    return 1 if manifest["failed"] or manifest["tables"].get("missing") else 0


def _print_costs(costs: list, left_out: str = "") -> int:
    """Print the ``--dry-run`` table of ``costs``; returns 0."""
    from simulations.engine.cost import table

    if not costs:
        print("nothing to run: every figure is drawn from saved runs (--from)")
        return 0
    print(table(costs, left_out))
    return 0


def dry_run(args: argparse.Namespace, quick: bool) -> int:
    """``--dry-run`` of the built-in figures: each figure is drawn into a temporary folder
    (thrown away) from stand-in runs of a few paths while its runs' costs are estimated
    (:class:`paper_figs.runs.Context` with a ``plan``); the tables' cost is that of the
    verification suite (``simulations verify --dry-run``)."""
    import tempfile

    from paper_figs import tables
    from paper_figs.runs import Context
    from simulations.engine.cost import PlanStore
    from simulations.verify.cli.dryrun import LEFT_OUT_VERIFY, verify_costs
    from simulations.verify.scenarios import load_suite

    if args.source is not None:
        return _print_costs([])
    plan: list = []
    for name in args.only or (*FIGURES, "tables"):
        if name == "tables":
            if tables.verify_available():
                costs = verify_costs([sc.sized(not quick) for sc in load_suite("paper")])
                plan += [dataclasses.replace(c, name=f"tables: {c.name}") for c in costs]
            continue
        with tempfile.TemporaryDirectory() as out:
            module = importlib.import_module(f"paper_figs.{name}")
            module.make(Context(store=PlanStore(plan), out=Path(out), quick=quick, plan=plan))
    return _print_costs(plan, "not included: drawing the figures (seconds each); "
                        + LEFT_OUT_VERIFY)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command (see the module docstring); returns the exit status: bad input is one
    line on stderr and 2, a file that cannot be written (a full disk) one line and 1, Ctrl-C
    one line and 130, every other fault one line and 1 (:func:`theory.command.main`)."""
    return command.main(_main, argv, prog=PROG)


def _main(argv: list[str] | None) -> int:
    from simulations.engine.progress import set_quiet

    args = parse(argv)
    set_quiet(args.quiet)
    try:
        quick = check_folders(args)
        return (scenario_main if args.scenario else figures_main)(args, quick)
    except ValueError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot write into {args.out}: {err.strerror or err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    command.exit(main())
