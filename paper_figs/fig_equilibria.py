r"""Figure 4: where clipped SGD settles on a skewed law, against the zero of H and E[y].

ℓ(θ; y) = ½(θ − y)² in 1-D with y = 0 w.p. 0.9 and y = 10 w.p. 0.1, classic clipping:
H(θ) = E[clamp(θ − y, −λ, λ)] is the derivative of E[Huber_λ(θ − y)], so Theorem 1's limit is
the Huber minimiser θ*(λ), the zero of H, and not the minimiser E[y] = 1 of E[ℓ]. For this law
θ*(λ) = min(λ/9, 1): on 0 < θ < λ ≤ 10 − θ, H(θ) = 0.9θ − 0.1λ.

(a) θ*(λ) (zero of H, :func:`theory.equilibria.zeros_1d` on the exact H of
:func:`simulations.engine.mean_field.field`), E[y], and the endpoints θ(T) of the paths at each λ
(violins; the data file holds their histograms). (b) The bias θ*(λ) − E[y] and the endpoints'
mean minus E[y] with 95% intervals (±1.96 standard errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.runs import Context, simulation
from simulations.engine.mean_field import field
from simulations.engine.problems import Quadratic, make_problem
from simulations.engine.rules import ClipRule
from simulations.engine.simulation import Simulation
from simulations.verify.scenarios import Scenario
from theory.equilibria import ZeroSet, zeros_1d

NAME = "fig4_equilibria"
VALUES, PROBS = (0.0, 10.0), (0.9, 0.1)
SCHEDULE = "1/(t+1)"
PROBLEM = {"name": "quadratic", "noise": "discrete", "values": list(VALUES),
           "probs": list(PROBS)}
MEAN_Y = float(np.dot(VALUES, PROBS))  #: E[y], the minimiser of E[ℓ]
BINS = 40  #: histogram bins per λ in the data file


CLAIMS = ("T1",)


def representative(zero_set: ZeroSet) -> float:
    """The first zero of ``zero_set`` (the middle of an interval), nan if it is empty."""
    candidates = list(zero_set.points) + [0.5 * (a + b) for a, b in zero_set.intervals]
    return float(candidates[0]) if candidates else float("nan")


def zero_of_h(lam: float) -> float:
    """The zero of H under classic clipping with ``lam`` (the middle of the zero set if it is an
    interval; nan if H has no zero on [−1, 11])."""
    spec = dict(PROBLEM)
    problem = make_problem(spec.pop("name"), **spec)
    return representative(zeros_1d(field(problem, ClipRule("classic", lam=lam)), -1.0, 11.0,
                                   grid=2001))


def histogram(panel: str, x: float, end: np.ndarray, **columns: Any) -> Rows:
    """The rows ``endpoint histogram``: ``BINS`` bin centres (y) and counts of ``end`` at x."""
    counts, edges = np.histogram(end, bins=BINS)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return series(panel, "endpoint histogram", np.full(BINS, x), centres, count=counts,
                  **columns)


def make(ctx: Context) -> list[Path]:
    lams = ctx.size([1.0, 3.0, 6.0, 9.0, 12.0], [0.5, *range(1, 14)])
    paths, steps = ctx.size(1000, 4000), ctx.size(1000, 5000)
    curve_lams = np.linspace(0.05, max(lams) + 1.0, 120)
    curve = np.array([zero_of_h(lam) for lam in curve_lams])
    fig, (ax_a, ax_b) = style.figure(style.FULL, 2.7, ncols=2)
    rows: Rows = series("a", "zero of H", curve_lams, curve)
    rows += series("a", "E[y]", curve_lams, np.full(len(curve_lams), MEAN_Y))
    rows += series("b", "zero of H minus E[y]", curve_lams, curve - MEAN_Y)
    ends, means, errors = [], [], []
    for lam in lams:
        d = simulation(ctx, f"equilibria-{lam:g}", problem=PROBLEM,
                       clip={"rule": "classic", "lam": lam}, schedule=SCHEDULE, paths=paths,
                       steps=steps, seed=4, record=[], progress=None)
        end = d["endpoints"][:, 0]
        ends.append(end)
        means.append(end.mean())
        errors.append(1.96 * end.std(ddof=1) / np.sqrt(len(end)))
        rows += histogram("a", lam, end, paths=paths, steps=steps)
        p5, p50, p95 = np.percentile(end, [5, 50, 95])
        rows += series("a", "endpoints", [lam], [end.mean()], p5=p5, p50=p50, p95=p95,
                       paths=paths, steps=steps, zero_of_h=zero_of_h(lam))
    means, errors = np.array(means), np.array(errors)
    rows += series("b", "endpoint mean minus E[y]", lams, means - MEAN_Y, lower=means - errors -
                   MEAN_Y, upper=means + errors - MEAN_Y)
    width = min(0.8, 0.8 * min(np.diff(lams)))
    parts = ax_a.violinplot(ends, positions=lams, widths=width, showextrema=False)
    for body in parts["bodies"]:
        body.set(facecolor=style.OKABE_ITO["sky"], edgecolor=style.OKABE_ITO["blue"], alpha=0.7,
                 lw=0.5)
    ax_a.plot([], [], color=style.OKABE_ITO["sky"], lw=5, alpha=0.7,
              label=f"endpoints θ(T), T = {steps}, {paths} paths")
    ax_a.plot(curve_lams, curve, color=style.OKABE_ITO["vermillion"],
              label="zero of H: Huber minimiser θ*(λ)")
    ax_a.axhline(MEAN_Y, color="k", ls="--", label="E[y] = 1, minimiser of E[ℓ]")
    ax_a.set_ylabel("θ (units of y)")
    ax_a.legend(loc="lower right")
    ax_b.plot(curve_lams, curve - MEAN_Y, color=style.OKABE_ITO["vermillion"],
              label="θ*(λ) − E[y]")
    ax_b.errorbar(lams, means - MEAN_Y, yerr=errors, fmt="o", ms=3, color=style.OKABE_ITO["blue"],
                  capsize=2, label="mean θ(T) − E[y], 95% interval")
    ax_b.axhline(0, color="k", lw=0.6)
    ax_b.set_ylabel("bias (units of y)")
    ax_b.legend(loc="lower right")
    for ax, letter, title in ((ax_a, "a", "limit points"), (ax_b, "b", "bias")):
        ax.set_xlabel("clipping threshold λ (units of g)")
        style.panel_label(ax, letter, f"{title}; y = 0 (p = 0.9) or 10 (p = 0.1)")
    return style.save(fig, rows, ctx.out, NAME)


def draw_scenario(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    """Theorem 1 on a 1-D scenario: (a) H(θ) = E[g/c] on the range of option ``zero_range``
    (default: the endpoints and θ(0) ± 10) with its zero set; (b) the histogram of the
    endpoints θ(T) of the paths that did not blow up, the zero set and, for the quadratic
    family, the minimiser E[y] of E[ℓ] where there is one (not for a Student-t law with ν ≤ 2,
    where E[ℓ] = ∞ at every θ). Problems with more than one parameter get no figure.
    """
    problem, rule = sc.make_problem(), sc.make_rule()
    if problem.n_params != 1:
        raise NotImplementedError("T1's figure is drawn for 1-D problems only")
    arr = sim.arrays
    end = arr["endpoints"][arr["blown_step"] < 0, 0]
    theta0 = float(problem.initial(torch.arange(1), sc.seed, torch.float64, "cpu")[0, 0])
    lo, hi = sc.options.get("zero_range", [float(min(end.min(), theta0) - 10),
                                           float(max(end.max(), theta0) + 10)])
    h = field(problem, rule, batch=sc.batch)
    zero_set = zeros_1d(h, lo, hi, grid=int(sc.options.get("zero_grid", 4001)))
    grid = np.linspace(lo, hi, 400)
    fig, (ax_a, ax_b) = style.figure(style.FULL, 2.7, ncols=2)
    rows = series("a", "H", grid, h(grid))
    rows += series("a", "zero of H", zero_set.points, np.zeros(len(zero_set.points)),
                   residual=zero_set.residuals)
    for a, b in zero_set.intervals:
        rows += series("a", "zero interval of H", [a, b], [0.0, 0.0])
    ax_a.plot(grid, h(grid), color=style.OKABE_ITO["vermillion"], label="H(θ) = E[g/c]")
    ax_a.axhline(0, color="k", lw=0.6)
    rows += histogram("b", sim.steps, end, paths=len(end), steps=sim.steps)
    ax_b.hist(end, bins=BINS, color=style.OKABE_ITO["sky"], edgecolor=style.OKABE_ITO["blue"],
              lw=0.4, label=f"θ(T), {len(end)} paths")
    for ax in (ax_a, ax_b):
        for i, z in enumerate(zero_set.points):
            ax.axvline(z, color=style.OKABE_ITO["vermillion"], ls="--",
                       label="zero set of H" if i == 0 else None)
        for i, (a, b) in enumerate(zero_set.intervals):
            ax.axvspan(a, b, color=style.OKABE_ITO["vermillion"], alpha=0.2,
                       label="zero interval of H" if i == 0 else None)
    if isinstance(problem, Quadratic) and problem.curvature > 0 and problem.law.moment_finite(2):
        mean = problem.law.mean_value()
        rows += series("b", "E[y]", [mean])
        ax_b.axvline(mean, color="k", ls=":", label=f"E[y] = {mean:.4g}, minimiser of E[ℓ]")
    ax_a.set_ylabel("H(θ) (units of g)")
    ax_b.set_ylabel("paths")
    for ax, letter, title in ((ax_a, "a", f"zero set: {zero_set.describe()}"),
                              (ax_b, "b", "where the endpoints land")):
        ax.set_xlabel("θ")
        style.panel_label(ax, letter, title)
    style.legend_below(fig, [ax_a, ax_b], ncols=3)
    fig.suptitle(style.scenario_title(sc, sim), fontsize=7)
    return style.save(fig, rows, ctx.out, name)
