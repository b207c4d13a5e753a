r"""Figure 1: the probability of leaving a ball against its radius, measured and bounded.

(a) The paper's event E_M = {max_{s≤T} ‖θ(s) − θ(0)‖ > M}: the fraction of paths in E_M with
its Clopper–Pearson 95% band, the paper's bound (15) 2·exp(−2M²/(λ²γ)), γ = Σ_{t≥0} a(t)², and
the deterministic radius λ·Σ_{t<T} a(t) beyond which no path of classic clipping can go.
(b) The martingale part: the fraction of paths with max_{s≤T} ‖ξ(s)‖ ≥ r against Pinelis'
bound 2·exp(−r²/(8λ²γ_T)), γ_T = Σ_{t<T} a(t)².

Both on ½(θ − y)² in 1-D with θ(0) = 0, classic clipping λ = 1, a(t) = 1/(t+1): y ~ N(100, 1)
(far minimiser: every path runs at full speed λa(t) and leaves every ball inside the
deterministic radius, while (15) says that almost none does) and y ~ N(0, 1) (near minimiser).

Below what plain Monte Carlo resolves (about 1/paths), the near scenario's curves go on with
adaptive multilevel splitting (:func:`simulations.engine.rare.ams`, diamonds with their 95%
intervals,
"splitting (AMS)"): per panel ONE ``ams`` run to the highest level L with ``importance="max"``,
whose ``curve`` gives P(max_{s≤T} z(s) ≥ ℓ) at every level ℓ ≤ L of ``AMS_RUNS`` (each the
estimate the run to ℓ would have given; z = ‖θ(s) − θ(0)‖ in (a), ‖ξ(s)‖ in (b)), for the same
chain and T. ``max`` because only its levels are levels of z (the default ``scaled`` is
(z − L)/w(s), and on this chain it would also tie every path that never climbs at its value at
s = 0). The levels stay off the atoms λ·Σ_{t<s} a(t), where ">" (the Monte Carlo curve of (a))
and "≥" (AMS) agree, and inside the deterministic radius.

How far down, measured (``python -m simulations rare`` on this chain, T = 200, levels to 2.4,
10 replicas; the event is decided in the first ~10 steps, so T hardly matters): the near chain
reaches P(max_s |θ(s)| ≥ 2.4) ≈ 1e-12 well inside λΣa, but it gets there in a few large early
steps (a(t) = 1/(t+1)), so the clones of one parent that do not climb further all tie at the
parent's value at the branch step and are killed together. With N = 100 (k = 10, T = 500, run
to 2.7) all 10 replicas died out, the last before 2.5; with N = 300 none died but the estimates
at 2.34 were 4e-13 with relative error 0.6, a heavy-tailed estimator that mostly
underestimates; with N = 1000 (k = 100) 7.3e-12 at 2.34 (relative error 0.25) and 1.4e-12 at
2.4 (0.33), and with N = 2000 3.6e-12 (0.17) and 8e-13 (0.54), in agreement. So panel (a) uses
N = 1000. Panel (b)'s ξ builds up more gradually (no extinction); N = 1000 there too, as with
N = 300 its estimates came out 3–7× lower at 3.8 and 3.98 (1.9e-11, 1.3e-13), the same heavy
tail, and 20 replicas, as with 10 the interval at 3.98 reached 0. The ``--full`` figure
(T = 3000) took 4 min for (a) and 14.5 min for (b) (852 s CPU, ``OMP_NUM_THREADS=1``, 2 cores):
(a) 7.3e-12 at M = 2.34 (relative error 0.25) and 1.4e-12 at 2.4 (0.33), every interval above
0; (b) 5.3e-9 at r = 3.57 (0.21), 6.3e-11 at 3.8 (0.30) and 8.3e-13 at 3.98 (0.37, interval
[1.9e-13, 1.5e-12]), every interval above 0. The probability axis follows the measured
points (:func:`probability_axis`). The far scenario has no rare event to resolve: every step
is saturated (P(y < θ + λ) < 1e-1800 per step), so the exit probability is 1 up to λΣa and
exactly 0 beyond, and ξ stays at 0 up to that same chance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.intervals import clopper_pearson, exceedance
from paper_figs.runs import Context, simulation
from simulations.engine import rare
from simulations.engine.simulation import Simulation
from simulations.engine.spec import Chain
from simulations.verify.scenarios import Scenario
from theory import bounds

NAME = "fig1_blowup"
LAM = 1.0
SCHEDULE = "1/(t+1)"
SCENARIOS = {"far": 100.0, "near": 0.0}  #: scenario: mean of y
COLOURS = {"far": style.OKABE_ITO["vermillion"], "near": style.OKABE_ITO["blue"]}
LABELS = {"far": "far, y ~ N(100, 1)", "near": "near, y ~ N(0, 1)"}
FLOOR_AMS = 1e-13  #: where an AMS interval's lower end at 0 is drawn to
AMS_LABEL = "splitting (AMS)"
AMS_IMPORTANCE = "max"
#: the near scenario's splitting run per panel, (quick, full): its levels, off the atoms
#: λ·Σ_{t<s} a(t) by more than 0.01, and its size (measured choices: module docstring)
AMS_RUNS = {
    "a": ({"levels": (0.9, 1.2), "particles": 20, "kill": 8, "replicas": 6},
          {"levels": (1.2, 1.26, 1.32, 1.38, 1.44, 1.56, 1.62, 1.68, 1.74, 1.8, 1.86, 1.92,
                      1.98, 2.04, 2.16, 2.22, 2.34, 2.4),
           "particles": 1000, "kill": 100, "replicas": 10}),
    "b": ({"levels": (2.0,), "particles": 20, "kill": 8, "replicas": 6},
          {"levels": (2.0, 2.2, 2.4, 2.8, 3.0, 3.2, 3.4, 3.57, 3.8, 3.98),
           "particles": 1000, "kill": 100, "replicas": 20}),
}


CLAIMS = ("L1-paper", "L1-mart", "A3")
PINELIS_LABEL = r"Pinelis: $2\exp(-r^2/(8\lambda^2\gamma_T))$"
YLABEL_XI = r"$P(\mathrm{max}_{s\leq T}\,\|\xi(s)\| \geq r)$"


def draw_tail(ax: Axes, panel: str, name: str, grid: np.ndarray, values: np.ndarray, *,
              strict: bool, colour: str, label: str) -> Rows:
    """Plot the fraction k/n of the n ``values`` above each level of ``grid`` (> when
    ``strict``, ≥ otherwise; inf and nan count as above) with its Clopper–Pearson 95% band, as
    steps (the fraction is a step function of the level), and, where no value exceeds, the
    band's upper limit 1 − 0.025^(1/n); return the rows. Where the fraction reaches 0 the line
    ends: :func:`probability_axis` marks that level on the axis floor."""
    n = len(values)
    k = exceedance(values, grid, strict=strict)
    lower, upper = clopper_pearson(k, n)
    frac = k / n
    seen = k > 0
    ax.fill_between(grid, np.where(seen, lower, np.nan), np.where(seen, upper, np.nan),
                    step="post", color=colour, alpha=style.BAND_ALPHA[0] + 0.1, lw=0)
    ax.plot(grid, np.where(seen, frac, np.nan), color=colour, label=label, drawstyle="steps-post")
    ax.plot(grid, np.where(seen, np.nan, upper), color="0.45", lw=0.8, ls=(0, (1, 1)),
            label="95% upper limit where no path exceeds")
    return series(panel, name, grid, frac, lower=lower, upper=upper, exceed=k, paths=n)


def draw_bound(ax: Axes, grid: np.ndarray, log10: np.ndarray, label: str,
               ls: object = "--") -> None:
    """Plot a probability bound given by its log10 (a bound: it does not set the axis
    limits, and is clipped by them)."""
    ax.plot(grid, 10.0 ** np.clip(log10, -300.0, 300.0), color="k", ls=ls, label=label,
            gid=style.BOUND)


def axes_style(ax: Axes, letter: str, title: str, xlabel: str, log_x: bool = False) -> None:
    """x from 0 (or log), labels and title."""
    if log_x:
        ax.set_xscale("log")
    else:
        ax.set_xlim(0, ax.get_xlim()[1])
    ax.set_xlabel(xlabel)
    style.panel_label(ax, letter, title)


def probability_axis(ax: Axes, rows: Rows, colours: dict[str, str]) -> None:
    """The log probability axis of a panel whose measured points are ``rows`` (the fractions
    with their bands, the AMS estimates with their intervals): from below the smallest of them
    to 3, at most ``style.MAJOR_TICKS`` labelled decades; and, for each measured curve, the
    level where its fraction first reaches 0 marked on the floor ("no path beyond") in its
    colour (``colours``, by series name)."""
    values = ([r[k] for r in rows if r.get("exceed", 0) > 0 for k in ("y", "lower", "upper")]
              + [r[k] for r in rows if "estimate" in r for k in ("estimate", "low", "high")])
    floor, _ = style.log_axis(ax, values, pad=0.5)
    ax.set_ylim(floor, 3.0)
    curves: dict[str, list] = {}
    for r in rows:
        if "exceed" in r:
            curves.setdefault(r["series"], []).append(r)
    for i, (name, found) in enumerate(curves.items()):
        k = np.array([r["exceed"] for r in found])
        x = np.array([r["x"] for r in found])
        first = np.flatnonzero((k == 0) & (np.arange(len(k)) > 0) & (np.roll(k, 1) > 0))
        style.mark_zeros(ax, x[first], np.ones(len(first), dtype=bool), floor,
                         colours.get(name, "0.3"),
                         "fraction 0: no path beyond this radius" if i == 0 else None)


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


def splitting(ctx: Context, scenario: str, event: str, run: dict,
              steps: int) -> dict[str, np.ndarray]:
    """AMS estimates of P(max_{s≤T} z(s) ≥ ℓ) at each level ℓ of ``run["levels"]`` (z the
    ``event``'s score), all from one :func:`~simulations.engine.rare.ams` run to the highest level
    (its
    ``curve``) of the size ``run`` gives, kept in the run store as any AMS estimate
    (:meth:`~simulations.engine.store.RunStore.rare`, taken from there when present): estimate,
    relative error, the run's extinct replicas and trajectory-steps (the same on every row),
    and the interval ends (nan where the replicas have no spread,
    :func:`simulations.engine.rare.summarize`)."""
    levels = tuple(run["levels"])
    size = {k: run[k] for k in ("particles", "kill", "replicas")}
    chain = Chain.from_dict({
        "problem": {"name": "quadratic", "noise": "normal", "mean": SCENARIOS[scenario],
                    "sd": 1.0, "theta0": 0.0},
        "clip": {"rule": "classic", "lam": LAM}, "schedule": SCHEDULE, "steps": steps,
        "seed": 5})
    split = rare.Splitting(event=event, level=max(levels), levels=levels,
                           importance=AMS_IMPORTANCE, **size)
    r = ctx.store.rare(chain, split, lambda: rare.ams(chain, split),
                       name=f"ams-{scenario}-{event}")
    c, m = r.curve, len(levels)
    assert c is not None  # levels were given
    arrays = {"level": c.levels, "estimate": c.probability, "relative_error": c.relative_error,
              "extinct": np.full(m, float(r.extinct)),
              "steps": np.full(m, float(r.trajectory_steps))}
    # the curve's intervals: nan at a level whose replicas have no spread (no interval)
    arrays["low"], arrays["high"] = c.interval[:, 0], c.interval[:, 1]
    arrays["estimator"] = (f"AMS importance={AMS_IMPORTANCE} N={size['particles']} "
                           f"k={size['kill']} replicas={size['replicas']}, one run")
    return arrays


def draw_splitting(ax: Axes, panel: str, name: str, est: dict[str, np.ndarray],
                   colour: str) -> Rows:
    """Plot the AMS estimates (diamonds, 95% interval bars, the low end clipped at the axis
    floor, or at the estimate when that is below the floor; an estimate of 0 or without an
    interval is not drawn) and return their rows."""
    y, low, high = est["estimate"], est["low"], est["high"]
    shown = (y > 0) & np.isfinite(low)
    ax.errorbar(est["level"][shown], y[shown],
                yerr=[y[shown] - np.clip(low[shown], FLOOR_AMS, y[shown]), high[shown] - y[shown]],
                fmt="D", ms=3.5, color=colour, mfc="white", elinewidth=0.9, capsize=2,
                label=AMS_LABEL)
    return series(panel, name, est["level"], y, level=est["level"], estimate=y, low=low,
                  high=high, relative_error=est["relative_error"], extinct=est["extinct"],
                  trajectory_steps=est["steps"], estimator=est["estimator"])


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
        for ax, panel, grid, values, strict in ((ax_a, "a", m_grid, d["max_deviation"], True),
                                                (ax_b, "b", r_grid, d["xi_max"], False)):
            rows += draw_tail(ax, panel, f"empirical {name}", resolved(grid, values), values,
                              strict=strict, colour=COLOURS[name],
                              label=f"{LABELS[name]}: fraction, 95% band")
    for ax, panel, event in ((ax_a, "a", "exit"), (ax_b, "b", "xi")):
        est = splitting(ctx, "near", event, AMS_RUNS[panel][0 if ctx.quick else 1], steps)
        rows += draw_splitting(ax, panel, "AMS near", est, COLOURS["near"])
    rows += series("a", "paper bound (15)", m_grid, 10.0**paper, log10_y=paper, lam=LAM)
    rows += series("a", "deterministic radius", [radius], lam=LAM, horizon=steps)
    rows += series("b", "Pinelis bound", r_grid, 10.0**pinelis, log10_y=pinelis, lam=LAM,
                   horizon=steps)
    draw_bound(ax_a, m_grid, paper, "paper's bound (15): 2exp(−2M²/(λ²γ))")
    ax_a.axvline(radius, color="0.35", ls=":", lw=1.2,
                 label=f"deterministic radius λΣa = {radius:.2f}")
    draw_bound(ax_b, r_grid, pinelis, PINELIS_LABEL)
    for ax, letter, title, xlabel in (
            (ax_a, "a", "paper's event", "radius M of the ball about θ(0)"),
            (ax_b, "b", "martingale part ξ", "radius r")):
        axes_style(ax, letter, title, xlabel)
        probability_axis(ax, [r for r in rows if r["panel"] == letter],
                         {f"empirical {n}": COLOURS[n] for n in SCENARIOS})
    ax_a.set_ylabel(r"$P(\mathrm{max}_{s\leq T}\,\|\theta(s)-\theta(0)\| > M)$")
    ax_b.set_ylabel(YLABEL_XI)
    style.legend_below(fig, [ax_a, ax_b], ncols=3)
    fig.suptitle(f"classic clipping, λ = {LAM:g}, a(t) = 1/(t+1), T = {steps} steps, "
                 f"{len(data['far']['max_deviation'])} paths per scenario")
    return style.save(fig, rows, ctx.out, NAME)


def draw_scenario(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    """A panel per tail claim of the scenario, each the measured fraction against the radius
    with the claim's bound:

    * L1-paper: P(‖θ(T) − θ(0)‖ > M) against (15) 2·exp(−2M²/(λ²γ)) and (14) with
      γ_T = Σ_{t<T} a(t)², the scenario's radii M and, for classic clipping, λ·Σ_{t<T} a(t);
    * L1-mart: P(max_{s≤T} ‖ξ(s)‖ ≥ r) against Pinelis 2·exp(−r²/(8λ²γ_T)), the radii r;
    * A3: P(max_{s≤T} ‖θ(s)‖ > R) against the level δ (option ``a3_delta``, 0.05) and the
      scenario's blow-up radius.
    """
    arr, steps = sim.arrays, sim.steps
    lam, schedule = sc.clip.get("lam"), sc.schedule
    kinds = [c for c in CLAIMS if c in sc.claims]
    fig, axes = style.figure(min(style.FULL, 2.5 + 2.3 * len(kinds)), 3.1, ncols=len(kinds))
    axes = np.atleast_1d(axes)
    rows: Rows = []
    colour = style.OKABE_ITO["blue"]
    for ax, letter, claim in zip(axes, "abc", kinds, strict=False):
        if claim == "L1-paper":
            values = arr["deviation_at"][:, -1]
            reach = bounds.deterministic_radius(lam, schedule, horizon=steps)
            grid, log_x = _grid(values, [*sc.exit_radii, reach])
            rows += draw_tail(ax, letter, "empirical", grid, values, strict=True, colour=colour,
                              label="‖θ(T) − θ(0)‖ > M: fraction, 95% band")
            for horizon, form, ls in ((None, "(15)", "--"), (steps, "(14)", "-.")):
                log10 = log10_bound(bounds.lemma1_paper, lam, grid, schedule, horizon)
                rows += series(letter, f"paper bound {form}", grid, 10.0**log10, log10_y=log10,
                               lam=lam, horizon=np.nan if horizon is None else horizon)
                draw_bound(ax, grid, log10, f"paper's bound {form}", ls)
            rows += series(letter, "deterministic radius", [reach], lam=lam, horizon=steps)
            ax.axvline(reach, color="0.35", ls=":", lw=1.2,
                       label=f"deterministic radius λΣa = {reach:.3g}")
            _mark(ax, sc.exit_radii, "the claim's radii")
            axes_style(ax, letter, "L1-paper", "radius M of the ball about θ(0)", log_x)
            ax.set_ylabel(r"$P(\|\theta(T)-\theta(0)\| > M)$")
        elif claim == "L1-mart":
            values = arr["xi_max"]
            grid, log_x = _grid(values, sc.xi_radii)
            rows += draw_tail(ax, letter, "empirical", grid, values, strict=False, colour=colour,
                              label="max ‖ξ‖ ≥ r: fraction, 95% band")
            log10 = log10_bound(bounds.pinelis, lam, grid, schedule, steps)
            rows += series(letter, "Pinelis bound", grid, 10.0**log10, log10_y=log10, lam=lam,
                           horizon=steps)
            draw_bound(ax, grid, log10, PINELIS_LABEL)
            _mark(ax, sc.xi_radii, "the claim's radii")
            axes_style(ax, letter, "L1-mart", "radius r", log_x)
            ax.set_ylabel(YLABEL_XI)
        else:
            values = arr["max_norm"]
            finite = values[np.isfinite(values)]
            top = max(sc.blowup_radius, float(finite.max()) if finite.size else 1.0) * 2
            low = float(finite[finite > 0].min()) / 2 if np.any(finite > 0) else top * 1e-6
            grid = np.geomspace(min(low, top / 10), top, 240)
            rows += draw_tail(ax, letter, "empirical", grid, values, strict=True, colour=colour,
                              label="max ‖θ‖ > R: fraction, 95% band")
            delta = float(sc.options.get("a3_delta", 0.05))
            rows += series(letter, "delta", grid, np.full(len(grid), delta))
            ax.axhline(delta, color="k", ls="--", gid=style.BOUND,
                       label=f"A3's level δ = {delta:g}")
            _mark(ax, [sc.blowup_radius], "the blow-up radius")
            axes_style(ax, letter, "A3", "blow-up radius R", log_x=True)
            ax.set_ylabel(r"$P(\mathrm{max}_{s\leq T}\,\|\theta(s)\| > R)$")
    for ax, letter in zip(axes, "abc", strict=False):
        probability_axis(ax, [r for r in rows if r["panel"] == letter], {"empirical": colour})
    style.legend_below(fig, list(axes), ncols=2)
    fig.suptitle(style.scenario_title(sc, sim))
    return style.save(fig, rows, ctx.out, name)


def log10_bound(bound: Callable[..., bounds.ProbabilityBound], lam: float, radii: np.ndarray,
                schedule: str, horizon: int | None) -> np.ndarray:
    """log10 of the bound 2·exp(−κr²/(λ²γ_T)) at each radius r: the exponent at r = 1 from
    ``bound`` (:mod:`theory.bounds`), times r², so log10 P = log10 2 − exponent(1)·r²/ln 10."""
    exponent = bound(lam, 1.0, schedule, horizon=horizon).exponent
    return math.log10(2.0) - exponent * np.asarray(radii) ** 2 / math.log(10.0)


def _grid(values: np.ndarray, radii: list[float] | tuple[float, ...]) -> tuple[np.ndarray, bool]:
    """Radii up to 1.2 × the largest of the finite ``values`` and ``radii``, and whether the
    axis is logarithmic: 240 equally spaced ones, plus 120 up to the largest value so that the
    measured curve is resolved; log-spaced (300) when the radii reach past 20 × the values."""
    finite = values[np.isfinite(values)]
    data_top = float(finite.max()) if finite.size else 0.0
    top = 1.2 * max([*radii, data_top, 1e-12])
    if data_top > 0 and top > 20 * data_top:
        positive = finite[finite > 0]
        return np.geomspace(float(positive.min()) / 2, top, 300), True
    grid = np.linspace(top / 240, top, 240)
    if data_top > 0:
        grid = np.union1d(grid, np.linspace(data_top / 120, 1.05 * data_top, 120))
    return grid, False


def resolved(grid: np.ndarray, values: np.ndarray, count: int = 200) -> np.ndarray:
    """``grid`` with ``count`` more levels spaced evenly up to just beyond the largest finite
    value, so that a steep tail is drawn as the fraction's own steps, not as one drop."""
    finite = values[np.isfinite(values)]
    if not finite.size or finite.max() <= grid[0]:
        return grid
    return np.union1d(grid, np.linspace(grid[0], 1.02 * float(finite.max()), count))


def _mark(ax: Axes, radii: list[float] | tuple[float, ...], label: str) -> None:
    for i, r in enumerate(radii):
        ax.axvline(r, color=style.OKABE_ITO["orange"], ls="-.", lw=0.9,
                   label=label if i == 0 else None)
