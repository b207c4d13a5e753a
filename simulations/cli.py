r"""Command line: ``python -m simulations run ...``, ``python -m simulations rare ...``,
``python -m simulations problems`` and ``python -m simulations verify [--suite paper] [--full]
[--scenario my.toml] [--claims T1,ODE] [--json] [--out DIR]``.

``run`` turns its flags into a :class:`simulations.spec.RunSpec` (through
:meth:`~simulations.spec.RunSpec.from_dict`, like every other caller), runs
:func:`simulations.engine.simulate` with checkpoints in ``OUT/checkpoints/<key>``, saves the
result in the run store ``OUT/runs/<key>/`` (:mod:`simulations.store`; ``<key>`` the spec's
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
import copy
import inspect
import math
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from theory.command import Formatter, Parser, count, flag_of, natural, one_line, positive_number
from theory.command import main as run_command
from theory.errors import BadArgument

PROG = "python -m simulations"


# ---- argument types ---------------------------------------------------------------------------

def _names(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """A comma-separated list of names, each one of ``allowed``."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names or any(n not in allowed for n in names):
        raise argparse.ArgumentTypeError(
            f"expected {what} from {', '.join(allowed)} separated by commas, got {text!r}")
    return names


def _record(text: str) -> tuple[str, ...]:
    from simulations.catalog import OBSERVERS

    return _names(text, OBSERVERS, "observers")


def _claims(text: str) -> tuple[str, ...]:
    """The ids of the claims named, separated by commas: ids, modules ``pkg.my_claim`` or files
    ``./my_claim.py`` (anything :func:`simulations.claims.registry.resolve` takes)."""
    from simulations.claims import resolve

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected claims separated by commas, got {text!r}")
    try:
        return tuple(dict.fromkeys(resolve(n).id for n in names))
    except ValueError as error:
        raise argparse.ArgumentTypeError(" ".join(str(error).split())) from None


# ---- flags from the declared parameters --------------------------------------------------------

def _add_param(group, param, text: str) -> None:
    """A flag for a declared :class:`~simulations.params.Param` (absent unless given)."""
    kwargs: dict[str, Any] = {}
    if param.type is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif param.choices:
        kwargs["choices"] = param.choices
    else:
        def parse(word: str) -> Any:
            try:
                return param.parse(word)
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from None

        kwargs["type"] = parse
    if param.many:
        kwargs.update(nargs="+", metavar="X")
    group.add_argument(param.flag, dest=param.name, default=argparse.SUPPRESS, help=text,
                       **kwargs)


def _shown(default: Any) -> str:
    """A default as it is typed on the command line ("" for None)."""
    if default is None:
        return ""
    if isinstance(default, tuple):
        return " ".join(map(str, default))
    return str(default)


def problem_flags() -> dict[str, list[tuple[str, Any]]]:
    """Every problem parameter by name, with the (problem, declaration) pairs that take it."""
    from simulations.catalog import PROBLEM_NAMES, problem_params

    flags: dict[str, list[tuple[str, Any]]] = {}
    for name in PROBLEM_NAMES:
        for param in problem_params(name):
            flags.setdefault(param.name, []).append((name, param))
    return flags


def _problem_help(takers: list[tuple[str, Any]]) -> str:
    """The help of a problem flag: each declared help (with the problems that declare it where
    they differ), the laws that take a law parameter, and each problem's default."""
    from simulations.catalog import LAWS
    from simulations.params import takers as law_takers

    texts: dict[str, list[str]] = {}
    for name, param in takers:
        texts.setdefault(param.help, []).append(name)
    if len(texts) == 1:
        text = next(iter(texts))
    else:
        text = "; ".join(f"{h} ({', '.join(names)})" for h, names in texts.items())
    laws = law_takers(LAWS, takers[0][1].name)
    if laws:
        text += f" (law{'s' if len(laws) > 1 else ''} {', '.join(laws)})"
    defaults = [f"{name} {_shown(p.default) or 'preset'}" for name, p in takers
                if not p.many]
    return text + (f" (default: {', '.join(defaults)})" if defaults else "")


