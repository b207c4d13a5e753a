"""A finished run (:class:`Simulation`): what :func:`simulations.engine.run.simulate` returns and
the store (:mod:`simulations.engine.results`) saves and loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulations.engine.spec import RunSpec
from theory.schedules import Schedule, as_schedule


@dataclass
class Simulation:
    """A finished run: its setting, per-path arrays (numpy, leading axis R) and summaries.

    ``setting`` is the engine's description of the run (problem, rule, schedule, sizes,
    backend: what ``result.json`` records); ``run`` the :class:`~simulations.engine.spec.RunSpec` it
    computed (None for a run saved without one). ``arrays`` holds ``blown_step`` (−1 if the
    path never blew up), ``endpoints`` θ(T), and the observers' arrays (see
    :mod:`simulations.engine.observers`); ``checkpoint_steps`` the steps of the checkpoint columns,
    ``xi_anchors`` the steps t of ``xi_sup_after``.
    """

    setting: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    run: RunSpec | None = None

    @property
    def paths(self) -> int:
        return int(self.setting["paths"])

    @property
    def steps(self) -> int:
        return int(self.setting["steps"])

    def schedule(self) -> Schedule:
        """The run's step schedule a(t) on its horizon (from the spec when it has one)."""
        if self.run is not None:
            return self.run.schedule_obj()
        return as_schedule(self.setting["schedule"], horizon=max(self.steps, 1))

    @property
    def blown_up(self) -> int:
        return int((self.arrays["blown_step"] >= 0).sum())

    def radius_summary(self, key: str = "first_exit") -> list[dict[str, Any]]:
        """Per radius M: ``exit_fraction`` (paths with ‖θ(s) − θ(0)‖ > M for some s ≤ T) and
        ``first_exit_step`` (min, median, max over the paths that exited; None if none did).

        ``key="first_exit_norm"`` gives the same for ‖θ(s)‖ > M.
        """
        out = []
        first = self.arrays.get(key, np.zeros((self.paths, 0), dtype=np.int64))
        for j, radius in enumerate(self.setting["radii"]):
            steps = first[:, j][first[:, j] >= 0]
            out.append({
                "radius": radius,
                "exit_fraction": float(len(steps) / self.paths),
                "exits": int(len(steps)),
                "first_exit_step": None if len(steps) == 0 else {
                    "min": int(steps.min()), "median": float(np.median(steps)),
                    "max": int(steps.max())},
            })
        return out
