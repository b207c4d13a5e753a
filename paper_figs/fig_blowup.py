r"""Figure 1: the probability of leaving a ball against its radius, measured and bounded.

(a) The paper's event E_M = {max_{s≤T} ‖θ(s) − θ(0)‖ > M}: the fraction of paths in E_M with
its Clopper–Pearson 95% band, the paper's bound (15) 2·exp(−2M²/(λ²γ)), γ = Σ_{t≥0} a(t)², and
the deterministic radius λ·Σ_{t<T} a(t) beyond which no path of classic clipping can go.
(b) The martingale part: the fraction of paths with max_{s≤T} ‖ξ(s)‖ ≥ r against Pinelis'
bound 2·exp(−r²/(8λ²γ_T)), γ_T = Σ_{t<T} a(t)².

Both on ½(θ − y)² in 1-D with θ(0) = 0, classic clipping λ = 1, a(t) = 1/(t+1): y ~ N(100, 1)
(far minimiser: every path runs at full speed λa(t) and leaves every ball inside the
deterministic radius, while (15) says that almost none does) and y ~ N(0, 1) (near minimiser).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.intervals import clopper_pearson, exceedance
from paper_figs.runs import Context, simulation
from theory import bounds

NAME = "fig1_blowup"
LAM = 1.0
SCHEDULE = "1/(t+1)"
SCENARIOS = {"far": 100.0, "near": 0.0}  #: scenario: mean of y
COLOURS = {"far": style.OKABE_ITO["vermillion"], "near": style.OKABE_ITO["blue"]}
LABELS = {"far": "far, y ~ N(100, 1)", "near": "near, y ~ N(0, 1)"}
FLOOR = 1e-6  #: lower end of the probability axis


def measure(ctx: Context, scenario: str) -> dict[str, np.ndarray]:
    """max_s ‖θ(s) − θ(0)‖ and max_s ‖ξ(s)‖ per path for one scenario."""
    paths, steps = ctx.size(2000, 10000), ctx.size(500, 3000)
    arrays = simulation(
        ctx, f"blowup-{scenario}",
        problem={"name": "quadratic", "noise": "normal", "mean": SCENARIOS[scenario], "sd": 1.0},
        clip={"rule": "classic", "lam": LAM}, schedule=SCHEDULE, paths=paths, steps=steps,
        seed=1, record=["running_max", "xi"], xi_paths=paths, progress=None)
    xi_max = arrays["xi_max"] if "xi_max" in arrays else arrays["xi_norm_at"].max(axis=1)
    return {"max_deviation": arrays["max_deviation"], "xi_max": xi_max, "steps": steps}


def make(ctx: Context) -> list[Path]:
    data = {name: measure(ctx, name) for name in SCENARIOS}
    steps = int(data["far"]["steps"])
    radius = bounds.deterministic_radius(LAM, SCHEDULE, horizon=steps)
    m_grid = np.linspace(0.02, 1.2 * radius, 240)
    r_grid = np.linspace(0.02, 12.0, 240)
    paper = np.array([bounds.lemma1_paper(LAM, m, SCHEDULE).log10_probability for m in m_grid])
    pinelis = np.array([bounds.pinelis(LAM, r, SCHEDULE, horizon=steps).log10_probability
                        for r in r_grid])

    fig, (ax_a, ax_b) = style.figure(style.FULL, 3.1, ncols=2)
    rows: Rows = []
    for name, d in data.items():
        n = len(d["max_deviation"])
        for ax, panel, grid, values, strict in ((ax_a, "a", m_grid, d["max_deviation"], True),
                                                (ax_b, "b", r_grid, d["xi_max"], False)):
            k = exceedance(values, grid, strict=strict)
            lower, upper = clopper_pearson(k, n)
            frac = k / n
            rows += series(panel, f"empirical {name}", grid, frac, lower=lower, upper=upper,
                           exceed=k, paths=n)
            colour = COLOURS[name]
            seen = k > 0
            ax.fill_between(grid, np.maximum(lower, FLOOR), upper, where=seen, color=colour,
                            alpha=0.25, lw=0)
            ax.plot(grid, np.where(seen, upper, np.nan), color=colour, lw=0.5, alpha=0.6)
            ax.plot(grid, np.where(seen, frac, np.nan), color=colour,
                    label=f"{LABELS[name]}: fraction, 95% band")
            ax.plot(grid, np.where(seen, np.nan, upper), color="0.45", lw=0.8, ls=(0, (1, 1)),
                    label="95% upper limit where no path exceeds")
    rows += series("a", "paper bound (15)", m_grid, 10.0**paper, log10_y=paper, lam=LAM)
    rows += series("a", "deterministic radius", [radius], lam=LAM, horizon=steps)
    rows += series("b", "Pinelis bound", r_grid, 10.0**pinelis, log10_y=pinelis, lam=LAM,
                   horizon=steps)
    ax_a.plot(m_grid, np.where(paper >= np.log10(FLOOR), 10.0**paper, np.nan), "k--",
              label="paper's bound (15): 2exp(−2M²/(λ²γ))")
    ax_a.axvline(radius, color="0.35", ls=":", lw=1.2,
                 label=f"deterministic radius λΣa = {radius:.2f}")
    ax_b.plot(r_grid, np.where(pinelis >= np.log10(FLOOR), 10.0**pinelis, np.nan), "k--",
              label=r"Pinelis: $2\exp(-r^2/(8\lambda^2\gamma_T))$")
    for ax, letter, title, xlabel in (
            (ax_a, "a", "paper's event", "radius M (units of θ)"),
            (ax_b, "b", "martingale part ξ", "radius r (units of θ)")):
        ax.set_yscale("log")
        ax.set_ylim(FLOOR, 3.0)
        ax.set_xlim(0, ax.get_xlim()[1])
        ax.set_xlabel(xlabel)
        style.panel_label(ax, letter, title)
    ax_a.set_ylabel(r"$P(\mathrm{max}_{s\leq T}\,\|\theta(s)-\theta(0)\| > M)$")
    ax_b.set_ylabel(r"$P(\mathrm{max}_{s\leq T}\,\|\xi(s)\| \geq r)$")
    style.legend_below(fig, [ax_a, ax_b], ncols=3)
    fig.suptitle(f"classic clipping, λ = {LAM:g}, a(t) = 1/(t+1), T = {steps} steps, "
                 f"{len(data['far']['max_deviation'])} paths per scenario", fontsize=7.5)
    return style.save(fig, rows, ctx.out, NAME)
