"""Tests of simulations.engine.mean_field: H(θ) = E_μ[g/c] against brute-force computations.

* finite datasets: a python loop over every sample, the gradient by central finite differences
  of ``problem.loss`` on a one-sample batch, clipped by theory.clipping, averaged;
* the 1-D normal quadratic: ``scipy.integrate.quad`` of clamp(L(θ − y), −τ, τ)·pdf(y);
* the 1-D Student-t quadratic: quadrature in the probability scale (u = F(y)) and a numpy Monte
  Carlo; for non-integer ν, ``scipy.integrate.quad`` of clamp(m + sT, −τ, τ)·f_ν(T) with
  scipy.stats.t, and the CDF and the partial expectation against scipy separately;
* a discrete law in d = 2: the finite sum by hand;
* B > 1: every one of the n^B minibatches enumerated with itertools.product;
* SCIENCE.md's T1 row: H vanishes on an interval for a symmetric two-point law with gap > 2λ.
"""

from __future__ import annotations

import inspect
import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from simulations.engine import sampling
from simulations.engine.mean_field import mean_field
from simulations.engine.problems import RNNCliff, make_problem
from simulations.engine.rules import RULES, ClipRule
from theory import clipping
from theory.errors import BadArgument

# --------------------------------------------------------------------------------------------
# Helpers: finite-difference gradients and the reference clip (theory.clipping on numpy)
# --------------------------------------------------------------------------------------------


def fd_grad(problem, theta: np.ndarray, batch, h: float = 1e-5) -> np.ndarray:
    """Central differences of ``problem.loss`` at θ (P,) on a batch with one row (1, ...)."""
    p = theta.size
    steps = h * np.maximum(1.0, np.abs(theta))
    plus = np.repeat(theta[None], p, 0) + np.diag(steps)
    minus = np.repeat(theta[None], p, 0) - np.diag(steps)
    pts = torch.from_numpy(np.concatenate([plus, minus]))
    rep = batch.expand(2 * p, *batch.shape[1:]).contiguous()
    vals = problem.loss(pts, rep).numpy()
    return (vals[:p] - vals[p:]) / (2 * steps)


