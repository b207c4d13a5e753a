"""What a claim's ``check`` reads: :class:`Context`, the scenario, its finished run, the schedule
and (computed once, on demand) the mean field H with its standard error; and the number format
the rows share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulations.claims.result import ClaimResult
from simulations.claims.verdicts import pathwise_rtol
from theory import bounds
from theory.schedules import as_schedule

__all__ = ["Context", "bound_text", "fmt"]

_MISSING = object()


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
    :func:`simulations.claims.evaluate`), and what the checks share: the problem, the rule, the
    schedule and its steps ``a`` (float64), λ, the pathwise tolerance ``rtol`` and H."""

    scenario: Any
    sim: Any
    claim: Any = None
    problem: Any = field(init=False)
    rule: Any = field(init=False)

    def __post_init__(self):
        self.problem = self.scenario.make_problem()
        self.rule = self.scenario.make_rule()
        self.schedule = as_schedule(self.scenario.schedule, horizon=max(self.scenario.steps, 1))
        self.a = np.asarray(self.schedule(np.arange(self.scenario.steps)), dtype=np.float64)
        self.rtol = pathwise_rtol(self.scenario.dtype)
        self.lam = self.rule.lam

    @property
    def steps(self) -> int:
        return self.scenario.steps

    @functools.cached_property
    def _estimate_at_theta0(self):
        import torch

        from simulations.mean_field import mean_field

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
    def _field(self) -> Callable[[np.ndarray], np.ndarray]:
        from simulations.mean_field import field

        return field(self.problem, self.rule, batch=self.scenario.batch)

    def field(self) -> Callable[[np.ndarray], np.ndarray]:
        """H as a numpy callable (P,) or (N, P) → same shape (:func:`mean_field.field`)."""
        return self._field

    def field_with_se(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """H and its standard error at the points ``theta`` (N, P), in one batched call. Where H
        is estimated, every point is estimated from the same minibatches (the mean field's
        common random numbers), so that the estimate is a continuous function of θ whose zeros
        can be searched; where H is exact the standard error is 0."""
        import torch

        from simulations.mean_field import mean_field

        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        if self.h_exact:
            value = np.asarray(self._field(theta), dtype=np.float64).reshape(theta.shape)
            return value, np.zeros_like(value)
        est = mean_field(self.problem, self.rule, torch.as_tensor(theta),
                         batch=self.scenario.batch)
        return (est.value.numpy().astype(np.float64, copy=False),
                est.stderr.numpy().astype(np.float64, copy=False))

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

    def row(self, claim: str | None = None, statement: str | None = None,
            **kwargs) -> ClaimResult:
        """A :class:`ClaimResult` of this scenario (claim id and statement default to the
        claim being checked)."""
        return ClaimResult(scenario=self.scenario.name,
                           claim=claim if claim is not None else self.claim.id,
                           statement=statement if statement is not None else self.claim.statement,
                           **kwargs)
