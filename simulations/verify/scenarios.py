r"""Scenarios and suites: a setting to verify, written as a TOML file, and lists of them.

A scenario names a problem of the catalog with its parameters, a clip rule, a step schedule, the
size of the run, the radii the claims use, the claims to check and (optionally) the verdicts
expected of them. Every key is checked; an unknown key or a bad value raises ``ValueError``
naming the file and the key. The file format (all tables but ``[problem]`` and ``[clip]``
optional)::

    name = "skewed-huber"                  # defaults to the file name
    description = "one line"
    claims = ["T1", "ODE", "L3"]            # claim ids, or modules/files of your own claims

    [problem]                              # make_problem(name, **the rest): the keys the
                                           # problem declares (python -m simulations problems);
                                           # data = "x.npz" and module = "p.py" are relative
                                           # to this file (docs/own-problem.md)
    name = "quadratic"
    noise = "discrete"
    values = [0.0, 10.0]                   # a law with any number of points
    probs = [0.9, 0.1]
    theta0 = 0.0

    [clip]                                 # ClipRule(rule, lam, eps, ball): those the
                                           # rule takes (ball: the projection's radius)
    rule = "classic"
    lam = 1.0

    [run]                                  # simulations.engine.spec.RunSpec (its defaults)
    schedule = "1/(t+1)"
    paths = 4096
    steps = 2000
    batch = 1
    seed = 0
    dtype = "float64"
    keep_paths = 8                         # whole paths kept (the ODE claim uses them)
    xi_paths = 1024                        # paths on which ξ is tracked (L1-mart, L3)

    [radii]
    exit = [2.0]                           # M of L1-paper (‖θ(T) − θ(0)‖ > M)
    xi = [0.5]                             # r of L1-mart (max_s ‖ξ(s)‖ ≥ r)
    blowup = 1e6                           # A3's blow-up radius for max_s ‖θ(s)‖

    [options]                              # the OPTIONS the checked claims declare
    zero_range = [-5.0, 15.0]

    [[bound]]                              # a bound of your own (simulations.verify.claims.bound)
    name = "azuma-exit"
    event = "exit"
    expression = "2*exp(-M**2/(2*lam**2*sum_a2))"

    [full]                                 # overrides of [run] for --full
    paths = 65536
    steps = 20000

    [expect]                               # verdicts the suite's test holds the run to
    T1 = "holds"                           # a list where a claim has a row per radius

The built-in suites are the folders of ``simulations/verify/suites`` (``paper``: every claim of the
paper on the settings that show where it holds and where it fails); :func:`load_suite` reads
one, sorted by file name.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from simulations.engine.spec import RunSpec
from theory.errors import BadArgument, positive

SUITES = Path(__file__).with_name("suites")

#: the keys of ``[run]`` and ``[full]`` (checked, with their defaults, by RunSpec.from_dict)
RUN_KEYS = ("schedule", "paths", "steps", "batch", "seed", "dtype", "guard", "keep_paths",
            "xi_paths")
RADII_KEYS = {"exit", "xi", "blowup"}
#: the deepest nesting of lists and tables a scenario file may have
MAX_DEPTH = 16
TOP_KEYS = {"name", "description", "claims", "problem", "clip", "run", "radii", "options",
            "full", "expect", "bound"}


@dataclass(frozen=True)
class Scenario:
    """One setting to verify (see the module docstring for the meaning of each field).

    ``run`` is the :class:`~simulations.engine.spec.RunSpec` of its quick size, recording the
    observers its claims need (:func:`simulations.verify.claims.observers_for`) and ``[radii] exit``
    as its radii; ``full`` the ``[full]`` overrides of ``[run]``. The read-only properties
    (``paths``, ``schedule``, ``exit_radii``, ...) are the run's.
    """

    name: str
    run: RunSpec
    claims: tuple[str, ...]
    description: str = ""
    xi_radii: tuple[float, ...] = ()
    blowup_radius: float = 1e6
    options: dict[str, Any] = field(default_factory=dict)
    full: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str | None = None

    def sized(self, full: bool) -> Scenario:
        """This scenario at its quick size, or with the ``[full]`` overrides applied."""
        return replace(self, run=self.run.replace(**self.full)) if full else self

    @property
    def problem(self) -> dict[str, Any]:
        return self.run.problem.thaw()

    @property
    def clip(self) -> dict[str, Any]:
        return self.run.clip.thaw()

    schedule = property(lambda self: self.run.schedule)
    paths = property(lambda self: self.run.paths)
    steps = property(lambda self: self.run.steps)
    batch = property(lambda self: self.run.batch)
    seed = property(lambda self: self.run.seed)
    dtype = property(lambda self: self.run.dtype)
    keep_paths = property(lambda self: self.run.keep_paths)
    xi_paths = property(lambda self: self.run.xi_paths)
    exit_radii = property(lambda self: self.run.radii)

    def make_problem(self):
        return self.run.make_problem()

    def make_rule(self):
        return self.run.make_rule()

    def describe(self) -> str:
        """One line: the name, the problem, the rule, the schedule and the size."""
        problem = self.make_problem()
        law = getattr(problem, "law", None)
        what = f"{problem.name} ({law.describe()})" if law is not None else problem.name
        return (f"{self.name}: {what}, {self.make_rule().describe()}, a(t) = {self.schedule}, "
                f"{self.paths} paths × {self.steps} steps")

    def to_dict(self) -> dict[str, Any]:
        """The scenario as JSON-ready values."""
        return {"name": self.name, "description": self.description, "problem": self.problem,
                "clip": self.clip, "schedule": self.schedule, "paths": self.paths,
                "steps": self.steps, "batch": self.batch, "seed": self.seed,
                "dtype": self.dtype, "keep_paths": self.keep_paths, "xi_paths": self.xi_paths,
                "claims": list(self.claims),
                "exit_radii": list(self.exit_radii), "xi_radii": list(self.xi_radii),
                "blowup_radius": self.blowup_radius, "options": self.options,
                "source": self.source}


def _bad(where: str, key: str, message: str) -> ValueError:
    return ValueError(f"{where}: {key}: {message}")


def _number_list(where: str, key: str, value: Any) -> tuple[float, ...]:
    try:
        return tuple(positive(v, key) for v in (value if isinstance(value, list) else [value]))
    except BadArgument:
        raise _bad(where, key, f"expected positive finite numbers, got {value!r}") from None


def _one_number(where: str, key: str, value: Any) -> float:
    try:
        return positive(value, key)
    except BadArgument:
        raise _bad(where, key, f"expected one positive finite number, got {value!r}") from None


def _depth(value: Any) -> int:
    """How deeply ``value``'s lists and tables nest (1 for a number), counted without
    recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            todo.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            todo.extend((v, depth + 1) for v in item)
    return deepest


