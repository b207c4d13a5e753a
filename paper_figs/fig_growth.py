r"""Figure 2: ‖θ(t)‖ over t for classic, adaptive and unclipped SGD, with the two envelopes.

Loss (L/2)(θ − y)² in 1-D, L = 100, y ~ N(0, 1), θ(0) = 1, a(t) = 1/(t+1), λ = 30, ε = 10⁻³
(the paper's λ and schedule). Percentile bands (5–95 % and 25–75 %) and the median over the
paths, and three single paths per rule. Envelopes:

* classic clipping moves at most λa(t) per step: ‖θ(t)‖ ≤ ‖θ(0)‖ + λ·Σ_{s<t} a(s);
* adaptive clipping (Grönwall): ‖θ(t)‖ ≤ max(‖θ(0)‖, ε)·Π_{s<t} (1 + λa(s)), carried as log10.

While a(t)·λ > 2 the adaptive step overshoots the minimiser and |θ| grows geometrically; without
clipping the same happens while a(t)·L > 2, far longer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.runs import Arrays, Context, simulation
from simulations.engine import Simulation
from simulations.problems import Problem
from simulations.rules import ClipRule
from theory import bounds

NAME = "fig2_growth"
LAM, EPS, CURVATURE, THETA0 = 30.0, 1e-3, 100.0, 1.0
SCHEDULE = "1/(t+1)"
PROBLEM = {"name": "quadratic", "noise": "normal", "mean": 0.0, "sd": 1.0,
           "curvature": CURVATURE, "theta0": THETA0}
RULES = {
    "classic": {"rule": "classic", "lam": LAM},
    "adaptive": {"rule": "adaptive", "lam": LAM, "eps": EPS},
    "unclipped": {"rule": "none"},
}
COLOURS = {"classic": style.OKABE_ITO["blue"], "adaptive": style.OKABE_ITO["vermillion"],
           "unclipped": style.OKABE_ITO["green"]}
PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
SINGLE = 3  #: single paths drawn per rule


def norm_percentiles(sim: Simulation, problem: Problem, rule: ClipRule) -> Arrays:
    """Percentiles over paths of ‖θ(t)‖ at every t = 0..T (rows: ``PERCENTILES``), and the
    norms of the first ``SINGLE`` paths."""
    norms = np.linalg.norm(sim.arrays["path"], axis=-1)  # (paths, T+1)
    return {"percentiles": np.percentile(norms, PERCENTILES, axis=0), "single": norms[:SINGLE],
            "blown_up": np.array(sim.blown_up)}


def envelopes(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """‖θ(0)‖ + λΣ_{s<t}a(s) and log10 of the Grönwall bound, at each t in ``steps``."""
    radius = np.array([bounds.deterministic_radius(LAM, SCHEDULE, horizon=int(t)) for t in steps])
    log10_gronwall = np.array([bounds.gronwall(LAM, EPS, SCHEDULE, int(t), THETA0).log10_norm
                               for t in steps])
    return THETA0 + radius, log10_gronwall


def make(ctx: Context) -> list[Path]:
    paths, steps = ctx.size(400, 1000), ctx.size(1000, 10000)
    data = {name: simulation(ctx, f"growth-{name}", problem=PROBLEM, clip=rule,
                             schedule=SCHEDULE, paths=paths, steps=steps, seed=2,
                             record=["paths"], keep_paths=paths, reduce=norm_percentiles,
                             progress=None)
            for name, rule in RULES.items()}
    t = np.arange(steps + 1)
    fig, ax = style.figure(style.COLUMN, 3.4)
    rows: Rows = []
    for name, d in data.items():
        p5, p25, p50, p75, p95 = d["percentiles"]
        colour = COLOURS[name]
        ax.fill_between(t[1:], p5[1:], p95[1:], color=colour, alpha=0.18, lw=0)
        ax.fill_between(t[1:], p25[1:], p75[1:], color=colour, alpha=0.3, lw=0)
        ax.plot(t[1:], p50[1:], color=colour, label=f"{name}: median, 25–75 %, 5–95 %")
        for single in d["single"]:
            ax.plot(t[1:], single[1:], color=colour, lw=0.4, alpha=0.8)
        rows += series("a", f"{name} percentiles", t, p50, p5=p5, p25=p25, p75=p75, p95=p95,
                       paths=paths)
        for i, single in enumerate(d["single"]):
            rows += series("a", f"{name} path {i}", t, single)
    grid = np.unique(np.round(np.geomspace(1, steps, 120)).astype(int))
    deterministic, log10_gronwall = envelopes(grid)
    rows += series("a", "deterministic envelope", grid, deterministic,
                   radius=deterministic - THETA0, lam=LAM, theta0=THETA0)
    rows += series("a", "Gronwall envelope", grid, 10.0**log10_gronwall, log10_y=log10_gronwall,
                   lam=LAM, eps=EPS, theta0=THETA0)
    ax.plot(grid, 10.0**log10_gronwall, color="k", ls="--",
            label="Grönwall: max(‖θ(0)‖, ε)·Π(1 + λa)")
    ax.plot(grid, deterministic, color="k", ls=":", lw=1.4, label="‖θ(0)‖ + λΣa (classic)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, steps)
    ax.set_xlabel("step t")
    ax.set_ylabel("‖θ(t)‖ (units of θ)")
    ax.set_title(f"L = {CURVATURE:g}, y ~ N(0, 1), λ = {LAM:g}, ε = {EPS:g}, a(t) = 1/(t+1); "
                 f"{paths} paths", fontsize=6.5)
    style.legend_below(fig, [ax], ncols=1)
    return style.save(fig, rows, ctx.out, NAME)
