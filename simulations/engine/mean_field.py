r"""The mean field H(θ) = E_μ[g/c] of a problem under a clip rule, batched over points θ.

H is evaluated for all N points of an (N, P) tensor in one call, in torch, with no Python loop
over the points and no copy to the host, so the engine's ``xi`` observer can evaluate it at
every step on every tracked path. How (the first that applies):

* **Closed form**, the quadratic family ℓ = (L/2)‖θ − y‖² with a normal or Student-t law whose
  coordinates are iid, when the rule acts on each coordinate alone (``value``, ``none``,
  ``projection``) or d = 1 (every rule). Per coordinate z = L(θ − ȳ) = m + s·T in law, with
  m = L(θ − mean), s = |L|·sd (T symmetric; s = |L|·sd/√B for a normal law and minibatches of
  B, since ȳ is then normal too), and the threshold τ of the rule (λ for classic and value
  clipping, λ·max(|θ|, ε) for the adaptive rules in d = 1, ∞ without clipping):

      E[clamp(z, −τ, τ)] = m[F(β) − F(α)] + s[G(β) − G(α)] + τ[1 − F(β)] − τF(α),
      α = (−τ − m)/s,  β = (τ − m)/s,

  with F the CDF of T and G(x) = E[T·1{T ≤ x}] its partial first moment:

  - T ~ N(0, 1): F = Φ, G(x) = −φ(x) (so for classic clipping H is the derivative of
    E[Huber_λ], not of E[ℓ]);
  - T ~ t_ν, ν an integer: F by the finite series of Abramowitz & Stegun 26.7.3–4: with
    ϑ = arctan(x/√ν), 2F(x) − 1 = (2/π)[ϑ + sinϑ·Σ_{k=0}^{(ν−3)/2} c_k cos^{2k+1}ϑ] for odd ν
    (the sum empty for ν = 1), sinϑ·Σ_{k=0}^{(ν−2)/2} e_k cos^{2k}ϑ for even ν, where
    c_0 = e_0 = 1, c_k = c_{k−1}·2k/(2k+1), e_k = e_{k−1}·(2k−1)/(2k); and, for ν > 1,

        G(x) = −(ν + x²)/(ν − 1) · f_ν(x),

    because f_ν(x) ∝ (1 + x²/ν)^{−(ν+1)/2} has f_ν′(x) = −(ν+1)x/(ν + x²)·f_ν(x), so
    d/dx[(ν + x²) f_ν(x)] = 2x f_ν − (ν+1) x f_ν = −(ν − 1)·x f_ν(x), and (ν + x²) f_ν(x) → 0
    as x → −∞ when ν > 1. For ν = 1 (Cauchy) G itself diverges but the difference is finite:
    G(β) − G(α) = [ln(1 + β²) − ln(1 + α²)]/(2π). Without clipping H = L(θ − mean), which
    does not exist for ν ≤ 1 (a ValueError).
  - T ~ t_ν, any other real ν > 0: F(x) = 1 − ½·I_{ν/(ν+x²)}(ν/2, ½) for x ≥ 0 and
    ½·I_{ν/(ν+x²)}(ν/2, ½) for x < 0, with I the regularized incomplete beta function
    (:func:`betainc`, a continued fraction); and, on the finite interval (α, β), the same
    antiderivative, since d/dx[(ν + x²) f_ν(x)] = −(ν − 1)·x f_ν(x) holds for every ν:

        G(β) − G(α) = [(ν + α²) f_ν(α) − (ν + β²) f_ν(β)]/(ν − 1),

    also for ν < 1, where (ν + x²) f_ν(x) grows like |x|^{1−ν} and E|T| = ∞ but the
    truncated expectation is finite. It is evaluated as
    −(ν c_ν/2)·e^{−δL(α)}·expm1(−δ[L(β) − L(α)])/δ with δ = (ν − 1)/2, L(x) = ln(1 + x²/ν) and
    c_ν = Γ((ν+1)/2)/(√(νπ) Γ(ν/2)) (because (ν + x²) f_ν(x) = ν c_ν e^{−δL(x)}), which has no
    cancellation as ν → 1 and tends to the Cauchy form above.

* **Exact finite sum**, B = 1 and μ finite (a dataset, a discrete or point law; a point law for
  any B) with S atoms, where S ≤ max(``samples``, ``MAX_EXACT``/P) (an evaluation then costs
  at most what Monte Carlo over ``samples`` draws would, or at most ``MAX_EXACT`` gradient
  entries S·P per point; a larger dataset is estimated by Monte Carlo, below):
  H(θ) = Σ_s w_s · clip(∇ℓ(θ; ξ_s)), the clipped per-sample gradients of the S atoms for
  all N points, computed as (N, S) pairs in pieces of at most ``MAX_ROWS`` rows and
  ``MAX_ENTRIES`` gradient entries (the pieces cut both the points and the atoms, so a dataset
  of any size needs bounded memory).

* **Monte Carlo with common random numbers** otherwise (B > 1 without a closed form, a
  d-dimensional law under a norm-based rule, a dataset above the exact sum's limit): the same
  S = ``samples`` minibatches, drawn once from ``seed`` (stream 2, independent of the runs'
  own draws), for every point and every call,
  so the estimate is a deterministic function of θ; the standard error of the mean over the S
  draws is reported (``exact=False``). Norm clipping couples the coordinates: for an isotropic
  normal law in d > 1, H(θ) = u·E[min(R, τ)·A_d(mR/s²)] along u = m/‖m‖, with R = ‖z‖
  noncentral-χ and A_d = I_{d/2}/I_{d/2−1} the von Mises–Fisher mean resultant length, a
  one-dimensional integral with no closed form in general, so it is estimated too.

For the projection rule H(θ) = E[g] (the projection acts on θ, not on g).

**Rounding.** Each exact evaluation also bounds its own rounding error, ``HEstimate.rounding``
(N, P), so that a zero of H can be told from float noise (an exactly flat H, e.g. the interval
of zeros of a two-point law with a gap > 2λ, evaluates to values of size ε·λ of either sign).
With u = ε/2 the unit roundoff of float64:

* finite sum H = Σ_s w_s t_s, t_s = c_s·g_s the clipped per-sample gradient: for the quadratic
  family g_s = L(θ − y_s) rounds twice and the scale min(1, λ/‖g_s‖) at most 3 times (the norm,
  the quotient, the minimum), the weight and the product once each, so each term carries a
  relative error ≤ 7u; recursive summation of S terms adds ≤ (S − 1)u·Σ|w_s t_s| (Higham,
  Accuracy and Stability, §4.2). Hence |fl(H) − H| ≤ (S + 6)u·Σ_s |w_s t_s| to first order;
  the bound used is (S + 16)·ε·Σ_s |w_s t_s|, twice that with room for the few more roundings
  of a problem's own gradient;
* closed form H = m[F(β) − F(α)] + s[G(β) − G(α)] + τ[F(−β) − F(α)]: the CDF values F ∈ [0, 1]
  carry an absolute error of a few ulps (torch's ``ndtr``; the t series sums ≤ ν/2 terms of
  size ≤ 1 after ``atan``, ``sin``, ``cos``), the rounding of α, β moves F by at most
  3u·sup|x f(x)| < u, and each of the three products and two sums rounds once, so
  |fl(H) − H| ≤ C·u·(|m| + τ + s(|G(α)| + |G(β)|)) with C a few tens; the bound used is
  64·ε·(|m| + τ + s(|G(α)| + |G(β)|)), and 4ε·|m| without clipping (H = m, two roundings);
* Monte Carlo: (S + 16)·ε·(mean of |g/c| over the draws), which the 95% band (1.96 standard
  errors) exceeds unless the draws agree to rounding.

:func:`evaluator` builds (and caches on the problem) the evaluation once — the law's constants,
the atoms, the common random draws — and :func:`mean_field` calls it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import torch

from simulations.engine import sampling
from simulations.engine.problems import Problem, Quadratic
from simulations.engine.rules import ClipRule
from theory.errors import BadArgument

__all__ = ["CLOSED_ROUNDING", "MAX_ENTRIES", "MAX_EXACT", "MAX_ROWS", "SUM_ROUNDING", "HEstimate",
           "MeanField", "betainc", "clamp_mean_rounding", "evaluator", "field", "mean_field",
           "normal_clamp_mean", "t_cdf", "t_clamp_mean", "t_partial_expectation"]

MAX_ROWS = 1 << 16  #: rows (point × atom or point × draw pairs) evaluated in one batch
#: and at most this many entries rows·P per batch: per-sample gradients of a few MB stay in
#: cache (a 20–25–1 MLP, P = 551: 1903 rows per batch, three times faster than 65536)
MAX_ENTRIES = 1 << 20
#: the largest S·P (atoms × parameters) summed exactly when S also exceeds the Monte Carlo
#: sample count (module docstring)
MAX_EXACT = 1 << 24

_ADAPTIVE = ("adaptive", "layerwise", "unitwise")


@dataclass(frozen=True)
class HEstimate:
    """H at N points: ``value`` (N, P); ``stderr`` (N, P), zero when ``exact``; ``method``;
    ``rounding`` (N, P) a bound on the rounding error of ``value`` (module docstring), None
    where it was not computed."""

    value: torch.Tensor
    stderr: torch.Tensor
    exact: bool
    method: str
    rounding: torch.Tensor | None = None


# ---- closed forms ------------------------------------------------------------------------------


_TINY = 1e-300  # the floor of the modified Lentz algorithm's denominators


def _beta_fraction(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor,
                   iterations: int) -> torch.Tensor:
    r"""The continued fraction of I_x(a, b) (Numerical Recipes' ``betacf``, modified Lentz):

        I_x(a, b) = x^a (1 − x)^b/(a·B(a, b)) · 1/(1 + d₁/(1 + d₂/(1 + …))),
        d_{2m+1} = −(a + m)(a + b + m)x/((a + 2m)(a + 2m + 1)),
        d_{2m} = m(b − m)x/((a + 2m − 1)(a + 2m)),

    this function returning the fraction 1/(1 + d₁/(1 + …)) after ``iterations`` pairs of
    terms (elementwise; a, b, x broadcast)."""
    def floor(v):
        return torch.where(v.abs() < _TINY, _TINY, v)

    c = torch.ones_like(x)
    d = 1.0 / floor(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, iterations + 1):
        for num in (m * (b - m) * x / ((a - 1.0 + 2 * m) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1.0 + 2 * m))):
            d = 1.0 / floor(1.0 + num * d)
            c = floor(1.0 + num / c)
            h = h * d * c
    return h


def _beta(a: float, b: float) -> float:
    """B(a, b) = Γ(a)Γ(b)/Γ(a + b), from ``math.gamma`` (a few ulps) while Γ(a + b) is finite,
    from ``math.lgamma`` beyond (whose difference loses about |ln Γ|·2^{−52})."""
    if a + b < 170.0:
        return math.gamma(a) * math.gamma(b) / math.gamma(a + b)
    return math.exp(math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))


def betainc(a: float, b: float, x: torch.Tensor, y: torch.Tensor,
            iterations: int | None = None) -> torch.Tensor:
    r"""The regularized incomplete beta function I_x(a, b) = B(x; a, b)/B(a, b), a, b > 0, at
    ``x`` in [0, 1], with ``y`` = 1 − x given too (computed by the caller without a subtraction,
    so that neither loses its relative precision).

    By the continued fraction of :func:`_beta_fraction` where x < (a + 1)/(a + b + 2), and
    I_x(a, b) = 1 − I_{1−x}(b, a) elsewhere (where the fraction of the other side converges
    quickly). The prefactor x^a (1 − x)^b/(a·B(a, b)) is taken by ``pow`` (relative error
    about a·ulp, where exp(a ln x) would lose |a ln x|·ulp in a far tail), from logs only where
    the powers underflow. A fixed count of iterations, by default 12 + ⌈3√max(a, b)⌉ pairs
    (the fraction needs O(√max(a, b)) of them near the switch; four times as many change
    nothing seen), so there is no data-dependent loop. Accuracy: see :func:`t_cdf`.
    """
    if iterations is None:
        iterations = 12 + math.ceil(3.0 * math.sqrt(max(a, b)))
    swap = x > (a + 1.0) / (a + b + 2.0)
    a_t, b_t = torch.full_like(x, a), torch.full_like(x, b)
    aa, bb = torch.where(swap, b_t, a_t), torch.where(swap, a_t, b_t)
    xx, yy = torch.where(swap, y, x), torch.where(swap, x, y)
    beta = _beta(a, b)
    log_front = aa * torch.log(xx) + bb * torch.log(yy)
    front = torch.where(log_front > -700.0, torch.pow(xx, aa) * torch.pow(yy, bb) / beta,
                        torch.exp(log_front - math.log(beta))) / aa
    part = front * _beta_fraction(aa, bb, xx, iterations)
    return torch.where(swap, 1.0 - part, part)


def _t_cdf_beta(x: torch.Tensor, df: float) -> torch.Tensor:
    r"""F_ν(x) for any real ν > 0: with I the regularized incomplete beta function,
    F_ν(x) = ½·I_{ν/(ν+x²)}(ν/2, ½) for x < 0 and 1 − ½·I_{ν/(ν+x²)}(ν/2, ½) for x ≥ 0
    (the argument ν/(ν + x²) = 1/(1 + x²/ν) and its complement x²/(ν + x²) = 1/(1 + ν/x²)
    each from its own division)."""
    x2 = x.square()
    tail = 0.5 * betainc(df / 2.0, 0.5, 1.0 / (1.0 + x2 / df), 1.0 / (1.0 + df / x2))
    return torch.where(x < 0, tail, 1.0 - tail)


def t_cdf(x: torch.Tensor, df: float) -> torch.Tensor:
    r"""F_ν(x) = P(T ≤ x) for T ~ Student-t with ν = ``df`` > 0 degrees of freedom.

    For an integer ν, the finite series of Abramowitz & Stegun 26.7.3–4 (see the module
    docstring): 2F − 1 = (2/π)[ϑ + sinϑ Σ c_k cos^{2k+1}ϑ] (ν odd), sinϑ Σ e_k cos^{2k}ϑ
    (ν even), ϑ = arctan(x/√ν). Otherwise the incomplete beta function:
    F_ν(x) = ½·I_{ν/(ν+x²)}(ν/2, ½) for x < 0, 1 − ½·I_{ν/(ν+x²)}(ν/2, ½) for x ≥ 0
    (:func:`betainc`); against mpmath, at most 1e-15 absolute for ν ≤ 30 (3e-15 at ν = 100)
    and, in the lower tail, 1e-14 relative for ν ≤ 10 (2e-14 at ν = 30)."""
    if not float(df).is_integer():
        return _t_cdf_beta(x, float(df))
    df = int(df)
    th = torch.atan(x / math.sqrt(df))
    c2 = torch.cos(th).square()
    if df % 2:
        total = torch.zeros_like(x)
        for k in range((df - 3) // 2, -1, -1):  # Horner in cos²ϑ
            coef = math.prod(2 * j / (2 * j + 1) for j in range(1, k + 1))
            total = coef + c2 * total
        twice = (2 / math.pi) * (th + torch.sin(th) * torch.cos(th) * total) if df > 1 \
            else (2 / math.pi) * th
    else:
        total = torch.zeros_like(x)
        for k in range((df - 2) // 2, -1, -1):
            coef = math.prod((2 * j - 1) / (2 * j) for j in range(1, k + 1))
            total = coef + c2 * total
        twice = torch.sin(th) * total
    return 0.5 * (1.0 + twice)


def _t_pdf(x: torch.Tensor, df: float) -> torch.Tensor:
    """f_ν(x) = Γ((ν+1)/2)/(√(νπ)Γ(ν/2))·(1 + x²/ν)^{−(ν+1)/2}."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return torch.exp(log_c - 0.5 * (df + 1) * torch.log1p(x.square() / df))


def _clamp_mean(m: torch.Tensor, s: torch.Tensor | float, tau: torch.Tensor,
                cdf, partial) -> torch.Tensor:
    """E[clamp(m + sT, −τ, τ)] = m[F(β) − F(α)] + s·partial(α, β) + τ[F(−β) − F(α)] for a
    symmetric T with CDF ``cdf``; ``partial(α, β)`` = E[T·1{α < T ≤ β}]."""
    a, b = (-tau - m) / s, (tau - m) / s
    fa, fb = cdf(a), cdf(b)
    return m * (fb - fa) + s * partial(a, b) + tau * (cdf(-b) - fa)


#: the factor C of the closed forms' rounding bound C·ε·(|m| + τ + s(|G(α)| + |G(β)|))
CLOSED_ROUNDING = 64
#: the constant k of the sums' rounding bound (S + k)·ε·Σ|w_s t_s| (module docstring)
SUM_ROUNDING = 16


def _phi(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * x.square()) / math.sqrt(2 * math.pi)


def _t_partial(x: torch.Tensor, df: float) -> torch.Tensor:
    """|G(x)| of the t law up to the constant that cancels in G(β) − G(α): |(ν + x²)f_ν(x)/(ν − 1)|
    for ν ≠ 1, ln(1 + x²)/(2π) for ν = 1."""
    if df == 1:
        return torch.log1p(x.square()) / (2 * math.pi)
    return ((df + x.square()) * _t_pdf(x, df) / (df - 1)).abs()


def clamp_mean_rounding(m: torch.Tensor, s: torch.Tensor | float, tau: torch.Tensor,
                        law: str, df: float = 1) -> torch.Tensor:
    """The bound C·ε·(|m| + τ + s(|G(α)| + |G(β)|)) on the rounding error of
    :func:`normal_clamp_mean` (``law`` "normal") or :func:`t_clamp_mean` ("student-t")."""
    a, b = (-tau - m) / s, (tau - m) / s
    if law == "normal":
        partial = _phi(a) + _phi(b)
    else:
        partial = _t_partial(a, df) + _t_partial(b, df)
    eps = torch.finfo(torch.float64).eps
    return CLOSED_ROUNDING * eps * (m.abs() + tau + s * partial)


def normal_clamp_mean(m: torch.Tensor, s: torch.Tensor | float,
                      tau: torch.Tensor) -> torch.Tensor:
    r"""E[clamp(z, −τ, τ)] for z ~ N(m, s²), τ finite:
    m[Φ(β) − Φ(α)] + s[φ(α) − φ(β)] + τ[1 − Φ(β)] − τΦ(α), α = (−τ − m)/s, β = (τ − m)/s."""

    def phi(x):
        return torch.exp(-0.5 * x.square()) / math.sqrt(2 * math.pi)

    return _clamp_mean(m, s, tau, torch.special.ndtr, lambda a, b: phi(a) - phi(b))


def t_partial_expectation(a: torch.Tensor, b: torch.Tensor, df: float) -> torch.Tensor:
    r"""E[T·1{a < T ≤ b}] for T ~ t_ν, ν = ``df`` > 0 any real, a and b finite:

        [(ν + a²) f_ν(a) − (ν + b²) f_ν(b)]/(ν − 1)
          = −(ν c_ν/2)·e^{−δL(a)}·expm1(−δ[L(b) − L(a)])/δ,

    δ = (ν − 1)/2, L(x) = ln(1 + x²/ν), c_ν = Γ((ν+1)/2)/(√(νπ) Γ(ν/2)) (so that
    (ν + x²) f_ν(x) = ν c_ν e^{−δL(x)}); for ν = 1 the limit, [L(b) − L(a)]/(2π). Valid for
    every ν (derivation in the module docstring), also ν < 1 where E|T| = ∞."""
    df = float(df)
    la, lb = torch.log1p(a.square() / df), torch.log1p(b.square() / df)
    c_nu = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi))
    delta = 0.5 * (df - 1.0)
    if delta == 0.0:
        return 0.5 * df * c_nu * (lb - la)
    return -(0.5 * df * c_nu / delta) * torch.exp(-delta * la) * torch.expm1(-delta * (lb - la))


