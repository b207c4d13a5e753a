r"""Streaming statistics of a batch of paths, updated once per step, in O(R·P) memory.

Steps count updates: θ(s) is the iterate after s updates, θ(0) the initial point. After each
update s = t + 1 the engine passes a :class:`StepView`, and each observer folds it into its
state (tensors with a leading path axis; nothing is copied to the host).

Observers (each a name in ``record``):

* ``exits``: for each radius M, the first step s with ‖θ(s) − θ(0)‖ > M (``first_exit``) and
  with ‖θ(s)‖ > M (``first_exit_norm``); −1 if none. Strict inequality.
* ``running_max``: max_{s≤T} ‖θ(s) − θ(0)‖ (``max_deviation``) and max_{s≤T} ‖θ(s)‖
  (``max_norm``).
* ``claim2``: max_{t<T} ‖g(t)/c(t)‖ / (1 + ‖θ(t)‖) (``claim2_ratio``), Claim 2's constant on the
  path.
* ``clipped``: the number of steps with c(t) > 1 (``clipped_steps``).
* ``checkpoints``: ‖θ(s)‖ and ‖θ(s) − θ(0)‖ at the steps ``checkpoint_steps`` (about 32
  log-spaced steps in 0..T, always with 0 and T): ``norm_at``, ``deviation_at``.
* ``paths``: the whole paths θ(s), s = 0..T, of paths 0..keep_paths−1 (``path``).
* ``xi``: the martingale ξ(s) = Σ_{t<s} a(t)(g(t)/c(t) − H(θ(t))) of paths 0..xi_paths−1,
  with H the problem's mean field (:mod:`simulations.engine.mean_field`), evaluated in one batched
  call
  per step on all tracked paths (closed form, exact finite sum, or Monte Carlo over common random
  draws, with no host synchronisation): ‖ξ(s)‖ at the checkpoints
  (``xi_norm_at``), max_{s≤T}‖ξ(s)‖ (``xi_max``), sup_{s>t}‖ξ(s) − ξ(t)‖ for t in
  ``xi_anchors`` (:func:`xi_anchor_steps`; ``xi_sup_after``), and Σ_t a(t)²‖M(t+1)‖²
  (``xi_sum_sq``).

Blown-up paths (see :mod:`simulations.engine.run`) count as having exited every radius at their
blow-up step, get running maxima of +inf, and are left out of every other statistic from that
step on (their entries stop changing), so no statistic becomes NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from simulations.engine.catalog import OBSERVERS

__all__ = ["ARRAYS", "OBSERVERS", "ArraySpec", "Observers", "StepView", "array_sizes",
           "checkpoint_steps", "xi_anchor_steps"]



def checkpoint_steps(steps: int, count: int = 32) -> np.ndarray:
    """About ``count`` log-spaced integer steps in [0, steps], with 0 and ``steps``."""
    if steps == 0:
        return np.array([0])
    grid = np.unique(np.round(np.geomspace(1, steps, count - 1)).astype(np.int64))
    return np.concatenate([[0], grid])


def xi_anchor_steps(steps: int) -> np.ndarray:
    """The steps t at which the xi observer takes sup_{s>t}‖ξ(s) − ξ(t)‖: T/16, T/8, T/4, T/2
    (rounded down, duplicates merged)."""
    return np.array(sorted({int(steps * f) for f in (1 / 16, 1 / 8, 1 / 4, 1 / 2)}))


@dataclass
class StepView:
    """What observers see after update s = t + 1 of one chunk of paths."""

    step: int  #: s, the number of updates done
    a: float  #: a(t)
    theta_prev: torch.Tensor  #: θ(t) (R, P)
    theta: torch.Tensor  #: θ(s) (R, P), frozen rows for blown-up paths
    norm_prev: torch.Tensor  #: ‖θ(t)‖ (R,) float64
    norm: torch.Tensor  #: ‖θ(s)‖ (R,) float64
    clip_norm: torch.Tensor  #: ‖g(t)/c(t)‖ (R,) float64
    clip_step: torch.Tensor  #: g(t)/c(t) (R, P)
    clipped: torch.Tensor  #: c(t) > 1 (R,) bool
    alive: torch.Tensor  #: not blown up after this step (R,) bool
    live_before: torch.Tensor  #: not blown up before this step (R,) bool
    newly_blown: torch.Tensor  #: blew up at this step (R,) bool


@dataclass(frozen=True)
class ArraySpec:
    """One array an observer keeps: its name, its shape in symbols (``rows`` the paths of a
    chunk, ``radii``, ``checkpoints``, ``keep`` the kept paths, ``points`` T + 1, ``P``,
    ``xi_rows`` the ξ paths, ``anchors``), its type (``int64``, ``float64``, or ``theta``, the
    run's dtype), its initial fill, and whether the run's result keeps it."""

    name: str
    shape: tuple[str, ...]
    dtype: str = "float64"
    fill: float = 0.0
    kept: bool = True


_ROWS = ("rows",)
#: every observer's arrays: the one declaration that the torch observers, the compiled kernel
#: (:class:`simulations.engine.kernel.ObserverArrays`) and
#: :meth:`~simulations.engine.spec.RunSpec.result_bytes`
#: read
ARRAYS: dict[str, tuple[ArraySpec, ...]] = {
    "exits": (ArraySpec("first_exit", ("rows", "radii"), "int64", -1),
              ArraySpec("first_exit_norm", ("rows", "radii"), "int64", -1)),
    "running_max": (ArraySpec("max_deviation", _ROWS), ArraySpec("max_norm", _ROWS)),
    "claim2": (ArraySpec("claim2_ratio", _ROWS),),
    "clipped": (ArraySpec("clipped_steps", _ROWS, "int64"),),
    "checkpoints": (ArraySpec("norm_at", ("rows", "checkpoints")),
                    ArraySpec("deviation_at", ("rows", "checkpoints"))),
    "paths": (ArraySpec("path", ("keep", "points", "P"), "theta"),),
    "xi": (ArraySpec("xi", ("xi_rows", "P")), ArraySpec("xi_norm_at", ("xi_rows", "checkpoints")),
           ArraySpec("xi_at_anchor", ("xi_rows", "anchors", "P"), kept=False),
           ArraySpec("xi_sup_after", ("xi_rows", "anchors")), ArraySpec("xi_sum_sq", ("xi_rows",)),
           ArraySpec("xi_max", ("xi_rows",))),
}
assert set(ARRAYS) == set(OBSERVERS)


def array_sizes(record: Sequence[str], sizes: dict[str, int]) -> dict[str, int]:
    """The number of entries of each array the observers ``record`` keep, for the symbol values
    ``sizes`` (see :class:`ArraySpec`)."""
    return {spec.name: math.prod(sizes[s] for s in spec.shape)
            for name in record for spec in ARRAYS[name]}


class Observers:
    """The chosen observers' state for one chunk of paths (see the module docstring)."""

    def __init__(
        self,
        record: Sequence[str],
        theta0: torch.Tensor,
        steps: int,
        radii: Sequence[float],
        *,
        keep_paths: int = 4,
        xi_paths: int = 1024,
        mean_field: Callable[[torch.Tensor], torch.Tensor] | None = None,
        first_row: int = 0,
    ):
        unknown = set(record) - set(OBSERVERS)
        if unknown:
            raise ValueError(f"unknown observers {sorted(unknown)}; choose from {OBSERVERS}")
        if "xi" in record and mean_field is None:
            raise ValueError("the xi observer needs the problem's mean field H")
        self.record = tuple(record)
        self.theta0 = theta0
        self.steps = steps
        rows, dev = theta0.shape[0], theta0.device
        f64: dict[str, Any] = dict(dtype=torch.float64, device=dev)
        self.state: dict[str, torch.Tensor] = {}
        s = self.state
        norm0 = torch.linalg.vector_norm(theta0, dim=1, dtype=torch.float64)
        self.radii = torch.tensor(list(radii), **f64)
        self.ck = checkpoint_steps(steps)
        self._ck_index = {int(c): i for i, c in enumerate(self.ck)}
        self.anchors = xi_anchor_steps(steps).tolist()
        self.xi_rows = max(0, min(xi_paths - first_row, rows))
        sizes = {"rows": rows, "radii": len(radii), "checkpoints": len(self.ck),
                 "keep": max(0, min(keep_paths - first_row, rows)), "points": steps + 1,
                 "P": theta0.shape[1], "xi_rows": self.xi_rows, "anchors": len(self.anchors)}
        types = {"int64": torch.int64, "float64": torch.float64, "theta": theta0.dtype}
        for name in self.record:
            for spec in ARRAYS[name]:
                s[spec.name] = torch.full([sizes[k] for k in spec.shape], spec.fill,
                                          dtype=types[spec.dtype], device=dev)
        # the values at s = 0
        if "exits" in record:
            s["first_exit_norm"] = torch.where(norm0[:, None] > self.radii, 0, -1)
        if "running_max" in record:
            s["max_norm"] = norm0.clone()
        if "checkpoints" in record:
            s["norm_at"][:, 0] = norm0
        if "paths" in record:
            s["path"][:, 0] = theta0[:sizes["keep"]]
        if "xi" in record:
            self.mean_field = mean_field

    def update(self, v: StepView) -> None:
        """Fold in the step ``v`` (no host synchronisation)."""
        s, rec = self.state, self.record
        live, newly = v.live_before, v.newly_blown
        need_dev = "exits" in rec or "running_max" in rec or (
            "checkpoints" in rec and v.step in self._ck_index)
        if need_dev:
            dev = torch.linalg.vector_norm(v.theta - self.theta0, dim=1, dtype=torch.float64)
        if "exits" in rec:
            for key, value in (("first_exit", dev), ("first_exit_norm", v.norm)):
                hit = ((value[:, None] > self.radii) & v.alive[:, None]) | newly[:, None]
                s[key] = torch.where((s[key] < 0) & hit, v.step, s[key])
        if "running_max" in rec:
            inf = torch.tensor(torch.inf, dtype=torch.float64, device=dev.device)
            for key, value in (("max_deviation", dev), ("max_norm", v.norm)):
                updated = torch.where(v.alive, torch.maximum(s[key], value), s[key])
                s[key] = torch.where(newly, inf, updated)
        if "claim2" in rec:
            ratio = v.clip_norm / (1.0 + v.norm_prev)
            s["claim2_ratio"] = torch.where(live, torch.fmax(s["claim2_ratio"], ratio),
                                            s["claim2_ratio"])
        if "clipped" in rec:
            s["clipped_steps"] += (v.clipped & live).to(torch.int64)
        ck = self._ck_index.get(v.step)
        if "checkpoints" in rec and ck is not None:
            inf = torch.tensor(torch.inf, dtype=torch.float64, device=v.norm.device)
            s["norm_at"][:, ck] = torch.where(v.alive, v.norm, inf)
            s["deviation_at"][:, ck] = torch.where(v.alive, dev, inf)
        if "paths" in rec:
            keep = s["path"].shape[0]
            s["path"][:, v.step] = v.theta[:keep]
        if "xi" in rec and self.xi_rows:
            self._update_xi(v, ck)

    def _update_xi(self, v: StepView, ck: int | None) -> None:
        s, k = self.state, self.xi_rows
        assert self.mean_field is not None  # the constructor requires it with "xi"
        h = self.mean_field(v.theta_prev[:k]).to(torch.float64)
        m = v.clip_step[:k].to(torch.float64) - h
        live = v.alive[:k, None]
        s["xi"] = torch.where(live, s["xi"] + v.a * m, s["xi"])
        s["xi_sum_sq"] = s["xi_sum_sq"] + torch.where(
            live[:, 0], v.a**2 * m.square().sum(1), 0.0)
        xi_norm = torch.linalg.vector_norm(s["xi"], dim=1)
        s["xi_max"] = torch.maximum(s["xi_max"], xi_norm)
        if ck is not None:
            s["xi_norm_at"][:, ck] = xi_norm
        for i, anchor in enumerate(self.anchors):
            if v.step == anchor:
                s["xi_at_anchor"][:, i] = s["xi"]
            elif v.step > anchor:
                gap = torch.linalg.vector_norm(s["xi"] - s["xi_at_anchor"][:, i], dim=1)
                s["xi_sup_after"][:, i] = torch.maximum(s["xi_sup_after"][:, i], gap)

    def finish(self) -> dict[str, torch.Tensor]:
        """The observers' arrays for this chunk (``xi_at_anchor`` left out)."""
        kept = {spec.name for name in self.record for spec in ARRAYS[name] if spec.kept}
        return {k: v for k, v in self.state.items() if k in kept}
