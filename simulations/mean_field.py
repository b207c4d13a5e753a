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
  - T ~ t_ν: F by the finite series of Abramowitz & Stegun 26.7.3–4 (ν is an integer): with
    ϑ = arctan(x/√ν), 2F(x) − 1 = (2/π)[ϑ + sinϑ·Σ_{k=0}^{(ν−3)/2} c_k cos^{2k+1}ϑ] for odd ν
    (the sum empty for ν = 1), sinϑ·Σ_{k=0}^{(ν−2)/2} e_k cos^{2k}ϑ for even ν, where
    c_0 = e_0 = 1, c_k = c_{k−1}·2k/(2k+1), e_k = e_{k−1}·(2k−1)/(2k); and, for ν > 1,

        G(x) = −(ν + x²)/(ν − 1) · f_ν(x),

    because f_ν(x) ∝ (1 + x²/ν)^{−(ν+1)/2} has f_ν′(x) = −(ν+1)x/(ν + x²)·f_ν(x), so
    d/dx[(ν + x²) f_ν(x)] = 2x f_ν − (ν+1) x f_ν = −(ν − 1)·x f_ν(x), and (ν + x²) f_ν(x) → 0
    as x → −∞ when ν > 1. For ν = 1 (Cauchy) G itself diverges but the difference is finite:
    G(β) − G(α) = [ln(1 + β²) − ln(1 + α²)]/(2π). Without clipping H = L(θ − mean), which
    does not exist for ν = 1 (a ValueError).

* **Exact finite sum**, B = 1 and μ finite (a dataset, a discrete or point law; a point law for
  any B): H(θ) = Σ_s w_s · clip(∇ℓ(θ; ξ_s)), the clipped per-sample gradients of the S atoms for
  all N points, computed as (N, S) pairs in pieces of at most ``MAX_ROWS`` rows and
  ``MAX_ENTRIES`` gradient entries (the pieces cut both the points and the atoms, so a dataset
  of any size needs bounded memory).

