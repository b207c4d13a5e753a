"""theory.equilibria against closed forms.

* The zero of H for ½(θ − y)² in 1-D under classic clipping, for a two-point law, is the
  minimiser of E[Huber_λ(θ − y)]; its closed form (written out here by cases, independently of
  the code) is checked against zeros_1d applied to the exact mean field of the engine's problem.
* The ODE solver against exact solutions of linear and clipped fields.
* zeros in d dimensions against a linear solve, and on a clipped linear field in d = 50 with its
  batched Jacobian (few evaluations) and with a budget too small (stopped, not 'no zero');
  minimise on a quadratic and on separable logistic data (no minimiser); the Marchaud check on
  fields with known constants and on one with a jump.
"""

import math

import numpy as np
import pytest

from simulations.engine.mean_field import field
from simulations.engine.problems import make_problem
from simulations.engine.rules import ClipRule
from theory import equilibria


def huber_zero_two_point(v1: float, v2: float, p: float, lam: float):
    """argmin_θ p·Huber_λ(θ − v1) + (1 − p)·Huber_λ(θ − v2) for v1 < v2, by cases of which
    residuals are clipped; returns a point or an interval (a, b)."""
    mean = p * v1 + (1 - p) * v2
    if abs(mean - v1) <= lam and abs(mean - v2) <= lam:
        return mean  # both residuals inside [−λ, λ]: the ordinary mean
    if p == 0.5:
        return (v1 + lam, v2 - lam)  # both clipped: pλ − (1−p)λ = 0 on a whole interval
    if p > 0.5:
        return v1 + (1 - p) * lam / p  # p(θ − v1) = (1 − p)λ, θ − v2 < −λ
    return v2 - p * lam / (1 - p)  # (1 − p)(v2 − θ) = pλ, θ − v1 > λ


CASES = [(0.0, 10.0, 0.9, 1.0), (0.0, 10.0, 0.1, 1.0), (-1.0, 1.0, 0.7, 2.0),
         (0.0, 3.0, 0.6, 0.5), (2.0, 5.0, 0.25, 1.0), (-2.0, 2.0, 0.5, 1.0),
         (0.0, 1.0, 0.5, 3.0)]


@pytest.mark.parametrize("v1,v2,p,lam", CASES)
def test_zero_of_h_is_the_huber_minimiser(v1, v2, p, lam):
    problem = make_problem("quadratic", noise="discrete", values=[v1, v2], probs=[p, 1 - p])
    h = field(problem, ClipRule("classic", lam=lam))
    zs = equilibria.zeros_1d(lambda x: h(x[:, None])[:, 0], v1 - 10, v2 + 10)
    want = huber_zero_two_point(v1, v2, p, lam)
    if isinstance(want, tuple):
        assert len(zs.points) == 0 and len(zs.intervals) == 1
        np.testing.assert_allclose(zs.intervals[0], want, atol=1e-9)
        assert zs.distance(sum(want) / 2) == 0 and zs.distance(want[1] + 1) == pytest.approx(1)
    else:
        assert not zs.intervals
        np.testing.assert_allclose(zs.points, [want], atol=1e-10)
        assert zs.residuals[0] < 1e-12


def test_the_huber_zero_is_not_the_mean():
    """The skewed law of the paper suite: θ* = 1/9 while E[y] = 1."""
    assert huber_zero_two_point(0.0, 10.0, 0.9, 1.0) == pytest.approx(1 / 9)


def test_zeros_1d_finds_several_and_no_zero():
    zs = equilibria.zeros_1d(lambda x: np.sin(x), -1.0, 10.0)
    np.testing.assert_allclose(zs.points, [0.0, math.pi, 2 * math.pi, 3 * math.pi], atol=1e-11)
    none = equilibria.zeros_1d(lambda x: 1.0 + x**2, -5, 5)
    assert none.empty and none.distance(0.0) == math.inf and "none" in none.describe()


def test_zeros_1d_refuses_bad_ranges():
    with pytest.raises(ValueError, match="lo < hi"):
        equilibria.zeros_1d(np.sin, 1.0, 1.0)


def test_zeros_in_d_dimensions_against_a_linear_solve():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 4)) + 4 * np.eye(4)
    b = rng.standard_normal(4)
    found = equilibria.zeros(lambda v: v @ a.T - b, [np.zeros(4), np.ones(4) * 5])
    assert len(found) == 1  # both starts reach the same zero, merged
    np.testing.assert_allclose(found[0].point, np.linalg.solve(a, b), atol=1e-10)


