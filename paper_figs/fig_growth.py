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
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.runs import Arrays, Context, simulation
from simulations.engine.problems import Problem
from simulations.engine.rules import ClipRule
from simulations.engine.simulation import Simulation
from simulations.verify.scenarios import Scenario
from theory import bounds

NAME = "fig2_growth"
CLAIMS = ("C2-growth", "L1-det")  #: A3 adds its blow-up radius when drawn with them
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
ZERO_MARKS = 25  #: at most this many markers of a zero per series (plus one per run of zeros)
ROUNDING_ULPS = 8  #: a norm this many units of roundoff of the one before is 0 (rounding)


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


def below_rounding(values: np.ndarray) -> np.ndarray:
    """Where a norm (the last axis: the steps) is 0 up to rounding: exactly 0, or at most
    ``ROUNDING_ULPS`` units of roundoff (2⁻⁵³) of its value one step before, which is all the
    rounding of an update that cancels θ in exact arithmetic leaves (adaptive clipping at
    λa(t) = 1, or unclipped SGD at a(t)L = 1, where y is below one ulp of θ)."""
    before = np.concatenate([np.zeros_like(values[..., :1]), values[..., :-1]], axis=-1)
    return (values == 0) | (values <= ROUNDING_ULPS * np.finfo(np.float64).epsneg * before)


def draw_percentiles(ax: Axes, panel: str, name: str, t: np.ndarray, percentiles: np.ndarray,
                     colour: str, label: str, floor: float, **columns: Any) -> Rows:
    """Plot the 5–95 % and 25–75 % bands and the median of ``percentiles`` (rows:
    ``PERCENTILES``) at the steps ``t`` > 0 on a log y-axis whose lower limit is ``floor``: a
    band whose lower end is 0 up to rounding (:func:`below_rounding`) reaches down to the
    floor, and where the median is, it is marked on the floor
    (:func:`~paper_figs.style.mark_zeros`: the first step of each run of such steps, and at
    most ``ZERO_MARKS`` log-spaced steps within them) instead of plunging; the rows
    ``{name} percentiles`` (the values as computed)."""
    p5, p25, p50, p75, p95 = percentiles
    zero = below_rounding(percentiles)
    on = t > 0
    for (i, j), alpha in zip(((0, 4), (1, 3)), style.BAND_ALPHA, strict=True):
        ax.fill_between(t[on], np.where(zero[i], floor, percentiles[i])[on], percentiles[j][on],
                        where=(~zero[j])[on], color=colour, alpha=alpha, lw=0)
    ax.plot(t[on], np.where(zero[2], np.nan, p50)[on], color=colour, label=label)
    marks = np.zeros(len(t), dtype=bool)
    marks[np.unique(np.geomspace(1, max(len(t) - 1, 1), ZERO_MARKS).astype(np.int64))] = True
    starts = zero[2] & ~np.roll(zero[2], 1)
    at = on & zero[2] & (marks | starts)
    first = int(t[np.argmax(at)]) if at.any() else None
    style.mark_zeros(ax, t, at, floor, colour, None if first is None else
                     f"{name}: median 0 up to rounding (first at t = {first})")
    return series(panel, f"{name} percentiles", t, p50, p5=p5, p25=p25, p75=p75, p95=p95,
                  **columns)


def draw_envelope(ax: Axes, x: np.ndarray, log10_y: np.ndarray, top: float, label: str,
                  **kwargs: Any) -> None:
    """Draw a bound given by its log10 at ``x`` as far as the axis reaches (``top``), saying in
    its label where it leaves the axis and the value it reaches at the last x."""
    log10_y = np.asarray(log10_y, dtype=np.float64)
    leaves = np.flatnonzero(log10_y > np.log10(top))
    if leaves.size:
        label += (f"; leaves the axis at t = {int(x[leaves[0]])}, "
                  f"10^{log10_y[-1]:.0f} at t = {int(x[-1])}")
    y = 10.0 ** np.minimum(log10_y, 300.0)
    ax.plot(x, np.where(log10_y <= np.log10(top) + 1, y, np.nan), gid=style.BOUND, label=label,
            **kwargs)


