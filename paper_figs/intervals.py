r"""Confidence intervals for what the figures measure."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["clopper_pearson", "exceedance"]


def clopper_pearson(k: np.ndarray, n: int, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    r"""The exact (Clopper–Pearson) interval for a binomial fraction k/n:

    lower = B⁻¹(α/2; k, n − k + 1) (0 when k = 0),
    upper = B⁻¹(1 − α/2; k + 1, n − k) (1 when k = n),  α = 1 − level,

    with B⁻¹(q; a, b) the quantile function of the Beta(a, b) law.
    """
    k = np.asarray(k, dtype=np.float64)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        upper = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return lower, upper


def exceedance(values: np.ndarray, levels: np.ndarray, *, strict: bool = True) -> np.ndarray:
    """The number of ``values`` above each level: #{v > level} (``strict``) or #{v ≥ level}.

    Infinite values (blown-up paths) count as above every level.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    side = "right" if strict else "left"
    return len(v) - np.searchsorted(v, np.asarray(levels, dtype=np.float64), side=side)