def test_minimise_quadratic_and_no_minimiser_on_separable_logistic():
    m = equilibria.minimise(lambda v: float(((v - 3) ** 2).sum()), lambda v: 2 * (v - 3),
                            np.zeros(2))
    assert m.converged and np.allclose(m.point, 3)
    x = np.array([[1.0], [2.0], [-1.0], [-3.0]])
    y = np.array([1.0, 1.0, 0.0, 0.0])  # separable at 0

    def loss(w):
        f = x[:, 0] * w[0]
        return float(np.mean(np.logaddexp(0, f) - y * f))

    def grad(w):
        f = x[:, 0] * w[0]
        return np.array([np.mean((1 / (1 + np.exp(-f)) - y) * x[:, 0])])

    assert not equilibria.minimise(loss, grad, np.zeros(1)).converged


def test_stochastic_time_is_the_partial_sum():
    tau = equilibria.stochastic_time("1/(t+1)", 10)
    np.testing.assert_allclose(tau, [sum(1 / (s + 1) for s in range(t)) for t in range(11)])


def test_ode_linear_field_against_the_exponential():
    k, c = 0.7, np.array([1.0, -2.0])
    tau = np.linspace(0.0, 5.0, 11)
    got = equilibria.solve_ode(lambda v: k * (v - c), np.array([3.0, 0.0]), tau)
    want = c + (np.array([3.0, 0.0]) - c) * np.exp(-k * tau)[:, None]
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    # the paper's printed sign runs away instead
    away = equilibria.solve_ode(lambda v: k * (v - c), np.array([3.0, 0.0]), tau, sign=+1.0)
    np.testing.assert_allclose(away[-1], c + (np.array([3.0, 0.0]) - c) * np.exp(k * 5.0),
                               rtol=1e-6)


def test_ode_clipped_field_moves_at_speed_lambda_then_decays():
    """H = clamp(θ, −1, 1) from θ = 3: θ(τ) = 3 − τ until θ = 1 (τ = 2), then e^{−(τ − 2)}."""
    tau = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    got = equilibria.solve_ode(lambda v: np.clip(v, -1, 1), np.array([3.0]), tau)[:, 0]
    np.testing.assert_allclose(got, [3, 2, 1, math.exp(-1), math.exp(-2)], rtol=1e-6)


def test_tracking_gap_of_the_euler_scheme_shrinks_like_the_step():
    """The noiseless SGD path of H(θ) = θ is the Euler scheme θ(t+1) = (1 − a(t))θ(t); its gap
    to e^{−τ} over a window of τ-length 1 is O(a(t_n)), so it shrinks as t_n grows."""
    steps = 4000
    a = 1.0 / (np.arange(steps) + 2.0)
    path = np.concatenate([[1.0], np.cumprod(1 - a)])[:, None]
    tau = np.concatenate([[0.0], np.cumsum(a)])
    gaps = equilibria.tracking_gaps(path, tau, lambda v: v, 1.0, [10, 100, 1000])
    assert np.all(np.diff(gaps) < 0)
    # against the hand-computed gap of the first window
    n = 10
    stop = np.searchsorted(tau, tau[n] + 1.0, side="right")
    want = np.max(np.abs(path[n:stop, 0] - path[n, 0] * np.exp(-(tau[n:stop] - tau[n]))))
    assert gaps[0] == pytest.approx(want, rel=1e-5)


def test_marchaud_check_of_clipped_fields_and_a_jump():
    rng = np.random.default_rng(0)
    shells = equilibria.shell_points(np.zeros(2), [0.5, 5.0, 50.0], 32, rng)
    for s, r in zip(shells, [0.5, 5.0, 50.0], strict=True):
        np.testing.assert_allclose(np.linalg.norm(s, axis=1), r)

    def clipped(v):  # classic clipping of g = θ − 1: ‖H‖ ≤ λ = 2
        g = v - 1.0
        n = np.linalg.norm(g, axis=1, keepdims=True)
        return g * np.minimum(1.0, 2.0 / n)

    check = equilibria.marchaud_check(clipped, shells, analytic_k=2.0)
    assert check.growth <= 2.0 and check.continuous
    assert check.growth_by_shell[-1] == pytest.approx(2.0 / 51.0, rel=0.05)
    # sign(θ_1) jumps on θ_1 = 0: points on that line keep an increment of size 1
    on_jump = [np.array([[0.0, y] for y in np.linspace(-2, 2, 9)])]
    jump = equilibria.marchaud_check(lambda v: np.sign(v[:, :1]) * np.ones_like(v), on_jump)
    assert not jump.continuous


