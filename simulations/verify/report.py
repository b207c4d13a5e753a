r"""The verification table as text, Markdown, JSON and LaTeX.

Every format has one row per (scenario, claim[, radius]) with the prediction, the measurement,
its 95% interval (Clopper–Pearson for probabilities, mean ± 1.96 standard errors for means, the
range over paths for pathwise claims), the verdict and the one-line reason.
:func:`write` puts ``report.md``, ``report.json`` and ``report.tex`` in a folder, each
atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulations.verify.claims import VERDICTS, ClaimResult
from theory.files import write_atomic
from theory.records import to_json

__all__ = ["FILES", "as_json", "latex", "markdown", "rows_of", "text", "unexpected", "write"]

FILES = ("report.md", "report.json", "report.tex")
COLUMNS = ("scenario", "claim", "prediction", "measurement", "interval", "verdict", "reason")


def _interval(row: ClaimResult) -> str:
    """``[lo, hi]``, or "—" without an interval (None, or the nan ends of an inconclusive
    estimate)."""
    if row.interval is None or any(math.isnan(x) for x in row.interval):
        return "—"
    lo, hi = row.interval
    return f"[{_num(lo)}, {_num(hi)}]"


def _num(x: float) -> str:
    if x == 0 or 1e-3 <= abs(x) < 1e6:
        return f"{x:.4g}"
    return f"{x:.3g}"


def rows_of(rows: Sequence[ClaimResult]) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts: ``scenario``, ``claim``, ``prediction``, ``measurement``,
    ``interval`` ([lo, hi] or null), ``verdict``, ``reason``, and ``statement``,
    ``prediction_value``, ``measurement_value``, ``details``."""
    return [to_json(r.to_dict()) for r in rows]


def as_json(rows: Sequence[ClaimResult]) -> str:
    """The rows as a JSON list (see :func:`rows_of`)."""
    return json.dumps(rows_of(rows), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def text(rows: Sequence[ClaimResult], width: int = 100) -> str:
    """The table for a terminal: one line per row, its reason indented beneath it."""
    cells = [(r.scenario, r.claim, r.verdict, r.prediction, r.measurement, _interval(r))
             for r in rows]
    head = ("scenario", "claim", "verdict", "prediction", "measurement", "95% interval")
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("─" * w for w in widths))
    for row, cell in zip(rows, cells, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip())
        lines.append("    └ " + row.reason)
    counts = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    lines.append(f"{len(rows)} rows: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    return "\n".join(lines)


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown(rows: Sequence[ClaimResult]) -> str:
    """A Markdown table with every column of :data:`COLUMNS`."""
    lines = ["| scenario | claim | prediction | measurement | 95% interval | verdict | reason |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = (r.scenario, r.claim, r.prediction, r.measurement, _interval(r),
                 f"**{r.verdict}**", r.reason)
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}"}


def _tex(cell: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in cell)


def latex(rows: Sequence[ClaimResult]) -> str:
    """A LaTeX ``table`` (booktabs, ``tabularx``) of scenario, claim, prediction, measurement,
    interval and verdict; the reasons go in a numbered list after it. UTF-8 text: compile with
    LuaLaTeX or XeLaTeX (Greek letters and ‖ appear as they are)."""
    out = [r"% needs \usepackage{booktabs,tabularx}; UTF-8 (LuaLaTeX or XeLaTeX)",
           r"\begin{table*}", r"\centering\small",
           r"\begin{tabularx}{\textwidth}{llXXll}", r"\toprule",
           r"scenario & claim & prediction & measurement & 95\% interval & verdict \\",
           r"\midrule"]
    for r in rows:
        cells = (r.scenario, r.claim, r.prediction, r.measurement, _interval(r), r.verdict)
        out.append(" & ".join(_tex(c) for c in cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabularx}",
            r"\caption{Each claim of the paper against the Monte Carlo paths.}",
            r"\label{tab:verification}", r"\end{table*}", r"\begin{enumerate}\small"]
    out += [r"\item " + _tex(f"{r.scenario}, {r.claim}: {r.reason}") for r in rows]
    out.append(r"\end{enumerate}")
    return "\n".join(out) + "\n"


def write(rows: Sequence[ClaimResult], out: str | os.PathLike) -> list[Path]:
    """``report.md``, ``report.json`` and ``report.tex`` in the folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in FILES]
    for path, content in zip(paths, (markdown(rows), as_json(rows), latex(rows)), strict=True):
        write_atomic(path, content)
    return paths


def unexpected(rows: Sequence[ClaimResult],
               expect: dict[str, dict[str, tuple[str, ...]]]) -> list[tuple[ClaimResult, str]]:
    """The rows whose verdict differs from ``expect[scenario][claim]`` (a tuple with one verdict
    per row of that claim, in order; a single verdict applies to every row), with the verdict
    that was expected."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for row in rows:
        wanted = expect.get(row.scenario, {}).get(row.claim)
        if wanted is None:
            continue
        i = seen.get((row.scenario, row.claim), 0)
        seen[(row.scenario, row.claim)] = i + 1
        verdict = wanted[i] if len(wanted) > 1 else wanted[0]
        if i >= len(wanted) and len(wanted) > 1:
            verdict = wanted[-1]
        if row.verdict != verdict:
            out.append((row, verdict))
    return out
