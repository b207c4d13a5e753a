r"""The user's own bounds (``[[bound]]`` tables of a scenario,
:mod:`simulations.verify.claims.bound`): for each, a panel with the bound against the radius,
the measured fraction of paths in the event with its Clopper–Pearson 95% band (as in Figure 1),
and at each radius the bound is checked at, the estimate with its interval, marked with the
verdict of the claim's row.

Drawn for a scenario only (``python -m paper_figs --scenario my.toml``): the rows are those
``verify`` prints (:func:`simulations.verify.claims.evaluate` on the scenario's run), and the
bound's curve is its expression evaluated as the claim evaluates it
(:func:`simulations.verify.claims.bound.log10_bound`, 30 digits) at the symbols of the row, the
radius varied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.fig_blowup import (
    YLABEL_XI,
    axes_style,
    draw_bound,
    draw_tail,
    probability_axis,
)
from paper_figs.runs import Context
from simulations.engine.simulation import Simulation
from simulations.verify.claims import evaluate
from simulations.verify.claims.bound import EVENTS, log10_bound, parse_expression
from simulations.verify.claims.registry import get
from simulations.verify.scenarios import Scenario

NAME = "fig10_bounds"
CLAIMS: tuple[str, ...] = ()  #: the user's bounds have the ids the scenario gives them
VERDICT_MARKERS = {"holds": "o", "violated": "X", "vacuous": "s", "inconclusive": "d"}
YLABEL = {"exit": r"$P(\mathrm{max}_{s\leq T}\,\|\theta(s)-\theta(0)\| > M)$",
          "xi": YLABEL_XI, "blowup": r"$P(\mathrm{max}_{s\leq T}\,\|\theta(s)\| > M)$"}
XLABEL = {"exit": "radius M of the ball about θ(0)", "xi": "radius r of ξ",
          "blowup": "blow-up radius M"}


def claims_of(sc: Scenario) -> list[str]:
    """The scenario's ``[[bound]]`` claims."""
    return [c for c in sc.claims if get(c).source.startswith("[[bound]]")]


def draw_scenario(ctx: Context, sc: Scenario, sim: Simulation, name: str) -> list[Path]:
    ids = claims_of(sc)
    if not ids:
        raise NotImplementedError("the scenario has no [[bound]]")
    results = evaluate(sc, sim, ids)
    fig, axes = style.figure(min(style.FULL, 1.2 + 2.9 * len(ids)), 3.2, ncols=len(ids))
    axes = np.atleast_1d(axes)
    rows: Rows = []
    colour = style.OKABE_ITO["blue"]
    for ax, letter, claim in zip(axes, "abcdefgh", ids, strict=False):
        mine = [r for r in results if r.claim == claim]
        d = mine[0].details
        event, expression = d["event"], d["expression"]
        values = sim.arrays[EVENTS[event][2]]
        finite = values[np.isfinite(values)]
        radii = [r.details["radius"] for r in mine]
        top = 1.2 * max([*radii, float(finite.max()) if finite.size else 0.0])
        grid = np.linspace(top / 240, top, 240)
        panel = draw_tail(ax, letter, "empirical", grid, values, strict=event != "xi",
                          colour=colour, label="fraction of paths in the event, 95% band")
        expr = parse_expression(expression)
        log10 = np.array([log10_bound(expr, d["symbols"] | {"M": R, "r": R}) for R in grid])
        panel += series(letter, "bound", grid, 10.0 ** np.clip(log10, -300, 300), log10_y=log10,
                        expression=expression)
        draw_bound(ax, grid, log10, f"bound: {expression}")
        for r in mine:
            assert r.interval is not None and r.measurement_value is not None
            lo, hi = r.interval
            p = r.measurement_value
            ax.errorbar([r.details["radius"]], [p if p > 0 else hi],
                        yerr=[[p - lo if p > 0 else 0.0], [hi - p if p > 0 else 0.0]],
                        fmt=VERDICT_MARKERS.get(r.verdict, "o"), ms=4, capsize=2,
                        color=style.OKABE_ITO["vermillion"], mfc="white",
                        uplims=p == 0, label=f"checked radius: {r.verdict}")
            panel += series(letter, "checked radius", [r.details["radius"]], [p], lower=lo,
                            upper=hi, log10_bound=r.details["log10_bound"], verdict=r.verdict,
                            exits=r.details["exits"], paths=r.details["paths"])
        axes_style(ax, letter, claim, XLABEL[event])
        ax.set_ylabel(YLABEL[event])
        probability_axis(ax, panel, {"empirical": colour})
        rows += panel
    style.legend_below(fig, list(axes), ncols=2)
    fig.suptitle(style.scenario_title(sc, sim))
    return style.save(fig, rows, ctx.out, name)
