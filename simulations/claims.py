r"""Each claim of the paper held against what the paths did: a prediction, a measurement with its
95% interval, a verdict and a one-line reason.

The claims (SCIENCE.md's table) and the rule each is judged by:

* ``L1-paper``: Lemma 1 as printed, (15): P(‖θ(T) − θ(0)‖ > M) ≤ 2exp(−2M²/(γλ²)), measured as
  the fraction of paths with ‖θ(T) − θ(0)‖ > M at the horizon T. Classic clipping.
* ``L1-det``: ‖θ(s) − θ(0)‖ ≤ λ·Σ_{t<s} a(t) on every path, at every checkpoint s and for the
  running maximum. Classic clipping. Pathwise.
* ``L1-mart``: Pinelis, P(max_{s≤T} ‖ξ(s)‖ ≥ r) ≤ 2exp(−r²/(8λ²γ_T)), on the paths where ξ is
  tracked. Classic clipping.
* ``C2``: Claim 2, ‖g/c‖ ≤ K(1 + ‖θ‖) with the smallest K = λ·max(1, ε) (the paper's
  max(λε, λ, 1) is reported beside it). Adaptive clipping. Pathwise.
* ``C2-growth``: Grönwall, ‖θ(s)‖ ≤ max(‖θ(0)‖, ε)·Π_{t<s}(1 + λa(t)) at every checkpoint.
  Adaptive clipping. Pathwise.
* ``A3``: the rule is stable w.h.p.: the fraction of paths whose running maximum max_s ‖θ(s)‖
  passes the blow-up radius (default 10⁶) is at most δ (option ``a3_delta``, default 0.05).
  Judged by the running maximum, never by the endpoint.
* ``L2``: Lemma 2, H = E[g/c] is Marchaud: ‖H(θ)‖ ≤ K(1 + ‖θ‖) and continuous, estimated on
  shells of points about θ(0) (:func:`theory.equilibria.marchaud_check`).
* ``L3``: Lemma 3, ξ converges: sup_{s>t} ‖ξ(s) − ξ(t)‖ decreases in t.
* ``T1``: Theorem 1, θ(t) → {H = 0}: the zero set of H, the minimiser of E[ℓ], and which of the
  two the mean endpoint matches.
* ``ODE``: the iterates track dθ/dτ = −H(θ), τ(t) = Σ_{s<t} a(s): the largest gap between an
  SGD path and the ODE started on it over windows of τ-length Δ shrinks as t grows.
* ``A1``, ``A2``: the assumptions, decided by :mod:`theory.assumptions`.

Verdict rules (each one a small function below, tested on constructed inputs):

* A probability bound (L1-paper, L1-mart) is ``vacuous`` when the bound is ≥ 1 or the event is
  impossible before the horizon (λ·Σ_{t<T} a(t) ≤ M for L1-paper, 2λ·Σ_{t<T} a(t) < r for
  L1-mart); else ``violated`` when the lower limit of the Clopper–Pearson 95% interval of the
  measured probability lies above the bound; ``holds`` when the point estimate is at or below
  it (the reason says when the interval cannot resolve the bound, e.g. 0 exits out of 10⁴
  against 10⁻⁶¹⁴); ``inconclusive`` otherwise (the estimate is above, the interval reaches it).
* A pathwise claim (L1-det, C2, C2-growth) is ``violated`` when any single path breaks it by
  more than a relative 1e-9 in float64 (1e-4 in float32), else ``holds``.
* A3: ``violated`` when the Clopper–Pearson lower limit of the blow-up fraction is above δ,
  ``holds`` when its upper limit is at or below δ, ``inconclusive`` otherwise.
* A mean position (T1) agrees with a target when |z| ≤ 3, z = (mean − target)/standard error
  (per coordinate, the largest); T1 ``holds`` when the mean endpoint agrees with the zero set of
  H, is ``violated`` when H has no zero in the searched region (the iterates cannot converge to
  one), and ``inconclusive`` when the endpoints have not reached the zero set.
* A decrease (L3, ODE): L3 ``holds`` when the mean of sup_{s>t}‖ξ(s) − ξ(t)‖ at the last anchor
  is below the first by more than 3 standard errors, ``violated`` when above by more than 3;
  ODE ``holds`` when the median gap over paths in the last window is at most half that of the
  first, ``violated`` when it is not below it; ``inconclusive`` in between.
* L2 ``holds`` when the estimated growth constant is at most the analytic K (where one is
  known: λ for classic, λ·max(1, ε) for adaptive, λ√P for value clipping) and the increments
  shrink with δ; ``violated`` when either fails; without an analytic K, ``holds`` when the
  constant on the outermost shell is at most 1.5 times the one inside it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from theory import bounds, equilibria
from theory.schedules import as_schedule

__all__ = ["CLAIMS", "VERDICTS", "ClaimResult", "applicable", "clopper_pearson", "evaluate",
           "mean_agreement", "pathwise_verdict", "probability_verdict"]

VERDICTS = ("holds", "violated", "vacuous", "inconclusive")
CLAIMS = ("A1", "A2", "L1-paper", "L1-det", "L1-mart", "C2", "C2-growth", "A3", "L2", "L3",
          "T1", "ODE")
#: the clip rules each claim is stated for (None: any rule)
RULES_OF = {"L1-paper": ("classic",), "L1-det": ("classic",), "L1-mart": ("classic",),
            "C2": ("adaptive",), "C2-growth": ("adaptive",)}
#: observers each claim needs from the engine
OBSERVERS_OF = {"L1-paper": ("checkpoints",), "L1-det": ("checkpoints", "running_max"),
                "L1-mart": ("xi",), "C2": ("claim2",), "C2-growth": ("checkpoints",
                                                                      "running_max"),
                "A3": ("running_max",), "L3": ("xi",), "T1": (), "ODE": ("paths",),
                "L2": (), "A1": (), "A2": ()}
PATHWISE_RTOL = {"float64": 1e-9, "float32": 1e-4}
LEVEL = 0.95
Z_AGREE = 3.0


@dataclass(frozen=True)
class ClaimResult:
    """One row of the verification table.

    ``prediction`` and ``measurement`` are short texts; ``prediction_value`` and
    ``measurement_value`` their numbers where there is one (a probability bound is given by its
    log10 in ``details``); ``interval`` the 95% interval of the measurement (or the range over
    paths for a pathwise claim); ``details`` every number behind the row.
    """

    scenario: str
    claim: str
    statement: str
    prediction: str
    measurement: str
    interval: tuple[float, float] | None
    verdict: str
    reason: str
    prediction_value: float | None = None
    measurement_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ==============================================================================================
# Verdict rules
# ==============================================================================================


def clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Clopper–Pearson interval of a binomial proportion k/n:
    [B(α/2; k, n−k+1), B(1−α/2; k+1, n−k)] with B the beta quantile, α = 1 − level
    (0 for k = 0 and 1 for k = n at the open ends)."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"clopper_pearson: need 0 <= k <= n, n >= 1, got k={k}, n={n}")
    alpha = 1.0 - level
    lo = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
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
    estimate = k / n
    if _log10(lo) > log10_bound:
        return "violated", (f"{k} of {n} paths: the interval's lower limit {lo:.4g} is above "
                            f"the bound 10^{log10_bound:.4g}")
    if _log10(estimate) <= log10_bound:
        if k == 0 and _log10(hi) > log10_bound:
            return "holds", (f"0 of {n} paths; the interval [0, {hi:.2g}] cannot resolve a bound "
                             f"of 10^{log10_bound:.4g}")
        return "holds", f"{k} of {n} paths, at or below the bound"
    return "inconclusive", (f"{k} of {n} paths: the estimate {estimate:.3g} is above the bound "
                            f"but the interval [{lo:.3g}, {hi:.3g}] reaches it")


def pathwise_verdict(worst_ratio: float, rtol: float, what: str) -> tuple[str, str]:
    """``violated`` when some path's value/bound ratio exceeds 1 + rtol, else ``holds``."""
    if not worst_ratio <= 1.0 + rtol:
        return "violated", (f"a path breaks it: {what} reaches {worst_ratio:.12g} times the "
                            f"bound (tolerance {rtol:g})")
    return "holds", f"on every path; the largest {what} is {worst_ratio:.6g} times the bound"