def t_clamp_mean(m: torch.Tensor, s: torch.Tensor | float, tau: torch.Tensor,
                 df: float) -> torch.Tensor:
    r"""E[clamp(m + sT, −τ, τ)] for T ~ t_ν (ν = ``df`` > 0), τ finite: the formula of
    :func:`normal_clamp_mean` with F = F_ν (:func:`t_cdf`) and, for an integer ν,
    E[T·1{α < T ≤ β}] = [(ν + α²)f_ν(α) − (ν + β²)f_ν(β)]/(ν − 1) for ν > 1,
    [ln(1 + β²) − ln(1 + α²)]/(2π) for ν = 1; for other ν, :func:`t_partial_expectation`
    (derivation in the module docstring)."""
    if not float(df).is_integer():
        return _clamp_mean(m, s, tau, lambda x: t_cdf(x, df),
                           lambda a, b: t_partial_expectation(a, b, df))
    df = int(df)

    def partial(a, b):
        if df == 1:
            return (torch.log1p(b.square()) - torch.log1p(a.square())) / (2 * math.pi)
        return ((df + a.square()) * _t_pdf(a, df) - (df + b.square()) * _t_pdf(b, df)) / (df - 1)

    return _clamp_mean(m, s, tau, lambda x: t_cdf(x, df), partial)


