r"""Figure 6: Lemma 3, the martingale part settles: sup_{t<s≤T} ‖ξ(s) − ξ(t)‖ against t.

ξ(s) = Σ_{u<s} a(u)(g(u)/c(u) − H(θ(u))) on the skewed quadratic ½(θ − y)², y = 0 w.p. 0.9 or
10 w.p. 0.1, θ(0) = 0, classic clipping λ = 1, a(t) = 1/(t+1) (H exact). The ``xi`` observer
measures the sup at t = T/16, T/8, T/4, T/2; several horizons T give more t. Shown: the median
and the root mean square over the paths, with Doob's L² bound for the increments
‖a(u)M(u+1)‖ ≤ 2λa(u):

    √E[sup_{t<s≤T} ‖ξ(s) − ξ(t)‖²] ≤ 2·√E‖ξ(T) − ξ(t)‖² ≤ 4λ·√(Σ_{t≤u<T} a(u)²),

which is at most 4λ·√(Σ_{u≥t} a(u)²) ≈ 4λ/√t → 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.runs import Context, simulation
from simulations.engine.simulation import Simulation
from simulations.verify.scenarios import Scenario
from theory.schedules import as_schedule

NAME = "fig6_lemma3"
LAM = 1.0
SCHEDULE = "1/(t+1)"
PROBLEM = {"name": "quadratic", "noise": "discrete", "values": [0.0, 10.0], "probs": [0.9, 0.1]}
ANCHORS = (1 / 16, 1 / 8, 1 / 4, 1 / 2)  #: the xi observer's anchors, as fractions of T


CLAIMS = ("L3",)


def doob_bound(t: int, horizon: int | None, lam: float = LAM, schedule: str = SCHEDULE) -> float:
    """4λ·√(Σ_{t≤u<T} a(u)²) (T = ∞ when ``horizon`` is None)."""
    a = as_schedule(schedule)
    tail = a.partial_sum(horizon, 2) - a.partial_sum(t, 2)
    return 4.0 * lam * float(np.sqrt(tail))


def draw_sup(ax: Axes, horizon: int, anchors: np.ndarray, sup: np.ndarray, colour: str,
             bound: np.ndarray | None, **columns: Any) -> Rows:
    """Plot the RMS and the median over the paths of sup_{t<s≤T} ‖ξ(s) − ξ(t)‖ (``sup``:
    paths × anchors) at the ``anchors`` t; the rows ``T={horizon}`` (with p90 and ``bound``)."""
    median, rms = np.median(sup, axis=0), np.sqrt(np.mean(sup**2, axis=0))
    ax.plot(anchors, rms, "o-", color=colour, ms=3, label=f"T = {horizon}: RMS")
    ax.plot(anchors, median, "s:", color=colour, ms=2.5, lw=0.8, label=f"T = {horizon}: median")
    extra = {} if bound is None else {"doob_bound": bound}
    return series("a", f"T={horizon}", anchors, median, rms=rms,
                  p90=np.percentile(sup, 90, axis=0), **extra, horizon=horizon,
                  paths=len(sup), **columns)


def axes_style(ax: Axes) -> None:
    """Log axes and the labels."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel(r"$\mathrm{sup}_{t<s\leq T}\,\|\xi(s)-\xi(t)\|$")


def make(ctx: Context) -> list[Path]:
    horizons = ctx.size([64, 256, 1024], [256, 1024, 4096, 16384])
    paths = ctx.size(1000, 2000)
    fig, ax = style.figure(style.COLUMN, 3.0)
    rows: Rows = []
    colours = [style.OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple")]
    for horizon, colour in zip(horizons, colours, strict=False):
        d = simulation(ctx, f"lemma3-{horizon}", problem=PROBLEM,
                       clip={"rule": "classic", "lam": LAM}, schedule=SCHEDULE, paths=paths,
                       steps=horizon, seed=6, record=["xi"], xi_paths=paths, progress=None)
        anchors = np.array(sorted({int(horizon * f) for f in ANCHORS}))
        bound = np.array([doob_bound(int(t), horizon) for t in anchors])
        rows += draw_sup(ax, horizon, anchors, d["xi_sup_after"], colour, bound, lam=LAM)
    grid = np.geomspace(min(horizons) * ANCHORS[0], max(horizons) * ANCHORS[-1], 100)
    limit = np.array([doob_bound(int(t), None) for t in grid])
    ax.plot(grid, limit, "k--",
            label=r"Doob, $T=\infty$: $4\lambda\sqrt{\Sigma_{u\geq t} a(u)^2}$")
    rows += series("a", "Doob bound, T = infinity", grid, limit, lam=LAM)
    axes_style(ax)
    ax.set_title(f"skewed quadratic, classic λ = {LAM:g}, a(t) = 1/(t+1); {paths} paths")
    style.legend_below(fig, [ax], ncols=2)
    return style.save(fig, rows, ctx.out, NAME)


def draw_scenario(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    """Lemma 3 on the scenario's ξ paths: sup_{t<s≤T} ‖ξ(s) − ξ(t)‖ at the anchors t (RMS,
    median), with Doob's bound 4λ·√(Σ_{t≤u<T} a(u)²) for classic clipping (increments
    ‖a(u)M(u+1)‖ ≤ 2λa(u)); no bound is drawn for other rules."""
    arr, horizon = sim.arrays, sim.steps
    anchors = arr["xi_anchors"].astype(np.int64)
    bound = None
    if sc.clip["rule"] == "classic":
        lam = float(sc.clip["lam"])
        bound = np.array([doob_bound(int(t), horizon, lam, sc.schedule) for t in anchors])
    fig, ax = style.figure(style.COLUMN, 3.0)
    rows = draw_sup(ax, horizon, anchors, arr["xi_sup_after"], style.OKABE_ITO["blue"], bound)
    if bound is not None:
        ax.plot(anchors, bound, "k--", label=r"Doob: $4\lambda\sqrt{\Sigma_{t\leq u<T} a(u)^2}$")
    axes_style(ax)
    ax.set_title(style.scenario_title(sc, sim))
    style.legend_below(fig, [ax], ncols=2)
    return style.save(fig, rows, ctx.out, name)
