r"""What a run computes (:class:`RunSpec`: a :class:`Chain` and a sample of its paths) and how
it is executed (:class:`Execution`).

A :class:`Chain` is a value: the Markov chain of clipped SGD, that is the problem of the catalog
with its parameters, the clip rule, the step schedule, the horizon (steps T), the minibatch B,
the seed, the floating-point type and the blow-up guard. A :class:`RunSpec` is a value too: a
chain and the Monte Carlo sample drawn from it (paths R, and what is recorded: observers, exit
radii, kept paths, ξ paths); the chain's fields read through it (``run.steps``). Two specs
with the same content compute bit-identical arrays (on the default float64 path), so
:meth:`RunSpec.key` (a hash of the content) names a run in the store
(:mod:`simulations.engine.store`).
An :class:`Execution` says only how: device, chunk size, backend, compilation, checkpoints,
progress, threads; it never changes the draws.

:meth:`RunSpec.from_dict` is the one place where every default lives and every key is checked.
Every caller (scenario files, the command line, the figure scripts, tests) builds its runs
through it; a bad key or value raises :class:`~theory.errors.BadArgument` naming it (the
caller's own name for it through ``names``, e.g. ``run.paths`` in a TOML scenario). The
canonical form :meth:`RunSpec.to_dict` reads back through :meth:`RunSpec.from_dict` unchanged::

    {"problem": {"name": "quadratic", "noise": "normal", ...}, "clip": {"rule": "classic",
     "lam": 1.0}, "schedule": "1/(t+1)", "paths": 1000, "steps": 1000, "batch": 1, "seed": 0,
     "dtype": "float64", "guard": null, "record": ["exits", ...], "radii": [2.0],
     "keep_paths": 8, "xi_paths": 1024}

:meth:`Chain.from_dict` checks the chain's keys (:data:`CHAIN_KEYS`) with these same defaults
and errors (:meth:`RunSpec.from_dict` hands them on to it), and :meth:`Chain.to_dict` is the
dict above without the sample's keys (:data:`SAMPLE_KEYS`).

``guard`` null means the dtype's default (:data:`simulations.engine.run.DEFAULT_GUARD`);
``record`` is kept in the order of :data:`simulations.engine.observers.OBSERVERS`, and
``keep_paths``
is 0 when the ``paths`` observer is not recorded, so that one computation has one key. For the
same reason every problem and clip parameter is coerced to the type its owner declares
(:mod:`simulations.engine.params`: ``mean = 100`` is 100.0, ``n = 1e3`` is 1000, ``n = 10.5`` is
refused), a parameter given as None is left out (the owner's default), and a parameter the
problem, its law or the rule does not take is refused.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulations.engine.catalog import OBSERVERS
from theory.errors import BadArgument, integer, number, positive, require_memory
from theory.records import content_key

__all__ = ["CHAIN_KEYS", "DEFAULTS", "DEFAULT_RECORD", "SAMPLE_KEYS", "Chain", "Execution",
           "Frozen", "RunSpec"]

#: observers recorded unless told otherwise
DEFAULT_RECORD = ("exits", "running_max", "claim2", "clipped", "checkpoints", "paths")
#: every optional key of :meth:`RunSpec.from_dict` with its default
DEFAULTS: dict[str, Any] = {"batch": 1, "seed": 0, "dtype": "float64", "guard": None,
                            "record": DEFAULT_RECORD, "radii": (), "keep_paths": 8,
                            "xi_paths": 1024}
REQUIRED = ("problem", "clip", "schedule", "paths", "steps")
#: integer keys and their lowest (and highest, exclusive) values
INTEGERS = {"paths": (1, None), "steps": (0, 2**32), "batch": (1, 2**31), "seed": (0, 2**63),
            "keep_paths": (0, None), "xi_paths": (1, None)}
DTYPES = ("float64", "float32")


def _freeze(value: Any) -> Any:
    """``value`` as a hashable, JSON-ready value (lists, tuples and arrays as tuples)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"expected numbers, strings or lists of them, got {value!r}")


