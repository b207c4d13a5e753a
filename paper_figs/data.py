r"""The data behind a figure as one tidy CSV: a row per plotted point.

Every row has ``panel`` (the panel's letter), ``series`` (the legend entry or a short name) and
``x``, ``y``; a figure adds the columns it needs (``lower``/``upper`` for a band, ``log10_y``
for a probability that underflows float64, ...). Empty cells are missing values.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from theory.files import atomic_path

__all__ = ["Rows", "read_csv", "series", "write_csv"]

Rows = list[dict[str, Any]]


def series(panel: str, name: str, x: Sequence[float] | np.ndarray,
           y: Sequence[float] | np.ndarray | None = None, **columns: Any) -> Rows:
    """Rows ``{panel, series, x, y, **columns}`` for the points of one plotted series; each
    extra column is a scalar (repeated) or an array as long as ``x``."""
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.full(len(x), np.nan) if y is None else np.atleast_1d(np.asarray(y, np.float64))
    if len(y) != len(x):
        raise ValueError(f"series {name!r}: x has {len(x)} points and y has {len(y)}")
    cols = {k: np.broadcast_to(np.asarray(v), (len(x),)) for k, v in columns.items()}
    return [{"panel": panel, "series": name, "x": x[i], "y": y[i],
             **{k: v[i].item() for k, v in cols.items()}} for i in range(len(x))]


def _cell(value: Any) -> str:
    """A value as CSV text: floats round-trip exactly (repr), nan and None are empty."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write ``rows`` (the union of their keys as columns) to ``path`` atomically."""
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(k)) for k in columns])
    return path


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV written by :func:`write_csv`, numbers as float (empty cells as nan)."""
    def value(text: str) -> Any:
        if text == "":
            return math.nan
        try:
            return float(text)
        except ValueError:
            return text

    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(handle)]