def test_zero_pieces_carry_their_stability():
    """sin on [−1, 10]: increasing through 0 and 2π (attracting for dθ/dτ = −H), decreasing
    through π and 3π (repelling); a tangency touches."""
    zs = equilibria.zeros_1d(np.sin, -1.0, 10.0)
    assert [p.stability for p in zs.pieces] == ["attracting", "repelling", "attracting",
                                                "repelling"]
    assert zs.only("attracting").points == pytest.approx([0.0, 2 * math.pi], abs=1e-11)
    touch = equilibria.zeros_1d(lambda x: (x - 0.5) ** 2, -1.0, 2.0, grid=31)  # on the grid
    assert len(touch.pieces) == 1 and touch.pieces[0].stability == "touching"
    assert touch.to_dict()["pieces"][0]["stability"] == "touching"


def test_a_flat_zero_set_with_noise_is_one_interval_not_hundreds_of_points():
    """H = 0.3·clamp(θ + 2, −1, 1) + 0.3·clamp(θ − 2, −1, 1) vanishes on [−1, 1]; with noise of
    1e-11 (above any fixed tolerance like 1e-12) alternating in sign on the grid, every grid
    cell of [−1, 1] holds a sign change. The zero set is still the one interval [−1, 1] (to a
    grid step), by merging pieces closer than two grid steps."""
    lo, hi, grid = -5.0, 5.0, 4001
    step = (hi - lo) / (grid - 1)

    def h(x):
        return (0.3 * np.clip(x + 2, -1, 1) + 0.3 * np.clip(x - 2, -1, 1)
                + 1e-11 * np.cos(np.pi * (x - lo) / step))

    zs = equilibria.zeros_1d(h, lo, hi, grid=grid)
    assert len(zs.pieces) == 1 and len(zs.points) == 0
    np.testing.assert_allclose(zs.intervals[0], (-1.0, 1.0), atol=2 * step)
    assert zs.pieces[0].stability == "attracting"
    assert zs.describe().count(",") == 1  # "{[-1, 1]}"


def test_a_flat_zero_set_at_large_lambda_is_one_interval_by_the_rounding_bound():
    """y = ±y0 w.p. ½ with y0 = 9e6, classic λ = 1e5 < y0. By cases, with
    clip(z) = sign(z)·min(|z|, λ): for |θ| ≤ y0 − λ both residuals are clipped, θ + y0 ≥ λ and
    θ − y0 ≤ −λ, so H(θ) = ½λ − ½λ = 0; for y0 − λ < θ < y0 + λ, H = ½λ + ½(θ − y0) =
    ½(θ − (y0 − λ)) > 0; for θ ≥ y0 + λ, H = λ; and H is odd. So the zero set is exactly
    [λ − y0, y0 − λ] = [−8.9e6, 8.9e6], attracting (H < 0 left of it, > 0 right of it).
    Evaluated in float64 the flat stretch is noise of size ε·λ; judged against the field's own
    rounding bound (``field(...).rounding``) it is one interval, found whole by widening the
    window while the interval reaches its ends."""
    problem = make_problem("quadratic", noise="discrete", values=[-9e6, 9e6], probs=[0.5, 0.5])
    h = field(problem, ClipRule("classic", lam=1e5))
    inside = equilibria.zeros_1d(h, -3.2e5, 3.1e5)
    assert len(inside.pieces) == 1 and inside.intervals == [(-3.2e5, 3.1e5)]
    assert inside.pieces[0].stability == "unknown"  # both ends at the window's edges
    zs = equilibria.search_zeros_1d(h, -3.2e5, 3.1e5)
    assert len(zs.pieces) == 1 and len(zs.points) == 0
    np.testing.assert_allclose(zs.intervals[0], (-8.9e6, 8.9e6), rtol=0, atol=1e-6)
    assert zs.pieces[0].stability == "attracting" and zs.lo < -8.9e6 and zs.hi > 8.9e6