def mean_agreement(mean: np.ndarray, se: np.ndarray, target: np.ndarray) -> float:
    """max_k |mean_k − target_k| / se_k, the largest |z| over the coordinates (a standard error
    of 0 is replaced by 1e-12·(1 + |mean|), so that an exact match gives z = 0)."""
    mean, se, target = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in
                        (mean, se, target))
    se = np.maximum(se, 1e-12 * (1 + np.abs(mean)))
    return float(np.max(np.abs(mean - target) / se))


def _decrease_verdict(first: float, last: float, se: float) -> str:
    if last < first - Z_AGREE * se:
        return "holds"
    if last > first + Z_AGREE * se:
        return "violated"
    return "inconclusive"


# ==============================================================================================
# What each claim needs
# ==============================================================================================


def applicable(claim: str, scenario) -> str | None:
    """None when ``claim`` can be checked on ``scenario``, else why not."""
    rules = RULES_OF.get(claim)
    rule = scenario.clip["rule"]
    if rules is not None and rule not in rules:
        return f"stated for {' or '.join(rules)} clipping, not {rule}"
    if claim == "L1-paper" and not scenario.exit_radii:
        return "needs [radii] exit = [M, ...]"
    if claim == "L1-mart" and not scenario.xi_radii:
        return "needs [radii] xi = [r, ...]"
    if claim == "ODE" and scenario.keep_paths < 1:
        return "needs keep_paths >= 1"
    return None


