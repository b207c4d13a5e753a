r"""The claims by id: :func:`register` a claim, :func:`get` it back, :func:`resolve` a name a
scenario gives (an id, a module ``pkg.my_claim``, or a file ``./my_claim.py``).

A claim is a module (or any object) that declares::

    ID = "my-claim"                      # the id rows and [expect] tables use
    STATEMENT = "what is claimed"        # one line
    RULES = ("classic",)                 # clip rules it is stated for; None (default): any
    OBSERVERS = ("running_max",)         # engine observers it reads (simulations.engine.observers)
    OPTIONS = {"my_delta": 0.05}         # [options] keys it takes, with their defaults
    def applicable(scenario): ...        # optional: None, or why it cannot be checked
    def check(ctx): ...                  # -> list[ClaimResult]; ctx is a claims.Context

The built-in claims are such modules (``l1_det.py``, ``t1.py``, ...). The keys of a scenario's
``[options]`` table are the ``OPTIONS`` of the claims it checks, and ``ctx.opt(key)`` reads one
with the claim's default.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from simulations.engine.data import failure, load_file
from simulations.engine.observers import OBSERVERS
from simulations.engine.rules import RULES

__all__ = ["Claim", "applicable", "check_options", "get", "ids", "observers_for", "register",
           "resolve", "unregister"]

_REGISTRY: dict[str, Claim] = {}


@dataclass(frozen=True)
class Claim:
    """A claim's declaration (see the module docstring); ``source`` says where it came from
    (a module name, a file, or a ``[[bound]]`` table), so that registering the same one twice
    is harmless and a different one under a taken id is refused."""

    id: str
    statement: str
    check: Callable[[Any], list]
    rules: tuple[str, ...] | None = None
    observers: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    needs: Callable[[Any], str | None] | None = None
    source: str = ""

    def __post_init__(self):
        where = f"claim {self.source or self.id!r}"
        if not isinstance(self.id, str) or not re.fullmatch(r"[A-Za-z0-9][\w.\-]*", self.id):
            raise ValueError(f"{where}: ID must be a non-empty name of letters, digits, "
                             f"'_', '-', '.', got {self.id!r}")
        if not isinstance(self.statement, str) or not self.statement:
            raise ValueError(f"{where}: STATEMENT must be a non-empty string")
        if not callable(self.check):
            raise ValueError(f"{where}: check must be a function check(ctx) -> list")
        if self.rules is not None and (isinstance(self.rules, str) or
                                       any(r not in RULES for r in self.rules)):
            raise ValueError(f"{where}: RULES must be None or a tuple of {', '.join(RULES)}, "
                             f"got {self.rules!r}")
        if isinstance(self.observers, str) or any(o not in OBSERVERS for o in self.observers):
            raise ValueError(f"{where}: OBSERVERS must be a tuple of {', '.join(OBSERVERS)}, "
                             f"got {self.observers!r}")
        if not isinstance(self.options, Mapping) or not all(
                isinstance(k, str) and k.isidentifier() for k in self.options):
            raise ValueError(f"{where}: OPTIONS must be a dict of option names to defaults")

    @classmethod
    def from_module(cls, module: ModuleType | Any, source: str | None = None) -> Claim:
        """The claim a module (or object) declares with ``ID``, ``STATEMENT``, ``check`` and
        optionally ``RULES``, ``OBSERVERS``, ``OPTIONS`` and ``applicable``."""
        name = str(source or getattr(module, "__name__", repr(module)))
        missing = [a for a in ("ID", "STATEMENT", "check") if not hasattr(module, a)]
        if missing:
            raise ValueError(f"claim {name!r}: missing {', '.join(missing)} (a claim module "
                             f"declares ID, STATEMENT, RULES, OBSERVERS, OPTIONS and check)")
        rules = getattr(module, "RULES", None)
        return cls(id=module.ID, statement=module.STATEMENT, check=module.check,
                   rules=None if rules is None else tuple(rules),
                   observers=tuple(getattr(module, "OBSERVERS", ())),
                   options=dict(getattr(module, "OPTIONS", {})),
                   needs=getattr(module, "applicable", None), source=name)

    def applicable(self, scenario) -> str | None:
        """None when the claim can be checked on ``scenario``, else why not."""
        rule = scenario.clip["rule"]
        if self.rules is not None and rule not in self.rules:
            return f"stated for {' or '.join(self.rules)} clipping, not {rule}"
        return None if self.needs is None else self.needs(scenario)

    def to_dict(self) -> dict[str, Any]:
        """The declaration as JSON-ready values (without the functions)."""
        return {"id": self.id, "statement": self.statement,
                "rules": None if self.rules is None else list(self.rules),
                "observers": list(self.observers), "options": dict(self.options),
                "source": self.source}

    def describe(self) -> str:
        """One line: the id, the statement, the rules, observers and options."""
        rules = "any rule" if self.rules is None else "/".join(self.rules)
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items()) or "no options"
        return (f"{self.id}: {self.statement} [{rules}; observers "
                f"{', '.join(self.observers) or 'none'}; {opts}]")


def register(claim: Claim | ModuleType | Any) -> Claim:
    """Add a claim (a :class:`Claim`, or a module declaring one) to the registry and return
    it. Registering the same claim again returns the one registered; another claim with a taken
    id raises ``ValueError``."""
    if not isinstance(claim, Claim):
        claim = Claim.from_module(claim)
    old = _REGISTRY.get(claim.id)
    if old is not None:
        if old.source == claim.source:
            return old
        raise ValueError(f"claim {claim.id!r} is already defined (by {old.source}); "
                         f"{claim.source} defines it differently")
    _REGISTRY[claim.id] = claim
    return claim


def unregister(claim_id: str) -> None:
    """Remove a claim from the registry (nothing if it is not there)."""
    _REGISTRY.pop(claim_id, None)


def ids() -> tuple[str, ...]:
    """The ids of every registered claim, in registration order."""
    return tuple(_REGISTRY)


def get(claim_id: str) -> Claim:
    """The registered claim ``claim_id``; ``ValueError`` naming the known ids otherwise."""
    try:
        return _REGISTRY[claim_id]
    except (KeyError, TypeError):
        raise ValueError(f"unknown claim {claim_id!r} (expected one of {', '.join(_REGISTRY)}, "
                         f"a module such as mypkg.my_claim or a file ./my_claim.py)") from None


def resolve(name: str, base: str | Path | None = None) -> Claim:
    """The claim a scenario names: a registered id; a file ``*.py`` (relative to the folder of
    the file ``base``, else the working directory), or a module ``pkg.mod`` on the import path,
    either declaring a claim (registered on the way)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a claim is named by a non-empty string, got {name!r}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.endswith(".py") or "/" in name or "\\" in name:
        path = Path(name)
        if not path.is_absolute():
            folder = Path(base).parent if base is not None and Path(base).is_file() else Path()
            path = folder / path
        path = path.resolve()
        if not path.is_file():
            raise ValueError(f"claim file {name!r}: no such file ({path})")
        try:
            module, source = load_file(path, "clipverify_claim"), str(path)
        except Exception as error:  # a user's file: say what it raised, in one line
            raise ValueError(f"claim file {name!r}: {failure(error)}") from None
    elif re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", name):
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            raise ValueError(f"claim module {name!r}: cannot import it: {error}") from None
        except Exception as error:  # a user's module: say what it raised, in one line
            raise ValueError(f"claim module {name!r}: {failure(error)}") from None
        source = name
    else:
        get(name)  # raises the error naming the known ids
    return register(Claim.from_module(module, source))