def ref_clip(rule: ClipRule, layout, g: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """g/c of one row by theory.clipping (numpy float64)."""
    kind = rule.kind
    if kind in ("none", "projection"):
        return g
    if kind == "classic":
        return clipping.classic_clip(g, rule.lam)
    if kind == "value":
        return clipping.value_clip(g, rule.lam)
    if kind == "adaptive":
        return clipping.adaptive_clip(g, theta, rule.lam, rule.eps)
    gl = [g[la.offset:la.stop].reshape(la.shape) for la in layout.layers]
    tl = [theta[la.offset:la.stop].reshape(la.shape) for la in layout.layers]
    out = clipping.layerwise_clip(gl, tl, rule.lam, rule.eps, unitwise=kind == "unitwise")
    return np.concatenate([o.ravel() for o in out])


def make_rule(kind: str, lam: float, eps: float = 0.5, radius: float = 2.0) -> ClipRule:
    if kind == "none":
        return ClipRule("none")
    if kind in ("classic", "value"):
        return ClipRule(kind, lam=lam)
    if kind == "projection":
        return ClipRule(kind, ball=radius)
    return ClipRule(kind, lam=lam, eps=eps)


def points_near(problem, count: int, scale: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = problem.initial(torch.arange(1), 0, torch.float64, "cpu")[0].numpy()
    pts = base + scale * rng.standard_normal((count, base.size))
    pts[0] = base
    return pts


# --------------------------------------------------------------------------------------------
# (a) finite datasets, B = 1
# --------------------------------------------------------------------------------------------

# the number of recurrence steps of rnn-cliff ("length"; "steps" in older versions)
RNN_LENGTH = "length" if "length" in inspect.signature(RNNCliff.__init__).parameters else "steps"

FINITE = {
    "linear-regression": dict(n=6, dim=3),
    "logistic": dict(n=8, dim=2, separable=False),
    "rnn-cliff": {"n": 5, RNN_LENGTH: 20},
    "mlp-regression": dict(n=5, dim=3, hidden=4),
    "mlp-classification": dict(n=6, dim=3, classes=3, hidden=3),
}


def brute_force_finite(problem, rule, pts):
    out = np.zeros_like(pts)
    for k, theta in enumerate(pts):
        total = np.zeros(theta.size)
        for i in range(problem.n):
            g = fd_grad(problem, theta, torch.tensor([[i]]))
            total += ref_clip(rule, problem.layout, g, theta)
        out[k] = total / problem.n
    return out


@pytest.fixture(scope="module")
def finite_problems():
    return {name: make_problem(name, **kw) for name, kw in FINITE.items()}


@pytest.mark.parametrize("name", list(FINITE))
def test_finite_dataset_exact_against_loop(name, finite_problems):
    problem = finite_problems[name]
    pts = points_near(problem, 3, 0.3, seed=len(name))
    if name == "rnn-cliff":  # keep away from the cliff, where differences are inaccurate
        pts = np.array([[1.5, -0.1], [1.5, 0.3], [0.8, 0.2]])
    # λ: the median per-sample gradient norm at the first point, so both branches occur
    norms = [np.linalg.norm(fd_grad(problem, pts[0], torch.tensor([[i]])))
             for i in range(problem.n)]
    lam = float(np.median(norms))
    for kind in RULES:
        rule = make_rule(kind, lam, eps=0.5)
        est = mean_field(problem, rule, torch.from_numpy(pts))
        assert est.exact and est.value.shape == pts.shape
        assert torch.equal(est.stderr, torch.zeros_like(est.value))
        expected = brute_force_finite(problem, rule, pts)
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(est.value.numpy(), expected, rtol=1e-6, atol=1e-6 * scale,
                                   err_msg=f"{name}, {kind}")
        one = mean_field(problem, rule, torch.from_numpy(pts[1:2]))  # a single point
        np.testing.assert_allclose(one.value.numpy(), expected[1:2], rtol=1e-6,
                                   atol=1e-6 * scale, err_msg=f"{name}, {kind}, one point")


def test_finite_sum_in_pieces(finite_problems, monkeypatch):
    """Many points, split into several batches of rows (MAX_ROWS small), same answer."""
    import simulations.engine.mean_field as mf

    problem = finite_problems["linear-regression"]
    pts = torch.from_numpy(points_near(problem, 7, 1.0, seed=3))
    rule = ClipRule("classic", lam=5.0)
    whole = mean_field(problem, rule, pts).value
    monkeypatch.setattr(mf, "MAX_ROWS", 2 * problem.n)
    pieces = mean_field(problem, rule, pts).value
    np.testing.assert_allclose(pieces.numpy(), whole.numpy(), rtol=1e-14, atol=1e-14)
    expected = brute_force_finite(problem, rule, pts.numpy())
    np.testing.assert_allclose(pieces.numpy(), expected, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------
# (b) 1-D normal quadratic: closed form vs quadrature
# --------------------------------------------------------------------------------------------


def tau_of(kind: str, theta: float, lam: float, eps: float) -> float:
    if kind in ("classic", "value"):
        return lam
    if kind in ("adaptive", "layerwise", "unitwise"):
        return lam * max(abs(theta), eps)
    return math.inf


def clamp(z, tau):
    return np.clip(z, -tau, tau)


def quad_normal(theta, L, mean, sd, tau):
    """∫ clamp(L(θ − y), −τ, τ) φ((y − mean)/sd)/sd dy over mean ± 40 sd, split at the kinks."""
    lo, hi = mean - 40 * sd, mean + 40 * sd
    kinks = [k for k in (theta - tau / L, theta + tau / L) if math.isfinite(k) and lo < k < hi]
    pts = sorted(kinks + [mean])

    norm_const = 1.0 / (sd * math.sqrt(2 * math.pi))

    def f(y):
        z = L * (theta - y)
        return max(-tau, min(tau, z)) * norm_const * math.exp(-0.5 * ((y - mean) / sd) ** 2)

    val, _ = integrate.quad(f, lo, hi, points=pts, epsabs=1e-13, epsrel=1e-12, limit=400)
    return val


THETAS_1D = [-20.0, -3.1, -0.05, 0.0, 0.02, 0.7, 2.9, 25.0]


@pytest.mark.parametrize("curvature", [1.0, 2.5, -1.5])
@pytest.mark.parametrize("kind", RULES)
def test_normal_quadratic_closed_form(kind, curvature):
    mean, sd, lam, eps = 0.7, 1.3, 0.8, 0.25
    problem = make_problem("quadratic", mean=mean, sd=sd, curvature=curvature)
    rule = make_rule(kind, lam, eps)
    est = mean_field(problem, rule, torch.tensor(THETAS_1D, dtype=torch.float64)[:, None])
    assert est.exact
    got = est.value[:, 0].numpy()
    for theta, h in zip(THETAS_1D, got, strict=True):
        tau = tau_of(kind, theta, lam, eps)
        if math.isinf(tau):
            expected = curvature * (theta - mean)  # E[L(θ − y)]
        else:
            expected = quad_normal(theta, curvature, mean, sd, tau)
        assert abs(h - expected) <= 1e-9 * max(1.0, abs(expected)), (theta, h, expected)
        if math.isfinite(tau):
            assert abs(h) <= tau * (1 + 1e-12)


def test_normal_quadratic_classic_is_huber_derivative():
    """For classic clipping H = d/dθ E[Huber_λ(θ − y)] (SCIENCE.md, T1)."""
    mean, sd, lam = -0.3, 2.0, 0.6
    problem = make_problem("quadratic", mean=mean, sd=sd)

    def huber(r):
        return np.where(np.abs(r) <= lam, 0.5 * r * r, lam * (np.abs(r) - 0.5 * lam))

    def expected_huber(theta):
        return integrate.quad(lambda y: float(huber(theta - y)) * stats.norm.pdf(y, mean, sd),
                              mean - 40 * sd, mean + 40 * sd, points=[theta - lam, theta + lam],
                              epsabs=1e-13, epsrel=1e-13, limit=400)[0]

    rule = ClipRule("classic", lam=lam)
    for theta in (-2.0, 0.1, 1.5):
        h = float(mean_field(problem, rule, torch.tensor([[theta]], dtype=torch.float64))
                  .value[0, 0])
        d = 1e-4
        deriv = (expected_huber(theta + d) - expected_huber(theta - d)) / (2 * d)
        assert abs(h - deriv) < 1e-7


# --------------------------------------------------------------------------------------------
# (c) 1-D Student-t quadratic: quadrature vs independent quadrature and Monte Carlo
# --------------------------------------------------------------------------------------------


def t_partial_first_moment(a: float, b: float, df: int) -> float:
    """∫_a^b t f(t) dt for the Student-t density f, in closed form:
    d/dt [(ν + t²) f(t)] = −(ν − 1) t f(t) for ν > 1, and ln(1 + t²)/(2π) for ν = 1."""
    if df == 1:
        def prim(t):
            return 0.0 if math.isinf(t) else -math.log1p(t * t) / (2 * math.pi)
        # ∫_a^b = P(b) − P(a) with P(t) = ln(1 + t²)/(2π)
        return prim(a) - prim(b)
    law = stats.t(df)

    def g(t):
        return 0.0 if math.isinf(t) else (df + t * t) * law.pdf(t)

    return (g(a) - g(b)) / (df - 1)


def t_clamp_mean(theta, L, mean, sd, df, tau):
    """E[clamp(L(θ − mean − sd·T), −τ, τ)] from the t law's cdf and the closed form above.

    z = m − s·T in law with m = L(θ − mean), s = |L|·sd (T is symmetric); z > τ iff T < lo,
    z < −τ iff T > hi."""
    law = stats.t(df)
    m, s = L * (theta - mean), abs(L) * sd
    lo, hi = (m - tau) / s, (m + tau) / s
    middle = m * (law.cdf(hi) - law.cdf(lo)) - s * t_partial_first_moment(lo, hi, df)
    return tau * law.cdf(lo) - tau * law.sf(hi) + middle


@pytest.mark.parametrize("df", [1, 3, 7])
@pytest.mark.parametrize("kind", ["classic", "adaptive", "layerwise", "value"])
@pytest.mark.parametrize("curvature", [1.0, -2.0])
def test_student_t_quadrature(kind, df, curvature):
    mean, sd, lam, eps = 0.4, 0.9, 1.1, 0.3
    problem = make_problem("quadratic", noise="student-t", mean=mean, sd=sd, df=df,
                           curvature=curvature)
    rule = make_rule(kind, lam, eps)
    thetas = [-6.0, -1.0, 0.0, 0.1, 0.4, 1.7, 5.0, 40.0]
    est = mean_field(problem, rule, torch.tensor(thetas, dtype=torch.float64)[:, None])
    assert est.exact
    for theta, h in zip(thetas, est.value[:, 0].tolist(), strict=True):
        tau = tau_of(kind, theta, lam, eps)
        expected = t_clamp_mean(theta, curvature, mean, sd, df, tau)
        assert abs(h - expected) <= 1e-10 * max(1.0, abs(expected)), (theta, h, expected)


def test_student_t_against_numpy_monte_carlo():
    mean, sd, df, lam, eps, L = -0.5, 1.5, 3, 0.9, 0.2, 1.3
    problem = make_problem("quadratic", noise="student-t", mean=mean, sd=sd, df=df, curvature=L)
    rng = np.random.default_rng(2718)
    y = mean + sd * rng.standard_t(df, size=1_000_000)
    thetas = [-2.0, 0.0, 0.6, 3.0]
    for kind in ("classic", "adaptive", "none"):
        rule = make_rule(kind, lam, eps)
        got = mean_field(problem, rule, torch.tensor(thetas, dtype=torch.float64)[:, None])
        for theta, h in zip(thetas, got.value[:, 0].tolist(), strict=True):
            z = clamp(L * (theta - y), tau_of(kind, theta, lam, eps))
            se = z.std() / math.sqrt(z.size)
            assert abs(h - z.mean()) < 5 * se, (kind, theta, h, z.mean(), se)


def test_student_t_with_large_threshold():
    """A wide integration range (τ ≫ sd): the mass near the centre must not be missed."""
    mean, sd, df = 30.0, 1.0, 4
    problem = make_problem("quadratic", noise="student-t", mean=mean, sd=sd, df=df)
    rule = ClipRule("adaptive", lam=2.0, eps=0.1)
    thetas = [30.0, 31.0, 200.0, 1e4, -1e4]
    got = mean_field(problem, rule, torch.tensor(thetas, dtype=torch.float64)[:, None])
    for theta, h in zip(thetas, got.value[:, 0].tolist(), strict=True):
        expected = t_clamp_mean(theta, 1.0, mean, sd, df, 2.0 * abs(theta))
        assert abs(h - expected) <= 1e-10 * max(1.0, abs(expected)), (theta, h, expected)


def test_student_t_unclipped():
    problem = make_problem("quadratic", noise="student-t", mean=1.0, sd=2.0, df=3, curvature=-0.5)
    thetas = torch.tensor([[-1.0], [0.0], [4.0]], dtype=torch.float64)
    for kind in ("none", "projection"):
        got = mean_field(problem, make_rule(kind, 1.0), thetas).value[:, 0].numpy()
        np.testing.assert_allclose(got, -0.5 * (thetas[:, 0].numpy() - 1.0), rtol=1e-12)
    cauchy = make_problem("quadratic", noise="student-t", df=1)
    with pytest.raises(ValueError):
        mean_field(cauchy, ClipRule("none"), thetas)


# --------------------------------------------------------------------------------------------
# (d) discrete law in d = 2 (and a point law): the finite sum by hand
# --------------------------------------------------------------------------------------------


def hand_clip_2d(kind, g, theta, lam, eps):
    """g/c for one 2-vector, written out from the paper's definitions."""
    ng = math.hypot(g[0], g[1])
    if kind in ("none", "projection"):
        return g
    if kind == "value":
        return np.array([min(max(gi, -lam), lam) for gi in g])
    if kind == "classic":
        c = max(ng / lam, 1.0)
    else:  # adaptive; layerwise/unitwise: the single layer "theta" is one group
        c = max(ng / (lam * max(math.hypot(theta[0], theta[1]), eps)), 1.0)
    return g / c


@pytest.mark.parametrize("kind", RULES)
def test_discrete_law_2d(kind):
    values, probs, L, lam, eps = (-1.0, 0.5, 3.0), (0.2, 0.5, 0.3), 1.7, 0.9, 0.4
    problem = make_problem("quadratic", noise="discrete", values=values, probs=probs, dim=2,
                           curvature=L)
    rule = make_rule(kind, lam, eps)
    pts = np.array([[0.0, 0.0], [0.1, -0.2], [1.0, 2.0], [-3.0, 0.5], [2.9, 3.1], [10.0, -10.0]])
    got = mean_field(problem, rule, torch.from_numpy(pts))
    assert got.exact
    for theta, h in zip(pts, got.value.numpy(), strict=True):
        expected = np.zeros(2)
        for v, p in zip(values, probs, strict=True):
            expected += p * hand_clip_2d(kind, L * (theta - v), theta, lam, eps)
        np.testing.assert_allclose(h, expected, rtol=1e-13, atol=1e-13)


def test_point_law_and_stiff():
    problem = make_problem("stiff", kind="far", target=5.0)
    rule = ClipRule("adaptive", lam=0.5, eps=1.0)
    pts = np.array([[0.0], [2.0], [4.9], [7.0]])
    got = mean_field(problem, rule, torch.from_numpy(pts)).value[:, 0].numpy()
    for theta, h in zip(pts[:, 0], got, strict=True):
        g = theta - 5.0
        tau = 0.5 * max(abs(theta), 1.0)
        assert math.isclose(h, max(-tau, min(tau, g)), rel_tol=1e-13, abs_tol=1e-15)


# --------------------------------------------------------------------------------------------
# (e) B > 1: Monte Carlo within 4 standard errors of the enumerated expectation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["classic", "adaptive", "unitwise", "value", "none"])
def test_minibatch_monte_carlo_against_enumeration(kind):
    problem = make_problem("linear-regression", n=3, dim=2, data_noise=1.0)
    batch = 3
    pts = np.array([[0.0, 0.0, 0.0], [20.0, -10.0, 5.0]])
    per_sample = [[fd_grad(problem, th, torch.tensor([[i]])) for i in range(problem.n)]
                  for th in pts]
    lam = float(np.median([np.linalg.norm(g) for g in per_sample[0]]))
    rule = make_rule(kind, lam, eps=0.5)
    exact = np.zeros_like(pts)
    for k, theta in enumerate(pts):
        for combo in itertools.product(range(problem.n), repeat=batch):
            g = np.mean([per_sample[k][i] for i in combo], axis=0)
            exact[k] += ref_clip(rule, problem.layout, g, theta)
        exact[k] /= problem.n ** batch
    est = mean_field(problem, rule, torch.from_numpy(pts), batch=batch, samples=4096, seed=11)
    assert not est.exact
    se = est.stderr.numpy()
    assert np.all(se > 0)
    assert np.all(np.abs(est.value.numpy() - exact) <= 4 * se + 1e-9), (est.value, exact, se)


def test_minibatch_discrete_quadratic_against_enumeration():
    values, probs, lam = (-2.0, 1.0, 4.0), (0.5, 0.3, 0.2), 1.2
    problem = make_problem("quadratic", noise="discrete", values=values, probs=probs, dim=2)
    rule = ClipRule("classic", lam=lam)
    batch = 2
    pts = np.array([[0.0, 0.0], [1.0, -1.5]])
    exact = np.zeros_like(pts)
    for k, theta in enumerate(pts):
        for combo in itertools.product(range(3), repeat=batch):
            w = math.prod(probs[i] for i in combo)
            ybar = np.mean([values[i] for i in combo])
            exact[k] += w * hand_clip_2d("classic", theta - ybar, theta, lam, 1.0)
    est = mean_field(problem, rule, torch.from_numpy(pts), batch=batch, samples=8192, seed=4)
    se = est.stderr.numpy()
    assert np.all(np.abs(est.value.numpy() - exact) <= 4 * se + 1e-12)


def test_monte_carlo_for_normal_law_in_2d():
    """A continuous law in d > 1 falls back to Monte Carlo; check it against a numpy MC."""
    problem = make_problem("quadratic", mean=1.0, sd=0.5, dim=2)
    rule = ClipRule("classic", lam=0.3)
    pts = np.array([[0.0, 0.0], [1.2, 0.8]])
    est = mean_field(problem, rule, torch.from_numpy(pts), samples=8192, seed=1)
    assert not est.exact
    rng = np.random.default_rng(0)
    y = 1.0 + 0.5 * rng.standard_normal((400_000, 2))
    for k, theta in enumerate(pts):
        g = theta - y
        c = np.maximum(np.linalg.norm(g, axis=1) / 0.3, 1.0)
        ref = (g / c[:, None]).mean(0)
        se = est.stderr.numpy()[k]
        assert np.all(np.abs(est.value.numpy()[k] - ref) <= 4 * se + 1e-3)


def test_monte_carlo_reproducible_and_seeded():
    problem = make_problem("linear-regression", n=4, dim=2)
    rule = ClipRule("classic", lam=1.0)
    pts = torch.zeros(2, 3, dtype=torch.float64)
    a = mean_field(problem, rule, pts, batch=2, samples=256, seed=3).value
    b = mean_field(problem, rule, pts, batch=2, samples=256, seed=3).value
    c = mean_field(problem, rule, pts, batch=2, samples=256, seed=4).value
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # the Monte Carlo draws are not those of the runs (stream 0) at the same seed: the same
    # estimate built from the step stream's words differs
    w_run = sampling.words(3, range(2 * 256), range(1), 2 * problem.words_per_sample)[0]
    g = problem.grad(pts.repeat_interleave(256, 0), problem.sample(w_run, torch.float64))
    d = g * rule.apply(g, pts.repeat_interleave(256, 0), problem.layout).scale[:, None]
    from_run_stream = d.view(2, 256, -1).mean(1)
    assert not torch.allclose(a, from_run_stream, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# T1: the zero set of H can be an interval
# --------------------------------------------------------------------------------------------


def test_two_point_law_zero_set_is_interval():
    """y = ±3 with probability 1/2, λ = 1 (gap 6 > 2λ): for |θ| ≤ 2 both samples are clipped
    to ±λ and cancel, so H = 0 on [−2, 2]; outside, H ≠ 0."""
    problem = make_problem("quadratic", noise="discrete", values=(-3.0, 3.0), probs=(0.5, 0.5))
    rule = ClipRule("classic", lam=1.0)
    inside = np.linspace(-1.99, 1.99, 9)
    h_in = mean_field(problem, rule, torch.from_numpy(inside)[:, None]).value[:, 0].numpy()
    assert np.all(np.abs(h_in) < 1e-15), h_in
    outside = np.array([-3.5, -2.5, 2.5, 3.5])
    h_out = mean_field(problem, rule, torch.from_numpy(outside)[:, None]).value[:, 0].numpy()
    by_hand = [0.5 * max(-1, min(1, t + 3)) + 0.5 * max(-1, min(1, t - 3)) for t in outside]
    np.testing.assert_allclose(h_out, by_hand, rtol=1e-14)
    assert np.all(np.abs(h_out) >= 0.25)
    # unclipped, the only zero is the mean
    h_none = mean_field(problem, ClipRule("none"), torch.from_numpy(inside)[:, None]).value
    np.testing.assert_allclose(h_none[:, 0].numpy(), inside, rtol=1e-14, atol=1e-15)


def test_classic_zero_is_huber_minimiser_not_mean():
    """y = 0 w.p. 0.9, 10 w.p. 0.1, λ = 1: E[y] = 1 but H(1) = 0.8; H(1/9) = 0."""
    problem = make_problem("quadratic", noise="discrete", values=(0.0, 10.0), probs=(0.9, 0.1))
    rule = ClipRule("classic", lam=1.0)
    h = mean_field(problem, rule, torch.tensor([[1.0], [1.0 / 9.0]], dtype=torch.float64))
    assert math.isclose(float(h.value[0, 0]), 0.8, rel_tol=1e-13)
    assert abs(float(h.value[1, 0])) < 1e-15


def test_bad_theta_shape():
    problem = make_problem("quadratic", dim=2)
    with pytest.raises(ValueError):
        mean_field(problem, ClipRule("classic", lam=1.0), torch.zeros(3, 3))
    with pytest.raises(ValueError):
        mean_field(problem, ClipRule("classic", lam=1.0), torch.zeros(2))


# --------------------------------------------------------------------------------------------
# The closed forms of simulations.engine.mean_field against scipy (cdf, quad) directly
# --------------------------------------------------------------------------------------------

T_DFS = [1, 2, 3, 4, 5, 8, 17, 30]
T_XS = np.array([-1e4, -300.0, -25.0, -3.3, -1.0, -0.2, 0.0, 1e-3, 0.5, 2.0, 7.5, 60.0, 1e5])


@pytest.mark.parametrize("df", T_DFS)
def test_t_cdf_against_scipy(df):
    from simulations.engine.mean_field import t_cdf

    got = t_cdf(torch.from_numpy(T_XS), df).numpy()
    np.testing.assert_allclose(got, stats.t.cdf(T_XS, df), rtol=1e-12, atol=2e-15)


@pytest.mark.parametrize("df", [2, 3, 4, 7, 30])
def test_t_partial_expectation_against_quad(df):
    """E[T·1{T ≤ x}] = −(ν + x²)/(ν − 1)·f_ν(x) (the module docstring's derivation) against
    scipy.integrate.quad of t·f_ν(t) over (−∞, x] (the code's use of it is checked by
    test_t_clamp_mean_against_quad)."""
    for x in (-40.0, -2.0, -0.3, 0.0, 1.1, 6.0):
        want, _ = integrate.quad(lambda t: t * stats.t.pdf(t, df), -np.inf, x, epsabs=1e-13,
                                 epsrel=1e-12, limit=400)
        formula = -(df + x * x) / (df - 1) * stats.t.pdf(x, df)
        assert abs(formula - want) <= 1e-9 * max(1.0, abs(want)), (df, x, formula, want)


@pytest.mark.parametrize("df", [1, 2, 3, 6])
def test_t_clamp_mean_against_quad(df):
    """E[clamp(m + sT, −τ, τ)] = ∫ clamp(m + st, −τ, τ) f_ν(t) dt by scipy.integrate.quad, split
    at the kinks t = (±τ − m)/s."""
    from simulations.engine.mean_field import t_clamp_mean

    cases = [(0.0, 1.0, 1.0), (0.7, 0.5, 2.0), (-3.0, 2.0, 0.4), (25.0, 1.0, 1.0),
             (-1e3, 3.0, 50.0), (0.2, 10.0, 0.1)]
    m = torch.tensor([c[0] for c in cases], dtype=torch.float64)
    s = torch.tensor([c[1] for c in cases], dtype=torch.float64)
    tau = torch.tensor([c[2] for c in cases], dtype=torch.float64)
    got = t_clamp_mean(m, s, tau, df).numpy()
    for (mi, si, ti), h in zip(cases, got, strict=True):
        lo, hi = (-ti - mi) / si, (ti - mi) / si
        inner = integrate.quad(lambda t, mi=mi, si=si: (mi + si * t) * stats.t.pdf(t, df), lo,
                               hi, epsabs=1e-13, epsrel=1e-12, limit=400)[0]
        want = inner + ti * stats.t.sf(hi, df) - ti * stats.t.cdf(lo, df)
        assert abs(h - want) <= 1e-10 * max(1.0, abs(want)), (df, mi, si, ti, h, want)
        assert abs(h) <= ti * (1 + 1e-12)


@pytest.mark.parametrize("noise", ["normal", "student-t"])
def test_value_clipping_in_2d_is_closed_form(noise):
    """Value clipping acts per coordinate and the coordinates of y are iid: H_i is the 1-D
    closed form of coordinate i; checked against a numpy Monte Carlo of 10⁶ draws."""
    mean, sd, df, lam, L = 0.5, 1.2, 3, 0.7, 1.5
    problem = make_problem("quadratic", noise=noise, mean=mean, sd=sd, dim=2, curvature=L,
                           **({"df": df} if noise == "student-t" else {}))
    pts = np.array([[0.0, 0.0], [1.0, -2.0], [4.0, 0.4]])
    est = mean_field(problem, ClipRule("value", lam=lam), torch.from_numpy(pts))
    assert est.exact and est.method.startswith("closed form")
    rng = np.random.default_rng(5)
    noise_draws = (rng.standard_normal(1_000_000) if noise == "normal"
                   else rng.standard_t(df, 1_000_000))
    y = mean + sd * noise_draws
    for k, theta in enumerate(pts):
        for i in range(2):
            z = np.clip(L * (theta[i] - y), -lam, lam)
            se = z.std() / 1000.0
            assert abs(est.value[k, i].item() - z.mean()) < 5 * se


def test_normal_minibatch_closed_form():
    """For a normal law the minibatch mean ȳ is N(mean, sd²/B): H for B > 1 is the closed form
    with s = |L|·sd/√B, checked against quadrature over ȳ."""
    mean, sd, lam, batch = -0.2, 1.5, 0.5, 4
    problem = make_problem("quadratic", mean=mean, sd=sd)
    thetas = [-2.0, 0.0, 0.3, 3.0]
    est = mean_field(problem, ClipRule("classic", lam=lam),
                     torch.tensor(thetas, dtype=torch.float64)[:, None], batch=batch)
    assert est.exact
    for theta, h in zip(thetas, est.value[:, 0].tolist(), strict=True):
        want = quad_normal(theta, 1.0, mean, sd / math.sqrt(batch), lam)
        assert abs(h - want) < 1e-10


# --------------------------------------------------------------------------------------------
# Batched evaluation: one call for many points equals one call per point
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", [
    dict(name="quadratic", noise="student-t", df=3, rule=("adaptive", 0.8)),
    dict(name="quadratic", noise="normal", rule=("classic", 0.8)),
    dict(name="quadratic", noise="discrete", values=[-1.0, 2.0], probs=[0.3, 0.7], dim=2,
         rule=("classic", 0.8)),
    dict(name="quadratic", noise="normal", dim=3, rule=("classic", 0.8)),
    dict(name="linear-regression", n=7, dim=2, rule=("classic", 2.0)),
])
def test_batched_equals_pointwise(setting, monkeypatch):
    import simulations.engine.mean_field as mf

    setting = dict(setting)
    kind, lam = setting.pop("rule")
    problem = make_problem(setting.pop("name"), **setting)
    rule = make_rule(kind, lam)
    pts = torch.from_numpy(points_near(problem, 9, 1.5, seed=1))
    monkeypatch.setattr(mf, "MAX_ROWS", 3 * 64)  # several pieces of points and of atoms/draws
    whole = mean_field(problem, rule, pts, samples=64)
    for k in range(len(pts)):
        one = mean_field(problem, rule, pts[k:k + 1], samples=64)
        np.testing.assert_allclose(one.value.numpy(), whole.value[k:k + 1].numpy(), rtol=1e-13,
                                   atol=1e-15)
        np.testing.assert_allclose(one.stderr.numpy(), whole.stderr[k:k + 1].numpy(),
                                   rtol=1e-12, atol=1e-15)


def test_monte_carlo_common_random_numbers_against_numpy():
    """Monte Carlo H uses the same S draws at every point: rebuilt with numpy from the draws
    the evaluator holds, its mean and standard error match, and two equal points get equal H."""
    from simulations.engine.mean_field import evaluator

    problem = make_problem("quadratic", mean=1.0, sd=0.5, dim=2)
    rule = ClipRule("classic", lam=0.3)
    pts = np.array([[0.0, 0.0], [1.2, 0.8], [0.0, 0.0]])
    est = mean_field(problem, rule, torch.from_numpy(pts), samples=500, seed=9)
    ev = evaluator(problem, rule, samples=500, seed=9)
    y = ev.draws[:, 0, :].numpy()  # (S, d), one sample per minibatch
    assert y.shape == (500, 2)
    for k, theta in enumerate(pts):
        g = theta - y
        d = g * np.minimum(1.0, 0.3 / np.linalg.norm(g, axis=1))[:, None]
        np.testing.assert_allclose(est.value[k].numpy(), d.mean(0), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(est.stderr[k].numpy(), d.std(0, ddof=1) / math.sqrt(500),
                                   rtol=1e-10)
    assert torch.equal(est.value[0], est.value[2])


def test_evaluator_is_cached_and_checks_its_arguments():
    from simulations.engine.mean_field import evaluator

    problem = make_problem("quadratic", noise="student-t", df=4)
    rule = ClipRule("classic", lam=1.0)
    assert evaluator(problem, rule) is evaluator(problem, rule)
    assert evaluator(problem, rule) is not evaluator(problem, rule, dtype=torch.float32)
    for bad in (dict(batch=0), dict(samples=1), dict(batch=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            evaluator(problem, rule, **bad)


def test_field_jacobian_against_analytic_derivatives():
    """field(...).jacobian: the Hessian 2/n·[X 1]ᵀ[X 1] of unclipped least squares, and
    dH/dθ = L·P(|z| < λ) = L[Φ(β) − Φ(α)] for the 1-D normal quadratic under classic clipping."""
    from simulations.engine.mean_field import field

    problem = make_problem("linear-regression", n=6, dim=3)
    xa = np.hstack([problem.x, np.ones((problem.n, 1))])
    theta = np.array([0.3, -1.0, 2.0, 0.5])
    jac = field(problem, ClipRule("none")).jacobian(theta)
    np.testing.assert_allclose(jac, 2.0 / problem.n * xa.T @ xa, rtol=1e-6, atol=1e-6)

    mean, sd, lam, L = 0.2, 1.1, 0.7, 1.8
    quad = make_problem("quadratic", mean=mean, sd=sd, curvature=L)
    for th in (-1.0, 0.2, 2.5):
        m, s = L * (th - mean), L * sd
        want = L * (stats.norm.cdf((lam - m) / s) - stats.norm.cdf((-lam - m) / s))
        got = field(quad, ClipRule("classic", lam=lam)).jacobian(np.array([th]))
        assert got.shape == (1, 1) and abs(got[0, 0] - want) < 1e-6


# ---- the bound on H's rounding error -------------------------------------------------------

def _exact_two_point(theta: float, y0: float, lam: float):
    """H(θ) = ½clip(θ + y0) + ½clip(θ − y0), clip(z) = sign(z)·min(|z|, λ), in exact rational
    arithmetic on the float θ."""
    from fractions import Fraction

    def clip(z):
        return max(min(z, Fraction(lam)), -Fraction(lam))

    t, y = Fraction(theta), Fraction(y0)
    return (clip(t + y) + clip(t - y)) / 2


def test_rounding_bound_of_a_finite_sum_against_exact_fractions():
    """y = ±9e6 w.p. ½, classic λ = 1e5: on [λ − y0, y0 − λ] = [−8.9e6, 8.9e6] H is exactly 0
    but float64 gives noise of size ~ε·λ of either sign. The bound (S + 16)·ε·Σ|w_s t_s|
    (S = 2, Σ|w_s t_s| = λ there) covers the error against exact rational arithmetic at every
    point, flat or not, and is small: 18·ε·λ ≈ 4.0e-10."""
    problem = make_problem("quadratic", noise="discrete", values=[-9e6, 9e6], probs=[0.5, 0.5])
    rng = np.random.default_rng(5)
    theta = np.concatenate([rng.uniform(-8.9e6, 8.9e6, 300), rng.uniform(-2e7, 2e7, 100),
                            [-8.9e6, 8.9e6, 0.0, 1e-3]])
    est = mean_field(problem, ClipRule("classic", lam=1e5), torch.as_tensor(theta)[:, None],
                     rounding=True)
    value, bound = est.value[:, 0].numpy(), est.rounding[:, 0].numpy()
    errors = [abs(float(v) - float(_exact_two_point(t, 9e6, 1e5)))
              for t, v in zip(theta, value, strict=True)]
    assert all(e <= b for e, b in zip(errors, bound, strict=True))
    flat = np.abs(theta) <= 8.9e6
    assert np.all(bound[flat] == pytest.approx(18 * np.finfo(float).eps * 1e5, rel=1e-12))
    assert np.any(value[flat] != 0)  # the noise the bound is there for


@pytest.mark.parametrize("law,df", [("normal", None), ("student-t", 1), ("student-t", 3)])
def test_rounding_bound_of_the_closed_forms_against_quadrature(law, df):
    """E[clamp(m + sT, −λ, λ)] by mpmath quadrature at 30 digits, split at the kinks
    t = (±λ − m)/s and at the mode 0, against the closed form in float64: the error is within
    the bound 64·ε·(|m| + λ + s(|G(α)| + |G(β)|))."""
    import mpmath

    mpmath.mp.dps = 30
    params = {"noise": law, "mean": 0.0, "sd": 2.0} | ({"df": df} if df else {})
    problem = make_problem("quadratic", **params)
    lam = 1.5
    theta = np.array([-40.0, -3.1, -1.0, -0.2, 0.0, 0.7, 2.9, 15.0, 1e3])
    est = mean_field(problem, ClipRule("classic", lam=lam), torch.as_tensor(theta)[:, None],
                     rounding=True)
    if law == "normal":
        def pdf(t):
            return mpmath.npdf(t)
    else:
        half = mpmath.mpf(1) / 2
        c = mpmath.gamma((df + 1) * half) / (mpmath.sqrt(df * mpmath.pi)
                                             * mpmath.gamma(df * half))

        def pdf(t):
            return c * (1 + t * t / df) ** (-(df + 1) * half)

    def clamped(m, s):
        return lambda t: max(min(m + s * t, lam), -lam) * pdf(t)

    for th, value, bound in zip(theta, est.value[:, 0].tolist(), est.rounding[:, 0].tolist(),
                                strict=True):
        m, s = mpmath.mpf(th), mpmath.mpf(2)
        a, b = (-lam - m) / s, (lam - m) / s
        points = [-mpmath.inf, *sorted({a, b, mpmath.mpf(0)}), mpmath.inf]
        exact = mpmath.quad(clamped(m, s), points)
        assert abs(value - float(exact)) <= bound, (th, value, float(exact), bound)
        assert bound <= 1e-13 * (abs(th) + lam + 2 * 2)  # a few hundred ulps of the terms


# --------------------------------------------------------------------------------------------
# Student-t with a non-integer number of degrees of freedom (the incomplete beta function)
# --------------------------------------------------------------------------------------------

REAL_DFS = [0.7, 1.5, 2.5, 7.3]


def _clamp_mean_by_quad(m: float, s: float, tau: float, df: float) -> float:
    """E[clamp(m + sT, −τ, τ)] = ∫ clamp(m + s t, −τ, τ)·f_ν(t) dt by scipy.integrate.quad with
    scipy.stats.t's density, split at the kinks t = (±τ − m)/s and at 0 (the density's peak)."""
    kinks = sorted({(-tau - m) / s, (tau - m) / s, 0.0})
    edges = [-np.inf, *kinks, np.inf]

    def integrand(t: float) -> float:
        return max(-tau, min(tau, m + s * t)) * stats.t.pdf(t, df)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return math.fsum(integrate.quad(integrand, lo, hi, epsabs=1e-14, epsrel=1e-13,
                                        limit=1000)[0]
                         for lo, hi in zip(edges[:-1], edges[1:], strict=True))


@pytest.mark.parametrize("df", REAL_DFS)
@pytest.mark.parametrize("kind", ["classic", "adaptive", "value"])
def test_student_t_real_df_against_quadrature(df, kind):
    """H(θ) for ν ∈ {0.7, 1.5, 2.5, 7.3} (ν = 0.7: E|y| = ∞, but clipped H exists) against the
    quadrature of E[clamp(L(θ − mean − sd·T), −τ, τ)], to 1e-12."""
    mean, sd, curvature, lam, eps = 0.5, 1.3, -0.8, 0.9, 0.2
    problem = make_problem("quadratic", noise="student-t", mean=mean, sd=sd, df=df,
                           curvature=curvature)
    rule = make_rule(kind, lam, eps)
    thetas = np.array([-1e3, -3.0, 0.0, 0.2, 0.5, 1.7, 40.0])
    got = mean_field(problem, rule, torch.tensor(thetas[:, None])).value[:, 0].numpy()
    for theta, h in zip(thetas, got, strict=True):
        tau = lam * max(abs(theta), eps) if kind == "adaptive" else lam
        # L(θ − y) = m + s·T' with m = L(θ − mean), s = |L|·sd, T' = −sign(L)·T ~ t_ν
        want = _clamp_mean_by_quad(curvature * (theta - mean), abs(curvature) * sd, tau, df)
        assert abs(h - want) <= 1e-12 * max(1.0, abs(want)), (df, kind, theta, h, want)


@pytest.mark.parametrize("df", [0.3, 0.7, 1.5, 2.5, 7.3, 30.5])
def test_t_cdf_real_df_against_scipy(df):
    """F_ν and its tails (the smaller of F and 1 − F, relatively) against scipy.stats.t."""
    from simulations.engine.mean_field import t_cdf

    xs = np.concatenate([-np.logspace(-4, 6, 120), [0.0], np.logspace(-4, 6, 120)])
    got = t_cdf(torch.from_numpy(xs), df).numpy()
    want = stats.t.cdf(xs, df)
    tail_got = np.where(xs < 0, got, 1.0 - got)
    tail_want = np.where(xs < 0, want, stats.t.sf(xs, df))
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-15)
    lower = xs < 0  # 1 − got keeps only the absolute precision of got
    np.testing.assert_allclose(tail_got[lower], tail_want[lower],
                               rtol=5e-14)


@pytest.mark.parametrize("df", [0.7, 0.9999999, 1.0000001, 1.5, 2.5, 7.3])
def test_t_partial_expectation_real_df_against_quad(df):
    """E[T·1{a < T ≤ b}] on finite intervals, also for ν < 1 (E|T| = ∞) and ν next to 1."""
    from simulations.engine.mean_field import t_partial_expectation

    pairs = [(-3.0, -1.0), (-1.0, 2.0), (0.5, 7.0), (-40.0, 25.0), (-0.1, 0.1), (3.0, 3.5)]
    a = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    b = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    got = t_partial_expectation(a, b, df).numpy()
    for (lo, hi), g in zip(pairs, got, strict=True):
        mid = min(hi, max(lo, 0.0))  # split at 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            want = math.fsum(integrate.quad(lambda t: t * stats.t.pdf(t, df), p, q,
                                            epsabs=1e-15, epsrel=1e-14, limit=400)[0]
                             for p, q in ((lo, mid), (mid, hi)))
        assert abs(g - want) <= 1e-13 * max(1.0, abs(want)), (df, lo, hi, g, want)


def test_t_partial_expectation_at_one_is_the_cauchy_form():
    """ν = 1 exactly: [ln(1 + b²) − ln(1 + a²)]/(2π), written out here."""
    from simulations.engine.mean_field import t_partial_expectation

    a, b = torch.tensor([-3.0, 0.5]), torch.tensor([2.0, 9.0])
    want = [(math.log1p(4.0) - math.log1p(9.0)) / (2 * math.pi),
            (math.log1p(81.0) - math.log1p(0.25)) / (2 * math.pi)]
    got = t_partial_expectation(a.double(), b.double(), 1.0).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-14)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 10])
