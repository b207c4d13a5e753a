r"""How a figure asks for simulations: a :class:`Context` (where results live, quick or full)
and :func:`simulation`, which builds a :class:`~simulations.engine.spec.RunSpec` (through
:meth:`~simulations.engine.spec.RunSpec.from_dict`), runs it once and keeps its arrays, or what
``reduce`` makes of them, in the run store (:class:`~simulations.engine.store.RunStore`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from simulations.engine.cost import run_cost, stand_in
from simulations.engine.problems import Problem
from simulations.engine.rules import ClipRule
from simulations.engine.run import simulate
from simulations.engine.simulation import Simulation
from simulations.engine.spec import Execution, RunSpec
from theory.records import content_key

__all__ = ["Arrays", "Context", "simulation"]

T = TypeVar("T")
Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Context:
    """Where a figure reads and writes: the run ``store``, the output folder ``out``, and
    whether this is the ``quick`` run; with ``plan`` (a list; ``--dry-run``) each run is not
    made but its :class:`~simulations.engine.cost.Cost` is appended there, and the figure is
    drawn from a stand-in of 8 paths (:func:`simulation`;
    :class:`~simulations.engine.cost.PlanStore` for the splitting runs)."""

    store: Any
    out: Path
    quick: bool
    plan: list | None = None

    def size(self, quick: T, full: T) -> T:
        """``quick`` in a quick run, ``full`` otherwise."""
        return quick if self.quick else full


Reduce = Callable[[Simulation, Problem, ClipRule], Arrays]

def simulation(ctx: Context, name: str, *, reduce: Reduce | None = None,
               progress: bool | None = None, **run: Any) -> Arrays:
    """The arrays of the run ``RunSpec.from_dict(run)`` (keys ``problem``, ``clip``,
    ``schedule``, ``paths``, ``steps``, ``seed``, ``record``, ...), or of
    ``reduce(sim, problem, rule)``, computed once per spec (and reduction) and saved in the
    store under the spec's key (with a reduction: the key of the spec's key and
    ``reduce.__qualname__``); ``name`` is the entry's name in the store's index.
    """
    spec = RunSpec.from_dict(run)
    execution = Execution(progress=progress)
    if ctx.plan is not None:  # --dry-run: the cost, and a stand-in to draw from
        ctx.plan.append(run_cost(spec, execution, name))
        spec = stand_in(spec)
        sim = simulate(spec, Execution(progress=False))
        return dict(sim.arrays) if reduce is None else reduce(sim, spec.make_problem(),
                                                              spec.make_rule())
    if reduce is None:
        return dict(ctx.store.run(spec, lambda: simulate(spec, execution), name=name).arrays)

    def compute() -> Arrays:
        return reduce(simulate(spec, execution), spec.make_problem(), spec.make_rule())

    key = content_key({"run": spec.key(), "reduce": reduce.__qualname__})
    return ctx.store.arrays(key, compute, name=name,
                            meta={"run": spec.to_dict(), "reduce": reduce.__qualname__})
