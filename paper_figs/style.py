r"""The one style of every figure: sizes, palette, fonts, and how a figure is saved.

* Sizes: ``COLUMN`` = 3.4 in (one column of a two-column paper) and ``FULL`` = 7.0 in; fonts of
  7–8 pt (``RC``, the only place a font size is set), so text stays readable when the figure is
  printed at that width without scaling.
* Colours: the Okabe–Ito palette (Okabe & Ito 2008), distinguishable under the common forms of
  colour blindness; series differ by line style or marker as well as colour.
* The rcParams ``RC`` are set when this module is imported.
* Log axes (:func:`log_axis`): the limits follow the measured data (a bound or envelope is drawn
  with :data:`BOUND` as its ``gid`` and only as far as the axis reaches, with a note where it
  leaves), at most ``MAJOR_TICKS`` labelled decades, and exact zeros, which a log axis cannot
  show, as markers on the axis floor with a note (:func:`mark_zeros`) instead of a line that
  plunges.
* Output: :func:`save` writes ``NAME.pdf`` (vector, fonts embedded as TrueType), ``NAME.png``
  (``PNG_DPI``) and ``NAME.csv`` (:mod:`paper_figs.data`), each atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from paper_figs.data import write_csv  # noqa: E402
from theory.files import atomic_path  # noqa: E402

__all__ = ["BAND_ALPHA", "BOUND", "COLUMN", "FULL", "OKABE_ITO", "PNG_DPI", "figure",
           "legend_below", "log_axis", "mark_zeros", "panel_label", "save", "scenario_title"]

COLUMN = 3.4  #: inches, one column of a two-column paper
FULL = 7.0  #: inches, the full text width
PNG_DPI = 100  #: dots per inch of the PNG previews
BOUND = "bound"  #: the ``gid`` of a bound or envelope: drawn, but not data for the axis limits
BAND_ALPHA = (0.22, 0.4)  #: opacity of the outer (5–95 %) and inner (25–75 %) bands
MAJOR_TICKS = 7  #: at most this many labelled decades on a log axis

#: Okabe–Ito colours by name
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}

RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "figure.titlesize": 8, "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
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


def log_axis(ax: Axes, values: Any, axis: str = "y", pad: float = 0.3,
             floor: float | None = None) -> tuple[float, float]:
    """Make ``axis`` of ``ax`` logarithmic with limits that follow ``values`` (the measured data:
    their positive finite entries, padded by ``pad`` decades on each side; ``floor``, when
    given, is the lower limit instead) and at most ``MAJOR_TICKS`` labelled decades, 1, 2, 3, 5,
    10, ... decades apart (the first that fits), the other decades as unlabelled minor ticks.
    Returns the limits (lo, hi)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        v = np.array([1.0])
    lo = 10.0 ** (np.log10(v.min()) - pad) if floor is None else floor
    hi = 10.0 ** (np.log10(v.max()) + pad)
    getattr(ax, f"set_{axis}scale")("log")
    getattr(ax, f"set_{axis}lim")(lo, hi)
    span = np.log10(hi) - np.log10(lo)
    stride = next(k for k in (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 500)
                  if span / k <= MAJOR_TICKS - 1 or k == 500)
    target = getattr(ax, f"{axis}axis")
    target.set_major_locator(LogLocator(base=10.0**stride, subs=(1.0,), numticks=1000))
    target.set_major_formatter(LogFormatterSciNotation(base=10.0))
    target.set_minor_locator(LogLocator(base=10.0, numticks=1000,
                                        subs=tuple(range(2, 10)) if stride == 1 else (1.0,)))
    target.set_minor_formatter(NullFormatter())
    return lo, hi


def mark_zeros(ax: Axes, x: Any, zero: Any, floor: float, colour: str, label: str | None
               ) -> None:
    """Mark the points ``x`` where a quantity drawn on a log y-axis is exactly 0 (boolean
    ``zero``) as open triangles on the axis floor ``floor``, labelled ``label`` (e.g. "median
    = 0 exactly"), instead of a line that plunges out of the axis."""
    x, zero = np.asarray(x), np.asarray(zero, dtype=bool)
    if zero.any():
        ax.plot(x[zero], np.full(int(zero.sum()), floor), ls="none", marker="v", ms=3.5,
                mfc="white", mec=colour, mew=0.8, clip_on=False, label=label, zorder=3)


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
    """Two lines naming a scenario's setting: name, problem and clip rule; schedule, T and the
    number of paths."""
    return (f"{sc.name}: {sc.problem['name']}, {sc.make_rule().describe()}\n"
            f"a(t) = {sc.schedule}, T = {sim.steps} steps, {sim.paths} paths")
