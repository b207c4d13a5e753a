"""The flag groups that several commands share, each added by one function (``run`` and
``rare`` take the same problem, clip-rule and run flags), the flags' types, and what the flags
mean for the library: the problem's and the rule's parameters, the device, the output folder,
and a library error as one line naming its flag."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, NoReturn

from theory.command import count, flag_of, natural, one_line, positive_number
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


def record(text: str) -> tuple[str, ...]:
    from simulations.engine.catalog import OBSERVERS

    return _names(text, OBSERVERS, "observers")


def claims(text: str) -> tuple[str, ...]:
    """The ids of the claims named, separated by commas: ids, modules ``pkg.my_claim`` or files
    ``./my_claim.py`` (anything :func:`simulations.verify.claims.registry.resolve` takes)."""
    from simulations.verify.claims import resolve

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected claims separated by commas, got {text!r}")
    try:
        return tuple(dict.fromkeys(resolve(n).id for n in names))
    except ValueError as error:
        raise argparse.ArgumentTypeError(" ".join(str(error).split())) from None


# ---- flags from the declared parameters --------------------------------------------------------

def _add_param(group, param, text: str) -> None:
    """A flag for a declared :class:`~simulations.engine.params.Param` (absent unless given)."""
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


def shown(default: Any) -> str:
    """A default as it is typed on the command line ("" for None)."""
    if default is None:
        return ""
    if isinstance(default, tuple):
        return " ".join(map(str, default))
    return str(default)


def problem_flags() -> dict[str, list[tuple[str, Any]]]:
    """Every problem parameter by name, with the (problem, declaration) pairs that take it."""
    from simulations.engine.catalog import PROBLEM_NAMES, problem_params

    flags: dict[str, list[tuple[str, Any]]] = {}
    for name in PROBLEM_NAMES:
        for param in problem_params(name):
            flags.setdefault(param.name, []).append((name, param))
    return flags


def _problem_help(takers: list[tuple[str, Any]]) -> str:
    """The help of a problem flag: each declared help (with the problems that declare it where
    they differ), the laws that take a law parameter, and each problem's default."""
    from simulations.engine.catalog import LAWS
    from simulations.engine.params import takers as law_takers

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
    defaults = [f"{name} {shown(p.default) or 'preset'}" for name, p in takers
                if not p.many]
    return text + (f" (default: {', '.join(defaults)})" if defaults else "")


# ---- the shared flag groups ---------------------------------------------------------------------