def observers_for(claims) -> tuple[str, ...]:
    """The engine observers the claims need (``exits`` is always recorded)."""
    names = {"exits"}
    for claim in claims:
        names.update(OBSERVERS_OF[claim])
    return tuple(o for o in ("exits", "running_max", "claim2", "clipped", "checkpoints", "paths",
                             "xi") if o in names)


@dataclass
class Context:
    """What the checks read: the scenario, its run, and (computed once, on demand) H."""

    scenario: Any
    sim: Any
    problem: Any = None
    rule: Any = None
    _field: Callable | None = None

    def __post_init__(self):
        self.problem = self.scenario.make_problem()
        self.rule = self.scenario.make_rule()
        self.schedule = as_schedule(self.scenario.schedule, horizon=max(self.scenario.steps, 1))
        self.a = np.asarray(self.schedule(np.arange(self.scenario.steps)), dtype=np.float64)
        self.rtol = PATHWISE_RTOL[self.scenario.dtype]
        self.lam = self.rule.lam

    @property
    def steps(self) -> int:
        return self.scenario.steps

    def field(self) -> Callable[[np.ndarray], np.ndarray]:
        """H as a numpy callable, exact for B = 1 where the mean field is (else Monte Carlo)."""
        if self._field is None:
            from simulations.mean_field import field

            self._field = field(self.problem, self.rule, batch=self.scenario.batch)
        return self._field

    @functools.cached_property
    def h_method(self) -> str:
        """How H is computed (the mean field's method at θ(0), "(not exact)" if estimated)."""
        import torch

        from simulations.mean_field import mean_field

        est = mean_field(self.problem, self.rule, torch.as_tensor(self.theta0())[None],
                         batch=self.scenario.batch)
        return est.method + ("" if est.exact else " (not exact)")

    def theta0(self) -> np.ndarray:
        import torch

        return self.problem.initial(torch.arange(1), self.scenario.seed, torch.float64,
                                    "cpu")[0].numpy()

    def opt(self, key: str, default: Any) -> Any:
        return self.scenario.options.get(key, default)

    def row(self, claim: str, statement: str, **kwargs) -> ClaimResult:
        return ClaimResult(scenario=self.scenario.name, claim=claim, statement=statement,
                           **kwargs)


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0 or (1e-3 <= abs(x) < 1e6):
        return f"{x:.4g}"
    return f"{x:.3e}"


def _bound_text(b: bounds.ProbabilityBound) -> str:
    if b.probability is not None and b.probability > 1e-300:
        return f"P ≤ {_fmt(min(b.probability, 2.0))}"
    return f"P ≤ 2e^−{b.exponent:.6g} (log10 {b.log10_probability:.7g})"


# ==============================================================================================
# The checks
# ==============================================================================================


def _check_l1_paper(ctx: Context) -> list[ClaimResult]:
    arr, T, out = ctx.sim.arrays, ctx.steps, []
    dev_T = arr["deviation_at"][:, -1]
    reach = ctx.lam * float(np.sum(ctx.a))
    for M in ctx.scenario.exit_radii:
        b = bounds.lemma1_paper(ctx.lam, M, ctx.schedule)
        b14 = bounds.lemma1_paper(ctx.lam, M, ctx.schedule, horizon=T) if T > 0 else b
        k, n = int(np.sum(~(dev_T <= M))), len(dev_T)
        lo, hi = clopper_pearson(k, n)
        verdict, why = probability_verdict(k, n, b.log10_probability, impossible=reach <= M)
        if verdict == "vacuous" and reach <= M:
            why = (f"λ·Σ_{{t<T}}a(t) = {_fmt(reach)} ≤ M = {_fmt(M)}: no path can leave the ball "
                   f"before T = {bounds.deterministic_horizon(ctx.lam, M, ctx.schedule)}")
        out.append(ctx.row(
            "L1-paper", f"Lemma 1 (15): P(‖θ(T)−θ(0)‖ > {_fmt(M)}) ≤ 2exp(−2M²/(γλ²))",
            prediction=_bound_text(b), measurement=f"{k}/{n} = {_fmt(k / n)}",
            interval=(lo, hi), verdict=verdict, reason=why,
            prediction_value=b.log10_probability, measurement_value=k / n,
            details={"radius": M, "exponent": b.exponent, "log10_bound": b.log10_probability,
                     "log10_bound_14": b14.log10_probability, "exits": k, "paths": n,
                     "deterministic_radius": reach}))
    return out


