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

* **Pathwise bound** v ≤ b on every path (L1-det, C2, C2-growth, a user's pathwise claim):
  ``violated`` when some path's ratio v/b exceeds 1 + ρ, with ρ that path's (and checkpoint's)
  rounding budget (:class:`Rounding`, derived there): everything the run's arithmetic and the
  check's own float64 evaluation can have added to v/b, accumulated over the steps. So a path
  that equals the bound in exact arithmetic is never ``violated``, whatever the rounding; a
  path beyond bound + budget is. Where a path exceeds the bound itself (but not the budget) at
  a point where the run's steps fell below the resolution of θ (a step allowed by the bound
  smaller than one ulp of the iterate, :meth:`Rounding.unresolved`), the verdict is
  ``inconclusive`` ("below floating-point resolution"): such a path is rounded by at least half
  of each of those steps, so it can neither refute nor support the bound (rerunning in float64,
  or with larger steps, resolves it). Otherwise ``holds`` (the reason says when the largest
  ratio is above 1, within the budget). See :func:`pathwise_check`.

* **Mean position** (T1): the mean endpoint m (standard error s per coordinate) agrees with a
  target x when |z| ≤ 3, z = max_k |m_k − x_k| / √(s_k² + σ_k²), with σ the standard error of
  the target where it is estimated (a zero of a Monte Carlo H); see :func:`mean_agreement`.
  T1 ``does not apply`` where H offers no zero that is not repelling and ‖θ‖ still grows at T
  by more than 3 standard errors (see :mod:`simulations.verify.claims.t1`).

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
           "interval_verdict", "log10_tightness", "mean_agreement", "pathwise_check",
           "pathwise_rtol", "pathwise_verdict", "probability_verdict"]

VERDICTS = ("holds", "violated", "vacuous", "inconclusive", "does not apply")
LEVEL = 0.95
Z_AGREE = 3.0
#: the tolerance of one computed value against an analytic constant: 4 ulps of the run's dtype
PATHWISE_ULPS = 4


def pathwise_rtol(dtype: str) -> float:
    """ρ = 4·ε(dtype): 4·2⁻⁵² ≈ 8.9e-16 for float64, 4·2⁻²³ ≈ 4.8e-7 for float32, the
    tolerance of a single computed value against an analytic constant (L2's growth against
    K). It is not the tolerance of a path, whose rounding accumulates over the steps: the
    pathwise claims use :class:`simulations.verify.claims.rounding.Rounding`."""
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
        raise ValueError(f"clopper_pearson: need 0 <= k <= n, n >= 1, got k={k!s}, n={n}")
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


def pathwise_check(ratio: ArrayLike, rtol: ArrayLike, what: str, *,
                   unresolved: ArrayLike = False) -> tuple[str, str, dict[str, Any]]:
    """The pathwise rule (module docstring) on the value/bound ratios of every path and point
    (``ratio``, any shape, NaN and inf allowed) with their rounding budgets ``rtol`` and
    whether the run's steps there are below the resolution of θ (``unresolved``), both
    broadcast against ``ratio``: ``violated`` where some ratio exceeds 1 + rtol (or is NaN);
    else ``inconclusive`` where some ratio above 1 is ``unresolved``; else ``holds``.

    Returns (verdict, reason, details): ``worst_ratio`` the largest ratio, ``rtol`` the
    budget at the point that comes nearest to (or furthest past) its budget, ``excess`` that
    point's (ratio − 1)/rtol (above 1: past the budget; None when no ratio is above 1),
    ``unresolved`` whether any point is below resolution."""
    r = np.asarray(ratio, dtype=np.float64)
    tol, low = np.broadcast_arrays(r, np.asarray(rtol, dtype=np.float64),
                                   np.asarray(unresolved, dtype=bool))[1:]
    details: dict[str, Any] = {"worst_ratio": None, "rtol": None, "excess": None,
                               "unresolved": bool(np.any(low))}
    if r.size == 0:
        return "holds", f"no {what} to check", details
    bad = ~(r <= 1.0 + tol) | ~np.isfinite(r)  # NaN or inf breaks it
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(bad, np.inf, (r - 1.0) / tol)
    score = np.where(np.isnan(score), 0.0, score)  # inf/inf: within an infinite budget
    at = np.unravel_index(int(np.argmax(score)), r.shape)
    worst = float(np.nanmax(r)) if np.any(~np.isnan(r)) else float("nan")
    details.update(worst_ratio=float(r[at]) if np.any(bad) else worst, rtol=float(tol[at]),
                   excess=float(score[at]) if r[at] > 1.0 or np.isnan(r[at]) else None)
    if np.any(bad):
        return "violated", (f"a path breaks it: {what} reaches {float(r[at]):.17g} times the "
                            "bound, beyond its rounding budget (tolerance "
                            f"{float(tol[at]):.3g})"), details
    above = r > 1.0
    if np.any(above & low):
        at = np.unravel_index(int(np.argmax(np.where(above & low, r, -np.inf))), r.shape)
        return "inconclusive", (f"below floating-point resolution: {what} reaches "
                                f"{float(r[at]):.10g} times the bound, within its rounding "
                                f"budget {float(tol[at]):.3g}, on steps smaller than one ulp "
                                "of θ (larger steps or a wider dtype resolve it)"), details
    why = f"on every path; the largest {what} is {worst:.6g} times the bound"
    if np.any(above):
        why += (f" ({worst:.17g}), above 1 within the rounding budget (at most "
                f"{details['excess']:.2g} of it)")
    return "holds", why, details


def pathwise_verdict(worst_ratio: float, rtol: float, what: str) -> tuple[str, str]:
    """:func:`pathwise_check` on one ratio and its budget: ``violated`` when the value/bound
    ratio exceeds 1 + rtol, else ``holds``."""
    verdict, why, _ = pathwise_check(worst_ratio, rtol, what)
    return verdict, why


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
