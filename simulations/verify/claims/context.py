"""What a claim's ``check`` reads: :class:`Context`, the scenario, its finished run, the schedule
and (computed once, on demand) the mean field H with its standard error; and the number format
the rows share."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from simulations.verify.claims.result import ClaimResult
from simulations.verify.claims.rounding import Rounding
from simulations.verify.claims.verdicts import (
    clopper_pearson,
    interval_verdict,
    log10_tightness,
    pathwise_rtol,
    probability_verdict,
)
from theory import bounds

if TYPE_CHECKING:
    from simulations.engine.mean_field import Field

__all__ = ["RARE_OPTIONS", "Context", "bound_text", "fmt"]

_MISSING = object()

#: the options of the probability claims that fall back on AMS (:meth:`Context.probability`):
#: ``rare`` whether to, ``rare_particles`` N and ``rare_replicas`` of
#: :func:`simulations.engine.rare.ams`,
#: ``rare_floor`` the log10 of the smallest bound it is tried at
RARE_OPTIONS: dict[str, Any] = {"rare": True, "rare_particles": 100, "rare_replicas": 10,
                                "rare_floor": -30.0}


def fmt(x: float | None) -> str:
    """A number for a table cell: 4 significant digits, scientific outside [1e-3, 1e6)."""
    if x is None:
        return "—"
    if x == 0 or (1e-3 <= abs(x) < 1e6):
        return f"{x:.4g}"
    return f"{x:.3e}"


def bound_text(b: bounds.ProbabilityBound) -> str:
    """A probability bound as text: its value, or 2e^−x with its log10 when it underflows."""
    if b.probability is not None and b.probability > 1e-300:
        return f"P ≤ {fmt(min(b.probability, 2.0))}"
    return f"P ≤ 2e^−{b.exponent:.6g} (log10 {b.log10_probability:.7g})"


@dataclass
class Context:
    """The scenario, its run ``sim``, the claim being checked (``claim``, set by
    :func:`simulations.verify.claims.evaluate`), the run store
    (:class:`~simulations.engine.store.RunStore`)
    that keeps the AMS estimates of :meth:`rare` (``store``; None: not kept) and whether a
    saved one is reused (``reuse``), and what the checks share: the problem, the rule, the
    schedule and its steps ``a`` (float64), λ, the tolerance ``rtol`` of one computed value
    against a constant, the run's rounding model ``rounding`` (the budgets of the pathwise
    claims: :meth:`displacement_budget`, :meth:`growth_budget`) and H."""

    scenario: Any
    sim: Any
    claim: Any = None
    store: Any = None
    reuse: bool = False
    problem: Any = field(init=False)
    rule: Any = field(init=False)

    def __post_init__(self):
        self.problem = self.scenario.make_problem()
        self.rule = self.scenario.make_rule()
        self.schedule = self.scenario.run.schedule_obj()
        self.a = np.asarray(self.schedule(np.arange(self.scenario.steps)), dtype=np.float64)
        self.rtol = pathwise_rtol(self.scenario.dtype)
        self.rounding = Rounding(self.scenario.dtype, self.problem.n_params)
        self.lam = self.rule.lam

    @property
    def steps(self) -> int:
        return self.scenario.steps

    @functools.cached_property
    def _estimate_at_theta0(self):
        import torch

        from simulations.engine.mean_field import mean_field

        return mean_field(self.problem, self.rule, torch.as_tensor(self.theta0())[None],
                          batch=self.scenario.batch)

    @property
    def h_exact(self) -> bool:
        """Whether H is computed exactly (else it is a Monte Carlo estimate)."""
        return bool(self._estimate_at_theta0.exact)

    @property
    def h_method(self) -> str:
        """How H is computed (the mean field's method, "(not exact)" if estimated)."""
        est = self._estimate_at_theta0
        return est.method + ("" if est.exact else " (not exact)")

    @functools.cached_property
    def _field(self) -> Field:
        from simulations.engine.mean_field import field

        return field(self.problem, self.rule, batch=self.scenario.batch)

    def field(self) -> Field:
        """H as a numpy callable (P,) or (N, P) → same shape (:func:`mean_field.field`)."""
        return self._field

    def field_with_se(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """H and its standard error at the points ``theta`` (N, P), in one batched call. Where H
        is estimated, every point is estimated from the same minibatches (the mean field's
        common random numbers), so that the estimate is a continuous function of θ whose zeros
        can be searched; where H is exact the standard error is 0."""
        import torch

        from simulations.engine.mean_field import mean_field

        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        if self.h_exact:
            value = np.asarray(self._field(theta), dtype=np.float64).reshape(theta.shape)
            return value, np.zeros_like(value)
        est = mean_field(self.problem, self.rule, torch.as_tensor(theta),
                         batch=self.scenario.batch)
        return (est.value.numpy().astype(np.float64, copy=False),
                est.stderr.numpy().astype(np.float64, copy=False))

    def displacement_budget(self, steps: Any, bound: Any, max_norm: Any = None
                            ) -> tuple[np.ndarray, np.ndarray]:
        """The rounding budget of a pathwise bound on ‖θ(s) − θ(0)‖ (what a claim of the
        user's calls before :func:`~simulations.verify.claims.verdicts.pathwise_check`): for the
        steps
        ``steps`` s and the bound ``bound`` b(s) as the claim computed it in float64 (it must
        be at least Σ_{t<s} a(t)‖g(t)/c(t)‖, as λΣa is under classic clipping), returns
        (rtol, unresolved): the ratio ‖θ(s) − θ(0)‖/b(s) recorded on a path can exceed 1 by
        rtol from rounding alone (:meth:`Rounding.displacement_rtol
        <simulations.verify.claims.rounding.Rounding.displacement_rtol>`), and ``unresolved`` says
        where the run's steps fell below one ulp of θ. Per path: ``max_norm`` (default the run's
        ``max_norm``, so the claim needs the ``running_max`` observer) is taken along the first
        axis, so ``steps`` and ``bound`` of shape (k,) give (paths, k) arrays."""
        m = self.sim.arrays["max_norm"] if max_norm is None else max_norm
        m = np.asarray(m, dtype=np.float64)
        s, b = np.asarray(steps, dtype=np.float64), np.asarray(bound, dtype=np.float64)
        if m.ndim == 1 and s.ndim >= 1:
            m = m.reshape(-1, *([1] * s.ndim))
        rtol = self.rounding.displacement_rtol(s, m, b)
        return rtol, self.resolution_lost(s.astype(np.int64), m)

    def resolution_lost(self, steps: Any, norm: Any) -> np.ndarray:
        """Whether some step t < s (for each of ``steps`` s) allows a move λ·a(t) below one ulp
        of an iterate of norm ``norm`` (:meth:`Rounding.unresolved
        <simulations.verify.claims.rounding.Rounding.unresolved>`; broadcasts like
        :meth:`displacement_budget`)."""
        s = np.asarray(steps, dtype=np.int64)
        if self.lam is None:  # no λ (no clipping, projection): no step allowance to compare
            return np.zeros(np.broadcast_shapes(s.shape, np.shape(norm)), dtype=bool)
        # the smallest λa(t) over t < s, as a running minimum (inf for s = 0)
        least = np.concatenate([[np.inf], np.minimum.accumulate(self.lam * self.a)])
        return self.rounding.unresolved(least[s], norm)

    def growth_budget(self, steps: Any) -> tuple[np.ndarray, np.ndarray]:
        """The rounding budget of a bound m(s) ≤ m(0)·Π_{t<s}(1 + λa(t)) on m = max(‖θ‖, ε)
        (Grönwall), for the steps ``steps``: (ρ_g(s), unresolved), ρ_g of
        :meth:`Rounding.growth_rtol <simulations.verify.claims.rounding.Rounding.growth_rtol>` (the
        evaluation of the claim's own bound and norms not included) and whether a step t < s
        has λa(t) below one ulp of a norm-1 iterate (a step of relative size λa(t) is then
        rounded by at least half of itself). Needs λ."""
        s = np.asarray(steps, dtype=np.int64)
        return self.rounding.growth_rtol(self.lam * self.a)[s], self.resolution_lost(s, 1.0)

    def theta0(self) -> np.ndarray:
        """θ(0) of the run (the problem's initial point for the scenario's seed)."""
        import torch

        return self.problem.initial(torch.arange(1), self.scenario.seed, torch.float64,
                                    "cpu")[0].numpy()

    def opt(self, key: str, default: Any = _MISSING) -> Any:
        """The scenario's ``[options]`` value of ``key``, else the claim's declared default."""
        if key in self.scenario.options:
            return self.scenario.options[key]
        if default is not _MISSING:
            return default
        options = getattr(self.claim, "options", {})
        if key not in options:
            raise KeyError(f"claim {getattr(self.claim, 'id', '?')} reads option {key!r} but "
                           f"does not declare it in OPTIONS")
        return options[key]

    def rare(self, event: str, level: float, endpoint: bool = False):
        """AMS estimate (:func:`simulations.engine.rare.ams`) of P(max_{s≤T} z(s) ≥ ``level``), or
        of
        P(z(T) ≥ ``level``) with ``endpoint``, on the scenario's chain (problem, rule,
        schedule, T, minibatch, seed, dtype, guard), with the claim's options
        ``rare_particles`` and ``rare_replicas``; kept in (with ``reuse``, taken from) the
        ``store`` when there is one."""
        from simulations.engine import rare

        particles, replicas = self.opt("rare_particles"), self.opt("rare_replicas")
        for key, value in (("rare_particles", particles), ("rare_replicas", replicas)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise ValueError(f"options.{key} must be an integer >= 2, got {value!r}")
        chain = self.scenario.run.chain
        splitting = rare.Splitting(event=event, level=level, endpoint=endpoint,
                                   particles=particles, replicas=replicas)
        if self.store is None:
            return rare.ams(chain, splitting)
        return self.store.rare(chain, splitting, lambda: rare.ams(chain, splitting),
                               reuse=self.reuse,
                               name=f"{self.scenario.name} {getattr(self.claim, 'id', 'AMS')}")

    def probability(self, k: int, n: int, log10_bound: float, *,
                    event: tuple[str, float] | tuple[str, float, bool],
                    impossible: bool = False, reachable: bool = True,
                    upper_only: bool = False) -> dict[str, Any]:
        """The verdict on P(event) ≤ b = 10^log10_bound from k events in n plain paths, and
        where that is ``inconclusive`` (the 95% Clopper–Pearson upper limit is above b and the
        lower limit is not), from AMS (:meth:`rare`, score ``event`` at ``level``, its running
        maximum, or its value at T with ``endpoint``) when the
        claim's option ``rare`` is true and log10 b ≥ ``rare_floor``; ``event`` = (score, level)
        or (score, level, endpoint), the arguments of :meth:`rare`. The AMS interval is judged
        by :func:`~simulations.verify.claims.verdicts.interval_verdict` (``upper_only``: the AMS
        event
        contains the claim's, so it can only show ``holds``; an AMS estimate without an
        interval, :attr:`~simulations.engine.rare.RareEventResult.inconclusive` (every replica
        extinct or stopped, or no spread), is ``inconclusive``, its interval (nan, nan);
        ``reachable`` false: the event cannot happen before T, AMS is not tried).

        Returns the row's ``verdict``, ``reason``, ``interval``, ``measurement`` (text),
        ``measurement_value`` and ``details``: ``estimator`` ("monte carlo" or "ams"),
        ``log10_tightness`` = log10 b − log10 p̂ (None when p̂ = 0; then
        ``log10_tightness_at_least`` = log10 b − log10 hi, as p ≤ hi at 95%) and, with AMS, ``rare``
        (:meth:`simulations.engine.rare.RareEventResult.to_dict`) and
        ``rare_seconds``."""
        import time

        verdict, why = probability_verdict(k, n, log10_bound, impossible=impossible)
        interval, estimate = clopper_pearson(k, n), k / n
        measurement = f"{k}/{n} = {fmt(estimate)}"
        details: dict[str, Any] = {"estimator": "monte carlo"}
        if (verdict == "inconclusive" and self.opt("rare") and reachable
                and log10_bound >= float(self.opt("rare_floor"))):
            start = time.perf_counter()
            res = self.rare(*event)
            score, level, endpoint = (*event, False)[:3]
            seconds = time.perf_counter() - start
            verdict = interval_verdict(res.interval, log10_bound, upper_only=upper_only)
            interval, estimate = res.interval, res.probability
            measurement = f"AMS {fmt(estimate)}"
            where = "at T" if endpoint else "running maximum"
            why = (f"plain Monte Carlo {k} of {n} paths cannot resolve 10^{log10_bound:.4g}; AMS "
                   f"({res.setting['particles']} particles × {res.replicas} replicas, score "
                   f"{score} ({where}) at level {level:.6g}): p̂ = {estimate:.3g}, "
                   + _ams_outcome(res, verdict, log10_bound))
            details.update(estimator="ams", rare=res.to_dict(), rare_seconds=seconds)
        elif verdict == "inconclusive" and self.opt("rare") and reachable:
            why += f" (below 10^{float(self.opt('rare_floor')):g}, AMS is not tried)"
        elif verdict == "inconclusive" and self.opt("rare"):
            why += " (the event cannot happen before T, AMS is not tried)"
        tight = log10_tightness(log10_bound, estimate)
        details["log10_tightness"] = tight
        if tight is None and interval[1] > 0:  # p ≤ hi at 95%, so b/p ≥ b/hi
            details["log10_tightness_at_least"] = log10_bound - math.log10(interval[1])
        if verdict != "vacuous":
            why += (f"; bound/estimate = 10^{tight:.3g}" if tight is not None else
                    "; bound/estimate: estimate 0, bound/upper limit = "
                    f"10^{details['log10_tightness_at_least']:.3g}"
                    if "log10_tightness_at_least" in details else
                    "; bound/estimate: no finite ratio (estimate 0)")
        return {"verdict": verdict, "reason": why, "interval": tuple(interval),
                "measurement": measurement, "measurement_value": estimate, "details": details}

    def row(self, claim: str | None = None, statement: str | None = None,
            **kwargs) -> ClaimResult:
        """A :class:`ClaimResult` of this scenario (claim id and statement default to the
        claim being checked)."""
        return ClaimResult(scenario=self.scenario.name,
                           claim=claim if claim is not None else self.claim.id,
                           statement=statement if statement is not None else self.claim.statement,
                           **kwargs)


def _ams_outcome(res: Any, verdict: str, log10_bound: float) -> str:
    """The AMS estimate ``res``'s interval and what its ``verdict`` on the bound
    10^log10_bound rests on, or why it has no interval (then ``verdict`` is inconclusive)."""
    if res.inconclusive is not None:
        return f"inconclusive: {res.inconclusive}, which bounds nothing"
    lo, hi = res.interval
    text = f"95% interval [{lo:.3g}, {hi:.3g}], relative error {res.relative_error:.2g}"
    if verdict == "holds":
        return text + ": the upper limit is at or below the bound"
    if verdict == "violated":
        return text + ": the lower limit is above the bound"
    if lo > 0 and math.log10(lo) > log10_bound:  # upper_only
        return text + (": the lower limit is above the bound, but AMS estimates the running "
                       "maximum, whose probability only bounds the claim's from above")
    return text + ": the interval contains the bound"