def test_search_widens_towards_the_flow_until_a_zero():
    """H(θ) = clamp(θ − 100, −1, 1): on [−10, 20] H = −1, the flow dθ/dτ = +1 points out at the
    right end; the window grows to the right until it holds 100."""
    zs = equilibria.search_zeros_1d(lambda x: np.clip(x - 100.0, -1, 1), -10.0, 20.0)
    assert zs.points == pytest.approx([100.0], abs=1e-10) and zs.hi >= 100 and zs.lo == -10.0
    none = equilibria.search_zeros_1d(lambda x: np.ones_like(x), -1.0, 1.0, max_widenings=3)
    # H = 1 > 0: the flow goes left; the left end moves out by the width 3 times: −1 − 2 − 4 − 8
    assert none.empty and (none.lo, none.hi) == (-15.0, 1.0)


def test_jacobian_and_stability_against_a_linear_field():
    a = np.array([[2.0, 1.0], [0.0, 0.5]])  # eigenvalues 2, 0.5: attracting for θ' = −Aθ
    j = equilibria.jacobian(lambda v: v @ a.T, np.array([1.0, -2.0]))
    np.testing.assert_allclose(j, a, atol=1e-8)
    assert equilibria.stability(a) == "attracting"
    assert equilibria.stability(np.array([[1.0, 0.0], [0.0, -0.1]])) == "repelling"
    found = equilibria.zeros(lambda v: -(v - 1.0), [np.zeros(2)])
    assert found[0].stability == "repelling" and found[0].point == pytest.approx([1.0, 1.0])
    np.testing.assert_allclose(found[0].to_dict()["jacobian"], -np.eye(2), atol=1e-8)
    assert found[0].describe().endswith("repelling")


class ClippedLinear:
    """H(θ) = clip(A(θ − θ*), −1, 1) row-wise, batched (N, d) → (N, d), with its exact Jacobian
    diag(1{|A(θ − θ*)| < 1})·A; counts the points it is evaluated at and the Jacobians."""

    def __init__(self, a: np.ndarray, star: np.ndarray):
        self.a, self.star, self.points, self.jacobians = a, star, 0, 0

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        self.points += 1 if theta.ndim == 1 else len(theta)
        return np.clip((theta - self.star) @ self.a.T, -1.0, 1.0)

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        self.jacobians += 1
        inside = np.abs(self.a @ (theta - self.star)) < 1
        return self.a * inside[:, None]


def _clipped_linear(d=50):
    rng = np.random.default_rng(7)
    a = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / math.sqrt(d)
    star = rng.standard_normal(d)
    return ClippedLinear(a, star), star + 0.1 * rng.standard_normal(d)


def test_zeros_of_a_clipped_linear_field_in_50_dimensions_with_its_jacobian():
    """A is invertible (I plus a small perturbation), so θ* is the only zero (clipping keeps
    the sign of A(θ − θ*)); the start lies where no coordinate is clipped. With the batched
    Jacobian the solver needs a few Jacobians and a few dozen points, where differencing H
    itself costs d + 1 = 51 points per Jacobian; the classification's central differences are
    one call of h on 2d points."""
    h, start = _clipped_linear()
    search = equilibria.search_zeros(h, [start], tol=1e-12, jac=h.jacobian, classify=False)
    assert search.exhausted is None and len(search.zeros) == 1
    np.testing.assert_allclose(search.zeros[0].point, h.star, atol=1e-10)
    assert h.jacobians <= 5 and h.points <= 30
    assert search.evaluations == h.points + 51 * h.jacobians  # a Jacobian costs d + 1
    calls = []
    j = equilibria.jacobian(lambda v: calls.append(len(v)) or h(v), search.zeros[0].point)
    np.testing.assert_allclose(j, h.a, atol=1e-8)
    assert calls == [100]  # one batched call on the 2d points


def test_a_search_that_runs_out_of_budget_says_so():
    h, start = _clipped_linear()
    search = equilibria.search_zeros(h, [start, start], jac=h.jacobian,
                                     budget=equilibria.Budget(evaluations=60))
    assert search.zeros == [] and search.exhausted == "60 evaluations of H"
    assert search.evaluations <= 60 and h.points + 51 * h.jacobians <= 60
    assert 0 < search.best_residual <= np.linalg.norm(h(start))
    timed = equilibria.search_zeros(h, [start], budget=equilibria.Budget(seconds=1e-9))
    assert timed.zeros == [] and timed.exhausted == "1e-09 s"
    m = equilibria.minimise(lambda v: float(((v - 3) ** 2).sum()), lambda v: 2 * (v - 3),
                            np.zeros(2), budget=equilibria.Budget(evaluations=2))
    assert not m.converged and m.exhausted == "2 evaluations of H"