* **Monte Carlo with common random numbers** otherwise (B > 1 without a closed form, a
  d-dimensional law under a norm-based rule): the same S = ``samples`` minibatches, drawn once
  from ``seed`` (stream 2, independent of the runs' own draws), for every point and every call,
  so the estimate is a deterministic function of θ; the standard error of the mean over the S
  draws is reported (``exact=False``). Norm clipping couples the coordinates: for an isotropic
  normal law in d > 1, H(θ) = u·E[min(R, τ)·A_d(mR/s²)] along u = m/‖m‖, with R = ‖z‖
  noncentral-χ and A_d = I_{d/2}/I_{d/2−1} the von Mises–Fisher mean resultant length, a
  one-dimensional integral with no closed form in general, so it is estimated too.

For the projection rule H(θ) = E[g] (the projection acts on θ, not on g).

:func:`evaluator` builds (and caches on the problem) the evaluation once — the law's constants,
the atoms, the common random draws — and :func:`mean_field` calls it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from simulations import sampling
from simulations.problems import Problem, Quadratic
from simulations.rules import ClipRule
from theory.errors import BadArgument

__all__ = ["MAX_ENTRIES", "MAX_ROWS", "HEstimate", "MeanField", "evaluator", "field", "mean_field",
           "normal_clamp_mean", "t_cdf", "t_clamp_mean"]

MAX_ROWS = 1 << 16  #: rows (point × atom or point × draw pairs) evaluated in one batch
#: and at most this many entries rows·P per batch: per-sample gradients of a few MB stay in
#: cache (a 20–25–1 MLP, P = 551: 1903 rows per batch, three times faster than 65536)
MAX_ENTRIES = 1 << 20

_ADAPTIVE = ("adaptive", "layerwise", "unitwise")


@dataclass(frozen=True)
class HEstimate:
    """H at N points: ``value`` (N, P); ``stderr`` (N, P), zero when ``exact``; ``method``."""

    value: torch.Tensor
    stderr: torch.Tensor
    exact: bool
    method: str


# ---- closed forms ------------------------------------------------------------------------------


def t_cdf(x: torch.Tensor, df: int) -> torch.Tensor:
    r"""F_ν(x) = P(T ≤ x) for T ~ Student-t with an integer ν = ``df`` ≥ 1 degrees of freedom, by
    the finite series of Abramowitz & Stegun 26.7.3–4 (see the module docstring):
    2F − 1 = (2/π)[ϑ + sinϑ Σ c_k cos^{2k+1}ϑ] (ν odd), sinϑ Σ e_k cos^{2k}ϑ (ν even),
    ϑ = arctan(x/√ν)."""
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


def _t_pdf(x: torch.Tensor, df: int) -> torch.Tensor:
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


def normal_clamp_mean(m: torch.Tensor, s: torch.Tensor | float,
                      tau: torch.Tensor) -> torch.Tensor:
    r"""E[clamp(z, −τ, τ)] for z ~ N(m, s²), τ finite:
    m[Φ(β) − Φ(α)] + s[φ(α) − φ(β)] + τ[1 − Φ(β)] − τΦ(α), α = (−τ − m)/s, β = (τ − m)/s."""

    def phi(x):
        return torch.exp(-0.5 * x.square()) / math.sqrt(2 * math.pi)

    return _clamp_mean(m, s, tau, torch.special.ndtr, lambda a, b: phi(a) - phi(b))


def t_clamp_mean(m: torch.Tensor, s: torch.Tensor | float, tau: torch.Tensor,
                 df: int) -> torch.Tensor:
    r"""E[clamp(m + sT, −τ, τ)] for T ~ t_ν (ν = ``df``), τ finite: the formula of
    :func:`normal_clamp_mean` with F = F_ν (:func:`t_cdf`) and
    E[T·1{α < T ≤ β}] = [(ν + α²)f_ν(α) − (ν + β²)f_ν(β)]/(ν − 1) for ν > 1,
    [ln(1 + β²) − ln(1 + α²)]/(2π) for ν = 1 (derivation in the module docstring)."""

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
    return out.direction if out.direction is not None else g * out.scale[:, None]


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
    ``exact`` say which one applies. Built by :func:`evaluator`."""

    def __init__(self, problem: Problem, rule: ClipRule, *, batch: int = 1, samples: int = 4096,
                 seed: int = 0, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu"):
        for name, value, least in (("batch", batch, 1), ("samples", samples, 2)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < least:
                raise BadArgument(name, f"must be an integer ≥ {least}, got {value!r}")
        batch, samples = int(batch), int(samples)
        self.problem, self.rule, self.batch = problem, rule, batch
        self.dtype, self.device = dtype, torch.device(device)
        self.kind = self._choose()
        self.exact = self.kind != "monte carlo"
        if self.kind == "closed":
            law = problem.law
            if law.kind == "student-t" and law.df == 1 and rule.kind in ("none", "projection"):
                raise BadArgument("df", "E[g] does not exist for a Cauchy (df = 1) law without "
                                        "clipping")
            self.method = f"closed form ({law.kind} law)"
        elif self.kind == "atoms":
            self.atoms, self.weights = problem.atoms(dtype, self.device)
            self.method = "finite sum over the atoms of μ"
        else:
            self.samples = samples
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
                self.problem.atoms(self.dtype, self.device)
                return "atoms"
            except NotImplementedError:
                pass
        return "monte carlo"

    def __call__(self, theta: torch.Tensor) -> HEstimate:
        """H at the points ``theta`` (N, P): an :class:`HEstimate` in ``theta``'s dtype."""
        if self.kind == "closed":
            value = self._closed(theta)
            return HEstimate(value, torch.zeros_like(value), True, self.method)
        if self.kind == "atoms":
            value = self._atoms(theta)
            return HEstimate(value, torch.zeros_like(value), True, self.method)
        value, stderr = self._monte_carlo(theta)
        return HEstimate(value, stderr, False, self.method)

    def _closed(self, theta: torch.Tensor) -> torch.Tensor:
        problem, rule, law = self.problem, self.rule, self.problem.law
        th = theta.detach().to(torch.float64)
        curv = problem.curvature
        m = curv * (th - law.mean)
        if rule.kind in ("none", "projection"):
            return m.to(theta.dtype)
        s = abs(curv) * law.sd / math.sqrt(self.batch)
        if rule.kind in _ADAPTIVE:  # d = 1 here: τ = λ·max(|θ|, ε)
            tau = rule.lam * torch.clamp(th.abs(), min=rule.eps)
        else:
            tau = torch.full_like(th, rule.lam)
        if law.kind == "normal":
            h = normal_clamp_mean(m, s, tau)
        else:
            h = t_clamp_mean(m, s, tau, law.df)
        return h.to(theta.dtype)

    def _atoms(self, theta: torch.Tensor) -> torch.Tensor:
        problem, rule = self.problem, self.rule
        atoms, weights = self.atoms, self.weights.to(theta.dtype)
        n, p = theta.shape
        s = len(weights)
        out = torch.zeros_like(theta)
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
                        g = c.direction
                    else:  # g/c = scale·g: fold the scale into the weights, one pass over g
                        coef = coef * c.scale.view(k, -1)
                out[i:i + k] += torch.bmm(coef[:, None, :], g.view(k, len(idx), p))[:, 0]
        return out

    def _monte_carlo(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard error over the S common draws, combined piece by piece (Chan et
        al.'s pairwise update of the mean and of the sum of squared deviations)."""
        problem, rule, draws = self.problem, self.rule, self.draws
        n, p = theta.shape
        big = self.samples
        mean = torch.zeros(n, p, dtype=torch.float64, device=theta.device)
        m2 = torch.zeros_like(mean)
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
                nb, tot = len(idx), seen + len(idx)
                delta = cm - mean[i:i + k]
                mean[i:i + k] += delta * (nb / tot)
                m2[i:i + k] += cm2 + delta.square() * (seen * nb / tot)
                seen = tot
        se = torch.sqrt(m2 / (big - 1) / big)
        return mean.to(theta.dtype), se.to(theta.dtype)


def evaluator(problem: Problem, rule: ClipRule, *, batch: int = 1, samples: int = 4096,
              seed: int = 0, dtype: torch.dtype = torch.float64,
              device: torch.device | str = "cpu") -> MeanField:
    """The :class:`MeanField` of ``problem`` under ``rule`` (built once, then cached on the
    problem, so repeated calls, e.g. one per engine step, reuse its constants and draws)."""
    key = ("mean_field", rule, batch, samples, seed, dtype, str(torch.device(device)))
    cache = problem._cache
    if key not in cache:
        cache[key] = MeanField(problem, rule, batch=batch, samples=samples, seed=seed,
                               dtype=dtype, device=device)
    return cache[key]


def mean_field(
    problem: Problem,
    rule: ClipRule,
    theta: torch.Tensor,
    *,
    batch: int = 1,
    samples: int = 4096,
    seed: int = 0,
) -> HEstimate:
    """H(θ) = E_μ[g/c] at the points ``theta`` (N, P), for minibatches of size ``batch``.

    Exact where the module docstring says so; otherwise estimated from ``samples`` minibatches
    (the same for every point) drawn with :mod:`simulations.sampling` from ``seed`` (stream 2, so
    independent of the runs' own draws), with its standard error. One batched evaluation for all
    N points, with no host synchronisation.
    """
    theta = torch.as_tensor(theta)
    if theta.ndim != 2 or theta.shape[1] != problem.n_params:
        raise BadArgument("theta", f"must have shape (N, {problem.n_params}), got "
                                   f"{tuple(theta.shape)}")
    h = evaluator(problem, rule, batch=batch, samples=samples, seed=seed, dtype=theta.dtype,
                  device=theta.device)
    return h(theta)


def field(problem: Problem, rule: ClipRule, *, batch: int = 1, samples: int = 4096,
          seed: int = 0, device: torch.device | str = "cpu"):
    """H = E_μ[g/c] of ``problem`` under ``rule`` as a numpy callable for
    :mod:`theory.equilibria`: θ of shape (P,) or (N, P) (float64) to H(θ) of the same shape,
    computed by :func:`mean_field` in float64 (exact where it is exact).

    The callable has a ``jacobian(θ)`` attribute, θ of shape (P,): the forward-difference
    Jacobian J[i, j] ≈ (H_i(θ + δ_j e_j) − H_i(θ))/δ_j, δ_j = √ε_mach·max(1, |θ_j|), from one
    batched evaluation at the P + 1 points (a root finder's or a stiff ODE solver's own
    differences call H once per column)."""
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

    h.jacobian = jacobian
    return h