def _thaw(value: Any) -> Any:
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


class Frozen(Mapping):
    """A read-only, hashable mapping of str to frozen values (see :func:`_freeze`)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any]):
        self._items = {str(k): _freeze(v) for k, v in items.items()}

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._items.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    def __repr__(self) -> str:
        return f"Frozen({self._items!r})"

    def thaw(self) -> dict[str, Any]:
        """A plain dict with lists in place of tuples."""
        return {k: _thaw(v) for k, v in self._items.items()}


@functools.lru_cache(maxsize=64)
def _problem(spec: Frozen):
    from simulations.engine.problems import make_problem

    params = dict(spec)
    params.pop(DIGEST, None)
    return make_problem(params.pop("name"), **params)


#: the keys of :class:`Chain` (what defines the Markov chain) and of the Monte Carlo sample
CHAIN_KEYS = ("problem", "clip", "schedule", "steps", "batch", "seed", "dtype", "guard")
SAMPLE_KEYS = ("paths", "record", "radii", "keep_paths", "xi_paths")


def _checked_keys(table: str, data: Any, required: tuple[str, ...], known: tuple[str, ...],
                  name: Callable[[str], str]) -> dict[str, Any]:
    """``data`` with the defaults of :data:`DEFAULTS` filled in, after refusing a value that is
    not a table (naming it ``table``), an unknown key and a missing required one."""
    if not isinstance(data, Mapping):
        raise BadArgument(table, f"expected a table of settings, got {data!r}")
    for key in data:
        if key not in known:
            raise BadArgument(name(key), f"unknown key (expected one of {', '.join(known)})")
    for key in required:
        if key not in data:
            raise BadArgument(name(key), "required")
    return {**{k: DEFAULTS[k] for k in known if k in DEFAULTS}, **data}


@dataclass(frozen=True)
class Chain:
    """The Markov chain of clipped SGD: the problem of the catalog with its parameters, the clip
    rule, the step schedule, the horizon T (``steps``), the minibatch B, the seed, the
    floating-point type and the blow-up guard. Everything a path's numbers depend on, and
    nothing about how many paths are drawn or what is recorded of them (:class:`RunSpec`) or
    how a rare event is estimated (:class:`simulations.engine.rare.Splitting`). Build it with
    :meth:`from_dict`; its keys, defaults and checks are those of :meth:`RunSpec.from_dict`."""

    problem: Frozen
    clip: Frozen
    schedule: str | tuple[float, ...]
    steps: int
    batch: int = 1
    seed: int = 0
    dtype: str = "float64"
    guard: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *,
                  names: Mapping[str, str] | None = None) -> Chain:
        """A checked chain from ``data`` (the keys :data:`CHAIN_KEYS`; ``batch``, ``seed``,
        ``dtype`` and ``guard`` default to :data:`DEFAULTS`). ``names``: what the caller calls
        each key, for the errors. Raises :class:`~theory.errors.BadArgument` naming the
        key (problem and clip parameters as ``problem.<param>`` and ``clip.<key>``)."""
        name = _namer(names)
        values = _checked_keys("chain", data, ("problem", "clip", "schedule", "steps"), CHAIN_KEYS,
                               name)
        out: dict[str, Any] = {}
        for key in ("steps", "batch", "seed"):
            lowest, highest = INTEGERS[key]
            out[key] = _integer(values[key], name(key), lowest, highest)
        dtype = values["dtype"]
        dtype = str(dtype).removeprefix("torch.") if not isinstance(dtype, str) else dtype
        if dtype not in DTYPES:
            raise BadArgument(name("dtype"), f"expected float64 or float32, got {dtype!r}")
        out["dtype"] = dtype
        guard = values["guard"]
        if guard is not None:
            guard = number(guard, name("guard"))
            if guard <= 0:
                raise BadArgument(name("guard"), f"expected a number > 0, got {guard!r}")
        out["guard"] = guard
        out["schedule"] = _schedule_value(values["schedule"], out["steps"], name("schedule"))
        out["clip"] = _clip(values["clip"], name("clip"))
        out["problem"] = _problem_spec(values["problem"], name("problem"))
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        """The chain as JSON-ready values; ``from_dict(chain.to_dict()) == chain``."""
        return {"problem": self.problem.thaw(), "clip": self.clip.thaw(),
                "schedule": (self.schedule if isinstance(self.schedule, str)
                             else list(self.schedule)),
                "steps": self.steps, "batch": self.batch, "seed": self.seed,
                "dtype": self.dtype, "guard": self.guard}

    def key(self) -> str:
        """:func:`content_key` of :meth:`to_dict`."""
        return content_key(self.to_dict())

    def make_problem(self):
        """The :class:`~simulations.engine.problems.Problem` (built once per chain and shared)."""
        return _problem(self.problem)

    def make_rule(self):
        """The :class:`~simulations.engine.rules.ClipRule`."""
        from simulations.engine.rules import ClipRule

        params = dict(self.clip)
        return ClipRule(params.pop("rule"), **params)

    def schedule_obj(self):
        """The :class:`~theory.schedules.Schedule` a(t) on the horizon ``steps``."""
        from theory.schedules import as_schedule

        spec = self.schedule if isinstance(self.schedule, str) else np.array(self.schedule)
        return as_schedule(spec, horizon=max(self.steps, 1))

    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


@dataclass(frozen=True)
class RunSpec:
    """What a run computes: its :class:`Chain` and the Monte Carlo sample drawn from it (paths
    R and what is recorded of them); build it with :meth:`from_dict` (see the module
    docstring). The chain's fields read through (``run.steps``, ``run.problem``, ...)."""

    chain: Chain
    paths: int
    record: tuple[str, ...] = DEFAULT_RECORD
    radii: tuple[float, ...] = ()
    keep_paths: int = 8
    xi_paths: int = 1024

    # ---- the one way in ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *,
                  names: Mapping[str, str] | None = None) -> RunSpec:
        """A checked spec from ``data`` (keys as in :meth:`to_dict`; the optional ones default
        to :data:`DEFAULTS`). ``names``: what the caller calls each key, for the errors.

        The problem's parameters are coerced to their declared types and the declared defaults
        of those left out are filled in, so that two spellings of one run (``mean = 100`` and
        ``100.0``, a default left out or written) give one spec and one :meth:`key`.

        Raises :class:`~theory.errors.BadArgument` naming the key (problem and clip
        parameters as ``problem.<param>`` and ``clip.<key>``).
        """
        name = _namer(names)
        values = _checked_keys("run", data, REQUIRED, (*REQUIRED, *DEFAULTS), name)
        out: dict[str, Any] = {}
        for key in ("paths", "keep_paths", "xi_paths"):
            lowest, highest = INTEGERS[key]
            out[key] = _integer(values[key], name(key), lowest, highest)
        out["chain"] = Chain.from_dict({k: values[k] for k in CHAIN_KEYS}, names=names)
        out["record"] = _record(values["record"], name("record"))
        if "paths" not in out["record"]:
            out["keep_paths"] = 0  # nothing kept: one spec (and key) for the same numbers
        radii = values["radii"]
        radii = list(radii) if isinstance(radii, (list, tuple, np.ndarray)) else [radii]
        out["radii"] = tuple(positive(r, name("radii")) for r in radii)
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready values; ``from_dict(spec.to_dict()) == spec``."""
        chain = self.chain.to_dict()
        return {**{k: chain[k] for k in ("problem", "clip", "schedule")}, "paths": self.paths,
                **{k: chain[k] for k in ("steps", "batch", "seed", "dtype", "guard")},
                "record": list(self.record), "radii": list(self.radii),
                "keep_paths": self.keep_paths, "xi_paths": self.xi_paths}

    def replace(self, **changes: Any) -> RunSpec:
        """This spec with ``changes`` (checked like :meth:`from_dict`)."""
        return RunSpec.from_dict({**self.to_dict(), **changes})

    def key(self) -> str:
        """The run's name in the store: :func:`content_key` of :meth:`to_dict`."""
        return content_key(self.to_dict())

    # ---- the chain's fields and the objects it names ----------------------------------------
    problem = property(lambda self: self.chain.problem)
    clip = property(lambda self: self.chain.clip)
    schedule = property(lambda self: self.chain.schedule)
    steps = property(lambda self: self.chain.steps)
    batch = property(lambda self: self.chain.batch)
    seed = property(lambda self: self.chain.seed)
    dtype = property(lambda self: self.chain.dtype)
    guard = property(lambda self: self.chain.guard)

    def make_problem(self):
        """The :class:`~simulations.engine.problems.Problem` (built once per chain and shared)."""
        return self.chain.make_problem()

    def make_rule(self):
        """The :class:`~simulations.engine.rules.ClipRule`."""
        return self.chain.make_rule()

    def schedule_obj(self):
        """The :class:`~theory.schedules.Schedule` a(t) on the horizon ``steps``."""
        return self.chain.schedule_obj()

    def torch_dtype(self):
        return self.chain.torch_dtype()

    def result_bytes(self, n_params: int) -> dict[str, int]:
        """Bytes of the arrays a run keeps (the engine holds them twice while it joins the
        chunks), from the observers' declarations (:data:`simulations.engine.observers.ARRAYS`): per
        path θ(T), the blow-up step and the recorded observers' numbers (``paths``), the kept
        paths keep·(T+1)·P (``keep_paths``), and ξ's arrays on the ξ paths (``xi_paths``)."""
        from simulations.engine.observers import ARRAYS, checkpoint_steps, xi_anchor_steps

        item = 8 if self.dtype == "float64" else 4
        sizes = {"rows": self.paths, "radii": len(self.radii),
                 "checkpoints": len(checkpoint_steps(self.steps)),
                 "keep": min(self.keep_paths, self.paths), "points": self.steps + 1,
                 "P": n_params, "xi_rows": min(self.xi_paths, self.paths),
                 "anchors": len(xi_anchor_steps(self.steps))}
        out = {"paths": self.paths * (item * n_params + 8), "keep_paths": 0, "xi_paths": 0}
        for name in self.record:
            for spec in ARRAYS[name]:
                part = {"keep": "keep_paths", "xi_rows": "xi_paths"}.get(spec.shape[0], "paths")
                out[part] += (item if spec.dtype == "theta" else 8) * math.prod(
                    sizes[s] for s in spec.shape)
        return out

    def memory_bytes(self, n_params: int) -> int:
        """Bytes of the run's arrays at their peak: twice :meth:`result_bytes` (the chunks'
        and the joined arrays), and the schedule a(t) with its index t (16 bytes a step)."""
        return 2 * sum(self.result_bytes(n_params).values()) + 16 * self.steps

    def check_memory(self, n_params: int, available: int | None = None) -> None:
        """Refuse, naming the key that costs most, a run whose arrays would not fit in
        ``available`` bytes (default: this machine's memory): :meth:`memory_bytes`."""
        parts = {**self.result_bytes(n_params), "steps": 16 * self.steps}
        worst = max(parts, key=parts.__getitem__)
        require_memory(worst, self.memory_bytes(n_params),
                       f"this run's arrays ({worst} = {getattr(self, worst)}, P = {n_params}, "
                       f"T = {self.steps})", available)