def _check_l1_det(ctx: Context) -> list[ClaimResult]:
    arr = ctx.sim.arrays
    steps = arr["checkpoint_steps"]
    cum = np.concatenate([[0.0], np.cumsum(ctx.a)])
    radius = ctx.lam * cum[steps]
    dev = arr["deviation_at"]
    positive = radius > 0
    ratios = dev[:, positive] / radius[positive]
    total = ctx.lam * cum[-1]
    max_dev = arr["max_deviation"]
    worst = float(np.max(ratios)) if ratios.size else 0.0
    if total > 0:
        worst = max(worst, float(np.max(max_dev)) / total)
    verdict, why = pathwise_verdict(worst, ctx.rtol, "‖θ(s) − θ(0)‖")
    blown = int(np.sum(arr["blown_step"] >= 0))
    if blown:
        verdict, why = "violated", f"{blown} paths blew up, which classic clipping cannot do"
    finite = max_dev[np.isfinite(max_dev)]
    return [ctx.row(
        "L1-det", "‖θ(s)−θ(0)‖ ≤ λ·Σ_{t<s}a(t) on every path",
        prediction=f"≤ λΣa = {_fmt(total)} at T", measurement=f"max {_fmt(float(np.max(max_dev)))}",
        interval=(float(finite.min()), float(finite.max())) if finite.size else None,
        verdict=verdict, reason=why, prediction_value=total,
        measurement_value=float(np.max(max_dev)),
        details={"worst_ratio": worst, "rtol": ctx.rtol, "blown_up": blown})]


def _check_l1_mart(ctx: Context) -> list[ClaimResult]:
    arr, T, out = ctx.sim.arrays, ctx.steps, []
    xi_max = arr["xi_max"]
    n = len(xi_max)
    reach = 2 * ctx.lam * float(np.sum(ctx.a))
    for r in ctx.scenario.xi_radii:
        b = bounds.pinelis(ctx.lam, r, ctx.schedule, horizon=T)
        k = int(np.sum(xi_max >= r))
        lo, hi = clopper_pearson(k, n)
        verdict, why = probability_verdict(k, n, b.log10_probability, impossible=reach < r)
        out.append(ctx.row(
            "L1-mart", f"Pinelis: P(max_s‖ξ(s)‖ ≥ {_fmt(r)}) ≤ 2exp(−r²/(8λ²γ_T))",
            prediction=_bound_text(b), measurement=f"{k}/{n} = {_fmt(k / n)}",
            interval=(lo, hi), verdict=verdict,
            reason=why + f"; H by {ctx.h_method}",
            prediction_value=b.log10_probability, measurement_value=k / n,
            details={"radius": r, "log10_bound": b.log10_probability, "exits": k, "paths": n,
                     "max_xi": float(np.max(xi_max)), "h_method": ctx.h_method}))
    return out


def _check_c2(ctx: Context) -> list[ClaimResult]:
    k = bounds.claim2_constants(ctx.lam, ctx.rule.eps)
    ratio = ctx.sim.arrays["claim2_ratio"]
    worst = float(np.max(ratio))
    verdict, why = pathwise_verdict(worst / k.k_tight, ctx.rtol, "‖g/c‖/(1+‖θ‖)")
    return [ctx.row(
        "C2", "Claim 2: ‖g/c‖ ≤ K(1+‖θ‖), K = λ·max(1, ε)",
        prediction=f"K = {_fmt(k.k_tight)} (paper's {_fmt(k.k_paper)})",
        measurement=f"max {_fmt(worst)}", interval=(float(np.min(ratio)), worst),
        verdict=verdict, reason=why, prediction_value=k.k_tight, measurement_value=worst,
        details={"k_tight": k.k_tight, "k_paper": k.k_paper, "rtol": ctx.rtol})]


