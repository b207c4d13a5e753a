r"""The mean field H(θ) = E_μ[g/c] of a problem under a clip rule, batched over points θ.

* B = 1, μ finite (a dataset, a discrete or point law): exact,
  H(θ) = Σ_s w_s · clip(∇ℓ(θ; ξ_s)), the per-sample clipped gradients of all S atoms computed
  as one batch of N·S rows (in pieces of at most ``MAX_ROWS`` rows).
* B = 1, 1-D quadratic with a normal law: closed form. With z = L(θ − y) ~ N(m, s²),
  m = L(θ − mean), s = |L|·sd, and the threshold τ of the rule (λ for classic and value
  clipping, λ·max(|θ|, ε) for the adaptive rules, ∞ without clipping),

      E[clamp(z, −τ, τ)] = m[Φ(β) − Φ(α)] + s[φ(α) − φ(β)] + τ[1 − Φ(β)] − τΦ(α),
      α = (−τ − m)/s,  β = (τ − m)/s;

  so for classic clipping H is the derivative of E[Huber_λ], not of E[ℓ].
* B = 1, 1-D quadratic with a Student-t law: the same expectation by adaptive quadrature
  (``scipy.integrate.quad``, split at the kinks z = ±τ).
* Otherwise (B > 1, or a continuous law in d > 1): a Monte Carlo estimate over ``samples``
  minibatches per point, with its standard error, ``exact=False``.

For the projection rule H(θ) = E[g] (the projection acts on θ, not on g).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import integrate, special, stats

from simulations import sampling
from simulations.problems import Problem, Quadratic
from simulations.rules import ClipRule

__all__ = ["MAX_ROWS", "HEstimate", "field", "mean_field"]

MAX_ROWS = 1 << 16  #: rows (point × atom pairs) evaluated in one batch


@dataclass(frozen=True)
class HEstimate:
    """H at N points: ``value`` (N, P); ``stderr`` (N, P), zero when ``exact``; ``method``."""

    value: torch.Tensor
    stderr: torch.Tensor
    exact: bool
    method: str


def _clipped(problem: Problem, rule: ClipRule, theta: torch.Tensor, batch) -> torch.Tensor:
    g = problem.grad(theta, batch)
    if rule.kind == "projection":
        return g
    out = rule.apply(g, theta, problem.layout)
    return out.direction if out.direction is not None else g * out.scale[:, None]


def _threshold(rule: ClipRule, theta: np.ndarray) -> np.ndarray:
    if rule.kind in ("classic", "value"):
        return np.full_like(theta, rule.lam)
    if rule.kind in ("adaptive", "layerwise", "unitwise"):
        return rule.lam * np.maximum(np.abs(theta), rule.eps)
    return np.full_like(theta, np.inf)


def _normal_clamp_mean(m: np.ndarray, s: float, tau: np.ndarray) -> np.ndarray:
    """E[clamp(z, −τ, τ)] for z ~ N(m, s²) (the closed form in the module docstring)."""
    with np.errstate(invalid="ignore"):
        a, b = (-tau - m) / s, (tau - m) / s
        tails = np.where(np.isinf(tau), 0.0, tau * (special.ndtr(-b) - special.ndtr(a)))
    return (m * (special.ndtr(b) - special.ndtr(a)) + s * (stats.norm.pdf(a) - stats.norm.pdf(b))
            + tails)


def _t_clamp_mean(m: float, s: float, tau: float, df: int) -> float:
    """E[clamp(m − s·T, −τ, τ)] for T ~ Student-t(df), by quadrature split at the kinks."""
    if math.isinf(tau):
        if df == 1:
            raise ValueError("E[g] does not exist for a Cauchy (df = 1) law without clipping")
        return m
    law = stats.t(df)
    lo, hi = (m - tau) / s, (m + tau) / s  # z = m − sT crosses τ at T = lo, −τ at T = hi
    inner, _ = integrate.quad(lambda t: (m - s * t) * law.pdf(t), lo, hi, epsabs=1e-13,
                              epsrel=1e-12, limit=200)
    return tau * law.cdf(lo) - tau * law.sf(hi) + inner


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
    per point drawn with :mod:`simulations.sampling` (stream 2, so independent of the runs' own
    draws), with its standard error.
    """
    theta = torch.as_tensor(theta)
    if theta.ndim != 2 or theta.shape[1] != problem.n_params:
        raise ValueError(f"theta must have shape (N, {problem.n_params}), got "
                         f"{tuple(theta.shape)}")
    n_points, p = theta.shape
    if batch == 1:
        try:
            atoms, weights = problem.atoms(theta.dtype, theta.device)
        except NotImplementedError:
            atoms = None
        if atoms is not None:
            s = len(weights)
            out = torch.zeros_like(theta)
            step = max(1, MAX_ROWS // s)
            for start in range(0, n_points, step):
                part = theta[start:start + step]
                rows = torch.arange(s, device=theta.device).repeat(len(part))
                d = _clipped(problem, rule, part.repeat_interleave(s, 0),
                             problem.batch_of(atoms, rows))
                out[start:start + step] = (d.view(len(part), s, p) * weights[:, None]).sum(1)
            return HEstimate(out, torch.zeros_like(out), True, "finite sum over the atoms of μ")
        if isinstance(problem, Quadratic) and problem.dim == 1:
            law, curv = problem.law, problem.curvature
            th = theta[:, 0].detach().cpu().double().numpy()
            m, s, tau = curv * (th - law.mean), abs(curv) * law.sd, _threshold(rule, th)
            if law.kind == "normal":
                h, method = _normal_clamp_mean(m, s, tau), "closed form (normal law)"
            else:
                h = np.array([_t_clamp_mean(mi, s, ti, law.df)
                              for mi, ti in zip(m, tau, strict=True)])
                method = "quadrature (Student-t law)"
            value = torch.as_tensor(h, dtype=theta.dtype, device=theta.device)[:, None]
            return HEstimate(value, torch.zeros_like(value), True, method)
    rows = torch.arange(n_points * samples, device=theta.device)
    w = sampling.words(seed, rows, range(1), batch * problem.words_per_sample, stream=2)[0]
    d = _clipped(problem, rule, theta.repeat_interleave(samples, 0),
                 problem.sample(w, theta.dtype)).view(n_points, samples, p)
    return HEstimate(d.mean(1), d.std(1) / math.sqrt(samples), False,
                     f"Monte Carlo over {samples} minibatches of size {batch}")


def field(problem: Problem, rule: ClipRule, *, batch: int = 1, samples: int = 4096,
          seed: int = 0, device: torch.device | str = "cpu"):
    """H = E_μ[g/c] of ``problem`` under ``rule`` as a numpy callable for
    :mod:`theory.equilibria`: θ of shape (P,) or (N, P) (float64) to H(θ) of the same shape,
    computed by :func:`mean_field` in float64 (exact where it is exact)."""

    def h(theta: np.ndarray) -> np.ndarray:
        arr = np.asarray(theta, dtype=np.float64)
        points = torch.as_tensor(arr.reshape(-1, problem.n_params), device=device)
        value = mean_field(problem, rule, points, batch=batch, samples=samples, seed=seed).value
        return value.cpu().numpy().reshape(arr.shape)

    return h