@dataclass(frozen=True)
class Execution:
    """How a run is executed; changes nothing in its results (bit-identical in float64).

    ``device``: a torch device; ``chunk_size``: paths per chunk (None: sized to a memory
    budget); ``backend``: ``auto``, ``torch`` or ``compiled``; ``compile``: torch.compile the
    step; ``checkpoint_dir``/``checkpoint_every``/``resume``: save the state every so many
    steps and continue from it; ``progress``: None a bar on a terminal and a line every few
    seconds elsewhere (none after ``--quiet``), True a bar, False nothing
    (:mod:`simulations.engine.progress`);
    ``replica_chunk``: the replicas of :func:`simulations.engine.rare.ams` run together (None: all).
    :func:`~simulations.engine.rare.ams` reads ``device``, ``backend``, ``compile``,
    ``replica_chunk``, ``progress`` and ``threads``.
    ``threads``: CPU threads of torch, numba and BLAS
    (:func:`simulations.engine.threads.use_threads`;
    None: :func:`~simulations.engine.threads.default_threads`, every CPU the process may use unless
    the command line's ``--threads`` said otherwise). The thread count enters no result and no
    key.
    """

    device: Any = "cpu"
    chunk_size: int | None = None
    backend: str = "auto"
    compile: bool = False
    checkpoint_dir: str | os.PathLike | None = None
    checkpoint_every: int = 1000
    resume: bool = False
    progress: bool | None = None
    replica_chunk: int | None = None
    threads: int | None = None

    def __post_init__(self):
        if self.backend not in ("auto", "torch", "compiled"):
            raise BadArgument("backend", f"must be 'auto', 'torch' or 'compiled', got "
                                         f"{self.backend!r}")
        if self.chunk_size is not None:
            _integer(self.chunk_size, "chunk_size", 1, None)
        if self.replica_chunk is not None:
            _integer(self.replica_chunk, "replica_chunk", 1, None)
        _integer(self.checkpoint_every, "checkpoint_every", 1, None)
        if self.threads is not None:
            object.__setattr__(self, "threads", _integer(self.threads, "threads", 1, None))
        if self.checkpoint_dir is not None:
            object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir))


