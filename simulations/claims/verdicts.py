r"""The verdict rules, each a small function of numbers (no runs, no problems).

A verdict is one of ``holds``, ``violated``, ``vacuous``, ``inconclusive``, ``does not apply``
(a theorem whose hypothesis fails measurably on the run, e.g. T1's bounded iterates: it says
nothing there, which is not a violation). The rules:

* **Probability bound** P(event) ≤ b (L1-paper, L1-mart, A3, a user's ``[[bound]]``), from k
  events in n paths with the Clopper–Pearson 95% interval [lo, hi] of k/n:

  - ``vacuous`` when b ≥ 1, or the event is impossible before the horizon;
  - ``violated`` when lo > b (the bound is below what was measured, at 95%);
  - ``holds`` when hi ≤ b (the measurement resolves the bound: even the upper limit is below);
  - ``inconclusive`` otherwise. In particular 0 events in n paths against a bound below the
    upper limit 1 − 0.025^{1/n} (≈ 3.7/n) is ``inconclusive``: 0 of 100 paths cannot tell a
    bound of 10⁻⁶ from a false one. A rare-event estimator is needed to resolve such rows.

* **Pathwise bound** v ≤ b on every path (L1-det, C2, C2-growth): ``violated`` when some path's
  ratio v/b exceeds 1 + ρ, else ``holds``, with ρ = :func:`pathwise_rtol` = 4ε of the run's
  dtype (ε = 2⁻⁵² in float64, 2⁻²³ in float32). The derivation: v is a norm of stored iterates,
  each coordinate of θ(s) and θ(0) is known to one rounding unit (relative ε/2 each), the
  difference θ(s) − θ(0) and the square root of the norm round once more (ε/2 each), and the
  bound b is computed in float64 in the order the engine sums (at most ε/2 more on its last
  operation): ε/2·(2 + 2) + ε₆₄/2 ≤ 2.5ε, rounded up to 4ε. Nothing looser: an excess of
  5 ulps is a violation. (Where the paper suite attains a bound, the largest ratios are
  1 + ε (far-minimiser, L1-det), 1 + 2ε (mlp-tanh, L1-det) and 1 + 2ε (far-adaptive,
  C2-growth).)

* **Mean position** (T1): the mean endpoint m (standard error s per coordinate) agrees with a
  target x when |z| ≤ 3, z = max_k |m_k − x_k| / √(s_k² + σ_k²), with σ the standard error of
  the target where it is estimated (a zero of a Monte Carlo H); see :func:`mean_agreement`.
  T1 ``does not apply`` where H offers no zero that is not repelling and ‖θ‖ still grows at T
  by more than 3 standard errors (see :mod:`simulations.claims.t1`).

* **Decrease** (L3): ``holds`` when the last mean is below the first by more than 3 standard
  errors, ``violated`` when above by more than 3, ``inconclusive`` in between
  (:func:`decrease_verdict`). ODE: ``holds`` when the median gap of the last window is at most
  half that of the first, ``violated`` when it is not below it.

* **Linear growth** (L2): ``holds`` when the estimated constant is at most the analytic K (where
  one is known) and the increments shrink with δ.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["LEVEL", "VERDICTS", "Z_AGREE", "clopper_pearson", "decrease_verdict",
           "interval_verdict", "log10_tightness", "mean_agreement", "pathwise_rtol",
           "pathwise_verdict", "probability_verdict"]

VERDICTS = ("holds", "violated", "vacuous", "inconclusive", "does not apply")
LEVEL = 0.95
Z_AGREE = 3.0
#: ρ of the pathwise rule: 4 ulps (machine epsilons) of the run's dtype (module docstring)
PATHWISE_ULPS = 4


def pathwise_rtol(dtype: str) -> float:
    """ρ = 4·ε(dtype): 4·2⁻⁵² ≈ 8.9e-16 for float64, 4·2⁻²³ ≈ 4.8e-7 for float32."""
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")
    return PATHWISE_ULPS * float(np.finfo(dtype).eps)


def clopper_pearson(k: ArrayLike, n: int, level: float = LEVEL) -> tuple[Any, Any]:
    """The Clopper–Pearson interval of a binomial proportion k/n:
    [B(α/2; k, n−k+1), B(1−α/2; k+1, n−k)] with B the beta quantile, α = 1 − level
    (0 for k = 0 and 1 for k = n at the open ends). ``k`` a count (floats returned) or an
    array of counts (arrays returned)."""
    counts = np.asarray(k)
    if n < 1 or np.any(counts < 0) or np.any(counts > n):
        raise ValueError(f"clopper_pearson: need 0 <= k <= n, n >= 1, got k={k}, n={n}")
    alpha = 1.0 - level
    counts = counts.astype(np.float64)
    with np.errstate(invalid="ignore"):
        lo = np.where(counts > 0, stats.beta.ppf(alpha / 2, counts, n - counts + 1), 0.0)
        hi = np.where(counts < n, stats.beta.ppf(1 - alpha / 2, counts + 1, n - counts), 1.0)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -math.inf


def probability_verdict(k: int, n: int, log10_bound: float, *,
                        impossible: bool = False) -> tuple[str, str]:
    """The verdict on a bound P ≤ 10^log10_bound from k events in n paths (module rules)."""
    lo, hi = clopper_pearson(k, n)
    if log10_bound >= 0:
        return "vacuous", "the bound is ≥ 1"
    if impossible:
        return "vacuous", "the event cannot happen before the horizon"
    if _log10(lo) > log10_bound:
        return "violated", (f"{k} of {n} paths: the interval's lower limit {lo:.4g} is above "
                            f"the bound 10^{log10_bound:.4g}")
    if _log10(hi) <= log10_bound:
        return "holds", (f"{k} of {n} paths: the interval's upper limit {hi:.4g} is at or "
                         f"below the bound 10^{log10_bound:.4g}")
    return "inconclusive", (f"{k} of {n} paths: the interval [{lo:.3g}, {hi:.3g}] cannot "
                            f"resolve a bound of 10^{log10_bound:.4g}")


def interval_verdict(interval: tuple[float, float], log10_bound: float, *,
                     upper_only: bool = False) -> str:
    """The probability rule on an interval [lo, hi] of P: ``violated`` when lo > 10^log10_bound,
    ``holds`` when hi ≤ 10^log10_bound, else ``inconclusive`` (``vacuous`` when the bound is
    ≥ 1). ``upper_only``: the interval is of a larger probability than the bound's (an upper
    estimate), so it can show ``holds`` but never ``violated`` (``inconclusive`` instead). An
    interval with a nan end (an estimate without one) is ``inconclusive``."""
    lo, hi = interval
    if log10_bound >= 0:
        return "vacuous"
    if math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    if _log10(lo) > log10_bound:
        return "inconclusive" if upper_only else "violated"
    if _log10(hi) <= log10_bound:
        return "holds"
    return "inconclusive"


def log10_tightness(log10_bound: float, estimate: float) -> float | None:
    """log10(b/p̂) = log10 b − log10 p̂, how many decades the bound b sits above the estimate
    p̂ (negative: below it); None when p̂ = 0 (no finite ratio)."""
    return log10_bound - math.log10(estimate) if estimate > 0 else None


def pathwise_verdict(worst_ratio: float, rtol: float, what: str) -> tuple[str, str]:
    """``violated`` when some path's value/bound ratio exceeds 1 + rtol, else ``holds``."""
    if not worst_ratio <= 1.0 + rtol:
        return "violated", (f"a path breaks it: {what} reaches {worst_ratio:.17g} times the "
                            f"bound (tolerance {rtol:.3g})")
    return "holds", f"on every path; the largest {what} is {worst_ratio:.6g} times the bound"


def mean_agreement(mean, se, target, target_se=None) -> float:
    """max_k |m_k − x_k| / √(s_k² + σ_k²), the largest |z| over the coordinates, with σ the
    standard error of the target (0 when it is exact). A combined standard error of 0 is
    replaced by 1e-12·(1 + |m|), so that an exact match gives z = 0."""
    mean, se, target = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in
                        (mean, se, target))
    if target_se is not None:
        se = np.hypot(se, np.atleast_1d(np.asarray(target_se, dtype=np.float64)))
    se = np.maximum(se, 1e-12 * (1 + np.abs(mean)))
    return float(np.max(np.abs(mean - target) / se))


def decrease_verdict(first: float, last: float, se: float) -> str:
    """``holds`` when last < first − 3·se, ``violated`` when last > first + 3·se, else
    ``inconclusive``."""
    if last < first - Z_AGREE * se:
        return "holds"
    if last > first + Z_AGREE * se:
        return "violated"
    return "inconclusive"