def _check_c2_growth(ctx: Context) -> list[ClaimResult]:
    arr, eps = ctx.sim.arrays, ctx.rule.eps
    steps = arr["checkpoint_steps"]
    log_prod = np.concatenate([[0.0], np.cumsum(np.log1p(ctx.lam * ctx.a))])
    norm0 = arr["norm_at"][:, 0]
    log_bound = np.log(np.maximum(norm0, eps))[:, None] + log_prod[steps][None, :]
    norms = arr["norm_at"]
    norms, log_bound = norms[:, 1:], log_bound[:, 1:]  # at s = 0 the bound is ‖θ(0)‖ itself
    finite = np.isfinite(norms)
    excess = np.where(finite, np.log(np.maximum(norms, 1e-300)) - log_bound, -np.inf)
    worst = float(np.exp(np.max(excess)))
    blown = arr["blown_step"]
    guard = float(ctx.sim.setting.get("guard", 1e100))
    log_bound_blow = np.log(np.maximum(norm0, eps)) + log_prod[np.maximum(blown, 0)]
    broke = int(np.sum((blown >= 0) & (log_bound_blow < math.log(guard))))
    verdict, why = pathwise_verdict(worst, ctx.rtol, "‖θ(s)‖")
    if broke:
        verdict, why = "violated", f"{broke} paths passed the guard {guard:g} below the bound"
    elif np.any(blown >= 0):
        why += (f"; {int(np.sum(blown >= 0))} paths reached the guard {guard:g}, which the "
                "bound allows")
    g = bounds.gronwall(ctx.lam, eps, ctx.schedule, ctx.steps, float(np.max(norm0)))
    max_norm = arr["max_norm"]
    return [ctx.row(
        "C2-growth", "Grönwall: ‖θ(s)‖ ≤ max(‖θ(0)‖, ε)·Π_{t<s}(1+λa(t))",
        prediction=f"‖θ(T)‖ ≤ 10^{g.log10_norm:.5g}",
        measurement=f"max_s ‖θ(s)‖ = {_fmt(float(np.max(max_norm)))}",
        interval=(float(np.min(max_norm)), float(np.max(max_norm))), verdict=verdict,
        reason=why, prediction_value=g.log10_norm, measurement_value=float(np.max(max_norm)),
        details={"worst_ratio": worst, "log10_bound_T": g.log10_norm, "rtol": ctx.rtol})]


def _check_a3(ctx: Context) -> list[ClaimResult]:
    arr = ctx.sim.arrays
    radius = ctx.scenario.blowup_radius
    delta = float(ctx.opt("a3_delta", 0.05))
    max_norm = arr["max_norm"]
    n = len(max_norm)
    k = int(np.sum(~(max_norm <= radius)))
    lo, hi = clopper_pearson(k, n)
    if lo > delta:
        verdict = "violated"
    elif hi <= delta:
        verdict = "holds"
    else:
        verdict = "inconclusive"
    end = np.linalg.norm(arr["endpoints"], axis=1)
    why = (f"{k} of {n} paths had max_s ‖θ(s)‖ > {_fmt(radius)} (largest "
           f"{_fmt(float(np.max(max_norm)))}; median endpoint ‖θ(T)‖ = "
           f"{_fmt(float(np.median(end)))}); δ = {delta:g}")
    if ctx.rule.kind == "classic":
        why += f"; classic clipping moves at most λΣa = {_fmt(ctx.lam * float(np.sum(ctx.a)))}"
    return [ctx.row(
        "A3", f"stable w.h.p.: P(max_s ‖θ(s)‖ > {_fmt(radius)}) ≤ {delta:g}",
        prediction=f"≤ {delta:g}", measurement=f"{k}/{n} = {_fmt(k / n)}", interval=(lo, hi),
        verdict=verdict, reason=why, prediction_value=delta, measurement_value=k / n,
        details={"radius": radius, "exits": k, "paths": n,
                 "max_norm": float(np.max(max_norm)),
                 "median_endpoint_norm": float(np.median(end))})]


def _analytic_k(ctx: Context) -> float | None:
    kind = ctx.rule.kind
    if kind == "classic":
        return ctx.lam
    if kind == "adaptive":
        return bounds.claim2_constants(ctx.lam, ctx.rule.eps).k_tight
    if kind == "value":
        return ctx.lam * math.sqrt(ctx.problem.n_params)
    return None