# ---- checks -------------------------------------------------------------------------------------

def _namer(names: Mapping[str, str] | None) -> Callable[[str], str]:
    """The caller's name of each key (the key itself where ``names`` has none)."""
    names = dict(names or {})
    return lambda key: names.get(key, key)


def _integer(value: Any, name: str, lowest: int, highest: int | None) -> int:
    return integer(value, name, lowest, highest)


def _record(value: Any, name: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or any(not isinstance(v, str) for v in items):
        raise BadArgument(name, f"expected a list of observers from {', '.join(OBSERVERS)}, "
                                f"got {value!r}")
    items = [v.strip() for v in items if v.strip()]
    unknown = [v for v in items if v not in OBSERVERS]
    if unknown:
        raise BadArgument(name, f"unknown observer {unknown[0]!r} (expected observers from "
                                f"{', '.join(OBSERVERS)})")
    return tuple(o for o in OBSERVERS if o in items)  # one canonical order


def _schedule_value(value: Any, steps: int, name: str) -> str | tuple[float, ...]:
    """The schedule as the spec keeps it: an expression's text (checked by parsing it), or, for
    values given as an array, a sequence or a Python callable (or a Schedule built from them),
    the float64 values a(0), …, a(T−1) on the horizon T = max(steps, 1) as a tuple."""
    from theory.schedules import Schedule, as_schedule

    horizon = max(steps, 1)
    if isinstance(value, Schedule) and getattr(value, "expression", None) is not None:
        value = value.source
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, (Schedule, list, tuple, np.ndarray)) or callable(value):
        try:
            schedule = as_schedule(value, horizon=horizon)
            values = np.asarray(schedule(np.arange(horizon)), dtype=np.float64)
        except ValueError as error:
            raise BadArgument(name, str(error).removeprefix("schedule: ")) from None
        return tuple(float(v) for v in values)
    else:
        raise BadArgument(name, f"expected an expression in t, a number, values or a callable, "
                                f"got {value!r}")
    try:
        as_schedule(text, horizon=horizon)
    except ValueError as error:
        raise BadArgument(name, str(error).removeprefix("schedule: ")) from None
    return text


