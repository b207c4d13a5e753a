r"""Figure 7: the step schedules, Σ_{t<T} a(t) and Σ_{t<T} a(t)² against T, with (A2).

(A2): a(t) > 0, Σ a(t) = ∞, Σ a(t)² < ∞. ``1/(t+1)`` is the schedule of every other figure
(and of the paper); the others show the two ways (A2) can fail. The sums and the verdicts come
from :mod:`theory.schedules` (closed forms for the power family c/(t+t0)^p), γ = Σ_{t≥0} a(t)².

Σa is drawn on a linear axis against log T, where the divergence of the p = 1 schedules
(Σa ≈ ln T) is a straight line rather than the flattening curve a log-log plot makes of it;
its axis follows the slowest-growing schedules (up to ``SUM_TOP``), and a schedule that leaves
it says where in its label. Σa² is drawn log-log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.runs import Context
from simulations.engine.simulation import Simulation
from simulations.verify.scenarios import Scenario
from theory.schedules import parse_schedule

NAME = "fig7_schedules"
#: schedule: role in the figures
SCHEDULES = {
    "1/(t+1)": "used in figures 1-6",
    "0.05/(1+t/100)": "slower decay, same p = 1",
    "1/(t+1)**0.75": "p = 0.75",
    "1/sqrt(t+1)": "p = 1/2",
    "0.01": "constant",
}
STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))
SUM_TOP = 60.0  #: the largest Σa shown in panel (a) of the built-in figure


CLAIMS = ("A2",)  #: drawn for every scenario, whatever its claims
ALWAYS = True


def draw_schedule(ax_a: Axes, ax_b: Axes, text: str, horizons: np.ndarray, label: str,
                  ls: Any = "-", top: float = np.inf) -> Rows:
    """Plot Σ_{t<T} a(t) on ``ax_a`` (up to ``top``, naming the T where it passes ``top`` in
    the label) and Σ_{t<T} a(t)² on ``ax_b`` at each T in ``horizons`` for the schedule
    ``text``; the rows (panels a, b) carry (A2)'s verdict and γ."""
    schedule = parse_schedule(text)
    verdict = schedule.a2()
    word = {True: "holds", False: "fails", None: "undecided"}[verdict.holds]
    sums = np.array([schedule.partial_sum(int(t), 1) for t in horizons])
    squares = np.array([schedule.partial_sum(int(t), 2) for t in horizons])
    label = f"{label}: (A2) {word}"
    above = np.flatnonzero(sums > top)
    shown = sums if not above.size else np.where(np.arange(len(sums)) <= above[0], sums, np.nan)
    line, = ax_a.plot(horizons, shown, ls=ls)
    ax_b.plot(horizons, squares, ls=ls, color=line.get_color(),
              label=label + (f"; Σa passes {top:g} at T = {horizons[above[0]]:.2g}"
                             if above.size else ""))
    common = {"schedule": text, "a2": word, "a2_reason": verdict.reason}
    return (series("a", f"sum a {text}", horizons, sums, **common)
            + series("b", f"sum a^2 {text}", horizons, squares, gamma=schedule.gamma, **common))


def finish(fig: Figure, ax_a: Axes, ax_b: Axes, top: float | None = None) -> None:
    """Axes (Σa linear from 0, to ``top`` when given; Σa² log; T log), labels, panel titles and
    the legend of the two panels."""
    ax_a.set_ylim(0, top)
    ax_b.set_yscale("log")
    for ax, letter, title, ylabel in (
            (ax_a, "a", "Σa must diverge", r"time reached $\tau(T) = \Sigma_{t<T} a(t)$"),
            (ax_b, "b", "Σa² must converge", r"$\Sigma_{t<T} a(t)^2$")):
        ax.set_xscale("log")
        ax.set_xlabel("horizon T (steps)")
        ax.set_ylabel(ylabel)
        style.panel_label(ax, letter, title)
    style.legend_below(fig, [ax_a, ax_b], ncols=2)


def horizons(count: int, last: float = 1e8) -> np.ndarray:
    """About ``count`` log-spaced integer horizons in [1, last]."""
    return np.unique(np.round(np.geomspace(1, last, count)).astype(np.int64))


def make(ctx: Context) -> list[Path]:
    grid = horizons(ctx.size(30, 120))
    fig, (ax_a, ax_b) = style.figure(style.FULL, 2.8, ncols=2)
    rows: Rows = []
    for (text, role), ls in zip(SCHEDULES.items(), STYLES, strict=True):
        rows += draw_schedule(ax_a, ax_b, text, grid, f"a(t) = {text} ({role})", ls, SUM_TOP)
    finish(fig, ax_a, ax_b, SUM_TOP)
    return style.save(fig, rows, ctx.out, NAME)


def draw_scenario(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    """The scenario's schedule: Σa and Σa² up to 10⁸ steps (at least 100·T), the run's
    horizon T marked."""
    grid = np.union1d(horizons(ctx.size(30, 120), max(1e8, 100.0 * sim.steps)), [sim.steps])
    fig, (ax_a, ax_b) = style.figure(style.FULL, 2.8, ncols=2)
    rows = draw_schedule(ax_a, ax_b, sc.schedule, grid, f"a(t) = {sc.schedule}")
    for ax in (ax_a, ax_b):
        ax.axvline(max(sim.steps, 1), color="0.4", ls=":", label=f"the run's T = {sim.steps}")
    finish(fig, ax_a, ax_b)
    fig.suptitle(style.scenario_title(sc, sim))
    return style.save(fig, rows, ctx.out, name)
