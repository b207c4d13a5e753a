"""Tests of simulations.engine.problems: hand-written gradients against central finite differences
of
the loss, the loss against numpy re-implementations of each documented model, the layouts, the
initial points, the sampling laws and the validation of parameters."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from scipy import special, stats

from simulations.engine import sampling
from simulations.engine.problems import PROBLEMS, Law, Quadratic, RNNCliff, make_problem

# the number of recurrence steps of rnn-cliff ("length"; "steps" in older versions)
RNN_LENGTH = "length" if "length" in inspect.signature(RNNCliff.__init__).parameters else "steps"

# Small instances of every problem of the catalog (several laws / kinds for the quadratic
# family). Every catalog name must appear here (checked below).
CASES = {
    "quadratic-normal": ("quadratic", dict(dim=3, mean=0.5, sd=2.0, curvature=-0.7)),
    "quadratic-t": ("quadratic", dict(noise="student-t", dim=2, df=3, mean=-1.0, sd=0.5,
                                      curvature=2.0)),
    "quadratic-discrete": ("quadratic", dict(noise="discrete", dim=2, values=(-1.0, 2.0, 5.0),
                                             probs=(0.3, 0.5, 0.2))),
    "quadratic-point": ("quadratic", dict(noise="point", dim=2, mean=3.0)),
    "linear-regression": ("linear-regression", dict(n=10, dim=3)),
    "logistic": ("logistic", dict(n=10, dim=3, separable=False)),
    "mlp-regression": ("mlp-regression", dict(n=10, dim=3, hidden=4)),
    "mlp-classification": ("mlp-classification", dict(n=12, dim=3, classes=3, hidden=4)),
    "rnn-cliff": ("rnn-cliff", {"n": 6, RNN_LENGTH: 15}),
    "stiff": ("stiff", dict(kind="stiff")),
    "stiff-far": ("stiff", dict(kind="far", dim=2)),
    "stiff-concave": ("stiff", dict(kind="concave", dim=3)),
}


@pytest.fixture(scope="module")
def problems():
    return {case: make_problem(name, **dict(kw)) for case, (name, kw) in CASES.items()}


def test_every_catalog_problem_is_covered():
    # a user's module is tested in test_own_data.py (against the logistic problem it rewrites)
    assert {name for name, _ in CASES.values()} == set(PROBLEMS) - {"module"}


def draw_batch(problem, rows: int, batch: int, seed: int = 0, step: int = 0):
    w = sampling.words(seed, range(rows), [step], batch * problem.words_per_sample)[0]
    return problem.sample(w, torch.float64)


def random_points(problem, rows: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    base = problem.initial(torch.arange(rows), 0, torch.float64, "cpu").numpy()
    return torch.from_numpy(base + 0.3 * rng.standard_normal(base.shape))


def fd_grad(problem, theta: torch.Tensor, batch, h: float = 1e-5) -> np.ndarray:
    """Central differences of ``problem.loss`` for every path at once, (R, P)."""
    out = np.zeros(tuple(theta.shape))
    for j in range(theta.shape[1]):
        step = h * torch.clamp(theta[:, j].abs(), min=1.0)
        plus, minus = theta.clone(), theta.clone()
        plus[:, j] += step
        minus[:, j] -= step
        out[:, j] = ((problem.loss(plus, batch) - problem.loss(minus, batch)) / (2 * step)).numpy()
    return out


# --------------------------------------------------------------------------------------------
# gradients and losses
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_grad_equals_finite_differences(case, batch, problems):
    problem = problems[case]
    rows = 4
    theta = random_points(problem, rows, seed=batch)
    data = draw_batch(problem, rows, batch, seed=7)
    g = problem.grad(theta, data)
    assert g.shape == (rows, problem.n_params) and g.dtype == torch.float64
    # ℓ ≈ 5e15 for the far target: a quadratic, so central differences are exact for any
    # step and a large one keeps the rounding of ℓ small
    fd = fd_grad(problem, theta, data, h=1e3 if case == "stiff-far" else 1e-5)
    for r in range(rows):
        err = np.linalg.norm(g[r].numpy() - fd[r])
        assert err <= 1e-6 * max(1.0, np.linalg.norm(fd[r])), (case, r, g[r], fd[r])


@pytest.mark.parametrize("case", list(CASES))
def test_minibatch_loss_is_mean_of_one_sample_losses(case, problems):
    problem = problems[case]
    rows, batch = 3, 5
    theta = random_points(problem, rows, seed=2)
    data = draw_batch(problem, rows, batch, seed=3)
    whole = problem.loss(theta, data)
    assert whole.shape == (rows,)
    parts = torch.stack([problem.loss(theta, data[:, j:j + 1]) for j in range(batch)], 1)
    np.testing.assert_allclose(whole.numpy(), parts.mean(1).numpy(), rtol=1e-13, atol=1e-15)
    # and the gradient of the minibatch is the mean of the one-sample gradients
    gparts = torch.stack([problem.grad(theta, data[:, j:j + 1]) for j in range(batch)], 1)
    np.testing.assert_allclose(problem.grad(theta, data).numpy(), gparts.mean(1).numpy(),
                               rtol=1e-12, atol=1e-12)


def numpy_loss(case, problem, theta: np.ndarray, data) -> float:
    """The documented per-sample loss ℓ(θ; ξ) written out with numpy, for one path and one
    one-sample batch (``data`` a (1,) index or a (1, d) target)."""
    name = CASES[case][0]
    views = {la.name: theta[la.offset:la.stop].reshape(la.shape) for la in problem.layout.layers}
    if name in ("quadratic", "stiff"):
        y = np.asarray(data, dtype=np.float64)[0]
        return 0.5 * problem.curvature * float(np.sum((theta - y) ** 2))
    i = int(data[0])
    if name == "rnn-cliff":
        w, b = float(views["w"][0, 0]), float(views["b"][0])
        x = problem.x0[i]
        for _ in range(problem.length):
            x = w * math.tanh(x) + b
        return (x - problem.target) ** 2
    x, y = problem.x[i], problem.y[i]
    if name == "linear-regression":
        return float((views["weight"][0] @ x + views["bias"][0] - y) ** 2)
    if name == "logistic":
        f = float(views["weight"][0] @ x + views["bias"][0])
        return math.log1p(math.exp(f)) - y * f
    hidden = np.tanh(views["W1"] @ x + views["b1"])
    out = views["W2"] @ hidden + views["b2"]
    if name == "mlp-regression":
        return float((out[0] - y) ** 2)
    return float(-(out[y] - special.logsumexp(out)))


@pytest.mark.parametrize("case", list(CASES))
def test_loss_matches_numpy_model(case, problems):
    problem = problems[case]
    rows = 3
    theta = random_points(problem, rows, seed=5)
    data = draw_batch(problem, rows, 1, seed=9)
    got = problem.loss(theta, data).numpy()
    for r in range(rows):
        expected = numpy_loss(case, problem, theta[r].numpy(), data[r].numpy())
        assert math.isclose(got[r], expected, rel_tol=1e-12, abs_tol=1e-12), (case, r)


def test_float32_gradients_close_to_float64(problems):
    for case in ("mlp-regression", "logistic", "quadratic-normal", "rnn-cliff"):
        problem = problems[case]
        theta = random_points(problem, 3, seed=1)
        data = draw_batch(problem, 3, 2, seed=1)
        if data.dtype.is_floating_point:
            data32 = data.float()
        else:
            data32 = data
        g64 = problem.grad(theta, data)
        g32 = problem.grad(theta.float(), data32)
        assert g32.dtype == torch.float32
        np.testing.assert_allclose(g32.double().numpy(), g64.numpy(), rtol=1e-3,
                                   atol=1e-4 * float(g64.abs().max()))


# --------------------------------------------------------------------------------------------
# layouts
# --------------------------------------------------------------------------------------------

EXPECTED_LAYERS = {
    "quadratic-normal": [("theta", (3,))],
    "quadratic-t": [("theta", (2,))],
    "quadratic-discrete": [("theta", (2,))],
    "quadratic-point": [("theta", (2,))],
    "linear-regression": [("weight", (1, 3)), ("bias", (1,))],
    "logistic": [("weight", (1, 3)), ("bias", (1,))],
    "mlp-regression": [("W1", (4, 3)), ("b1", (4,)), ("W2", (1, 4)), ("b2", (1,))],
    "mlp-classification": [("W1", (4, 3)), ("b1", (4,)), ("W2", (3, 4)), ("b2", (3,))],
    "rnn-cliff": [("w", (1, 1)), ("b", (1,))],
    "stiff": [("theta", (1,))],
    "stiff-far": [("theta", (2,))],
    "stiff-concave": [("theta", (3,))],
}


@pytest.mark.parametrize("case", list(CASES))
def test_layout(case, problems):
    problem = problems[case]
    layout = problem.layout
    assert [(la.name, la.shape) for la in layout.layers] == EXPECTED_LAYERS[case]
    sizes = [math.prod(shape) for _, shape in EXPECTED_LAYERS[case]]
    assert sum(sizes) == layout.size == problem.n_params
    # contiguous, in order, from 0
    offset = 0
    for layer, size in zip(layout.layers, sizes, strict=True):
        assert layer.offset == offset and layer.size == size and layer.stop == offset + size
        offset += size
    # units: each row of a matrix layer, each vector layer whole; they partition [0, P)
    units = []
    for layer in layout.layers:
        if len(layer.shape) == 2:
            w = layer.shape[1]
            units += [(layer.offset + i * w, layer.offset + (i + 1) * w)
                      for i in range(layer.shape[0])]
        else:
            units.append((layer.offset, layer.stop))
    assert list(layout.unit_slices) == units
    for unitwise, groups in ((False, [(la.offset, la.stop) for la in layout.layers]),
                             (True, units)):
        ids = layout.group_ids(unitwise)
        assert len(ids) == problem.n_params
        for k, (a, b) in enumerate(groups):
            assert ids[a:b] == [k] * (b - a)
    # a layer's view of a batch is the slice reshaped (row-major)
    flat = torch.arange(2 * problem.n_params, dtype=torch.float64).view(2, -1)
    for layer in layout.layers:
        v = layer.view(flat)
        assert v.shape == (2, *layer.shape)
        assert torch.equal(v.reshape(2, -1), flat[:, layer.offset:layer.stop])


# --------------------------------------------------------------------------------------------
# initial points
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_initial_point_same_for_every_path(case, problems):
    problem = problems[case]
    a = problem.initial(torch.arange(5), 0, torch.float64, "cpu")
    b = problem.initial(torch.tensor([9, 2]), 123, torch.float64, "cpu")
    assert a.shape == (5, problem.n_params)
    assert torch.equal(a, a[:1].expand(5, -1))
    assert torch.equal(b, a[:2])
    assert torch.equal(a[0], torch.as_tensor(problem.theta0))
    f32 = problem.initial(torch.arange(2), 0, torch.float32, "cpu")
    assert f32.dtype == torch.float32
    # the returned tensor is a fresh copy: writing into it does not change the next call
    a[0, 0] = 1e9
    assert problem.initial(torch.arange(1), 0, torch.float64, "cpu")[0, 0] != 1e9


def test_documented_default_initial_points():
    assert np.array_equal(make_problem("rnn-cliff").theta0, [1.5, -0.1])
    assert np.array_equal(make_problem("linear-regression", n=5, dim=4).theta0, np.zeros(5))
    assert np.array_equal(make_problem("logistic", n=5, dim=2).theta0, np.zeros(3))
    assert np.array_equal(make_problem("quadratic", dim=3).theta0, np.zeros(3))
    assert np.array_equal(make_problem("quadratic", dim=3, theta0=2.5).theta0, np.full(3, 2.5))
    assert np.array_equal(make_problem("stiff").theta0, [1.0])
    # nn.Linear's default: uniform on ±1/√fan_in, from default_rng(init_seed)
    p = make_problem("mlp-regression", n=5, dim=9, hidden=4)
    for name, fan_in in (("W1", 9), ("b1", 9), ("W2", 4), ("b2", 4)):
        layer = p.layout[name]
        values = p.theta0[layer.offset:layer.stop]
        assert np.all(np.abs(values) <= 1 / math.sqrt(fan_in))
    q = make_problem("mlp-regression", n=5, dim=9, hidden=4)
    r = make_problem("mlp-regression", n=5, dim=9, hidden=4, init_seed=1)
    assert np.array_equal(p.theta0, q.theta0) and not np.array_equal(p.theta0, r.theta0)


def test_random_initial_point_depends_only_on_seed_and_path():
    """No catalog constructor exposes a random start (every class replaces theta0=None by a
    fixed point); the random branch of Problem.initial is exercised on an instance."""
    problem = make_problem("quadratic", dim=3)
    problem.theta0, problem.init_scale = None, 0.5
    big = problem.initial(torch.arange(12), 42, torch.float64, "cpu")
    sub = problem.initial(torch.tensor([5, 2, 9]), 42, torch.float64, "cpu")
    assert torch.equal(sub, big[[5, 2, 9]])
    assert torch.equal(problem.initial(torch.arange(12), 42, torch.float64, "cpu"), big)
    other = problem.initial(torch.arange(12), 43, torch.float64, "cpu")
    assert bool((other != big).all())
    # rows differ between paths, and are not the step stream's draws
    assert bool((big[0] != big[1]).all())
    step_draws = 0.5 * sampling.normals(sampling.words(42, range(12), range(1), 6)[0])
    assert not torch.equal(step_draws, big)
    f32 = problem.initial(torch.arange(12), 42, torch.float32, "cpu")
    assert f32.dtype == torch.float32
    np.testing.assert_allclose(f32.double().numpy(), big.numpy(), rtol=1e-6)
    # in law: init_scale · N(0, 1) per coordinate
    many = problem.initial(torch.arange(20000), 7, torch.float64, "cpu").numpy().ravel()
    assert stats.kstest(many / 0.5, "norm").pvalue > 1e-4


# --------------------------------------------------------------------------------------------
# sampling laws
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_sample_reproducible_and_per_path(case, problems):
    problem = problems[case]
    w = sampling.words(3, range(10), [4], 3 * problem.words_per_sample)[0]
    a = problem.sample(w, torch.float64)
    b = problem.sample(w.clone(), torch.float64)
    assert torch.equal(a, b)
    sub = problem.sample(w[[7, 1]], torch.float64)
    assert torch.equal(sub, a[[7, 1]])
    assert a.shape[:2] == (10, 3)


def test_dataset_indices_uniform(problems):
    problem = problems["linear-regression"]
    w = sampling.words(5, range(2000), [0], 20)[0]
    idx = problem.sample(w, torch.float64)
    assert idx.dtype == torch.int64 and idx.min() >= 0 and idx.max() < problem.n
    counts = np.bincount(idx.numpy().ravel(), minlength=problem.n)
    assert stats.chisquare(counts).pvalue > 1e-4


def _targets(problem, draws: int, seed: int = 0) -> np.ndarray:
    w = sampling.words(seed, range(draws), [0], problem.words_per_sample)[0]
    return problem.sample(w, torch.float64)[:, 0].numpy()  # (draws, d)


def test_normal_law_sample(problems):
    problem = problems["quadratic-normal"]
    y = _targets(problem, 20000)
    z = (y - 0.5) / 2.0
    for k in range(3):
        assert stats.kstest(z[:, k], "norm").pvalue > 1e-4
    # coordinates are independent
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 5 / math.sqrt(len(z))


def test_student_t_law_sample(problems):
    problem = problems["quadratic-t"]
    y = _targets(problem, 20000)
    for k in range(2):
        assert stats.kstest((y[:, k] + 1.0) / 0.5, "t", args=(3,)).pvalue > 1e-4


@pytest.mark.parametrize("df", [0.7, 2.5])
def test_student_t_law_with_real_df_sample(df):
    """A non-integer ν draws 2(n + 2) words per coordinate (n = max(0, ⌊ν⌋ − 1)), the
    coordinates iid t_ν (KS against scipy) and independent."""
    problem = make_problem("quadratic", noise="student-t", dim=2, df=df, mean=-1.0, sd=0.5)
    assert problem.words_per_sample == 2 * 2 * (max(0, math.floor(df) - 1) + 2)
    y = _targets(problem, 20000)
    t = (y + 1.0) / 0.5
    for k in range(2):
        assert stats.kstest(t[:, k], "t", args=(df,)).pvalue > 1e-4
    ranks = stats.rankdata(t, axis=0)
    assert abs(np.corrcoef(ranks[:, 0], ranks[:, 1])[0, 1]) < 5 / math.sqrt(len(t))


def test_student_t_integer_df_keeps_its_draws():
    """df = 3 and 3.0 are the integer law: 2(ν + 1) words, z₀/√(Σ z_k²/ν) from the normals
    of the words (the draws of runs written before any real ν was accepted)."""
    for df in (3, 3.0):
        law = Law("student-t", df=df)
        assert law.df == 3 and isinstance(law.df, int) and law.words() == 8
    problem = make_problem("quadratic", noise="student-t", df=3.0)
    w = sampling.words(4, range(50), [0], 8)[0]
    z = sampling.normals(w).numpy()
    want = z[:, 0] / np.sqrt((z[:, 1:] ** 2).mean(1))
    np.testing.assert_allclose(problem.sample(w, torch.float64)[:, 0, 0].numpy(), want,
                               rtol=5e-16)  # numpy sums in another order


def test_discrete_law_sample(problems):
    problem = problems["quadratic-discrete"]
    y = _targets(problem, 20000)
    assert np.all(y[:, 0] == y[:, 1])  # the atoms lie on the diagonal
    values = np.array([-1.0, 2.0, 5.0])
    k = np.searchsorted(values, y[:, 0])
    assert np.array_equal(values[k], y[:, 0])
    counts = np.bincount(k, minlength=3)
    assert stats.chisquare(counts, 20000 * np.array([0.3, 0.5, 0.2])).pvalue > 1e-4


def test_point_law_sample(problems):
    y = _targets(problems["quadratic-point"], 50)
    assert np.all(y == 3.0)


# --------------------------------------------------------------------------------------------
# the RNN cliff
# --------------------------------------------------------------------------------------------


def test_rnn_cliff_gradient_explodes_for_w_above_one():
    problem = make_problem("rnn-cliff")
    b = torch.linspace(-1.0, 1.0, 1001, dtype=torch.float64)

    def per_sample_grad_norms(w):
        theta = torch.stack([torch.full_like(b, w), b], 1).repeat_interleave(problem.n, 0)
        idx = torch.arange(problem.n).repeat(len(b))[:, None]
        return problem.grad(theta, idx).norm(dim=1)

    cliff = per_sample_grad_norms(1.5)
    assert float(cliff.max()) > 1e3
    # most of the grid is flat: the huge gradients are confined to narrow bands
    assert float(cliff.median()) < 20
    # with a contraction (w < 1) there is no cliff
    assert float(per_sample_grad_norms(0.5).max()) < 20


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("linear-regression", dict(n=0)),
        ("logistic", dict(n=0)),
        ("mlp-regression", dict(n=0)),
        ("mlp-classification", dict(n=0)),
        ("rnn-cliff", dict(n=0)),
        ("linear-regression", dict(n=-5)),
        ("linear-regression", dict(n=2.5)),
        ("linear-regression", dict(n=True)),
        ("linear-regression", dict(dim=0)),
        ("linear-regression", dict(data_noise=math.nan)),
        ("linear-regression", dict(data_noise=-0.1)),
        ("linear-regression", dict(noise=0.1)),  # renamed data_noise
        ("mlp-regression", dict(noise=0.1)),
        ("linear-regression", dict(bogus=1)),
        ("linear-regression", dict(n=5, dim=2, theta0=[0.0, 0.0])),
        ("mlp-regression", dict(hidden=0)),
        ("mlp-classification", dict(dataset="cifar")),
        ("rnn-cliff", {RNN_LENGTH: 0}),
        ("rnn-cliff", dict(target=math.inf)),
        ("no-such-problem", dict()),
        ("Quadratic", dict()),
        ("quadratic", dict(noise="discrete", values=(0.0, 1.0), probs=(0.5, 0.6))),
        ("quadratic", dict(noise="discrete", values=(0.0, 1.0), probs=(0.5, 0.4))),
        ("quadratic", dict(noise="discrete", values=(0.0, 1.0), probs=(1.5, -0.5))),
        ("quadratic", dict(noise="discrete", values=(0.0, 1.0), probs=(1.0,))),
        ("quadratic", dict(noise="discrete", values=(), probs=())),
        ("quadratic", dict(noise="discrete", values=(math.inf,), probs=(1.0,))),
        ("quadratic", dict(noise="cauchy")),
        ("quadratic", dict(noise="Normal")),
        ("quadratic", dict(sd=0.0)),
        ("quadratic", dict(sd=-1.0)),
        ("quadratic", dict(noise="student-t", df=0)),
        ("quadratic", dict(noise="student-t", df=-1.5)),
        ("quadratic", dict(noise="student-t", df=math.inf)),
        ("quadratic", dict(mean=math.nan)),
        ("quadratic", dict(curvature=0.0)),
        ("quadratic", dict(curvature=math.inf)),
        ("quadratic", dict(dim=0)),
        ("quadratic", dict(dim=2, theta0=[1.0, 2.0, 3.0])),
        ("stiff", dict(kind="wobbly")),
    ],
)
def test_bad_parameters_raise(name, kwargs):
    with pytest.raises(ValueError):
        make_problem(name, **kwargs)


def test_unknown_keyword_for_quadratic_raises_value_error():
    with pytest.raises(ValueError):
        make_problem("quadratic", bogus=1)


def test_law_validation_direct():
    with pytest.raises(ValueError):
        Law("uniform")
    with pytest.raises(ValueError):
        Quadratic(Law("discrete", values=(1.0, 2.0), probs=(0.7, 0.7)))
    assert Law("discrete", values=(1.0,), probs=(1.0,)).words() == 1


# ---- declared parameters, data_noise, Law.mean_value / describe / to_dict -------------------

@pytest.mark.parametrize("name", ["linear-regression", "mlp-regression"])
def test_data_noise_is_make_regressions_noise(name):
    from sklearn.datasets import make_regression

    problem = make_problem(name, n=30, dim=4, data_noise=2.5, data_seed=3)
    x, y = make_regression(n_samples=30, n_features=4, noise=2.5, random_state=3)
    np.testing.assert_array_equal(problem.x, x)
    np.testing.assert_array_equal(problem.y, y)
    assert problem.params["data_noise"] == 2.5 and "noise" not in problem.params
    with pytest.raises(ValueError, match="noise: .*data_noise"):
        make_problem(name, noise=2.5)


@pytest.mark.parametrize(("law", "mean", "text"), [
    (Law("normal", mean=100.0, sd=1.0), 100.0, "y ~ N(100, 1²)"),
    (Law("student-t", mean=-1.0, sd=0.5, df=3), -1.0, "y ~ -1 + 0.5·t_3"),
    (Law("student-t", mean=2.0, sd=1.0, df=2.5), 2.0, "y ~ 2 + 1·t_2.5"),
    (Law("point", mean=7.0), 7.0, "y = 7"),
    (Law("discrete", values=(0.0, 10.0), probs=(0.9, 0.1)), 1.0,
     "y = v·(1, …, 1), v = 0 w.p. 0.9, 10 w.p. 0.1"),
    (Law("discrete", values=(-2.0, 1.0, 4.0), probs=(0.25, 0.25, 0.5)), 1.75, None),
])
def test_law_mean_value_and_one_line_description(law, mean, text):
    # means by hand: 0.9·0 + 0.1·10 = 1; 0.25·(−2) + 0.25·1 + 0.5·4 = 1.75
    assert law.mean_value() == pytest.approx(mean, rel=1e-15)
    if text is not None:
        assert law.describe() == text


def test_law_to_dict_lists_the_parameters_its_kind_takes():
    assert Law("normal", mean=1, sd=2).to_dict() == {"noise": "normal", "mean": 1.0, "sd": 2.0}
    assert Law("student-t", df=4).to_dict() == {"noise": "student-t", "mean": 0.0, "sd": 1.0,
                                                "df": 4}
    assert Law("student-t", df=1.5).to_dict()["df"] == 1.5
    assert Law("point", mean=3).to_dict() == {"noise": "point", "mean": 3.0}
    assert Law("discrete", values=(1, 2), probs=(0.5, 0.5)).to_dict() == {
        "noise": "discrete", "values": [1.0, 2.0], "probs": [0.5, 0.5]}


def test_law_parameters_of_another_law_are_refused_by_name():
    with pytest.raises(ValueError, match=r"^values: the normal law does not take it"):
        make_problem("quadratic", values=(1.0,), probs=(1.0,))
    with pytest.raises(ValueError, match=r"^sd: the point law does not take it"):
        make_problem("quadratic", noise="point", sd=2.0)
