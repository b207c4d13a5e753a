r"""Confidence intervals for what the figures measure."""

from __future__ import annotations

import numpy as np

from simulations.verify.claims.verdicts import clopper_pearson

__all__ = ["clopper_pearson", "exceedance"]


def exceedance(values: np.ndarray, levels: np.ndarray, *, strict: bool = True) -> np.ndarray:
    """The number of ``values`` above each level: #{v > level} (``strict``) or #{v ≥ level}.

    Infinite values (blown-up paths) count as above every level.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    side = "right" if strict else "left"
    return len(v) - np.searchsorted(v, np.asarray(levels, dtype=np.float64), side=side)