def add_problem_flags(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """The ``problem`` group: ``--problem`` (``required`` unless a scenario may give it) and
    every declared problem parameter."""
    from simulations.engine.catalog import PROBLEM_NAMES

    group = parser.add_argument_group("problem")
    group.add_argument("--problem", required=required, choices=PROBLEM_NAMES, metavar="NAME",
                       help=f"the problem: {', '.join(PROBLEM_NAMES)}")
    for takers_of in problem_flags().values():
        _add_param(group, takers_of[0][1], _problem_help(takers_of))


def add_rule_flags(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """The ``clip rule and step sizes`` group: ``--clip``, the rules' parameters and
    ``--schedule`` (``required`` unless a scenario may give it)."""
    from simulations.engine.catalog import PARAMS, RULE_PARAMS, RULES
    from simulations.engine.params import takers

    group = parser.add_argument_group("clip rule and step sizes")
    group.add_argument("--clip", default="classic", choices=RULES, metavar="RULE",
                       help=f"the clip rule: {', '.join(RULES)}")
    for param in PARAMS:
        _add_param(group, param, f"{param.help}, {param.expected()} "
                                 f"({', '.join(takers(RULE_PARAMS, param.name))})")
    group.add_argument("--schedule", required=required,
                       help='step sizes a(t), t = 0, 1, ...: an expression in t, e.g. "1/(t+1)"')


def add_run_flags(parser: argparse.ArgumentParser, only: Collection[str] | None = None) -> None:
    """The ``run`` group (sizes, seed, recording, backend, device, checkpoints); with ``only``,
    just the flags whose destinations it names, in the same order."""
    from simulations.engine.catalog import MEMORY_BUDGET
    from simulations.engine.spec import DEFAULT_RECORD, DEFAULTS

    group = parser.add_argument_group("run")

    def add(*names: str, **kwargs: Any) -> None:
        dest = kwargs.get("dest", names[0].lstrip("-").replace("-", "_"))
        if only is None or dest in only:
            group.add_argument(*names, **kwargs)

    add("--paths", type=count, default=1000, help="number of paths R")
    add("--steps", type=natural, default=1000, help="number of steps T")
    add("--batch", type=count, default=1, help="minibatch size B")
    add("--radius", type=positive_number, action="append", default=[], dest="radii",
        metavar="M", help="a radius M > 0 for the exit statistics (repeat for several)")
    add("--seed", type=natural, default=0, help="seed of the minibatches")
    add("--dtype", choices=("float64", "float32"), default="float64",
        help="floating-point type of θ")
    add("--record", type=record, default=",".join(DEFAULT_RECORD),
        help="observers to record, separated by commas")
    add("--keep-paths", type=natural, default=DEFAULTS["keep_paths"],
        help="whole paths kept by the paths observer")
    add("--xi-paths", type=count, default=DEFAULTS["xi_paths"],
        help="paths on which the xi observer tracks ξ")
    add("--chunk-size", type=count, default=None,
        help=f"paths per chunk (default: sized to a {MEMORY_BUDGET >> 20} MiB memory budget)")
    add("--backend", choices=("auto", "torch", "compiled"), default="auto",
        help="the engine's step (compiled: the numba kernel, the default on the CPU; torch: "
             "the torch step, any device)")
    add("--compile", action="store_true",
        help="run the torch backend's step under torch.compile (slow to start, faster on long "
             "runs)")
    add_device_flags(add)
    add("--checkpoint-every", type=count, default=1000,
        help="steps between checkpoints in OUT/checkpoints/<key>")
    add("--resume", action="store_true",
        help="reuse the run saved in OUT/runs with the same spec, or continue from its "
             "checkpoint (the same command)")
    add_cost_flags(add)


def add_cost_flags(add: Callable[..., Any]) -> None:
    """``--dry-run`` and ``--quiet`` (run, rare, verify), through ``add`` (a parser's or a
    group's ``add_argument``)."""
    add("--dry-run", action="store_true",
        help="print what the command would cost, without running it: trajectory-steps, peak "
             "memory and the time estimated from short calibration runs on this machine "
             "(nothing is saved)")
    add("--quiet", action="store_true",
        help="no progress (otherwise a bar on a terminal, a line every few seconds elsewhere)")


def add_device_flags(add: Callable[..., Any]) -> None:
    """``--device`` and ``--threads`` (run, rare, verify), through ``add`` (a parser's or a
    group's ``add_argument``)."""
    add("--device", default="cpu", help="torch device: cpu, or cuda (cuda:0, ...) where available")
    add("--threads", type=count, default=None,
        help="CPU threads of torch, numba and BLAS (default: every CPU this process may use)")


# ---- what the flags mean ---------------------------------------------------------------------

def problem_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """make_problem's keyword arguments from the flags given; refuses the flags the problem
    does not take (the law's and the values' own checks are the library's)."""
    from simulations.engine.params import find
    from simulations.engine.problems import problem_params

    name = args.problem
    declared = problem_params(name)
    given = {dest: getattr(args, dest) for dest in problem_flags() if hasattr(args, dest)}
    for dest in given:
        if find(declared, dest) is None:
            takes = " ".join(p.flag for p in declared) or "no flags"
            raise BadArgument(dest, f"the {name} problem does not take it (it takes {takes})")
    theta0 = given.get("theta0")
    if theta0 is not None and name in ("quadratic", "stiff"):
        dims = find(declared, "dim")
        dim = given.get("dim", None if dims is None else dims.default)
        if len(theta0) not in (1, dim):
            wanted = "1 number" if dim == 1 else f"1 or {dim} numbers"
            raise BadArgument("theta0", f"expected {wanted} (dim = {dim}), got {len(theta0)}")
        given["theta0"] = theta0[0] if len(theta0) == 1 else theta0
    return given


def clip(args: argparse.Namespace) -> dict[str, Any]:
    """The run's clip table from the flags (the rule refuses what it does not take)."""
    from simulations.engine.rules import PARAMS

    return {"rule": args.clip, **{p.name: getattr(args, p.name) for p in PARAMS
                                  if hasattr(args, p.name)}}


def device(text: str) -> tuple[Any, str]:
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


def writable(out: Path) -> None:
    from theory.files import writable

    try:
        writable(out)
    except OSError as error:
        why = error.strerror or str(error)
        raise BadArgument("out", f"cannot write to {str(out)!r}: {why}") from None


def cannot_write(parser: argparse.ArgumentParser, out: Path | None, error: OSError) -> NoReturn:
    """End the command with status 1 and one line: ``out`` could not be written (a full
    disk)."""
    why = error.strerror or str(error)
    parser.exit(1, f"{parser.prog}: error: cannot write into {out}: {why}\n")


#: the flag of each RunSpec / Execution parameter whose name is not the flag's (the problem's
#: and the rule's parameters ``problem.<name>``, ``clip.<name>`` are ``--<name>``)
PARAM_FLAGS = {"problem.name": "problem", "clip.rule": "clip", "radii": "radius"}


def message(error: ValueError) -> str:
    """A library ValueError as one line; a :class:`~theory.errors.BadArgument` names its
    flag."""
    if isinstance(error, BadArgument):
        return f"argument {flag_of(error.param, PARAM_FLAGS)}: {one_line(error.message)}"
    return one_line(error)