def test_beta_path_agrees_with_the_series_at_integer_df(df):
    """At an integer ν the incomplete-beta CDF and the difference form of the partial
    expectation (used for non-integer ν) agree with the A&S series (kept for integer ν) to a
    few 1e-16 absolute, and so does E[clamp]."""
    from simulations.engine.mean_field import (
        _clamp_mean,
        _t_cdf_beta,
        t_cdf,
        t_clamp_mean,
        t_partial_expectation,
    )

    xs = torch.from_numpy(np.concatenate([-np.logspace(-3, 3, 80), [0.0],
                                          np.logspace(-3, 3, 80)]))
    np.testing.assert_allclose(_t_cdf_beta(xs, float(df)).numpy(), t_cdf(xs, df).numpy(),
                               rtol=0, atol=2e-15)
    m = torch.linspace(-6.0, 6.0, 121, dtype=torch.float64)
    tau = torch.full_like(m, 0.8)
    new = _clamp_mean(m, 1.3, tau, lambda x: _t_cdf_beta(x, float(df)),
                      lambda a, b: t_partial_expectation(a, b, float(df)))
    np.testing.assert_allclose(new.numpy(), t_clamp_mean(m, 1.3, tau, df).numpy(), rtol=0,
                               atol=3e-15)


def test_student_t_real_df_unclipped():
    """Without clipping H = L(θ − mean) for ν > 1 (ν = 1.5: E|y| < ∞ though E[y²] = ∞), and is
    refused for ν ≤ 1, in one line naming df."""
    thetas = torch.tensor([[-1.0], [0.0], [4.0]], dtype=torch.float64)
    problem = make_problem("quadratic", noise="student-t", mean=1.0, sd=2.0, df=1.5,
                           curvature=-0.5)
    got = mean_field(problem, ClipRule("none"), thetas).value[:, 0].numpy()
    np.testing.assert_allclose(got, -0.5 * (thetas[:, 0].numpy() - 1.0), rtol=1e-15)
    for df in (0.7, 1):
        heavy = make_problem("quadratic", noise="student-t", df=df)
        with pytest.raises(BadArgument, match=r"^df: .*≤ 1 without clipping") as error:
            mean_field(heavy, ClipRule("none"), thetas)
        assert "\n" not in str(error.value)