def _check_l2(ctx: Context) -> list[ClaimResult]:
    h = ctx.field()
    theta0 = ctx.theta0()
    scale = 1.0 + float(np.linalg.norm(theta0))
    radii = [scale * r for r in ctx.opt("l2_radii", [0.5, 5.0, 50.0, 500.0])]
    rng = np.random.default_rng(ctx.scenario.seed)
    shells = equilibria.shell_points(theta0, radii, int(ctx.opt("l2_points", 16)), rng)
    check = equilibria.marchaud_check(h, shells, analytic_k=_analytic_k(ctx), rng=rng)
    k = check.analytic_k
    if k is not None:
        ok = check.growth <= k * (1 + ctx.rtol)
        verdict = "holds" if ok and check.continuous else "violated"
        why = (f"sup ‖H‖/(1+‖θ‖) = {_fmt(check.growth)} {'≤' if ok else '>'} K = {_fmt(k)}")
    else:
        ok = check.growth_by_shell[-1] <= 1.5 * max(check.growth_by_shell[:-1])
        verdict = "holds" if ok and check.continuous else "inconclusive"
        why = ("no analytic K; ‖H‖/(1+‖θ‖) by shell " +
               ", ".join(_fmt(g) for g in check.growth_by_shell))
    why += (f"; increments {', '.join(_fmt(i) for i in check.increments)} at δ = "
            f"{', '.join(f'{d:g}' for d in check.deltas)} "
            f"({'shrinking' if check.continuous else 'not shrinking: discontinuous?'}); "
            f"H by {ctx.h_method}")
    if not check.continuous:
        verdict = "violated"
    return [ctx.row(
        "L2", "Lemma 2: H is Marchaud (continuous, ‖H(θ)‖ ≤ K(1+‖θ‖))",
        prediction="K = " + ("none known" if k is None else _fmt(k)),
        measurement=f"sup ‖H‖/(1+‖θ‖) ≈ {_fmt(check.growth)}", interval=None, verdict=verdict,
        reason=why, prediction_value=k, measurement_value=check.growth,
        details={**asdict(check), "shell_radii": radii, "h_method": ctx.h_method})]


def _check_l3(ctx: Context) -> list[ClaimResult]:
    arr = ctx.sim.arrays
    sup = arr["xi_sup_after"]  # (R_xi, anchors)
    anchors = arr["xi_anchors"].tolist()
    mean = sup.mean(0)
    se = sup.std(0, ddof=1) / math.sqrt(len(sup)) if len(sup) > 1 else np.zeros_like(mean)
    verdict = _decrease_verdict(mean[0], mean[-1], math.hypot(se[0], se[-1]))
    gamma_t = float(np.sum(ctx.a**2))
    second = float(np.mean(arr["xi_norm_at"][:, -1] ** 2))
    why = ("mean sup_{s>t}‖ξ(s)−ξ(t)‖ at t = " + ", ".join(
        f"{t}: {_fmt(m)}" for t, m in zip(anchors, mean, strict=True)))
    if ctx.rule.kind == "classic":
        why += f"; E‖ξ(T)‖² ≈ {_fmt(second)} ≤ 4λ²γ_T = {_fmt(4 * ctx.lam**2 * gamma_t)}"
    why += f"; H by {ctx.h_method}"
    return [ctx.row(
        "L3", "Lemma 3: ξ(t) converges (sup_{s>t}‖ξ(s)−ξ(t)‖ → 0)",
        prediction="decreasing in t", measurement=f"{_fmt(mean[0])} → {_fmt(mean[-1])}",
        interval=(float(mean[-1] - 1.96 * se[-1]), float(mean[-1] + 1.96 * se[-1])),
        verdict=verdict, reason=why, prediction_value=None, measurement_value=float(mean[-1]),
        details={"anchors": anchors, "mean": mean.tolist(), "se": se.tolist(),
                 "mean_sq_xi_T": second, "sum_sq_mean": float(np.mean(arr["xi_sum_sq"])),
                 "h_method": ctx.h_method})]


def _minimiser(ctx: Context, start: np.ndarray) -> tuple[np.ndarray | None, str]:
    """argmin E[ℓ]: E[y] for the quadratic family, else BFGS on the exact expected loss."""
    import torch

    from simulations.mean_field import field
    from simulations.problems import Quadratic
    from simulations.rules import ClipRule

    problem = ctx.problem
    if isinstance(problem, Quadratic):
        law = problem.law
        if problem.curvature < 0:
            return None, "E[ℓ] is concave: no minimiser"
        mean = float(np.dot(law.values, law.probs)) if law.kind == "discrete" else law.mean
        return np.full(problem.dim, mean), "E[y]"
    grad = field(problem, ClipRule("none"))
    atoms, weights = problem.atoms(torch.float64, "cpu")

    def loss(theta: np.ndarray) -> float:
        th = torch.as_tensor(theta, dtype=torch.float64)[None].expand(len(weights), -1)
        return float((problem.loss(th, problem.batch_of(atoms, torch.arange(len(weights))))
                      * weights).sum())

    m = equilibria.minimise(loss, grad, start)
    if not m.converged:
        return None, (f"E[ℓ] has no minimiser found (BFGS stopped at ‖θ‖ = "
                      f"{_fmt(float(np.linalg.norm(m.point)))} with ‖∇E[ℓ]‖ = {_fmt(m.grad_norm)})")
    return m.point, "BFGS on the exact E[ℓ]"