# ---- the parser -------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The parser of every command. It imports only light modules (:mod:`simulations.catalog`,
    :mod:`simulations.spec`), neither torch nor scipy: each command imports what it runs."""
    from simulations.catalog import MEMORY_BUDGET, PARAMS, PROBLEM_NAMES, RULE_PARAMS, RULES
    from simulations.params import takers
    from simulations.spec import DEFAULT_RECORD, DEFAULTS

    parser = Parser(prog=PROG, formatter_class=Formatter,
                     description="Monte Carlo runs of clipped SGD: 'run' simulates and saves, "
                                 "'rare' estimates a rare probability by splitting, "
                                 "'problems' lists the catalog, 'verify' holds the paper's "
                                 "claims against the paths. 'python -m simulations run "
                                 "--help' lists every flag.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                     metavar="{run,rare,problems,verify}")
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
    problems = commands.add_parser(
        "problems", formatter_class=Formatter,
        help="list the problems of the catalog and the flags each takes",
        description="List the problems of the catalog and the flags each takes.")
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
                             "simulations/scenarios.py and simulations/suites/paper/*.toml")
    verify.add_argument("--claims", type=_claims, default=None,
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
    verify.add_argument("--device", default="cpu",
                        help="torch device: cpu, or cuda (cuda:0, ...) where available")
    verify.add_argument("--threads", type=count, default=None,
                        help="CPU threads of torch, numba and BLAS (default: every CPU this "
                             "process may use)")
    verify.add_argument("--quiet", action="store_true",
                        help="no progress bar (on a terminal) or progress lines (elsewhere)")
    parser.commands = {"run": run, "problems": problems, "verify": verify}

    group = run.add_argument_group("problem")
    group.add_argument("--problem", required=True, choices=PROBLEM_NAMES, metavar="NAME",
                       help=f"the problem: {', '.join(PROBLEM_NAMES)}")
    for takers_of in problem_flags().values():
        _add_param(group, takers_of[0][1], _problem_help(takers_of))

    group = run.add_argument_group("clip rule and step sizes")
    group.add_argument("--clip", default="classic", choices=RULES, metavar="RULE",
                       help=f"the clip rule: {', '.join(RULES)}")
    for param in PARAMS:
        _add_param(group, param, f"{param.help}, {param.expected()} "
                                 f"({', '.join(takers(RULE_PARAMS, param.name))})")
    group.add_argument("--schedule", required=True,
                       help='step sizes a(t), t = 0, 1, ...: an expression in t, e.g. "1/(t+1)"')

    group = run.add_argument_group("run")
    group.add_argument("--paths", type=count, default=1000, help="number of paths R")
    group.add_argument("--steps", type=natural, default=1000, help="number of steps T")
    group.add_argument("--batch", type=count, default=1, help="minibatch size B")
    group.add_argument("--radius", type=positive_number, action="append", default=[],
                       dest="radii", metavar="M",
                       help="a radius M > 0 for the exit statistics (repeat for several)")
    group.add_argument("--seed", type=natural, default=0, help="seed of the minibatches")
    group.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                       help="floating-point type of θ")
    group.add_argument("--record", type=_record, default=",".join(DEFAULT_RECORD),
                       help="observers to record, separated by commas")
    group.add_argument("--keep-paths", type=natural, default=DEFAULTS["keep_paths"],
                       help="whole paths kept by the paths observer")
    group.add_argument("--xi-paths", type=count, default=DEFAULTS["xi_paths"],
                       help="paths on which the xi observer tracks ξ")
    group.add_argument("--chunk-size", type=count, default=None,
                       help=f"paths per chunk (default: sized to a {MEMORY_BUDGET >> 20} MiB "
                            "memory budget)")
    group.add_argument("--backend", choices=("auto", "torch", "compiled"), default="auto",
                       help="the engine's step (compiled: the numba kernel, the default on "
                            "the CPU; torch: the torch step, any device)")
    group.add_argument("--compile", action="store_true",
                       help="run the torch backend's step under torch.compile (slow to start, "
                            "faster on long runs)")
    group.add_argument("--device", default="cpu",
                       help="torch device: cpu, or cuda (cuda:0, ...) where available")
    group.add_argument("--threads", type=count, default=None,
                       help="CPU threads of torch, numba and BLAS (default: every CPU this "
                            "process may use)")
    group.add_argument("--checkpoint-every", type=count, default=1000,
                       help="steps between checkpoints in OUT/checkpoints/<key>")
    group.add_argument("--resume", action="store_true",
                       help="reuse the run saved in OUT/runs with the same spec, or continue "
                            "from its checkpoint (the same command)")
    group.add_argument("--quiet", action="store_true", help="no progress bar")

    group = run.add_argument_group("output")
    group.add_argument("--out", required=True, type=Path,
                       help="folder of the run store: the run goes into OUT/runs/<key> "
                            "(created if needed)")
    parser.commands["rare"] = add_rare_parser(commands, run)
    return parser


# ---- rare events ------------------------------------------------------------------------------

#: the flags of run's "run" group that ``rare`` takes too
RARE_RUN_FLAGS = ("steps", "batch", "seed", "dtype", "device", "threads", "compile")


def add_rare_parser(commands, run: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``rare`` subcommand: run's problem, clip-rule and schedule flags (the very same
    argparse actions, so the same parsing and the same checks), the flags of
    ``RARE_RUN_FLAGS``, and the splitting flags."""
    from simulations.catalog import EVENTS, IMPORTANCE

    rare = commands.add_parser(
        "rare", formatter_class=Formatter,
        help="estimate a rare probability P(max_{s<=T} z(s) >= L) or P(z(T) >= L) by "
             "adaptive multilevel splitting",
        description="Estimate p = P(max_{s≤T} z(s) ≥ L), or P(z(T) ≥ L) with --endpoint, by "
                    "adaptive multilevel splitting (simulations/rare.py), z(s) = ‖θ(s) − θ(0)‖ "
                    "(exit), ‖ξ(s)‖ (xi) or ‖θ(s)‖ (blowup); prints the mean over replicas, its "
                    "95%% interval, the relative error and the cost in trajectory-steps, and "
                    "with --levels the whole curve P(max_{s≤T} z(s) ≥ ℓ) from the same run.",
        epilog="example: python -m simulations rare --problem quadratic --noise discrete "
               "--values -1000 1000 --probs 0.5 0.5 --theta0 0 --clip classic --lam 1 "
               "--schedule 1 --steps 200 --event exit --level 99.5 --particles 100 "
               "--kill 20 --replicas 20")
    for group in run._action_groups:
        if group.title in ("problem", "clip rule and step sizes", "run"):
            mine = rare.add_argument_group(group.title)
            for action in group._group_actions:
                if group.title != "run" or action.dest in RARE_RUN_FLAGS:
                    if action.required:  # not required here: --scenario may give them
                        action = copy.copy(action)
                        action.required = False
                    mine._add_action(action)
    rare.add_argument_group("problem").add_argument(
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
    """The ``rare`` command: :func:`simulations.rare.ams` from the flags, with ``--out`` saved
    in (or reused from) the run store ``OUT/runs``; returns the exit status."""
    import json

    from simulations.rare import Splitting, ams
    from simulations.spec import Execution
    from simulations.store import RunStore, rare_key

    try:
        chain = _rare_chain(args, parser)
        splitting = Splitting(
            event=args.event, level=args.level, endpoint=args.endpoint, levels=args.levels,
            importance=args.importance, particles=args.particles, replicas=args.replicas,
            kill=args.kill, max_iterations=args.max_iterations)
        device, device_text = _device(args.device)
        execution = Execution(device=device, compile=args.compile)
        if args.out is not None:
            _writable(args.out)
        store = None if args.out is None else RunStore(args.out / "runs")
        result = None if store is None else store.load_rare(chain, splitting)
        if result is not None:
            print(f"reusing the estimate saved in {store.folder(rare_key(chain, splitting))}",
                  file=sys.stderr)
        else:
            result = ams(chain, splitting, execution)
            if store is not None:
                command = shlex.join([*PROG.split(), *(sys.argv[1:] if argv is None else argv)])
                path = store.save_rare(result, chain, splitting, device=device_text,
                                       command=command)
                print(f"saved: {path}", file=sys.stderr)
    except ValueError as error:
        parser.error(_message(error))
    except OSError as error:
        why = error.strerror or str(error)
        parser.exit(1, f"{parser.prog}: error: cannot write into {args.out}: {why}\n")
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


def _rare_chain(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The chain of the ``rare`` command: the scenario's (``--scenario``; the problem, clip
    and run flags are refused with it) or the flags' (``--problem`` and ``--schedule``
    required)."""
    from simulations.spec import Chain

    if args.scenario is None:
        for dest in ("problem", "schedule"):
            if getattr(args, dest) is None:
                raise BadArgument(dest, "required (or a --scenario file)")
        return Chain.from_dict({
            "problem": {"name": args.problem, **_problem_kwargs(args)}, "clip": _clip(args),
            "schedule": args.schedule, "steps": args.steps, "batch": args.batch,
            "seed": args.seed, "dtype": args.dtype})
    from simulations.scenarios import load_scenario

    chain_flags = {a.dest for g in parser._action_groups
                   if g.title in ("problem", "clip rule and step sizes")
                   for a in g._group_actions} | {"steps", "batch", "seed", "dtype"}
    for dest in sorted(chain_flags - {"scenario", "help"}):
        if hasattr(args, dest) and getattr(args, dest) != parser.get_default(dest):
            raise BadArgument(dest, "the chain comes from --scenario; leave the flag out or "
                                    "edit the file")
    return load_scenario(args.scenario).run.chain


# ---- building the run -------------------------------------------------------------------------

def _problem_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """make_problem's keyword arguments from the flags given; refuses the flags the problem
    does not take (the law's and the values' own checks are the library's)."""
    from simulations.params import find
    from simulations.problems import problem_params

    name = args.problem
    declared = problem_params(name)
    given = {dest: getattr(args, dest) for dest in problem_flags() if hasattr(args, dest)}
    for dest in given:
        if find(declared, dest) is None:
            takes = " ".join(p.flag for p in declared) or "no flags"
            raise BadArgument(dest, f"the {name} problem does not take it (it takes {takes})")
    theta0 = given.get("theta0")
    if theta0 is not None and name in ("quadratic", "stiff"):
        dim = given.get("dim", find(declared, "dim").default)
        if len(theta0) not in (1, dim):
            wanted = "1 number" if dim == 1 else f"1 or {dim} numbers"
            raise BadArgument("theta0", f"expected {wanted} (dim = {dim}), got {len(theta0)}")
        given["theta0"] = theta0[0] if len(theta0) == 1 else theta0
    return given


def _clip(args: argparse.Namespace) -> dict[str, Any]:
    """The run's clip table from the flags (the rule refuses what it does not take)."""
    from simulations.rules import PARAMS

    return {"rule": args.clip, **{p.name: getattr(args, p.name) for p in PARAMS
                                  if hasattr(args, p.name)}}


def run_spec(args: argparse.Namespace):
    """The :class:`~simulations.spec.RunSpec` of the ``run`` flags."""
    from simulations.spec import RunSpec

    return RunSpec.from_dict({
        "problem": {"name": args.problem, **_problem_kwargs(args)}, "clip": _clip(args),
        "schedule": args.schedule, "paths": args.paths, "steps": args.steps,
        "batch": args.batch, "seed": args.seed, "dtype": args.dtype, "record": args.record,
        "radii": args.radii, "keep_paths": args.keep_paths, "xi_paths": args.xi_paths})


def _device(text: str) -> tuple[Any, str]:
    """(torch device, its description for result.json)."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise BadArgument("device", f"not a torch device: {text!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BadArgument("device", "cuda is not available on this machine")
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise BadArgument("device", f"no {text} (this machine has "
                                     f"{torch.cuda.device_count()} cuda devices)")
        device = torch.device("cuda", index)
        return device, f"{device} ({torch.cuda.get_device_name(index)})"
    if device.type != "cpu":
        raise BadArgument("device", f"expected cpu or cuda, got {text!r}")
    return device, "cpu"


def _writable(out: Path) -> None:
    from theory.files import writable

    try:
        writable(out)
    except OSError as error:
        why = error.strerror or str(error)
        raise BadArgument("out", f"cannot write to {str(out)!r}: {why}") from None


#: the flag of each RunSpec / Execution parameter whose name is not the flag's (the problem's
#: and the rule's parameters ``problem.<name>``, ``clip.<name>`` are ``--<name>``)
PARAM_FLAGS = {"problem.name": "problem", "clip.rule": "clip", "radii": "radius"}


def _message(error: ValueError) -> str:
    """A library ValueError as one line; a :class:`~theory.errors.BadArgument` names its
    flag."""
    if isinstance(error, BadArgument):
        return f"argument {flag_of(error.param, PARAM_FLAGS)}: {one_line(error.message)}"
    return one_line(error)


# ---- output -----------------------------------------------------------------------------------

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


def print_problems() -> None:
    from simulations.problems import PROBLEMS, problem_params

    for name, factory in PROBLEMS.items():
        first = (inspect.getdoc(factory) or "").strip().splitlines()[0]
        first = re.sub(r":\w+:`~?([^`]*)`", r"\1", first).replace("``", "").rstrip(":")
        flags = []
        for param in problem_params(name):
            flag = param.flag
            if param.type is bool:
                flag = f"{flag}/--no-{flag[2:]}"
            flags.append(" ".join(filter(None, (flag, _shown(param.default)))))
        print(f"{name:<20}{first}")
        print(f"{'':<20}flags: {', '.join(flags)}")


# ---- main -------------------------------------------------------------------------------------

def run(args: argparse.Namespace, parser: argparse.ArgumentParser,
        argv: list[str] | None = None) -> int:
    """The ``run`` command (see the module docstring); returns the exit status."""
    from simulations.engine import simulate
    from simulations.spec import Execution
    from simulations.store import RunStore

    try:
        spec = run_spec(args)
        device, device_text = _device(args.device)
        checkpoint = args.out / "checkpoints" / spec.key()
        execution = Execution(
            device=device, chunk_size=args.chunk_size, backend=args.backend,
            compile=args.compile, checkpoint_dir=checkpoint,
            checkpoint_every=args.checkpoint_every, resume=args.resume,
            progress=False if args.quiet else None, threads=args.threads)
        _writable(args.out)
    except ValueError as error:
        parser.error(_message(error))
    store = RunStore(args.out / "runs")
    command = shlex.join([*PROG.split(), *(sys.argv[1:] if argv is None else argv)])
    try:
        sim = store.load(spec) if args.resume else None
        if sim is None:
            sim = simulate(spec, execution)
            path = store.save(sim, device=device_text, command=command)
        else:
            path = store.folder(spec.key()) / "result.json"
            print(f"reusing the run saved in {path.parent}", file=sys.stderr)
    except ValueError as error:
        parser.error(_message(error))
    except OSError as error:
        why = error.strerror or str(error)
        parser.exit(1, f"{parser.prog}: error: cannot write into {args.out}: {why}\n")
    except KeyboardInterrupt:
        if (checkpoint / "state.pt").exists():
            print(f"interrupted: the state up to the last checkpoint is in {checkpoint}; "
                  "rerun the same command with --resume to continue", file=sys.stderr)
        else:
            print(f"interrupted before the first checkpoint: nothing is saved in {checkpoint}; "
                  "rerun the same command (with --resume or without) to start again",
                  file=sys.stderr)
        return 130
    print(format_summary(sim, path))
    return 0


def verify(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The ``verify`` command (see :mod:`simulations.verify`); returns the exit status."""
    from simulations import report
    from simulations.claims import applicable
    from simulations.scenarios import load_scenario, load_suite
    from simulations.verify import verify as run_verify

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
        device, _ = _device(args.device)
        _writable(args.out)
    except ValueError as error:
        parser.error(_message(error))
    try:
        rows = run_verify(scenarios, args.claims, out=args.out, resume=args.resume,
                          progress=False if args.quiet else None, device=str(device))
    except ValueError as error:
        parser.error(_message(error))
    except OSError as error:
        why = error.strerror or str(error)
        parser.exit(1, f"{parser.prog}: error: cannot write into {args.out}: {why}\n")
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulations``: every way a command ends is one line on stderr
    (:func:`theory.command.main`); returns the exit status."""
    return run_command(_main, argv, prog=PROG, flags=PARAM_FLAGS)


def _main(argv: list[str] | None) -> int:
    from simulations.threads import set_default_threads

    parser = build_parser()
    args = parser.parse_args(argv)
    # --threads (run, rare, verify) is the default of every run the command makes, those that
    # build their own settings too (rare.ams, the AMS claims of verify)
    set_default_threads(getattr(args, "threads", None))
    if args.command == "problems":
        print_problems()
        return 0
    if args.command == "verify":
        return verify(args, parser.commands["verify"])
    if args.command == "rare":
        return rare(args, parser.commands["rare"], argv)
    return run(args, parser.commands["run"], argv)
