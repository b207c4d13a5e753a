"""The xi observer with the batched mean field: ξ(s) = Σ_{t<s} a(t)(g/c − H(θ(t))) on a
Student-t and a 2-D normal quadratic, against a slow reference loop over paths and steps that
computes H independently (scipy quadrature, numpy over the common draws), also for a Student-t
law with a non-integer ν (run on the torch step); and H is evaluated once per step for all
tracked paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from simulations.engine.mean_field import evaluator
from simulations.engine.observers import Observers, StepView
from simulations.engine.problems import make_problem
from simulations.engine.rules import ClipRule
from simulations.engine.run import simulate
from simulations.engine.spec import Execution, RunSpec


def _xi_from_paths(theta: np.ndarray, h: np.ndarray, a: np.ndarray) -> np.ndarray:
    """ξ(0..T) (R, T+1, d) from whole paths θ(0..T) (R, T+1, d) and H(θ(t)) (R, T, d):
    g/c = (θ(t) − θ(t+1))/a(t)."""
    step = (theta[:, :-1] - theta[:, 1:]) / a[None, :, None]
    inc = a[None, :, None] * (step - h)
    return np.concatenate([np.zeros_like(theta[:, :1]), np.cumsum(inc, axis=1)], axis=1)


def _run(problem: dict, clip: dict, steps: int, paths: int):
    run = RunSpec.from_dict({"problem": problem, "clip": clip, "schedule": "1/(t+1)",
                             "paths": paths, "steps": steps, "record": ("paths", "xi"),
                             "keep_paths": paths, "xi_paths": paths})
    return simulate(run, Execution(progress=False))


def _check(sim, xi: np.ndarray) -> None:
    norm = np.linalg.norm(xi, axis=2)
    np.testing.assert_allclose(sim.arrays["xi_max"], norm.max(1), rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(sim.arrays["xi_norm_at"][:, -1], norm[:, -1], rtol=1e-9,
                               atol=1e-13)
    for i, t in enumerate(sim.arrays["xi_anchors"]):
        want = np.linalg.norm(xi[:, t + 1:] - xi[:, t:t + 1], axis=2).max(1)
        np.testing.assert_allclose(sim.arrays["xi_sup_after"][:, i], want, rtol=1e-8,
                                   atol=1e-13)


def test_xi_student_t_against_quadrature_loop():
    """H(θ) = ∫ clamp(θ − y, −λ, λ) f(y) dy by scipy.integrate.quad for each path and step."""
    df, lam, steps, paths = 3, 1.0, 24, 6
    sim = _run({"name": "quadratic", "noise": "student-t", "df": df, "sd": 1.5, "theta0": 4.0},
               {"rule": "classic", "lam": lam}, steps, paths)
    theta = sim.arrays["path"]  # (R, T+1, 1)
    const = stats.t.pdf(0.0, df) / 1.5  # the density of y = 1.5·T at 0

    def pdf(y: float) -> float:
        return const * (1.0 + (y / 1.5) ** 2 / df) ** (-(df + 1) / 2)

    def h_quad(th: float) -> float:  # split at the kinks y = θ ± λ
        return sum(integrate.quad(lambda y: max(-lam, min(lam, th - y)) * pdf(y), lo, hi,
                                  epsabs=1e-13, epsrel=1e-12, limit=400)[0]
                   for lo, hi in ((-np.inf, th - lam), (th - lam, th + lam), (th + lam, np.inf)))

    h = np.array([[[h_quad(float(x))] for x in row[:-1, 0]] for row in theta])
    a = 1.0 / (np.arange(steps) + 1.0)
    _check(sim, _xi_from_paths(theta, h, a))


def test_xi_two_dim_normal_uses_common_draws():
    """Classic clipping of a 2-D normal law has no closed form: H is the Monte Carlo mean over
    the evaluator's common draws, rebuilt here with numpy from those draws."""
    lam, steps, paths = 0.5, 16, 5
    spec = {"name": "quadratic", "mean": 1.0, "sd": 0.7, "dim": 2, "theta0": [3.0, -1.0]}
    sim = _run(spec, {"rule": "classic", "lam": lam}, steps, paths)
    # the draws depend only on the problem's parameters and the evaluator's seed
    problem, rule = make_problem(**spec), ClipRule("classic", lam=lam)
    theta = sim.arrays["path"]  # (R, T+1, 2)
    y = evaluator(problem, rule).draws[:, 0, :].numpy()  # (S, 2)

    def h_np(th: np.ndarray) -> np.ndarray:
        g = th - y
        return (g * np.minimum(1.0, lam / np.linalg.norm(g, axis=1))[:, None]).mean(0)

    h = np.array([[h_np(x) for x in row[:-1]] for row in theta])
    a = 1.0 / (np.arange(steps) + 1.0)
    _check(sim, _xi_from_paths(theta, h, a))