def _point_text(point: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in point[:3]) + (", …" if len(point) > 3 else "") + ")"


def _check_t1(ctx: Context) -> list[ClaimResult]:
    arr = ctx.sim.arrays
    h = ctx.field()
    alive = arr["blown_step"] < 0
    end = arr["endpoints"][alive]
    mean = end.mean(0)
    se = end.std(0, ddof=1) / math.sqrt(len(end)) if len(end) > 1 else np.zeros_like(mean)
    theta0 = ctx.theta0()
    details: dict[str, Any] = {"mean_endpoint": mean.tolist(), "se": se.tolist(),
                               "h_method": ctx.h_method}
    if ctx.problem.n_params == 1:
        lo, hi = ctx.opt("zero_range", [float(min(end.min(), theta0[0]) - 10),
                                        float(max(end.max(), theta0[0]) + 10)])
        zs = equilibria.zeros_1d(lambda x: h(x[:, None])[:, 0], lo, hi,
                                 grid=int(ctx.opt("zero_grid", 4001)))
        zero_text = zs.describe()
        target = None if zs.empty else np.array([zs.nearest(float(mean[0]))])
        details.update(zeros=zs.points.tolist(), intervals=zs.intervals,
                       residuals=zs.residuals.tolist())
    else:
        starts = np.vstack([mean, theta0, end[: min(4, len(end))]])
        found = equilibria.zeros(h, starts, tol=1e-12)
        found = [z for z in found if z.converged]
        zero_text = f"none found from {len(starts)} starts" if not found else "{" + ", ".join(
            _point_text(z.point) for z in found[:3]) + "}"
        target = None
        if found:
            target = min((z.point for z in found), key=lambda p: np.linalg.norm(p - mean))
        details.update(zeros=[z.point.tolist() for z in found],
                       residuals=[z.residual for z in found])
    minimiser, how = _minimiser(ctx, mean)
    details["minimiser"] = None if minimiser is None else minimiser.tolist()
    z_min = None if minimiser is None else mean_agreement(mean, se, minimiser)
    mean_text = ", ".join(f"{m:.5g} ± {s:.2g}" for m, s in zip(mean[:3], se[:3], strict=False))
    min_text = "none" if minimiser is None else ", ".join(f"{v:.5g}" for v in minimiser[:3])
    if target is None:
        verdict = "violated"
        norm_T = float(np.mean(np.linalg.norm(end, axis=1)))
        why = (f"H has no zero ({zero_text}); the iterates cannot converge to one: mean ‖θ(T)‖ "
               f"= {_fmt(norm_T)} from ‖θ(0)‖ = {_fmt(float(np.linalg.norm(theta0)))}")
        z_zero = None
    else:
        z_zero = mean_agreement(mean, se, target)
        verdict = "holds" if z_zero <= Z_AGREE else "inconclusive"
        why = (f"endpoints {'match' if z_zero <= Z_AGREE else 'do not (yet) match'} the zero "
               f"of H (|z| = {z_zero:.2g})")
    if z_min is not None:
        matches = z_min <= Z_AGREE
        why += (f"; {'and also' if matches else 'not'} the minimiser of E[ℓ] (|z| = {z_min:.3g})")
        if not matches and verdict == "holds":
            why += ": the reading 'minimum of E[ℓ]' is false here"
    else:
        why += f"; {how}"
    details.update(z_zero=z_zero, z_minimiser=z_min)
    return [ctx.row(
        "T1", "Theorem 1: θ(t) → {θ : E[g/c](θ) = 0}",
        prediction=f"zeros of H {zero_text}; argmin E[ℓ] = {min_text}",
        measurement=f"mean θ(T) = {mean_text}",
        interval=(float(mean[0] - 1.96 * se[0]), float(mean[0] + 1.96 * se[0])),
        verdict=verdict, reason=why,
        prediction_value=None if target is None else float(target[0]),
        measurement_value=float(mean[0]), details=details)]


