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

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.runs import Arrays, Context, simulation
from simulations.engine import Simulation
from simulations.mean_field import field
from simulations.problems import Problem
from simulations.rules import ClipRule
from theory.equilibria import solve_ode, stochastic_time, tracking_gaps

NAME = "fig5_ode"
SCHEDULE = "1/(t+1)"
WINDOW = 1.0  #: Δ, the τ-length of a tracking window
PROBLEMS = {
    "quadratic": {"name": "quadratic", "noise": "discrete", "values": [0.0, 10.0],
                  "probs": [0.9, 0.1], "theta0": 5.0},
    "logistic": {"name": "logistic"},
}
TITLES = {"quadratic": "skewed quadratic: θ", "logistic": "separable logistic: ‖θ‖"}
COLOURS = {"quadratic": style.OKABE_ITO["blue"], "logistic": style.OKABE_ITO["vermillion"]}


def tracking(starts_count: int, gap_paths: int):
    """A reduce step: the paths, the ODE from θ(0) on the τ grid, and the tracking gaps of the
    first ``gap_paths`` paths at ``starts_count`` log-spaced window starts."""

    def reduce(sim: Simulation, problem: Problem, rule: ClipRule) -> Arrays:
        path = sim.arrays["path"]
        tau = stochastic_time(sim.setting["schedule"], sim.steps)
        h = field(problem, rule)
        ode = solve_ode(h, path[0, 0], tau)
        last = int(np.searchsorted(tau, tau[-1] - WINDOW, side="right")) - 1
        starts = np.unique(np.round(np.geomspace(1, last, starts_count)).astype(int))
        gaps = np.array([tracking_gaps(p, tau, h, WINDOW, starts) for p in path[:gap_paths]])
        return {"path": path, "tau": tau, "ode": ode, "starts": starts, "gaps": gaps}

    reduce.__qualname__ = f"tracking({starts_count}, {gap_paths})"
    return reduce


def shown(values: np.ndarray, problem: str) -> np.ndarray:
    """What panels (a) and (b) plot: θ itself in 1-D, ‖θ‖ otherwise."""
    return values[..., 0] if problem == "quadratic" else np.linalg.norm(values, axis=-1)


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
        tau, colour = d["tau"], COLOURS[name]
        every = max(1, len(tau) // 1500)  # thin the drawn curves; the CSV has the same points
        for i, p in enumerate(d["path"]):
            ax.plot(tau[::every], shown(p, name)[::every], color=colour, lw=0.5, alpha=0.6,
                    label="SGD paths" if i == 0 else None)
            rows += series(panel, f"SGD path {i}", tau[::every], shown(p, name)[::every])
        ax.plot(tau[::every], shown(d["ode"], name)[::every], "k--", lw=1.2,
                label="ODE dθ/dτ = −H(θ)")
        rows += series(panel, "ODE", tau[::every], shown(d["ode"], name)[::every])
        ax.set_xlabel(r"ODE time $\tau(t)=\Sigma_{s<t} a(s)$ (dimensionless)")
        ax.set_ylabel("θ (units of y)" if name == "quadratic" else "‖θ‖ (units of θ)")
        style.panel_label(axes[0 if panel == "a" else 1], panel, TITLES[name])
        ax.legend(loc="upper right" if name == "quadratic" else "lower right")
        gap_tau = tau[d["starts"]]
        median = np.median(d["gaps"], axis=0)
        low, high = d["gaps"].min(axis=0), d["gaps"].max(axis=0)
        axes[2].fill_between(gap_tau, low, high, color=colour, alpha=0.25, lw=0)
        axes[2].plot(gap_tau, median, "o-", color=colour, ms=3,
                     label=name)
        rows += series("c", f"gap {name}", gap_tau, median, lower=low, upper=high,
                       start_step=d["starts"], window=WINDOW, paths=len(d["gaps"]))
    axes[2].set_yscale("log")
    axes[2].set_xlabel("window start τ(n)")
    axes[2].set_ylabel(f"tracking gap over Δτ = {WINDOW:g} (units of θ)")
    style.panel_label(axes[2], "c", "gap to the ODE")
    axes[2].legend(loc="lower left", title=f"median, range of {gap_paths} paths",
                   title_fontsize=6)
    fig.suptitle(f"classic clipping, λ = 1, a(t) = 1/(t+1), T = {steps} steps", fontsize=7.5)
    return style.save(fig, rows, ctx.out, NAME)
