r"""Figure 8: Lemma 2 (L2), the linear growth of the mean field H(θ) = E[g/c]:
‖H(θ)‖/(1 + ‖θ‖) against ‖θ‖, divided by the claim's analytic constant K (λ for classic
clipping, λ·max(1, ε) for adaptive, :func:`simulations.verify.claims.l2.analytic_k`), so that
Lemma 2's bound is the line at 1 for every setting.

The points are those of the L2 claim itself: for each scenario of the built-in ``paper`` suite
that checks L2, ``POINTS`` points in uniform random directions on each shell ‖θ − θ(0)‖ = r(1 +
‖θ(0)‖) (:func:`theory.equilibria.shell_points`, the scenario's seed), r on ``RADII``
log-spaced values, with H from :meth:`simulations.verify.claims.Context.field` (exact where the
claim is exact). No paths are simulated. The line is the largest ratio on each shell; the claim's
verdict compares the largest over all shells with K.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.runs import Context
from simulations.engine.simulation import Simulation
from simulations.verify.claims.context import Context as ClaimContext
from simulations.verify.claims.l2 import analytic_k
from simulations.verify.scenarios import Scenario, load_suite
from theory.equilibria import shell_points

NAME = "fig8_marchaud"
CLAIMS = ("L2",)
MARKERS = "os^Dv<>"


def ratios(sc: Scenario, radii: np.ndarray, points: int) -> dict[str, Any]:
    """‖θ‖, ‖H(θ)‖, ‖H(θ)‖/(1 + ‖θ‖) and θ's first coordinate at ``points`` points on each
    shell of radius r(1 + ‖θ(0)‖), r in ``radii``, about θ(0) of ``sc``, and the analytic K
    (None where none is known)."""
    ctx = ClaimContext(sc, None)
    theta0 = ctx.theta0()
    scale = 1.0 + float(np.linalg.norm(theta0))
    shells = shell_points(theta0, list(scale * np.asarray(radii)), points,
                          np.random.default_rng(sc.seed))
    theta = np.concatenate(shells)
    h = np.asarray(ctx.field()(theta), dtype=np.float64).reshape(theta.shape)
    norm = np.linalg.norm(theta, axis=1)
    norm_h = np.linalg.norm(h, axis=1)
    return {"norm": norm, "norm_h": norm_h, "ratio": norm_h / (1.0 + norm), "theta1": theta[:, 0],
            "shell": np.repeat(np.arange(len(radii)), points), "k": analytic_k(ctx)}


def draw(ax: Axes, panel: str, name: str, d: dict, colour: str, marker: str,
         normalise: bool) -> Rows:
    """Scatter ‖H‖/(1 + ‖θ‖) (divided by K when ``normalise``) against ‖θ‖ and draw the
    largest ratio on each shell; the rows of series ``name``."""
    k = d["k"]
    scale = k if normalise and k else 1.0
    y = d["ratio"] / scale
    ax.plot(d["norm"], y, ls="none", marker=marker, ms=2.5, mfc="none", mew=0.5, color=colour,
            alpha=0.6)
    shells = np.unique(d["shell"])
    top_norm = np.array([np.median(d["norm"][d["shell"] == s]) for s in shells])
    top = np.array([y[d["shell"] == s].max() for s in shells])
    ax.plot(top_norm, top, color=colour, marker=marker, ms=3,
            label=f"{name} (K = {k:g})" if k else f"{name} (no analytic K)")
    return series(panel, name, d["norm"], d["ratio"], norm_h=d["norm_h"], shell=d["shell"],
                  theta1=d["theta1"],
                  K=np.nan if k is None else k, y_over_k=y if normalise and k else np.nan)


def finish(ax: Axes, norms: np.ndarray, ylabel: str) -> None:
    """Log x-axis following the points, y from 0, labels."""
    style.log_axis(ax, norms, axis="x", pad=0.2)
    ax.set_ylim(0, None)
    ax.set_xlabel("‖θ‖ (points on shells about θ(0))")
    ax.set_ylabel(ylabel)


def make(ctx: Context) -> list[Path]:
    radii = np.geomspace(0.05, 1000.0, ctx.size(10, 30))
    points = ctx.size(8, 32)
    scenarios = [sc for sc in load_suite("paper") if "L2" in sc.claims]
    fig, ax = style.figure(style.COLUMN, 3.6)
    rows: Rows = []
    norms = []
    colours = [c for k, c in style.OKABE_ITO.items() if k not in ("black", "yellow")]
    for i, sc in enumerate(scenarios):
        d = ratios(sc, radii, points)
        rows += draw(ax, "a", sc.name, d, colours[i % len(colours)], MARKERS[i % len(MARKERS)],
                     normalise=True)
        norms.append(d["norm"])
    ax.axhline(1.0, color="k", ls="--", gid=style.BOUND, label="Lemma 2's bound K(1 + ‖θ‖)")
    finish(ax, np.concatenate(norms), "‖H(θ)‖ / (K(1 + ‖θ‖))")
    ax.set_ylim(0, 1.15)
    ax.set_title(f"mean field of the paper suite; {points} points per shell")
    style.legend_below(fig, [ax], ncols=1)
    return style.save(fig, rows, ctx.out, NAME)


def draw_scenario(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    """The scenario's ‖H(θ)‖/(1 + ‖θ‖) on the L2 claim's shells (options ``l2_radii`` and
    ``l2_points``, with 4 radii between each two of them) against ‖θ‖, with its analytic K."""
    from simulations.verify.claims.l2 import OPTIONS

    given = np.asarray(sc.options.get("l2_radii", OPTIONS["l2_radii"]), dtype=np.float64)
    radii = np.geomspace(given.min(), given.max(), 4 * (len(given) - 1) + 1)
    d = ratios(sc, radii, int(sc.options.get("l2_points", OPTIONS["l2_points"])))
    fig, ax = style.figure(style.COLUMN + 0.6, 3.2)
    rows = draw(ax, "a", sc.name, d, style.OKABE_ITO["blue"], "o", normalise=False)
    if d["k"]:
        ax.axhline(d["k"], color="k", ls="--", gid=style.BOUND, label=f"K = {d['k']:g}")
    finish(ax, d["norm"], "‖H(θ)‖ / (1 + ‖θ‖)")
    ax.set_title(style.scenario_title(sc, sim))
    style.legend_below(fig, [ax], ncols=1)
    return style.save(fig, rows, ctx.out, name)