def _check_ode(ctx: Context) -> list[ClaimResult]:
    paths = ctx.sim.arrays["path"]  # (k, T+1, P)
    h = ctx.field()
    tau = equilibria.stochastic_time(ctx.schedule, ctx.steps)
    window = float(ctx.opt("ode_window", 1.0))
    count = int(ctx.opt("ode_windows", 6))
    last_start = int(np.searchsorted(tau, tau[-1] - window, side="right")) - 1
    if last_start < 1:
        return [ctx.row("ODE", "iterates track dθ/dτ = −H(θ)", prediction="gap → 0",
                        measurement="—", interval=None, verdict="inconclusive",
                        reason=f"the run's τ(T) = {tau[-1]:.3g} is shorter than one window "
                               f"(Δ = {window:g})")]
    first_start = max(1, int(np.searchsorted(tau, min(1.0, tau[last_start] / 4))))
    starts = np.unique(np.round(np.geomspace(first_start, last_start, count)).astype(int))
    gaps = np.array([equilibria.tracking_gaps(p, tau, h, window, starts) for p in paths])
    median = np.median(gaps, axis=0)
    printed = np.median([equilibria.tracking_gaps(p, tau, h, window, starts[[0, -1]], sign=+1.0)
                         for p in paths], axis=0)
    if median[-1] <= 0.5 * median[0]:
        verdict = "holds"
    elif median[-1] >= median[0]:
        verdict = "violated"
    else:
        verdict = "inconclusive"
    why = (f"median gap over {len(paths)} paths in windows of τ-length {window:g} from t = "
           + ", ".join(f"{s}: {_fmt(g)}" for s, g in zip(starts, median, strict=True))
           + f"; with the printed sign dθ/dτ = +H: {_fmt(float(printed[0]))} in the first "
             f"window, {_fmt(float(printed[1]))} in the last; H by {ctx.h_method}")
    return [ctx.row(
        "ODE", "Section 4: the iterates track dθ/dτ = −H(θ), τ = Σa",
        prediction="gap shrinks as t grows", measurement=f"{_fmt(median[0])} → {_fmt(median[-1])}",
        interval=(float(np.min(gaps[:, -1])), float(np.max(gaps[:, -1]))), verdict=verdict,
        reason=why, measurement_value=float(median[-1]),
        details={"starts": starts.tolist(), "tau_starts": tau[starts].tolist(),
                 "window": window, "median_gap": median.tolist(), "gaps": gaps.tolist(),
                 "printed_sign_gap": printed.tolist(), "h_method": ctx.h_method})]


ACTIVATIONS = {"mlp-regression": "tanh", "mlp-classification": "tanh", "rnn-cliff": "tanh"}


def _check_a1(ctx: Context) -> list[ClaimResult]:
    from theory.assumptions import a1

    act = ACTIVATIONS.get(ctx.problem.name)
    if act is None:
        return [ctx.row("A1", "(A1): the loss is C² in θ", prediction="C²", measurement="—",
                        interval=None, verdict="holds",
                        reason=f"{ctx.problem.name}: no activation; the loss is smooth in θ")]
    v = a1(act)
    return [ctx.row("A1", "(A1): activations are C²", prediction="C²",
                    measurement=f"{act}: C^{v.order}" if v.order is not None else act,
                    interval=None,
                    verdict={True: "holds", False: "violated", None: "inconclusive"}[v.holds],
                    reason=f"{act}: {v.reason}")]


def _check_a2(ctx: Context) -> list[ClaimResult]:
    v = ctx.schedule.a2()
    return [ctx.row("A2", "(A2): a(t) > 0, Σa = ∞, Σa² < ∞", prediction="holds",
                    measurement=f"a(t) = {ctx.scenario.schedule}", interval=None,
                    verdict={True: "holds", False: "violated", None: "inconclusive"}[v.holds],
                    reason=v.reason, details={"gamma_T": float(np.sum(ctx.a**2))})]


CHECKS: dict[str, Callable[[Context], list[ClaimResult]]] = {
    "A1": _check_a1, "A2": _check_a2, "L1-paper": _check_l1_paper, "L1-det": _check_l1_det,
    "L1-mart": _check_l1_mart, "C2": _check_c2, "C2-growth": _check_c2_growth, "A3": _check_a3,
    "L2": _check_l2, "L3": _check_l3, "T1": _check_t1, "ODE": _check_ode,
}


def evaluate(scenario, sim, claims=None) -> list[ClaimResult]:
    """The rows of ``claims`` (default: the scenario's) for a finished run ``sim``."""
    ctx = Context(scenario, sim)
    rows: list[ClaimResult] = []
    for claim in scenario.claims if claims is None else claims:
        rows.extend(CHECKS[claim](ctx))
    return rows