# ---- the evaluator -----------------------------------------------------------------------------


def _clipped(problem: Problem, rule: ClipRule, theta: torch.Tensor, batch: Any) -> torch.Tensor:
    g = problem.grad(theta, batch)
    if rule.kind == "projection":
        return g
    out = rule.apply(g, theta, problem.layout)
    if out.direction is not None:
        return out.direction
    assert out.scale is not None  # a rule gives a direction or a scale
    return g * out.scale[:, None]


def _tile(points: torch.Tensor, times: int) -> torch.Tensor:
    """Each of the k points repeated ``times`` times, (k·times, P); one point is expanded, not
    copied (a quarter faster for an MLP's 1000 atoms)."""
    if len(points) == 1:
        return points.expand(times, -1)
    return points.repeat_interleave(times, 0)


def _pieces(n_rows: int, n_params: int) -> tuple[int, int]:
    """Points and rows (atoms or draws) per piece: points·rows ≤ min(MAX_ROWS,
    MAX_ENTRIES/P) where possible (one point with at least one row)."""
    cap = max(1, min(MAX_ROWS, MAX_ENTRIES // n_params))
    rows = min(n_rows, cap)
    return max(1, cap // rows), rows


class MeanField:
    """H(θ) = E_μ[g/c] of ``problem`` under ``rule`` for minibatches of ``batch``, as a batched
    torch function of θ (N, P) (see the module docstring for the methods); ``method`` and
    ``exact`` say which one applies; ``exact_limit``: the S·P above which a finite μ with more
    than ``samples`` atoms is estimated (default :data:`MAX_EXACT`). Built by
    :func:`evaluator`."""

    def __init__(self, problem: Problem, rule: ClipRule, *, batch: int = 1, samples: int = 4096,
                 seed: int = 0, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu", exact_limit: int = MAX_EXACT):
        for name, value, least in (("batch", batch, 1), ("samples", samples, 2)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < least:
                raise BadArgument(name, f"must be an integer ≥ {least}, got {value!r}")
        batch, samples = int(batch), int(samples)
        self.problem, self.rule, self.batch = problem, rule, batch
        self.samples, self.exact_limit = samples, exact_limit
        self.dtype, self.device = dtype, torch.device(device)
        self.kind = self._choose()
        self.exact = self.kind != "monte carlo"
        if self.kind == "closed":
            assert isinstance(problem, Quadratic)  # the closed forms are the quadratic's
            law = problem.law
            if law.kind == "student-t" and law.df <= 1 and rule.kind in ("none", "projection"):
                raise BadArgument("df", f"E[g] does not exist for a Student-t law with df = "
                                        f"{law.df:g} ≤ 1 without clipping")
            self.method = f"closed form ({law.kind} law)"
        elif self.kind == "atoms":
            self.atoms, self.weights = problem.atoms(dtype, self.device)
            self.method = "finite sum over the atoms of μ"
        else:
            w = sampling.words(seed, torch.arange(samples, device=self.device), range(1),
                               batch * problem.words_per_sample, stream=2)[0]
            self.draws = problem.sample(w, dtype)
            self.method = (f"Monte Carlo over {samples} minibatches of size {batch} "
                           f"(the same draws at every point)")

    def _choose(self) -> str:
        problem, rule = self.problem, self.rule
        if isinstance(problem, Quadratic):
            law = problem.law
            if law.kind in ("normal", "student-t") and (
                    law.kind == "normal" or self.batch == 1) and (
                    problem.dim == 1 or rule.kind in ("value", "none", "projection")):
                return "closed"
            if law.kind == "point":
                return "atoms"
        if self.batch == 1:
            try:
                _, weights = self.problem.atoms(self.dtype, self.device)
            except NotImplementedError:
                return "monte carlo"
            size = len(weights)
            if size <= max(self.samples, self.exact_limit // problem.n_params):
                return "atoms"
        return "monte carlo"

    def __call__(self, theta: torch.Tensor, *, rounding: bool = False) -> HEstimate:
        """H at the points ``theta`` (N, P): an :class:`HEstimate` in ``theta``'s dtype, with
        the bound on its rounding error (``rounding``, module docstring) when asked for."""
        if self.kind == "closed":
            value, bound = self._closed(theta, rounding)
            return HEstimate(value, torch.zeros_like(value), True, self.method, bound)
        if self.kind == "atoms":
            value, bound = self._atoms(theta, rounding)
            return HEstimate(value, torch.zeros_like(value), True, self.method, bound)
        value, stderr, bound = self._monte_carlo(theta, rounding)
        return HEstimate(value, stderr, False, self.method, bound)

    def _closed(self, theta: torch.Tensor, rounding: bool
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        problem, rule = self.problem, self.rule
        assert isinstance(problem, Quadratic)  # see _choose
        law = problem.law
        th = theta.detach().to(torch.float64)
        curv = problem.curvature
        m = curv * (th - law.mean)
        eps = torch.finfo(torch.float64).eps
        if rule.kind in ("none", "projection"):
            return m.to(theta.dtype), (4 * eps * m.abs()).to(theta.dtype) if rounding else None
        assert rule.lam is not None  # every other rule clips at a threshold λ
        s = abs(curv) * law.sd / math.sqrt(self.batch)
        if rule.kind in _ADAPTIVE:  # d = 1 here: τ = λ·max(|θ|, ε)
            tau = rule.lam * torch.clamp(th.abs(), min=rule.eps)
        else:
            tau = torch.full_like(th, rule.lam)
        if law.kind == "normal":
            h = normal_clamp_mean(m, s, tau)
        else:
            h = t_clamp_mean(m, s, tau, law.df)
        if not rounding:
            return h.to(theta.dtype), None
        return h.to(theta.dtype), clamp_mean_rounding(m, s, tau, law.kind, law.df).to(theta.dtype)

    def _atoms(self, theta: torch.Tensor, rounding: bool
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Σ_s w_s·clip(g_s) and the rounding bound (S + k)·ε·Σ_s |w_s·clip(g_s)|."""
        problem, rule = self.problem, self.rule
        atoms, weights = self.atoms, self.weights.to(theta.dtype)
        n, p = theta.shape
        s = len(weights)
        out = torch.zeros_like(theta)
        size = torch.zeros_like(theta)
        step_pts, step_rows = _pieces(s, p)
        for i in range(0, n, step_pts):
            part = theta[i:i + step_pts]
            k = len(part)
            for j in range(0, s, step_rows):
                idx = torch.arange(j, min(s, j + step_rows), device=theta.device)
                rows = _tile(part, len(idx))
                g = problem.grad(rows, problem.batch_of(atoms, idx.repeat(k)))
                coef = weights[idx].expand(k, -1)
                if rule.kind != "projection":
                    c = rule.apply(g, rows, problem.layout)
                    if c.scale is None:
                        assert c.direction is not None
                        g = c.direction
                    else:  # g/c = scale·g: fold the scale into the weights, one pass over g
                        coef = coef * c.scale.view(k, -1)
                out[i:i + k] += torch.bmm(coef[:, None, :], g.view(k, len(idx), p))[:, 0]
                if rounding:
                    size[i:i + k] += torch.bmm(coef.abs()[:, None, :],
                                               g.abs().view(k, len(idx), p))[:, 0]
        if not rounding:
            return out, None
        return out, (s + SUM_ROUNDING) * torch.finfo(theta.dtype).eps * size

    def _monte_carlo(self, theta: torch.Tensor, rounding: bool
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Mean, standard error and rounding bound over the S common draws, combined piece by
        piece (Chan et al.'s pairwise update of the mean and of the sum of squared
        deviations)."""
        problem, rule, draws = self.problem, self.rule, self.draws
        n, p = theta.shape
        big = self.samples
        mean = torch.zeros(n, p, dtype=torch.float64, device=theta.device)
        m2 = torch.zeros_like(mean)
        size = torch.zeros_like(mean)
        step_pts, step_rows = _pieces(big, p)
        for i in range(0, n, step_pts):
            part = theta[i:i + step_pts]
            k, seen = len(part), 0
            for j in range(0, big, step_rows):
                idx = torch.arange(j, min(big, j + step_rows), device=theta.device)
                d = _clipped(problem, rule, _tile(part, len(idx)),
                             problem.batch_of(draws, idx.repeat(k)))
                d = d.view(k, len(idx), p).to(torch.float64)
                cm = d.mean(1)
                cm2 = (d - cm[:, None]).square().sum(1)
                if rounding:
                    size[i:i + k] += d.abs().sum(1) / big
                nb, tot = len(idx), seen + len(idx)
                delta = cm - mean[i:i + k]
                mean[i:i + k] += delta * (nb / tot)
                m2[i:i + k] += cm2 + delta.square() * (seen * nb / tot)
                seen = tot
        se = torch.sqrt(m2 / (big - 1) / big)
        if not rounding:
            return mean.to(theta.dtype), se.to(theta.dtype), None
        bound = (big + SUM_ROUNDING) * torch.finfo(theta.dtype).eps * size
        return mean.to(theta.dtype), se.to(theta.dtype), bound.to(theta.dtype)


def evaluator(problem: Problem, rule: ClipRule, *, batch: int = 1, samples: int = 4096,
              seed: int = 0, dtype: torch.dtype = torch.float64,
              device: torch.device | str = "cpu", exact_limit: int = MAX_EXACT) -> MeanField:
    """The :class:`MeanField` of ``problem`` under ``rule`` (built once, then cached on the
    problem, so repeated calls, e.g. one per engine step, reuse its constants and draws)."""
    key = ("mean_field", rule, batch, samples, seed, dtype, str(torch.device(device)),
           exact_limit)
    cache = problem._cache
    if key not in cache:
        cache[key] = MeanField(problem, rule, batch=batch, samples=samples, seed=seed,
                               dtype=dtype, device=device, exact_limit=exact_limit)
    return cache[key]


def mean_field(
    problem: Problem,
    rule: ClipRule,
    theta: torch.Tensor,
    *,
    batch: int = 1,
    samples: int = 4096,
    seed: int = 0,
    rounding: bool = False,
) -> HEstimate:
    """H(θ) = E_μ[g/c] at the points ``theta`` (N, P), for minibatches of size ``batch``.

    Exact where the module docstring says so; otherwise estimated from ``samples`` minibatches
    (the same for every point) drawn with :mod:`simulations.engine.sampling` from ``seed`` (stream
    2, so
    independent of the runs' own draws), with its standard error. One batched evaluation for all
    N points, with no host synchronisation. ``rounding``: also bound the rounding error of the
    value (``HEstimate.rounding``; module docstring).
    """
    theta = torch.as_tensor(theta)
    if theta.ndim != 2 or theta.shape[1] != problem.n_params:
        raise BadArgument("theta", f"must have shape (N, {problem.n_params}), got "
                                   f"{tuple(theta.shape)}")
    h = evaluator(problem, rule, batch=batch, samples=samples, seed=seed, dtype=theta.dtype,
                  device=theta.device)
    return h(theta, rounding=rounding)


class Field(Protocol):
    """H as a numpy callable, with its ``jacobian`` and its ``rounding`` bound (:func:`field`)."""

    jacobian: Callable[[np.ndarray], np.ndarray]
    rounding: Callable[[np.ndarray], np.ndarray]

    def __call__(self, theta: np.ndarray) -> np.ndarray: ...


def field(problem: Problem, rule: ClipRule, *, batch: int = 1, samples: int = 4096,
          seed: int = 0, device: torch.device | str = "cpu") -> Field:
    """H = E_μ[g/c] of ``problem`` under ``rule`` as a numpy callable for
    :mod:`theory.equilibria`: θ of shape (P,) or (N, P) (float64) to H(θ) of the same shape,
    computed by :func:`mean_field` in float64 (exact where it is exact).

    The callable has a ``jacobian(θ)`` attribute, θ of shape (P,): the forward-difference
    Jacobian J[i, j] ≈ (H_i(θ + δ_j e_j) − H_i(θ))/δ_j, δ_j = √ε_mach·max(1, |θ_j|), from one
    batched evaluation at the P + 1 points (a root finder's or a stiff ODE solver's own
    differences call H once per column), and a ``rounding(θ)`` attribute, θ as for H: the bound
    on the rounding error of H(θ) of the module docstring, same shape (one more evaluation of
    H), which :func:`theory.equilibria.zeros_1d` takes as its tolerance."""
    h_of = evaluator(problem, rule, batch=batch, samples=samples, seed=seed, device=device)

    def h(theta: np.ndarray) -> np.ndarray:
        arr = np.asarray(theta, dtype=np.float64)
        points = torch.as_tensor(arr.reshape(-1, problem.n_params), device=device)
        return h_of(points).value.cpu().numpy().reshape(arr.shape)

    def jacobian(theta: np.ndarray) -> np.ndarray:
        x = np.asarray(theta, dtype=np.float64).reshape(problem.n_params)
        delta = math.sqrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(x))
        delta = (x + delta) - x  # a step that is exact in floating point
        values = h(np.vstack([x, x + np.diag(delta)]))
        return (values[1:] - values[0]).T / delta

    def rounding(theta: np.ndarray) -> np.ndarray:
        arr = np.asarray(theta, dtype=np.float64)
        points = torch.as_tensor(arr.reshape(-1, problem.n_params), device=device)
        bound = h_of(points, rounding=True).rounding
        assert bound is not None  # asked for with rounding=True
        return bound.cpu().numpy().reshape(arr.shape)

    out = cast(Field, h)
    out.jacobian = jacobian
    out.rounding = rounding
    return out