def _clip(value: Any, name: str) -> Frozen:
    from simulations.engine.rules import PARAMS, RULES, ClipRule

    keys = ("rule", *(p.name for p in PARAMS))
    if not isinstance(value, Mapping):
        raise BadArgument(name, f"expected a table with keys {', '.join(keys)}, got {value!r}")
    for key in value:
        if key not in keys:
            raise BadArgument(f"{name}.{key}", f"unknown key (expected one of {', '.join(keys)})")
    rule = value.get("rule")
    if rule not in RULES:
        raise BadArgument(f"{name}.rule", f"required: one of {', '.join(RULES)}, got {rule!r}")
    params = {p.name: p.coerce(value[p.name], f"{name}.{p.name}") for p in PARAMS
              if value.get(p.name) is not None}
    try:
        ClipRule(rule, **params)
    except BadArgument as error:
        raise error.renamed(f"{name}.{error.param}") from None
    return Frozen({"rule": rule, **params})


def _problem_spec(value: Any, name: str) -> Frozen:
    from simulations.engine.problems import PROBLEMS, check_params, problem_params

    if not isinstance(value, Mapping):
        raise BadArgument(name, f"expected a table with a name and parameters, got {value!r}")
    problem = value.get("name", "module" if "module" in value else None)
    if problem not in PROBLEMS:
        raise BadArgument(f"{name}.name", f"expected one of {', '.join(PROBLEMS)}, "
                                          f"got {problem!r}")
    params = {k: v for k, v in value.items() if k not in ("name", DIGEST) and v is not None}
    declared = {p.name: p for p in problem_params(problem)}
    try:
        check_params(problem, params)
        params = {k: declared[k].coerce(v, k) for k, v in params.items()}
        params = {**_defaults(problem, params, declared.values()), **_own_data(params)}
        params = {k: declared[k].coerce(v, k) for k, v in params.items()}
        spec = Frozen({"name": problem, **params, **_digest(params)})
        _problem(spec)
    except BadArgument as error:
        raise error.renamed(f"{name}.{error.param}") from None
    except (TypeError, ValueError) as error:
        raise BadArgument(name, str(error)) from None
    return spec