def make(ctx: Context) -> list[Path]:
    paths, steps = ctx.size(400, 1000), ctx.size(1000, 10000)
    data = {name: simulation(ctx, f"growth-{name}", problem=PROBLEM, clip=rule,
                             schedule=SCHEDULE, paths=paths, steps=steps, seed=2,
                             record=["paths"], keep_paths=paths, reduce=norm_percentiles,
                             progress=None)
            for name, rule in RULES.items()}
    t = np.arange(steps + 1)
    fig, ax = style.figure(style.COLUMN, 3.6)
    measured = np.concatenate([d[k][..., 1:][~below_rounding(d[k])[..., 1:]]
                               for d in data.values() for k in ("percentiles", "single")])
    floor, top = style.log_axis(ax, measured, pad=0.5)
    rows: Rows = []
    for name, d in data.items():
        rows += draw_percentiles(ax, "a", name, t, d["percentiles"], COLOURS[name],
                                 f"{name}: median, 25–75 %, 5–95 %", floor, paths=paths)
        for i, single in enumerate(d["single"]):
            ax.plot(t[1:], np.where(below_rounding(single), np.nan, single)[1:],
                    color=COLOURS[name], lw=0.4, alpha=0.8)
            rows += series("a", f"{name} path {i}", t, single)
    grid = np.unique(np.round(np.geomspace(1, steps, 120)).astype(int))
    deterministic, log10_gronwall = envelopes(grid)
    rows += series("a", "deterministic envelope", grid, deterministic,
                   radius=deterministic - THETA0, lam=LAM, theta0=THETA0)
    rows += series("a", "Gronwall envelope", grid, 10.0**log10_gronwall, log10_y=log10_gronwall,
                   lam=LAM, eps=EPS, theta0=THETA0)
    draw_envelope(ax, grid, log10_gronwall, top, "Grönwall bound (adaptive)", color="k",
                  ls="--")
    draw_envelope(ax, grid, np.log10(deterministic), top, "‖θ(0)‖ + λΣa (classic)", color="k",
                  ls=":", lw=1.4)
    ax.set_xscale("log")
    ax.set_xlim(1, steps)
    ax.set_xlabel("step t")
    ax.set_ylabel("‖θ(t)‖")
    ax.set_title(f"L = {CURVATURE:g}, y ~ N(0, 1), λ = {LAM:g}, ε = {EPS:g}, a(t) = 1/(t+1); "
                 f"{paths} paths")
    style.legend_below(fig, [ax], ncols=1)
    return style.save(fig, rows, ctx.out, NAME)


def draw_scenario(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    """Percentiles over the paths at the checkpoints s, and the largest over the paths, of

    * C2-growth (adaptive): ‖θ(s)‖ against Grönwall max(max_paths ‖θ(0)‖, ε)·Π_{t<s}(1 + λa(t));
    * L1-det (classic): ‖θ(s) − θ(0)‖ against λ·Σ_{t<s} a(t);

    with A3's blow-up radius when the scenario checks A3 too.
    """
    arr = sim.arrays
    steps = arr["checkpoint_steps"].astype(np.int64)
    lam, schedule = float(sc.clip["lam"]), sc.schedule
    if "C2-growth" in sc.claims:
        values, what = arr["norm_at"], "‖θ(s)‖"
        eps, theta0 = float(sc.clip["eps"]), float(np.max(arr["norm_at"][:, 0]))
        log10 = np.array([bounds.gronwall(lam, eps, schedule, int(s), theta0).log10_norm
                          for s in steps])
        envelope, envelope_name = 10.0**log10, "Gronwall envelope"
        label, extra = "Grönwall bound max(‖θ(0)‖, ε)·Π(1 + λa)", {"log10_y": log10,
                                                                   "eps": eps,
                                                                   "theta0": theta0}
    else:
        values, what = arr["deviation_at"], "‖θ(s) − θ(0)‖"
        envelope = np.array([bounds.deterministic_radius(lam, schedule, horizon=int(s))
                             for s in steps])
        envelope_name, label, extra = "deterministic envelope", "λΣ_{t<s} a(t)", {}
    finite = np.where(np.isfinite(values), values, np.nan)
    percentiles = np.nanpercentile(finite, PERCENTILES, axis=0)
    worst = np.max(values, axis=0)
    on = steps > 0
    fig, ax = style.figure(style.COLUMN + 0.6, 3.4)
    shown = np.vstack([percentiles, worst])
    floor, top = style.log_axis(ax, shown[:, on][~below_rounding(shown)[:, on]], pad=0.5)
    rows = draw_percentiles(ax, "a", "norm", steps, percentiles, style.OKABE_ITO["blue"],
                            f"{what}: median, 25–75 %, 5–95 %", floor, paths=len(values))
    ax.plot(steps[on], np.where(worst > 0, worst, np.nan)[on],
            color=style.OKABE_ITO["vermillion"], lw=0.8, label=f"largest {what} over the paths")
    rows += series("a", "max over paths", steps, worst)
    with np.errstate(divide="ignore"):
        log10_envelope = extra.get("log10_y", np.log10(envelope))
    draw_envelope(ax, steps[on], np.asarray(log10_envelope)[on], top, label, color="k",
                  ls="--")
    rows += series("a", envelope_name, steps, envelope, lam=lam, **extra)
    if "A3" in sc.claims:  # drawn where it is inside the axis; named in the title otherwise
        rows += series("a", "blow-up radius", [steps[-1]], [sc.blowup_radius])
        if floor <= sc.blowup_radius <= top:
            ax.axhline(sc.blowup_radius, color="0.4", ls=":", gid=style.BOUND,
                       label=f"A3's blow-up radius {sc.blowup_radius:g}")
        else:
            label_a3 = f"A3's blow-up radius {sc.blowup_radius:g} (off the axis)"
            ax.plot([], [], color="0.4", ls=":", label=label_a3)
    ax.set_xscale("log")
    ax.set_xlabel("step s")
    ax.set_ylabel(what)
    ax.set_title(style.scenario_title(sc, sim))
    style.legend_below(fig, [ax], ncols=1)
    return style.save(fig, rows, ctx.out, name)