def applicable(claim_id: str, scenario) -> str | None:
    """None when claim ``claim_id`` can be checked on ``scenario``, else why not."""
    return get(claim_id).applicable(scenario)


def observers_for(claims: Iterable[str]) -> tuple[str, ...]:
    """The engine observers the claims need (``exits`` is always recorded), in engine order."""
    names = {"exits"}
    for claim in claims:
        names.update(get(claim).observers)
    return tuple(o for o in OBSERVERS if o in names)


def _same_kind(value: Any, default: Any) -> bool:
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return number(value)
    if isinstance(default, (list, tuple)):
        return isinstance(value, list) and all(number(v) for v in value)
    return isinstance(value, type(default))


def check_options(options: Mapping[str, Any], claims: Iterable[str],
                  where: str = "scenario") -> dict[str, Any]:
    """``options`` checked against the ``OPTIONS`` the claims declare: every key must be one of
    them and of the kind of its default (an integer, a number, a list of numbers, ...)."""
    declared: dict[str, tuple[str, Any]] = {}
    for claim in claims:
        for key, default in get(claim).options.items():
            declared.setdefault(key, (claim, default))
    for key, value in options.items():
        if key not in declared:
            raise ValueError(f"{where}: options.{key}: unknown option (the claims checked take "
                             f"{', '.join(sorted(declared)) or 'none'})")
        claim, default = declared[key]
        if not _same_kind(value, default):
            raise ValueError(f"{where}: options.{key}: expected a value like {claim}'s default "
                             f"{default!r}, got {value!r}")
    return dict(options)
