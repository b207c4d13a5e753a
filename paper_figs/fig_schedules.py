r"""Figure 7: the step schedules, Σ_{t<T} a(t) and Σ_{t<T} a(t)² against T, with (A2).

(A2): a(t) > 0, Σ a(t) = ∞, Σ a(t)² < ∞. ``1/(t+1)`` is the schedule of every other figure
(and of the paper); the others show the two ways (A2) can fail. The sums and the verdicts come
from :mod:`theory.schedules` (closed forms for the power family c/(t+t0)^p), γ = Σ_{t≥0} a(t)².
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paper_figs import style
from paper_figs.data import Rows, series
from paper_figs.runs import Context
from theory.schedules import parse_schedule

NAME = "fig7_schedules"
#: schedule: role in the figures
SCHEDULES = {
    "1/(t+1)": "used in figures 1-6",
    "0.05/(1+t/100)": "slower decay, same p = 1",
    "1/(t+1)**0.75": "p = 0.75",
    "1/sqrt(t+1)": "p = 1/2",
    "0.01": "constant",
}
STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))


def make(ctx: Context) -> list[Path]:
    horizons = np.unique(np.round(np.geomspace(1, 1e8, ctx.size(30, 120))).astype(np.int64))
    fig, (ax_a, ax_b) = style.figure(style.FULL, 2.8, ncols=2)
    rows: Rows = []
    for (text, role), ls in zip(SCHEDULES.items(), STYLES, strict=True):
        schedule = parse_schedule(text)
        verdict = schedule.a2()
        word = {True: "holds", False: "fails", None: "undecided"}[verdict.holds]
        sums = np.array([schedule.partial_sum(int(t), 1) for t in horizons])
        squares = np.array([schedule.partial_sum(int(t), 2) for t in horizons])
        label = f"a(t) = {text} ({role}): (A2) {word}"
        ax_a.plot(horizons, sums, ls=ls, label=label)
        ax_b.plot(horizons, squares, ls=ls, label=label)
        common = {"schedule": text, "a2": word, "a2_reason": verdict.reason}
        rows += series("a", f"sum a {text}", horizons, sums, **common)
        rows += series("b", f"sum a^2 {text}", horizons, squares, gamma=schedule.gamma,
                       **common)
    for ax, letter, title, ylabel in (
            (ax_a, "a", "Σa must diverge", r"$\Sigma_{t<T} a(t)$ (τ reached, dimensionless)"),
            (ax_b, "b", "Σa² must converge", r"$\Sigma_{t<T} a(t)^2$ (dimensionless)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("horizon T (steps)")
        ax.set_ylabel(ylabel)
        style.panel_label(ax, letter, title)
    style.legend_below(fig, [ax_a, ax_b], ncols=2)
    return style.save(fig, rows, ctx.out, NAME)
