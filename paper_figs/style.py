r"""The one style of every figure: sizes, palette, fonts, and how a figure is saved.

* Sizes: ``COLUMN`` = 3.4 in (one column of a two-column paper) and ``FULL`` = 7.0 in; fonts of
  7–8 pt, so text stays readable when the figure is printed at that width without scaling.
* Colours: the Okabe–Ito palette (Okabe & Ito 2008), distinguishable under the common forms of
  colour blindness; series differ by line style or marker as well as colour.
* The rcParams ``RC`` are set when this module is imported.
* Output: :func:`save` writes ``NAME.pdf`` (vector, fonts embedded as TrueType), ``NAME.png``
  (``PNG_DPI``) and ``NAME.csv`` (:mod:`paper_figs.data`), each atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from paper_figs.data import write_csv  # noqa: E402
from theory.files import atomic_path  # noqa: E402

__all__ = ["COLUMN", "FULL", "OKABE_ITO", "PNG_DPI", "figure", "legend_below", "panel_label",
           "save", "scenario_title"]

COLUMN = 3.4  #: inches, one column of a two-column paper
FULL = 7.0  #: inches, the full text width
PNG_DPI = 100  #: dots per inch of the PNG previews

#: Okabe–Ito colours by name
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}

RC = {
    "font.size": 7.5, "axes.titlesize": 8, "axes.labelsize": 7.5, "legend.fontsize": 6.5,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.2, "lines.markersize": 3.5,
    "axes.linewidth": 0.6, "grid.linewidth": 0.4, "grid.alpha": 0.35, "axes.grid": True,
    "legend.frameon": True, "legend.framealpha": 0.85, "legend.edgecolor": "0.8",
    "legend.handlelength": 1.8, "pdf.fonttype": 42, "ps.fonttype": 42,
    "savefig.bbox": "tight", "savefig.pad_inches": 0.02, "axes.prop_cycle": matplotlib.cycler(
        color=[OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky",
                                      "black")]),
}
matplotlib.rcParams.update(RC)  # this process draws only house-style figures


def figure(width: float = COLUMN, height: float = 2.4, ncols: int = 1, nrows: int = 1,
           **kwargs: Any) -> tuple[Figure, Any]:
    """A figure of ``width`` × ``height`` inches with a grid of axes, in the house style."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained",
                             **kwargs)
    fig.get_layout_engine().set(h_pad=0.03, w_pad=0.03)
    return fig, axes


def panel_label(ax: Axes, letter: str, title: str = "") -> None:
    """Title a panel "(a) title", left-aligned."""
    ax.set_title(f"({letter}) {title}".strip(), loc="left")


def legend_below(fig: Figure, axes: Iterable[Axes], ncols: int = 3) -> None:
    """One legend for ``axes`` (entries merged by label) below the panels, outside the data."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(entries.values(), entries.keys(), loc="outside lower center", ncols=ncols)


def save(fig: Figure, rows: Iterable[dict[str, Any]], out: Path, name: str) -> list[Path]:
    """Write ``out/name.pdf``, ``out/name.png`` and ``out/name.csv``; close the figure."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, options in ((".pdf", {}), (".png", {"dpi": PNG_DPI})):
        path = out / f"{name}{suffix}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix[1:], **options)
        written.append(path)
    plt.close(fig)
    written.append(write_csv(out / f"{name}.csv", rows))
    return written


def scenario_title(sc: Any, sim: Any) -> str:
    """One line naming a scenario's setting: name, problem, clip rule, schedule, T and R."""
    return (f"{sc.name}: {sc.problem['name']}, {sc.make_rule().describe()}, a(t) = {sc.schedule}, "
            f"T = {sim.steps} steps, {sim.paths} paths")