def test_xi_calls_the_mean_field_once_per_step_on_all_rows():
    calls = []

    def h(theta: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(theta.shape))
        return torch.zeros_like(theta)

    rows, k, steps = 10, 7, 5
    theta0 = torch.zeros(rows, 3, dtype=torch.float64)
    obs = Observers(("xi",), theta0, steps, (), xi_paths=k, mean_field=h)
    ones = torch.ones(rows, dtype=torch.bool)
    for s in range(1, steps + 1):
        step = torch.full((rows, 3), float(s), dtype=torch.float64)
        norm = torch.full((rows,), math.sqrt(3) * s, dtype=torch.float64)
        obs.update(StepView(s, 0.5, theta0, theta0, norm, norm, norm, step, ~ones, ones, ones,
                            ~ones))
    assert calls == [(k, 3)] * steps
    xi = obs.finish()["xi_norm_at"][:, -1]
    # ξ(T) = Σ_s 0.5·s·(1, 1, 1), norm 0.5·√3·T(T+1)/2
    np.testing.assert_allclose(xi.numpy(), 0.5 * math.sqrt(3) * steps * (steps + 1) / 2)


def test_xi_student_t_real_df_runs_on_the_torch_step():
    """A non-integer ν (1.5: E[y²] = ∞) goes through ``simulate`` on the torch step (the kernel
    draws integer ν only), with ξ against scipy quadrature of H with scipy.stats.t's density."""
    from simulations.engine import kernel

    df, lam, sd, steps, paths = 1.5, 1.0, 1.5, 16, 5
    problem = {"name": "quadratic", "noise": "student-t", "df": df, "sd": sd, "theta0": 4.0}
    assert not kernel.supports(make_problem(**problem), ClipRule("classic", lam=lam), "cpu")
    sim = _run(problem, {"rule": "classic", "lam": lam}, steps, paths)
    assert sim.setting["backend"] == "torch" and sim.setting["df"] == df
    theta = sim.arrays["path"]  # (R, T+1, 1)

    def h_quad(th: float) -> float:  # split at the kinks y = θ ± λ and at the peak y = 0
        edges = [-np.inf, *sorted({th - lam, th + lam, 0.0}), np.inf]
        return math.fsum(integrate.quad(
            lambda y: max(-lam, min(lam, th - y)) * stats.t.pdf(y / sd, df) / sd, lo, hi,
            epsabs=1e-14, epsrel=1e-13, limit=400)[0]
            for lo, hi in zip(edges[:-1], edges[1:], strict=True))

    h = np.array([[[h_quad(float(x))] for x in row[:-1, 0]] for row in theta])
    a = 1.0 / (np.arange(steps) + 1.0)
    _check(sim, _xi_from_paths(theta, h, a))


def test_student_t_with_df_below_one_is_accepted_for_runs():
    """ν = 0.7 (E|y| = ∞): a clipped run with ξ is accepted and stays finite; without clipping
    the xi observer's H = L(θ − mean) does not exist and the run is refused, naming df."""
    problem = {"name": "quadratic", "noise": "student-t", "df": 0.7, "theta0": 1.0}
    sim = _run(problem, {"rule": "classic", "lam": 1.0}, 12, 4)
    assert sim.setting["backend"] == "torch"
    assert np.all(np.isfinite(sim.arrays["path"])) and np.all(np.isfinite(sim.arrays["xi_max"]))
    with pytest.raises(ValueError, match="^df: "):
        _run(problem, {"rule": "none"}, 4, 2)
