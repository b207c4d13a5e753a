r"""How a figure asks for simulations: a :class:`Context` (where results live, quick or full)
and :func:`simulation`, which runs :func:`simulations.engine.simulate` once per setting and
keeps its (reduced) arrays in the :class:`~paper_figs.store.Store`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from paper_figs.store import Arrays, Store
from simulations.engine import Simulation, simulate
from simulations.problems import Problem, make_problem
from simulations.rules import ClipRule

__all__ = ["Context", "simulation"]

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """Where a figure reads and writes: the result ``store``, the output folder ``out``, and
    whether this is the ``quick`` run."""

    store: Store
    out: Path
    quick: bool

    def size(self, quick: T, full: T) -> T:
        """``quick`` in a quick run, ``full`` otherwise."""
        return quick if self.quick else full


Reduce = Callable[[Simulation, Problem, ClipRule], Arrays]


def simulation(ctx: Context, name: str, *, problem: dict[str, Any], rule: dict[str, Any],
               schedule: str, reduce: Reduce | None = None, **options: Any) -> Arrays:
    """The arrays of ``simulate(make_problem(**problem), ClipRule(**rule), schedule,
    **options)`` (or of ``reduce(sim, problem, rule)``), computed once per setting.

    ``problem`` holds ``name`` and the problem's parameters; ``options`` the engine's keyword
    arguments (``paths``, ``steps``, ``seed``, ``record``, ...), all JSON-ready.
    """
    setting = {"problem": problem, "rule": rule, "schedule": schedule, "options": options,
               "reduce": None if reduce is None else reduce.__qualname__}

    def compute() -> Arrays:
        spec = copy.deepcopy(problem)
        made = make_problem(spec.pop("name"), **spec)
        clip = ClipRule(**rule)
        sim = simulate(made, clip, schedule, **options)
        if reduce is None:
            return {k: np.asarray(v) for k, v in sim.arrays.items()}
        return reduce(sim, made, clip)

    return ctx.store.get(name, setting, compute)