def _defaults(problem: str, given: Mapping[str, Any], declared: Iterable[Any]) -> dict[str, Any]:
    """The declared defaults of the parameters not ``given`` (those with one; for the quadratic
    only those its law takes; with a dataset or a data file not those of the generated data,
    :data:`simulations.engine.catalog.GENERATED`, nor the generated ``dataset``), so that a spec
    that leaves a parameter out and one that spells out its default are one run with one
    key."""
    from simulations.engine.catalog import GENERATED
    from simulations.engine.problems import LAWS, NOISE

    law = LAWS.get(given.get("noise", NOISE.default), ()) if problem == "quadratic" else ()
    laws = {p.name for params in LAWS.values() for p in params}
    skip = (*GENERATED, "dataset") if _owns_data(given) else ()
    return {p.name: p.default for p in declared
            if p.default is not None and p.name not in given and p.name not in skip
            and (p.name not in laws or any(q.name == p.name for q in law))}


#: the problem key holding the SHA-256 of a data file or a module (filled in, never given)
DIGEST = "file_sha256"


def _owns_data(params: Mapping[str, Any]) -> bool:
    """Whether ``params`` name a data file or one of scikit-learn's datasets."""
    from simulations.engine.data import SKLEARN

    return "data" in params or params.get("dataset") in SKLEARN


def _own_data(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with a data file's or module's path made absolute and, with a dataset or
    data file, ``standardize`` spelt out (true unless given); refuses a parameter of the
    generated data (:data:`simulations.engine.catalog.GENERATED`) next to a dataset or a data
    file."""
    from simulations.engine.catalog import GENERATED
    from simulations.engine.data import resolve

    out = dict(params)
    for key in ("data", "module"):
        if key in out:
            out[key] = resolve(out[key])
    if _owns_data(out):
        for key in GENERATED:
            if key in out:
                raise BadArgument(key, "describes generated data; a dataset or a data file "
                                       "brings its own (leave it out)")
        out.setdefault("standardize", True)
    return out


def _digest(params: Mapping[str, Any]) -> dict[str, str]:
    """{DIGEST: the SHA-256 of the data file or module the problem reads} (nothing else), so
    that a changed file makes a new run with a new key."""
    from simulations.engine.data import file_digest

    files = [k for k in ("data", "module") if k in params]
    return {DIGEST: file_digest(params[files[0]], files[0])} if files else {}


