r"""``python -m paper_figs [--quick] [--out DIR] [--from DIR] [--only NAME ...]
[--scenario TOML ...]``.

Writes every figure (PDF, PNG and CSV each) and the tables of a write-up into ``--out``
(default ``paper-figures``). Simulation results are kept in the run store ``OUT/runs`` (one
folder per run spec, :mod:`simulations.store`, written atomically), so a rerun, or an
interrupted run started again, reuses everything already computed; ``--from DIR`` draws every
figure from ``DIR/runs`` without simulating and copies the tables from ``DIR/tables``.
``OUT/manifest.json`` lists what was written and what is missing. Exit status 0 when
everything was made, 1 when something failed or is missing, 2 on bad usage.

``--scenario FILE`` (repeatable) draws, instead of the built-in figures, the figures that apply
to the claims of each scenario file (:mod:`paper_figs.scenario`): ``OUT/<name>_<figure>.*``,
its run kept in ``OUT/runs``, at its ``[run]`` size with ``--quick`` and with its ``[full]``
overrides otherwise. ``--only`` then picks among those figures (``tables`` is refused); with
``--from DIR`` the scenario's run is read from ``DIR/runs``. A missing or invalid file is one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from theory import command
from theory.command import Formatter, Parser, describe, traceback_wanted
from theory.command import main as run_command
from theory.files import atomic_path

PROG = "python -m paper_figs"

FIGURES = ("fig_blowup", "fig_growth", "fig_claim2", "fig_equilibria", "fig_ode",
           "fig_lemma3", "fig_schedules")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(prog=PROG, formatter_class=Formatter,
                    description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--quick", action="store_true",
                        help="small runs (under 3 minutes on 2 cores)")
    parser.add_argument("--out", type=Path, default=Path("paper-figures"),
                        help="output folder (default: %(default)s)")
    parser.add_argument("--from", dest="source", type=Path, default=None, metavar="DIR",
                        help="draw from the saved results of an earlier run in DIR")
    parser.add_argument("--only", nargs="+", choices=(*FIGURES, "tables"), default=None,
                        metavar="NAME", help=f"make only these ({', '.join(FIGURES)}, tables)")
    parser.add_argument("--scenario", action="append", type=Path, default=None,
                        metavar="TOML", help="draw the figures of this scenario's claims "
                        "instead of the built-in ones (repeatable)")
    return parser.parse_args(argv)


def scenario_main(args: argparse.Namespace) -> int:
    """``--scenario``: the figures of each scenario's claims (see the module docstring)."""
    from paper_figs import scenario
    from paper_figs.runs import Context
    from simulations.store import RunStore

    try:
        if args.only and "tables" in args.only:
            raise ValueError("--only tables: the tables are not drawn for a --scenario")
        if args.source is not None and not (args.source / "runs").is_dir():
            raise ValueError(f"--from {args.source}: no runs folder there")
        quick = args.quick
        if args.source is not None and (args.source / "manifest.json").exists():
            saved = json.loads((args.source / "manifest.json").read_text(encoding="utf-8"))
            quick = bool(saved.get("quick", quick))  # the sizes of the saved runs
        scenarios = scenario.load(args.scenario, full=not quick)
    except ValueError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    store = (RunStore(args.source / "runs", read_only=True) if args.source is not None
             else RunStore(args.out / "runs"))
    ctx = Context(store=store, out=args.out, quick=quick)
    manifest: dict = {"quick": quick, "from": None if args.source is None
                      else str(args.source), "scenarios": {}, "figures": {}, "failed": {},
                      "seconds": {}}
    modules = scenario.figure_modules(FIGURES)
    for sc in scenarios:
        scenario.scenario_figures(ctx, sc, modules, manifest, args.source,
                                  None if args.only is None else set(args.only))
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    print(f"paper_figs: {len(manifest['figures'])} figures of {len(scenarios)} scenario(s) into "
          f"{args.out}" + (f"; failed: {', '.join(manifest['failed'])}" if manifest["failed"]
                           else ""))
    return 1 if manifest["failed"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m paper_figs``: every way it ends is one line on stderr
    (:func:`theory.command.main`); returns the exit status."""
    return run_command(_main, argv, prog=PROG)


def _main(argv: list[str] | None) -> int:
    from tqdm.auto import tqdm

    from paper_figs import tables
    from paper_figs.runs import Context
    from simulations.store import RunStore

    args = parse(argv)
    if args.scenario:
        return scenario_main(args)
    quick = args.quick
    if args.source is not None:
        saved = args.source / "manifest.json"
        if not (args.source / "runs").is_dir():
            print(f"error: --from {args.source}: no runs folder there", file=sys.stderr)
            return 2
        if saved.exists():
            quick = bool(json.loads(saved.read_text(encoding="utf-8"))["quick"])
        store = RunStore(args.source / "runs", read_only=True)
    else:
        store = RunStore(args.out / "runs")
    ctx = Context(store=store, out=args.out, quick=quick)
    wanted = args.only or (*FIGURES, "tables")
    manifest: dict = {"quick": quick, "from": None if args.source is None else str(args.source),
                      "figures": {}, "tables": {}, "failed": {}, "seconds": {}}
    bar = tqdm(wanted, desc="paper_figs", unit="item", disable=None)
    for name in bar:
        bar.set_postfix_str(name)
        start = time.perf_counter()
        try:
            if name == "tables":
                status = tables.make(args.out / "tables", quick, args.source)
                manifest["tables"] = {"written": [str(p) for p in status.written],
                                      "missing": status.missing}
                for line in status.missing:
                    tqdm.write(f"tables: {line}", file=sys.stderr)
            else:
                module = importlib.import_module(f"paper_figs.{name}")
                manifest["figures"][module.NAME] = [str(p) for p in module.make(ctx)]
        except Exception as err:  # one figure failing must not lose the others
            manifest["failed"][name] = describe(err)
            tqdm.write(f"{name} failed: {describe(err)}", file=sys.stderr)
            if traceback_wanted():
                traceback.print_exc(file=sys.stderr)
        manifest["seconds"][name] = round(time.perf_counter() - start, 2)
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    print(f"paper_figs: {len(manifest['figures'])} figures into {args.out}"
          + (f"; failed: {', '.join(manifest['failed'])}" if manifest["failed"] else ""))
    return 1 if manifest["failed"] or manifest["tables"].get("missing") else 0


if __name__ == "__main__":
    command.exit(main())