def _run_table(where: str, table: Any, name: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _bad(where, name, f"expected a table, got {table!r}")
    for key in table:
        if key not in RUN_KEYS:
            raise _bad(where, f"{name}.{key}", f"unknown key (expected one of "
                                               f"{', '.join(RUN_KEYS)})")
    return dict(table)


def _files_here(problem: dict[str, Any], where: str) -> dict[str, Any]:
    """``[problem]`` with its ``data`` and ``module`` paths relative to the scenario file
    ``where`` made absolute (to the working directory where ``where`` is no file)."""
    from simulations.engine.data import resolve

    base = where if Path(where).is_file() else None
    return {k: resolve(v, base) if k in ("data", "module") and isinstance(v, str) else v
            for k, v in problem.items()}


def _run_spec(where: str, data: dict[str, Any], run: dict[str, Any], radii: tuple[float, ...],
              claims: list[str], table: str = "run") -> RunSpec:
    """The RunSpec of a scenario: [problem], [clip], the ``table`` ([run] or [full]), the exit
    radii, and the observers of its claims (whole paths kept only when recorded)."""
    from simulations.verify.claims import observers_for

    names = {k: f"{table}.{k}" for k in RUN_KEYS} | {"radii": "radii.exit"}
    try:
        return RunSpec.from_dict({"problem": data["problem"], "clip": data["clip"], **run,
                                  "radii": radii, "record": observers_for(claims)},
                                 names=names)
    except ValueError as error:
        raise ValueError(f"{where}: {' '.join(str(error).split())}") from None


def _claims(where: str, data: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The ids of the claims ``data`` names (``claims``: ids, modules ``pkg.mod`` or files
    ``./x.py``, each registered; ``[[bound]]`` tables, each a claim of its own), and the name
    each was given as → its id."""
    from simulations.verify.claims.bound import bound_claim
    from simulations.verify.claims.registry import ids, register, resolve

    names = data.get("claims", [])
    if not isinstance(names, list) or not (names or data.get("bound")):
        raise _bad(where, "claims", f"expected a non-empty list of claim ids "
                                    f"({', '.join(ids())}), modules or files")
    aliases = {}
    for name in names:
        try:
            aliases[name] = resolve(name, where).id
        except ValueError as error:
            raise _bad(where, "claims", str(error)) from None
    tables = data.get("bound", [])
    if not isinstance(tables, list):
        raise _bad(where, "bound", "expected [[bound]] tables")
    for i, table in enumerate(tables):
        try:
            claim = register(bound_claim(table, f"bound[{i}]"))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        aliases.setdefault(claim.id, claim.id)
    return list(dict.fromkeys(aliases.values())), aliases


def scenario_from_dict(data: dict[str, Any], where: str = "scenario",
                       default_name: str | None = None) -> Scenario:
    """A :class:`Scenario` from the parsed TOML ``data``; ``where`` names it in errors."""
    from simulations.verify.claims import VERDICTS
    from simulations.verify.claims.registry import check_options

    unknown = set(data) - TOP_KEYS
    if unknown:
        raise _bad(where, sorted(unknown)[0], f"unknown key (expected {', '.join(TOP_KEYS)})")
    for table in ("problem", "clip"):
        if not isinstance(data.get(table), dict):
            raise _bad(where, table, "a [" + table + "] table is required")
    data = {**data, "problem": _files_here(data["problem"], where)}
    run = _run_table(where, data.get("run", {}), "run")
    full = _run_table(where, data.get("full", {}), "full")
    claims, aliases = _claims(where, data)
    radii = dict(data.get("radii", {}))
    if set(radii) - RADII_KEYS:
        raise _bad(where, "radii", f"expected keys {', '.join(sorted(RADII_KEYS))}")
    options = check_options(dict(data.get("options", {})), claims, where)
    expect = {}
    for claim, verdicts in dict(data.get("expect", {})).items():
        claim = aliases.get(claim, claim)
        verdicts = verdicts if isinstance(verdicts, list) else [verdicts]
        if claim not in claims or not verdicts or any(v not in VERDICTS for v in verdicts):
            raise _bad(where, f"expect.{claim}", f"expected a checked claim and one of "
                                                 f"{', '.join(VERDICTS)} (or a list of them, "
                                                 f"one per row), got {verdicts!r}")
        expect[claim] = tuple(verdicts)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise _bad(where, "name", "a scenario needs a name")
    exit_radii = _number_list(where, "radii.exit", radii.get("exit", []))
    spec = _run_spec(where, data, run, exit_radii, claims)
    _run_spec(where, data, {**run, **full}, exit_radii, claims, "full")  # checked at load time
    sc = Scenario(
        name=name, description=str(data.get("description", "")), run=spec,
        claims=tuple(claims),
        xi_radii=_number_list(where, "radii.xi", radii.get("xi", [])),
        blowup_radius=_one_number(where, "radii.blowup", radii.get("blowup", 1e6)),
        options=options, full=full, expect=expect, source=where)
    from simulations.verify.claims import applicable

    for claim in claims:
        why = applicable(claim, sc)
        if why:
            raise _bad(where, "claims", f"{claim}: {why}")
    return sc


def load_scenario(path: str | Path) -> Scenario:
    """The scenario in the TOML file ``path``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    except RecursionError:  # too deep for the reader itself
        data = None
    if data is None or _depth(data) > MAX_DEPTH:
        raise ValueError(f"{path}: lists or tables nested more than {MAX_DEPTH} deep; a "
                         "scenario needs a few levels")
    return scenario_from_dict(data, str(path), default_name=path.stem)


def suites() -> list[str]:
    """The names of the built-in suites."""
    return sorted(p.name for p in SUITES.iterdir() if p.is_dir())


def load_suite(name: str) -> list[Scenario]:
    """The scenarios of the built-in suite ``name``, in file-name order."""
    folder = SUITES / name
    if not folder.is_dir():
        raise ValueError(f"suite: unknown suite {name!r} (built in: {', '.join(suites())})")
    return [load_scenario(p) for p in sorted(folder.glob("*.toml"))]
