r"""How far rounding can move a simulated path: the budgets of the pathwise claims.

A pathwise claim (L1-det, C2, C2-growth) is a statement about the exact recursion (10). The
engine computes a path θ̂ in the run's dtype, so a path that meets a bound with equality in
exact arithmetic can come out above it, and by more than a few ulps: the rounding of each step
accumulates over T steps. :class:`Rounding` bounds that error rigorously, from what the engine
already records (the running maximum of ‖θ̂‖, the schedule, λ); a path is ``violated`` only
beyond the bound plus this budget (:func:`simulations.verify.claims.verdicts.pathwise_check`).

**Model.** fl(x ∘ y) = (x ∘ y)(1 + δ), |δ| ≤ u, for + − × ÷ and √, with u the unit roundoff of
the dtype (2⁻⁵³ in float64, 2⁻²⁴ in float32) and u₆₄ = 2⁻⁵³ for what is computed in float64.
γ_n = nu/(1 − nu); a product of n factors (1 + δ)^{±1} is 1 + θ_n with |θ_n| ≤ γ_n, and
(1 + θ_j)(1 + θ_k) = 1 + θ_{j+k}, (1 + θ_j)/(1 + θ_k) = 1 + θ_{j+2k} (Higham, *Accuracy and
Stability of Numerical Algorithms*, §3.1, Lemma 3.3). Inputs are what the engine holds: the
computed gradient ĝ(t) at the computed iterate θ̂(t), and the float64 steps a(t) of the
schedule (the claims' bounds use these same a(t)).

**A norm** of a P-vector (a sum of P squares in any order, a square root, possibly a cast from
float64) is the exact norm times 1 + θ_{P+2} (:attr:`Rounding.norm_rel` = γ_{P+2}).

**The step.** Let d(t) = f·ĝ(t) be the *exact* clip of the computed gradient, f = τ/max(‖ĝ‖, τ)
with τ = λ (classic) or λ·max(‖θ̂(t)‖, ε) (adaptive); then ‖d(t)‖ ≤ λ, resp.
≤ λ·max(‖θ̂(t)‖, ε), exactly, which is all the claims use. The engine's factor f̂ has
f̂ = f(1 + θ_{3P+8}) (τ̂ = τ(1 + θ_{P+3}), ‖ĝ‖ computed as ‖ĝ‖(1 + θ_{P+2}), the quotient
f̂ = τ̂/‖ĝ‖̂·(1 + δ) when clipped; when only one of the exact and computed factors is clipped,
f̂ and f are both within γ_{3P+8} of 1), and the step ŝ = fl(a·f̂·ĝ) adds at most four
roundings (casts of a and f̂ to the dtype, two products): ŝ_p = a·d_p(1 + θ_κ) with
κ = 3P + 12 (:attr:`Rounding.step_rel` = γ_κ).

**The update.** θ̂(t+1)_p = (θ̂(t)_p − ŝ_p)(1 + δ') with |δ'| ≤ v, v = u (one rounding; the
compiled kernel forms it in float64 and stores it in float32: v = u + u₆₄ + u·u₆₄). So the
local error e(t) = θ̂(t+1) − (θ̂(t) − a(t)·d(t)) satisfies, per coordinate,
|e_p| ≤ v/(1 − v)·|θ̂(t+1)_p| + γ_κ·a(t)|d_p|, and in norm

    ‖e(t)‖ ≤ ū·‖θ̂(t+1)‖ + γ_κ·a(t)‖d(t)‖,   ū = v/(1 − v)   (:attr:`Rounding.update_rel`).

θ̂ is the exact recursion driven by the steps d(t) and the perturbations e(t).

**Displacement bounds** (L1-det; :meth:`Rounding.displacement_rtol`). θ̂(s) − θ̂(0) =
−Σ_{t<s} a(t)d(t) + Σ_{t<s} e(t), so with B(s) ≥ Σ_{t<s} a(t)‖d(t)‖ (λΣa for classic clipping)

    ‖θ̂(s) − θ̂(0)‖ ≤ (1 + γ_κ)·B(s) + ū·Σ_{t<s}‖θ̂(t+1)‖ ≤ (1 + γ_κ)·B(s) + ū·s·M/(1 − γ_{P+2})

with M the recorded running maximum of ‖θ̂‖ (computed norms, hence the 1 − γ_{P+2}). The
check's own evaluation: the recorded ‖θ̂(s) − θ̂(0)‖ is the exact one times 1 + θ_1 (the
difference, in the dtype) times 1 + θ^{64}_{P+2} (its norm), and B(s) = λ·Σ_{t<s} a(t) summed
in float64 is at least (1 − γ^{64}_s) times the exact sum. So the recorded ratio v/b̂ is at
most 1 + ρ with

    1 + ρ = (1 + u)(1 + γ^{64}_{P+2})·[(1 + γ_κ)/(1 − γ^{64}_s) + ū·s·M/((1 − γ_{P+2})·b̂)],

times 1 + γ^{64}_{16} for the evaluation of ρ itself. The term ū·s·M/b̂ is the one that grows:
u per step relative to the size of the iterate, against the bound's total. Where a(t)λ is below
one ulp of θ̂ it is the whole story (:meth:`Rounding.unresolved`).

**Multiplicative bounds** (C2-growth; :meth:`Rounding.growth_rtol`). With m̂(t) = max(‖θ̂(t)‖, ε)
and ‖d(t)‖ ≤ λ·m̂(t): ‖θ̂(t+1)‖ ≤ (1 + v)(‖θ̂(t)‖ + (1 + γ_κ)λa(t)m̂(t))
≤ (1 + v)·(1 + λa(t))·(1 + γ_κ·λa(t)/(1 + λa(t)))·m̂(t), and ε is below the same right side, so
by induction m̂(s) ≤ m̂(0)·Π_{t<s}(1 + λa(t))·(1 + ρ_g(s)) with

    1 + ρ_g(s) = (1 + v)^s · Π_{t<s}(1 + γ_κ·λa(t)/(1 + λa(t))),

plus the evaluation (norms of θ̂(s) and θ̂(0), γ_{P+2} each; the float64 running product of the
1 + λa(t), γ^{64}_{3s+2}; in log space past overflow, the absolute error of the logs).

**One step** (C2). The recorded ‖g/c‖ = ‖ĝ‖·f̂ with f̂ = τ̂/max(‖ĝ‖, τ̂), τ̂ = λ·max(n̂, ε), and
the ratio divides by 1 + n̂ with the *same* computed n̂ = ‖θ̂(t)‖ (both steps compute these in
float64 from the dtype's norms), so ‖g/c‖/(1 + n̂) ≤ λ·max(n̂, ε)/(1 + n̂)·(1 + γ^{64}_5)
≤ λ·max(1, ε)·(1 + γ^{64}_5): the norms' errors cancel, and with K's and the ratio's own
roundings ρ = γ^{64}_8 (:attr:`Rounding.step_ratio_rtol`), whatever the dtype and P.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["U64", "Rounding", "gamma"]

#: the unit roundoff of float64, in which the claims evaluate their bounds
U64 = 2.0**-53


def gamma(n: ArrayLike, u: float) -> np.ndarray | float:
    """γ_n = nu/(1 − nu) (inf where nu ≥ 1): a product of n factors (1 + δ)^{±1}, |δ| ≤ u, is
    within γ_n of 1."""
    nu = np.asarray(n, dtype=np.float64) * u
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(nu < 1, nu / (1 - nu), np.inf)
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class Rounding:
    """The rounding model of one run: its ``dtype`` ("float64" or "float32") and its number of
    parameters ``params`` (P). See the module docstring for the derivation of each budget."""

    dtype: str
    params: int

    def __post_init__(self):
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be float64 or float32, got {self.dtype!r}")
        if self.params < 1:
            raise ValueError(f"params must be >= 1, got {self.params}")

    @property
    def u(self) -> float:
        """The unit roundoff of the run's dtype: 2⁻⁵³ (float64), 2⁻²⁴ (float32)."""
        return float(np.finfo(self.dtype).eps) / 2

    @property
    def norm_rel(self) -> float:
        """γ_{P+2}: the relative error of a norm computed in the dtype (or in float64)."""
        return float(gamma(self.params + 2, self.u))

    @property
    def kappa(self) -> int:
        """κ = 3P + 12, the roundings between the exact step a·d(t) and the engine's."""
        return 3 * self.params + 12

    @property
    def step_rel(self) -> float:
        """γ_κ: the relative error of each coordinate of the computed step a(t)·g(t)/c(t)."""
        return float(gamma(self.kappa, self.u))

    @property
    def update_rel(self) -> float:
        """ū = v/(1 − v), v the rounding of θ(t) − step (u, and u + u₆₄ + u·u₆₄ in float32,
        which the compiled kernel forms in float64 and stores in float32)."""
        v = self.u + (U64 + self.u * U64 if self.dtype == "float32" else 0.0)
        return v / (1 - v)

    @property
    def step_ratio_rtol(self) -> float:
        """γ^{64}_8: the tolerance of a one-step ratio ‖g/c‖/(1 + ‖θ‖) against λ·max(1, ε)."""
        return float(gamma(8, U64))

    def drift(self, steps: ArrayLike, max_norm: ArrayLike, moved: ArrayLike) -> np.ndarray:
        """A bound on Σ_{t<s}‖e(t)‖, how far rounding can have moved θ̂(s) from the exact
        recursion driven by the same clipped steps: ū·s·M/(1 − γ_{P+2}) + γ_κ·B, with
        ``steps`` s, ``max_norm`` M ≥ max_{t≤s}‖θ̂(t)‖ as recorded (``running_max``'s
        ``max_norm``) and ``moved`` B ≥ Σ_{t<s} a(t)‖g(t)/c(t)‖ (λ·Σ_{t<s}a(t) under classic
        clipping). Broadcasts; inf where M is."""
        s, m, b = (np.asarray(x, dtype=np.float64) for x in (steps, max_norm, moved))
        with np.errstate(invalid="ignore", over="ignore"):
            out = self.update_rel * s * m / (1 - self.norm_rel) + self.step_rel * b
        return np.where(np.isnan(out), np.inf, out)

    def displacement_rtol(self, steps: ArrayLike, max_norm: ArrayLike,
                          bound: ArrayLike) -> np.ndarray:
        """ρ for a check ‖θ(s) − θ(0)‖ ≤ b(s) on the recorded deviations (``deviation_at``,
        ``max_deviation``), where ``bound`` b(s) ≥ Σ_{t<s} a(t)‖g/c‖ is the bound as the claim
        computed it, a float64 sum of s positive terms: the ratio v/b exceeds 1 + ρ only if the
        exact path breaks the bound (module docstring). ``steps`` s, ``max_norm`` M as in
        :meth:`drift`. Broadcasts; inf where b = 0 or M is inf."""
        s, m, b = (np.asarray(x, dtype=np.float64) for x in (steps, max_norm, bound))
        g64 = gamma(s, U64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            inner = ((1 + self.step_rel) / (1 - g64)
                     + self.update_rel * s * m / ((1 - self.norm_rel) * b))
            one_plus = ((1 + self.u) * (1 + gamma(self.params + 2, U64)) * inner
                        * (1 + gamma(16, U64)))
        out = one_plus - 1
        return np.where(np.isnan(out) | (b <= 0), np.inf, out)

    def growth_rtol(self, lam_a: ArrayLike) -> np.ndarray:
        """ρ_g(s) for s = 0..T: how far rounding can lift m̂(s) = max(‖θ̂(s)‖, ε) above
        m̂(0)·Π_{t<s}(1 + λa(t)) (module docstring), for ``lam_a`` = λa(t), t < T:
        (1 + v)^s·Π_{t<s}(1 + γ_κλa(t)/(1 + λa(t))) − 1, taken up by 1 + γ^{64}_{2s+4} for its
        own evaluation. The evaluation of the claim's bound and norms is the claim's to add."""
        la = np.asarray(lam_a, dtype=np.float64)
        v = self.update_rel  # ū ≥ v, so (1 + ū)^s bounds (1 + v)^s
        logs = np.concatenate([[0.0], np.cumsum(
            math.log1p(v) + np.log1p(self.step_rel * la / (1 + la)))])
        s = np.arange(len(logs))
        with np.errstate(over="ignore"):
            return np.expm1(logs) * (1 + gamma(2 * s + 4, U64))

    def unresolved(self, allowance: ArrayLike, norm: ArrayLike) -> np.ndarray:
        """Whether a step the bound allows to move by ``allowance`` is below the resolution of
        an iterate of norm ``norm``: allowance < 2u·norm, about one ulp. Such a step is rounded
        by at least half of itself (to 0, or up to a whole ulp)."""
        return np.asarray(allowance, dtype=np.float64) < 2 * self.u * np.asarray(
            norm, dtype=np.float64)
