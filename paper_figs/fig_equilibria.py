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
    ax_a.set_ylabel("θ (same scale as y)")
    ax_a.legend(loc="lower right")
    ax_b.plot(curve_lams, curve - MEAN_Y, color=style.OKABE_ITO["vermillion"],
              label="θ*(λ) − E[y]")
    ax_b.errorbar(lams, means - MEAN_Y, yerr=errors, fmt="o", ms=3, color=style.OKABE_ITO["blue"],
                  capsize=2, label="mean θ(T) − E[y], 95% interval")
    ax_b.axhline(0, color="k", lw=0.6)
    ax_b.set_ylabel("bias: θ − E[y]")
    ax_b.legend(loc="lower right")
    for ax, letter, title in ((ax_a, "a", "limit points"), (ax_b, "b", "bias")):
        ax.set_xlabel("clipping threshold λ")
        style.panel_label(ax, letter, f"{title}; y = 0 (p = 0.9) or 10 (p = 0.1)")
    return style.save(fig, rows, ctx.out, NAME)


def draw_scenario(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    """Theorem 1 on a 1-D scenario: (a) H(θ) = E[g/c] on the range of option ``zero_range``
    (default: the endpoints and θ(0) ± 10) with its zero set; (b) the histogram of the
    endpoints θ(T) of the paths that did not blow up, the zero set and, for the quadratic
    family, the minimiser E[y] of E[ℓ] where there is one (not for a Student-t law with ν ≤ 2,
    where E[ℓ] = ∞ at every θ). Two-parameter problems: :func:`draw_plane`; problems with more
    parameters get no figure.
    """
    problem, rule = sc.make_problem(), sc.make_rule()
    if problem.n_params == 2:
        return draw_plane(ctx, sc, sim, name)
    if problem.n_params != 1:
        raise NotImplementedError("T1's figure is drawn for 1- and 2-parameter problems only")
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
    ax_a.set_ylabel("mean clipped gradient H(θ) = E[g/c]")
    ax_b.set_ylabel("paths")
    for ax, letter, title in ((ax_a, "a", f"zero set: {zero_set.describe()}"),
                              (ax_b, "b", "where the endpoints land")):
        ax.set_xlabel("θ")
        style.panel_label(ax, letter, title)
    style.legend_below(fig, [ax_a, ax_b], ncols=3)
    fig.suptitle(style.scenario_title(sc, sim))
    return style.save(fig, rows, ctx.out, name)


#: χ²(2) quantile at 0.95: the ellipse (θ − m)ᵀ S⁻¹ (θ − m) = CHI2_95 holds 95% of a normal law
CHI2_95 = -2.0 * np.log(0.05)


def ellipse(mean: np.ndarray, cov: np.ndarray, level: float = CHI2_95,
            count: int = 181) -> np.ndarray:
    """Points of the ellipse {θ : (θ − m)ᵀ S⁻¹ (θ − m) = level} of the mean m and covariance S:
    m + √level · L (cos φ, sin φ) with S = L Lᵀ (Cholesky), φ ∈ [0, 2π]; (count, 2)."""
    phi = np.linspace(0.0, 2.0 * np.pi, count)
    factor = np.linalg.cholesky(cov + 1e-300 * np.eye(2))
    return mean + np.sqrt(level) * (np.stack([np.cos(phi), np.sin(phi)], axis=1) @ factor.T)


def draw_plane(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    """Theorem 1 on a two-parameter scenario, in the plane of θ: the zero set of H = E[g/c] as
    the curves H₁ = 0 and H₂ = 0 (contours of H on a grid over the endpoints and θ(0), padded by
    option ``zero_pad``, default half their span, and over the zeros found) and the zeros found
    from the endpoints' mean, θ(0) and the corners of their box (:func:`theory.equilibria.zeros`);
    the endpoints θ(T) of the
    paths that did not blow up, their mean and the ellipse of their covariance that holds 95% of
    a normal law with that mean and covariance (χ²(2) quantile ``CHI2_95``)."""
    from theory.equilibria import zeros

    problem, rule = sc.make_problem(), sc.make_rule()
    arr = sim.arrays
    end = arr["endpoints"][arr["blown_step"] < 0]
    theta0 = problem.initial(torch.arange(1), sc.seed, torch.float64, "cpu")[0].numpy()
    h = field(problem, rule, batch=sc.batch)
    mean, cov = end.mean(axis=0), np.cov(end, rowvar=False)
    spread = np.vstack([end, theta0[None]])
    found = zeros(h, np.vstack([mean, theta0, spread.min(axis=0), spread.max(axis=0)]))
    both = np.vstack([spread, *[z.point[None] for z in found]])
    lo, hi = both.min(axis=0), both.max(axis=0)
    pad = float(sc.options.get("zero_pad", 0.5)) * np.maximum(hi - lo, 1e-3 * (1 + np.abs(hi)))
    lo, hi = lo - pad, hi + pad
    xs, ys = np.linspace(lo[0], hi[0], 121), np.linspace(lo[1], hi[1], 121)
    gx, gy = np.meshgrid(xs, ys)
    values = np.asarray(h(np.stack([gx.ravel(), gy.ravel()], axis=1))).reshape(*gx.shape, 2)
    fig, ax = style.figure(style.COLUMN + 0.6, 3.9)
    shown = end[:: max(1, len(end) // 2000)]
    ax.plot(shown[:, 0], shown[:, 1], ls="none", marker=".", ms=2, alpha=0.5,
            color=style.OKABE_ITO["sky"], label=f"endpoints θ(T), {len(end)} paths")
    for k, colour, ls in ((0, style.OKABE_ITO["vermillion"], "-"),
                          (1, style.OKABE_ITO["green"], "--")):
        ax.contour(gx, gy, values[..., k], levels=[0.0], colors=[colour], linestyles=[ls],
                   linewidths=1.2)
        ax.plot([], [], color=colour, ls=ls, label=f"H{'₁₂'[k]}(θ) = 0")
    ring = ellipse(mean, cov)
    ax.plot(ring[:, 0], ring[:, 1], color=style.OKABE_ITO["blue"], lw=1.0,
            label="endpoints' covariance ellipse (95%)")
    ax.plot(*mean, marker="+", ms=7, mew=1.2, color=style.OKABE_ITO["blue"], ls="none",
            label=f"mean θ(T) = ({mean[0]:.4g}, {mean[1]:.4g})")
    for i, z in enumerate(found):
        ax.plot(*z.point, marker="*", ms=8, color="k", mfc="yellow", ls="none",
                label="zero of H found" if i == 0 else None)
    ax.plot(*theta0, marker="s", ms=4, color="0.3", ls="none", label="θ(0)")
    rows = series("a", "endpoints", end[:, 0], end[:, 1], paths=len(end), steps=sim.steps)
    rows += series("a", "endpoint mean", [mean[0]], [mean[1]], cov_xx=cov[0, 0],
                   cov_xy=cov[0, 1], cov_yy=cov[1, 1])
    rows += series("a", "covariance ellipse", ring[:, 0], ring[:, 1], level=CHI2_95)
    rows += series("a", "zero of H", [z.point[0] for z in found], [z.point[1] for z in found],
                   residual=[z.residual for z in found])
    rows += series("a", "H grid", gx.ravel(), gy.ravel(), h1=values[..., 0].ravel(),
                   h2=values[..., 1].ravel())
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    layout = getattr(problem, "layout", None)
    names = ([layer.name for layer in layout.layers if layer.size == 1]
             if layout is not None else [])
    names = names if len(names) == 2 else ["first parameter", "second parameter"]
    ax.set_xlabel(f"θ₁ ({names[0]})")
    ax.set_ylabel(f"θ₂ ({names[1]})")
    ax.set_title(style.scenario_title(sc, sim))
    style.legend_below(fig, [ax], ncols=2)
    return style.save(fig, rows, ctx.out, name)
