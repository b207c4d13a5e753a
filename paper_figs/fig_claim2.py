r"""Figure 3: Claim 2 on the visited points, ‖g/c‖ against ‖θ‖ under adaptive clipping.

Adaptive clipping (17), c = max(‖g‖/(λ·max(‖θ‖, ε)), 1), gives ‖g/c‖ = min(‖g‖, λ·max(‖θ‖, ε))
≤ K·(1 + ‖θ‖) with the smallest K = λ·max(1, ε); the paper's K = max(λε, λ, 1) is larger
exactly when λ·max(1, ε) < 1. The points are every (θ(t), g(t)) visited by the kept paths: the
gradients are recomputed from the paths and the runs' own counter-based draws (the replay
reproduces θ(t+1) = θ(t) − a(t)·g(t)/c(t); its largest error relative to
1 + |θ(t+1)| is saved as ``replay_error``).

Two settings on (L/2)(θ − y)², L = 100, y ~ N(0, 1), θ(0) = 1, a(t) = 1/(t+1): the paper's
λ = 30, ε = 10⁻³ (both K equal 30) and λ = 0.5, ε = 0.1 (tight K = 0.5, paper's K = 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.runs import Arrays, Context, simulation
from simulations.engine import sampling
from simulations.engine.problems import Problem
from simulations.engine.rules import ClipRule
from simulations.engine.simulation import Simulation
from simulations.verify.scenarios import Scenario
from theory import bounds

NAME = "fig3_claim2"
SCHEDULE = "1/(t+1)"
SEED = 3
PROBLEM = {"name": "quadratic", "noise": "normal", "mean": 0.0, "sd": 1.0, "curvature": 100.0,
           "theta0": 1.0}
SETTINGS = {"a": (30.0, 1e-3), "b": (0.5, 0.1)}  #: panel: (λ, ε)
LEGEND = {"a": "upper left", "b": "lower right"}  #: where each panel has no points
SHOWN = 3000  #: points drawn (and written to the CSV) per panel


CLAIMS = ("C2",)


def k_lines(lam: float, eps: float) -> list[tuple[str, float, str, str]]:
    """(name, K, line style, colour) of the tight K = λ·max(1, ε) and the paper's
    K = max(λε, λ, 1) (:func:`theory.bounds.claim2_constants`)."""
    k = bounds.claim2_constants(lam, eps)
    return [("tight K", k.k_tight, "-", style.OKABE_ITO["vermillion"]),
            ("paper's K", k.k_paper, "--", style.OKABE_ITO["black"])]


def visited_points(sim: Simulation, problem: Problem, rule: ClipRule) -> Arrays:
    """‖θ(t)‖, ‖g(t)‖ and ‖g(t)/c(t)‖ for t < T on every kept path, flattened."""
    path = torch.as_tensor(sim.arrays["path"])  # (k, T+1, P)
    k, steps = path.shape[0], path.shape[1] - 1
    batch = int(sim.setting["batch"])
    words = sampling.words(int(sim.setting["seed"]), range(k), range(steps),
                           batch * problem.words_per_sample)  # (T, k, words)
    theta = path[:, :-1].transpose(0, 1).reshape(steps * k, -1)
    g = problem.grad(theta, problem.sample(words.reshape(steps * k, -1), theta.dtype))
    clipped = rule.apply(g, theta, problem.layout)
    a = torch.as_tensor(np.repeat(sim.schedule()(np.arange(steps)), k))
    replay = theta - a[:, None] * g * clipped.scale[:, None]
    target = path[:, 1:].transpose(0, 1).reshape(steps * k, -1)
    return {"theta_norm": torch.linalg.vector_norm(theta, dim=1).numpy(),
            "g_norm": torch.linalg.vector_norm(g, dim=1).numpy(),
            "clipped_norm": clipped.norm.numpy(),
            "replay_error": np.array(float(((replay - target).abs() / (1 + target.abs())).max())),
            "claim2_ratio": sim.arrays["claim2_ratio"]}


def make(ctx: Context) -> list[Path]:
    steps, kept = ctx.size(500, 5000), ctx.size(32, 256)
    fig, axes = style.figure(style.FULL, 2.9, ncols=2)
    rows: Rows = []
    for ax, (panel, (lam, eps)) in zip(axes, SETTINGS.items(), strict=True):
        d = simulation(ctx, f"claim2-{panel}", problem=PROBLEM,
                       clip={"rule": "adaptive", "lam": lam, "eps": eps}, schedule=SCHEDULE,
                       paths=kept, steps=steps, seed=SEED, record=["paths", "claim2"],
                       keep_paths=kept, reduce=visited_points, progress=None)
        theta, clipped = d["theta_norm"], d["clipped_norm"]
        pick = np.random.default_rng(0).permutation(len(theta))[:SHOWN]
        ratio = clipped / (1 + theta)
        rows += series(panel, "visited points", theta[pick], clipped[pick],
                       g_norm=d["g_norm"][pick], lam=lam, eps=eps)
        rows += series(panel, "max ratio over all points", [np.nan], [ratio.max()],
                       points=len(theta), replay_error=float(d["replay_error"]))
        ax.scatter(theta[pick], clipped[pick], s=2, color=style.OKABE_ITO["blue"], alpha=0.35,
                   lw=0, rasterized=True, label=f"visited (θ(t), g(t)), {len(pick)} of "
                   f"{len(theta)}")
        grid = np.geomspace(max(theta.min(), 1e-12) / 2, theta.max() * 2, 200)
        for name, value, ls, colour in k_lines(lam, eps):
            rows += series(panel, name, grid, value * (1 + grid), K=value)
            ax.plot(grid, value * (1 + grid), ls=ls, color=colour,
                    label=f"{name} = {value:g}: K(1 + ‖θ‖)")
        threshold = lam * np.maximum(grid, eps)
        ax.plot(grid, threshold, ls=":", color="0.4", label="λ·max(‖θ‖, ε)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("distance from the origin ‖θ(t)‖")
        ax.set_ylabel("clipped gradient ‖g(t)/c(t)‖")
        style.panel_label(ax, panel, f"λ = {lam:g}, ε = {eps:g}; max ‖g/c‖/(1+‖θ‖) = "
                          f"{ratio.max():.3g}")
        ax.legend(loc=LEGEND[panel])
    return style.save(fig, rows, ctx.out, NAME)


def draw_scenario(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    """Claim 2 on the scenario's paths: the histogram over the paths of
    max_{t<T} ‖g(t)/c(t)‖/(1 + ‖θ(t)‖) on [0, 1.1·max(K, largest ratio)], with the tight and
    the paper's K."""
    lam, eps = float(sc.clip["lam"]), float(sc.clip["eps"])
    ratio = sim.arrays["claim2_ratio"]
    top = 1.1 * max(float(ratio.max()), *(value for _, value, _, _ in k_lines(lam, eps)))
    counts, edges = np.histogram(ratio, bins=np.linspace(0.0, top, 45))
    rows: Rows = series("a", "ratio histogram", 0.5 * (edges[1:] + edges[:-1]), counts,
                        lower=edges[:-1], upper=edges[1:], paths=len(ratio))
    rows += series("a", "max ratio over paths", [float(ratio.max())])
    fig, ax = style.figure(style.COLUMN, 2.6)
    ax.hist(ratio, bins=edges, color=style.OKABE_ITO["sky"], edgecolor=style.OKABE_ITO["blue"],
            lw=0.4, label=f"{len(ratio)} paths")
    for label, value, ls, colour in k_lines(lam, eps):
        rows += series("a", label, [value], K=value)
        ax.axvline(value, ls=ls, color=colour, label=f"{label} = {value:g}")
    ax.set_xlabel(r"$\mathrm{max}_{t<T}\,\|g/c\|/(1+\|\theta\|)$ on a path")
    ax.set_ylabel("paths")
    ax.set_title(style.scenario_title(sc, sim))
    style.legend_below(fig, [ax], ncols=3)
    return style.save(fig, rows, ctx.out, name)
