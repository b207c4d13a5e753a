r"""Figure 9: the assumptions (A1) and (A2) as a table, one row per scenario of the built-in
``paper`` suite: the problem, (A1) (the loss is C² in θ: its activation, decided by
:func:`theory.assumptions.a1`), the schedule a(t) and (A2) (a(t) > 0, Σa = ∞, Σa² < ∞, decided
by :meth:`theory.schedules.Schedule.a2`), each with the verdict and reason of the claims ``A1``
and ``A2`` (:mod:`simulations.verify.claims.a1`, :mod:`simulations.verify.claims.a2`),
whatever claims the scenario lists. No paths are simulated. The CSV holds the full reasons.
"""

from __future__ import annotations

from pathlib import Path

from paper_figs import style
from paper_figs.data import Rows
from paper_figs.runs import Context
from simulations.verify.claims import evaluate
from simulations.verify.scenarios import Scenario, load_suite

NAME = "fig9_assumptions"
COLUMNS = ("scenario", "problem", "(A1)", "a(t)", "(A2)")
COLOURS = {"holds": "#d9f0d3", "violated": "#fbd5c0", "inconclusive": "#eeeeee"}


def assumption_rows(scenarios: list[Scenario]) -> Rows:
    """For each scenario: its name, problem, the verdicts and reasons of A1 and A2."""
    rows: Rows = []
    for sc in scenarios:
        found = {row.claim: row for row in evaluate(sc, None, ("A1", "A2"))}
        rows.append({"panel": "a", "series": sc.name, "scenario": sc.name,
                     "problem": sc.problem["name"], "a1": found["A1"].verdict,
                     "a1_measurement": found["A1"].measurement, "a1_reason": found["A1"].reason,
                     "schedule": sc.schedule, "a2": found["A2"].verdict,
                     "a2_reason": found["A2"].reason})
    return rows


def _cell(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def make(ctx: Context) -> list[Path]:
    rows = assumption_rows(load_suite("paper"))
    cells = [[r["scenario"], r["problem"], f"{r['a1']}: " + (
        "no activation" if r["a1_measurement"] == "—" else _cell(r["a1_measurement"], 18)),
        r["schedule"], r["a2"]] for r in rows]
    fig, ax = style.figure(style.FULL, 0.5 + 0.2 * len(rows))
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=COLUMNS, loc="center", cellLoc="left",
                     colLoc="left", colWidths=(0.2, 0.16, 0.28, 0.2, 0.12))
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    for (i, j), cell in table.get_celld().items():
        cell.set_linewidth(0.4)
        if i == 0:
            cell.set_text_props(weight="bold")
        elif j in (2, 4):
            verdict = rows[i - 1]["a1" if j == 2 else "a2"]
            cell.set_facecolor(COLOURS.get(verdict, "white"))
    ax.set_title("(A1) C² loss and (A2) Σa = ∞, Σa² < ∞ on the paper suite", loc="left")
    return style.save(fig, rows, ctx.out, NAME)
