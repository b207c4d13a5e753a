r"""Figure 5: SGD paths in τ-time against the ODE dθ/dτ = −H(θ), and the tracking gap.

τ(t) = Σ_{s<t} a(s) is the ODE time reached after t steps. (a) The skewed quadratic
½(θ − y)², y = 0 w.p. 0.9 or 10 w.p. 0.1, θ(0) = 5; (b) separable logistic regression
(``logistic``: 200 points in 2-D, θ = (w, b), θ(0) = 0), where H has no zero and ‖θ‖ grows
without bound, following the ODE. Classic clipping λ = 1, a(t) = 1/(t+1); H is exact (finite
laws). (c) The tracking gap over windows of τ-length Δ = 1,

    gap(n) = max_{τ(n) ≤ τ(t) ≤ τ(n) + Δ} ‖θ(t) − θ_ODE(τ(t); θ(n), τ(n))‖,

the ODE restarted on the path at step n (:func:`theory.equilibria.tracking_gaps`), median and
range over the paths, against τ(n): it shrinks as the steps a(t) shrink.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.runs import Arrays, Context, simulation
from simulations.engine.mean_field import field
from simulations.engine.problems import Problem
from simulations.engine.rules import ClipRule
from simulations.engine.simulation import Simulation
from simulations.verify.scenarios import Scenario
from theory.equilibria import solve_ode, stochastic_time, tracking_gaps

NAME = "fig5_ode"
CLAIMS = ("ODE",)
SCHEDULE = "1/(t+1)"
WINDOW = 1.0  #: Δ, the τ-length of a tracking window
PROBLEMS = {
    "quadratic": {"name": "quadratic", "noise": "discrete", "values": [0.0, 10.0],
                  "probs": [0.9, 0.1], "theta0": 5.0},
    "logistic": {"name": "logistic"},
}
TITLES = {"quadratic": "skewed quadratic: θ", "logistic": "separable logistic: ‖θ‖"}
COLOURS = {"quadratic": style.OKABE_ITO["blue"], "logistic": style.OKABE_ITO["vermillion"]}


def tracking(starts_count: int, gap_paths: int, window: float = WINDOW):
    """A reduce step: the paths, the ODE from θ(0) on the τ grid, and the tracking gaps of the
    first ``gap_paths`` paths at ``starts_count`` log-spaced window starts (none when τ(T) is
    shorter than one window and a step)."""

    def reduce(sim: Simulation, problem: Problem, rule: ClipRule) -> Arrays:
        path = sim.arrays["path"]
        tau = stochastic_time(sim.schedule(), sim.steps)
        h = field(problem, rule, batch=int(sim.setting.get("batch", 1)))
        ode = solve_ode(h, path[0, 0], tau)
        last = int(np.searchsorted(tau, tau[-1] - window, side="right")) - 1
        starts = (np.unique(np.round(np.geomspace(1, last, starts_count)).astype(int))
                  if last >= 1 else np.zeros(0, dtype=int))
        gaps = np.array([tracking_gaps(p, tau, h, window, starts) for p in path[:gap_paths]])
        return {"path": path, "tau": tau, "ode": ode, "starts": starts,
                "gaps": gaps.reshape(len(path[:gap_paths]), len(starts))}

    reduce.__qualname__ = f"tracking({starts_count}, {gap_paths})" + (
        "" if window == WINDOW else f"[{window:g}]")
    return reduce


def shown(values: np.ndarray) -> np.ndarray:
    """What the path panels plot: θ itself in 1-D, ‖θ‖ otherwise."""
    return values[..., 0] if values.shape[-1] == 1 else np.linalg.norm(values, axis=-1)


def draw_tracking(ax: Axes, gap_ax: Axes, panel: str, name: str, d: Arrays,
                  colour: str, window: float = WINDOW) -> Rows:
    """Plot the kept paths and the ODE against τ on ``ax`` (panel ``panel``) and the median and
    range over the paths of the tracking gap against the window start τ(n) on ``gap_ax``
    (panel c, series ``gap {name}``); the rows."""
    tau, rows = d["tau"], []
    every = max(1, len(tau) // 1500)  # thin the drawn curves; the CSV has the same points
    for i, p in enumerate(d["path"]):
        ax.plot(tau[::every], shown(p)[::every], color=colour, lw=0.5, alpha=0.6,
                label="SGD paths" if i == 0 else None)
        rows += series(panel, f"SGD path {i}", tau[::every], shown(p)[::every])
    ax.plot(tau[::every], shown(d["ode"])[::every], "k--", lw=1.2, label="ODE dθ/dτ = −H(θ)")
    rows += series(panel, "ODE", tau[::every], shown(d["ode"])[::every])
    ax.set_xlabel(r"ODE time $\tau(t)=\Sigma_{s<t} a(s)$ (dimensionless)")
    ax.set_ylabel("θ (same scale as y)" if d["ode"].shape[-1] == 1 else "‖θ‖")
    if d["gaps"].size:
        gap_tau = tau[d["starts"]]
        median = np.median(d["gaps"], axis=0)
        low, high = d["gaps"].min(axis=0), d["gaps"].max(axis=0)
        gap_ax.fill_between(gap_tau, low, high, color=colour, alpha=0.25, lw=0)
        gap_ax.plot(gap_tau, median, "o-", color=colour, ms=3, label=name)
        rows += series("c", f"gap {name}", gap_tau, median, lower=low, upper=high,
                       start_step=d["starts"], window=window, paths=len(d["gaps"]))
    return rows


def gap_axes(ax: Axes, window: float, gap_paths: int, letter: str = "c") -> None:
    """Labels of the tracking-gap panel."""
    ax.set_yscale("log")
    ax.set_xlabel("window start τ(n)")
    ax.set_ylabel(f"tracking gap over Δτ = {window:g}")
    style.panel_label(ax, letter, "gap to the ODE")
    ax.legend(loc="lower left", title=f"median, range of {gap_paths} paths")


def make(ctx: Context) -> list[Path]:
    steps, kept = ctx.size(2000, 20000), ctx.size(8, 32)
    starts_count, gap_paths = ctx.size(7, 12), ctx.size(3, 16)
    fig, axes = style.figure(style.FULL, 2.6, ncols=3)
    rows: Rows = []
    for ax, (panel, name) in zip(axes[:2], (("a", "quadratic"), ("b", "logistic")), strict=True):
        d = simulation(ctx, f"ode-{name}", problem=PROBLEMS[name],
                       clip={"rule": "classic", "lam": 1.0}, schedule=SCHEDULE, paths=kept,
                       steps=steps, seed=5, record=["paths"], keep_paths=kept,
                       reduce=tracking(starts_count, gap_paths), progress=None)
        rows += draw_tracking(ax, axes[2], panel, name, d, COLOURS[name])
        style.panel_label(ax, panel, TITLES[name])
        ax.legend(loc="upper right" if name == "quadratic" else "lower right")
    gap_axes(axes[2], WINDOW, gap_paths)
    fig.suptitle(f"classic clipping, λ = 1, a(t) = 1/(t+1), T = {steps} steps")
    return style.save(fig, rows, ctx.out, NAME)


def draw_scenario(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    """The scenario's kept paths against τ with the ODE dθ/dτ = −H(θ) from θ(0), and the
    tracking gap over windows of τ-length Δ (option ``ode_window``, 1) for up to 16 paths."""
    window = float(sc.options.get("ode_window", WINDOW))
    gap_paths = min(16, len(sim.arrays["path"]))
    d = tracking(ctx.size(7, 12), gap_paths, window)(sim, sc.make_problem(), sc.make_rule())
    fig, (ax, gap_ax) = style.figure(style.FULL * 2 / 3, 2.6, ncols=2)
    rows = draw_tracking(ax, gap_ax, "a", sc.name, d, style.OKABE_ITO["blue"], window)
    style.panel_label(ax, "a", "SGD paths and the ODE")
    ax.legend(loc="best")
    if d["gaps"].size:
        gap_axes(gap_ax, window, gap_paths, "b")
    else:
        gap_ax.text(0.5, 0.5, f"τ(T) = {d['tau'][-1]:.3g} is shorter than\none window "
                    f"Δτ = {window:g}", ha="center", va="center", transform=gap_ax.transAxes)
        style.panel_label(gap_ax, "b", "gap to the ODE")
    fig.suptitle(style.scenario_title(sc, sim))
    return style.save(fig, rows, ctx.out, name)
