"""Stateful clippers (EMA, percentile) and ClippedOptimizer: threshold sequences against hand
and numpy computations, state_dict round trips, non-finite norms, bad arguments."""

from __future__ import annotations

import copy
import functools
import warnings

import numpy as np
import pytest
import torch

from tests.torch_impl.test_clip import no_host_sync  # noqa: F401  (a fixture)
from torch_impl.clip import clip_grad_norm_
from torch_impl.stateful import Clipper, EMAClipper, PercentileClipper
from torch_impl.wrapper import ClippedOptimizer


def param_with_norm(norm, dtype=torch.float64):
    """A parameter whose gradient has the given norm (direction (3, 4) / 5)."""
    p = torch.nn.Parameter(torch.zeros(2, dtype=dtype))
    p.grad = torch.tensor([0.6, 0.8], dtype=dtype) * norm
    return p


def run(clipper, norms):
    """Feed gradients of the given norms; return (thresholds, returned norms, clipped norms)."""
    thresholds, returned, after = [], [], []
    for n in norms:
        p = param_with_norm(n)
        returned.append(clipper([p]).item())
        thresholds.append(clipper.last_threshold.item())
        after.append(torch.linalg.vector_norm(p.grad).item())
    return np.array(thresholds), np.array(returned), np.array(after)


def numpy_ema(norms, alpha, beta):
    m, out = None, []
    for n in norms:
        m = n if m is None else beta * m + (1 - beta) * n
        out.append(alpha * m)
    return np.array(out)


def test_ema_hand_example():
    # m: 1, 0.5*1 + 0.5*9 = 5, 0.5*5 + 0.5*1 = 3; tau = alpha * m with alpha = 1
    thresholds, returned, after = run(EMAClipper(1.0, 0.5), [1.0, 9.0, 1.0])
    np.testing.assert_allclose(thresholds, [1.0, 5.0, 3.0])
    np.testing.assert_allclose(returned, [1.0, 9.0, 1.0])
    np.testing.assert_allclose(after, [1.0, 5.0, 1.0])


def test_ema_against_numpy():
    norms = np.random.default_rng(0).lognormal(0.0, 1.5, size=200)
    thresholds, returned, after = run(EMAClipper(1.3, 0.9), norms)
    expected = numpy_ema(norms, 1.3, 0.9)
    np.testing.assert_allclose(thresholds, expected, rtol=1e-12)
    np.testing.assert_allclose(returned, norms, rtol=1e-12)
    np.testing.assert_allclose(after, np.minimum(norms, expected), rtol=1e-12)


def test_percentile_hand_example():
    # histories [4], [4, 2], [4, 2, 8], [4, 2, 8, 6]; medians 4, 3, 4, 5
    thresholds, _, after = run(PercentileClipper(50.0), [4.0, 2.0, 8.0, 6.0])
    np.testing.assert_allclose(thresholds, [4.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(after, [4.0, 2.0, 4.0, 5.0])


@pytest.mark.parametrize("p", [0.0, 10.0, 37.5, 90.0, 100.0])
def test_percentile_against_numpy(p):
    norms = np.random.default_rng(1).lognormal(0.0, 1.0, size=150)  # buffer grows past 64
    thresholds, _, after = run(PercentileClipper(p), norms)
    expected = np.array([np.percentile(norms[: t + 1], p) for t in range(len(norms))])
    np.testing.assert_allclose(thresholds, expected, rtol=1e-12)
    np.testing.assert_allclose(after, np.minimum(norms, expected), rtol=1e-12)


CLIPPERS = {
    "ema": lambda: EMAClipper(1.2, 0.8),
    "percentile": lambda: PercentileClipper(25.0),
}


@pytest.mark.parametrize("make", CLIPPERS)
def test_protocol(make):
    assert isinstance(CLIPPERS[make](), Clipper)
    assert not isinstance(functools.partial(clip_grad_norm_, lam=1.0), Clipper)


@pytest.mark.parametrize("make", CLIPPERS)
def test_no_host_sync(make, no_host_sync):  # noqa: F811
    clipper = CLIPPERS[make]()
    wrapped = ClippedOptimizer(torch.optim.SGD([param_with_norm(1.0)], lr=0.1), clipper)
    for n in (3.0, 1.0, 4.0):
        wrapped.parameters[0].grad = torch.tensor([0.6, 0.8], dtype=torch.float64) * n
        assert isinstance(wrapped.clip(), torch.Tensor)


@pytest.mark.parametrize("make", CLIPPERS)
def test_state_dict_round_trip(make):
    norms = np.random.default_rng(2).lognormal(0.0, 1.0, size=100)
    whole, _, _ = run(CLIPPERS[make](), norms)
    first = CLIPPERS[make]()
    run(first, norms[:70])
    state = copy.deepcopy(first.state_dict())
    resumed = CLIPPERS[make]()
    resumed.load_state_dict(state)
    rest, _, _ = run(resumed, norms[70:])
    np.testing.assert_array_equal(rest, whole[70:])


@pytest.mark.parametrize("make", CLIPPERS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_norm_does_not_enter_the_statistic(make, bad):
    norms = [2.0, 5.0, 1.0, 3.0]
    clean, _, _ = run(CLIPPERS[make](), norms)
    clipper = CLIPPERS[make]()
    thresholds, _, _ = run(clipper, norms[:2] + [bad] + norms[2:])
    np.testing.assert_allclose(thresholds[[0, 1, 3, 4]], clean)
    np.testing.assert_allclose(thresholds[2], clean[1])  # the bad step used the old threshold


def test_nonfinite_gradient_clipped_as_documented():
    clipper = EMAClipper(1.0, 0.5)
    run(clipper, [1.0])
    p = param_with_norm(1.0)
    p.grad[0] = float("inf")
    assert clipper([p]).item() == float("inf")
    assert torch.isnan(p.grad[0]) and p.grad[1].item() == 0.0
    p.grad = torch.tensor([float("nan"), 1.0], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="non-finite"):
        EMAClipper(1.0, 0.5, error_if_nonfinite=True)([p])
    assert p.grad[1].item() == 1.0


def test_zero_gradient_stays_zero():
    # m = 0, 0, 1 (no 0/0 on the way); the 10th percentile of (0, 0, 2) stays 0.
    _, _, after = run(EMAClipper(1.0, 0.5), [0.0, 0.0, 2.0])
    np.testing.assert_allclose(after, [0.0, 0.0, 1.0])
    _, _, after = run(PercentileClipper(10.0), [0.0, 0.0, 2.0])
    assert np.isfinite(after).all() and (after <= 1e-300).all()


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"alpha": 0.0, "beta": 0.5}, "alpha"), ({"alpha": -1.0, "beta": 0.5}, "alpha"),
    ({"alpha": float("inf"), "beta": 0.5}, "alpha"), ({"alpha": 1.0, "beta": 1.0}, "beta"),
    ({"alpha": 1.0, "beta": -0.1}, "beta"), ({"alpha": 1.0, "beta": float("nan")}, "beta"),
])
def test_ema_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        EMAClipper(**kwargs)


@pytest.mark.parametrize("bad", [-1.0, 100.5, float("nan"), float("inf")])
def test_percentile_bad_argument(bad):
    with pytest.raises(ValueError, match="percentile"):
        PercentileClipper(bad)


# --------------------------------------------------------------------------------------------
# ClippedOptimizer
# --------------------------------------------------------------------------------------------


def model_and_data(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(20, 64, 6, generator=gen)
    y = 30 * torch.randn(20, 64, 1, generator=gen)  # large targets: big gradients
    return model, x, y


def train(model, optimizer, x, y, steps):
    for t in steps:
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x[t]), y[t]).backward()
        optimizer.step()


WRAPPED = {
    "fixed": lambda: functools.partial(clip_grad_norm_, lam=1.0),
    "ema": lambda: EMAClipper(1.5, 0.9),
    "percentile": lambda: PercentileClipper(50.0),
}


@pytest.mark.parametrize("kind", WRAPPED)
def test_wrapper_history(kind):
    model, x, y = model_and_data()
    opt = ClippedOptimizer(torch.optim.Adam(model.parameters(), lr=1e-2), WRAPPED[kind]())
    train(model, opt, x, y, range(20))
    h = opt.history()
    assert set(h) == {"pre_norm", "post_norm", "threshold", "clipped"}
    assert all(v.shape == (20,) for v in h.values()) and h["clipped"].dtype == torch.bool
    threshold = torch.ones(20, dtype=h["pre_norm"].dtype) if kind == "fixed" else h["threshold"]
    if kind == "fixed":
        assert torch.isnan(h["threshold"]).all()
    expected_post = torch.minimum(h["pre_norm"], threshold)
    torch.testing.assert_close(h["post_norm"], expected_post, rtol=1e-5, atol=0)
    assert torch.equal(h["clipped"], h["pre_norm"] > threshold)
    assert h["clipped"].any()


def test_wrapper_clips_before_stepping():
    # SGD with lr 1 from a known point: the step must be the clipped gradient.
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = ClippedOptimizer(torch.optim.SGD([p], lr=1.0),
                           functools.partial(clip_grad_norm_, lam=2.0))
    p.grad = torch.tensor([30.0, 40.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([-1.2, -1.6], dtype=torch.float64))


@pytest.mark.parametrize("kind", WRAPPED)
def test_wrapper_resume_equals_uninterrupted(kind):
    model, x, y = model_and_data()
    opt = ClippedOptimizer(torch.optim.Adam(model.parameters(), lr=1e-2), WRAPPED[kind]())
    train(model, opt, x, y, range(20))

    first, _, _ = model_and_data()
    opt1 = ClippedOptimizer(torch.optim.Adam(first.parameters(), lr=1e-2), WRAPPED[kind]())
    train(first, opt1, x, y, range(12))
    saved = copy.deepcopy((first.state_dict(), opt1.state_dict()))

    resumed, _, _ = model_and_data(seed=99)  # different initial weights, overwritten below
    opt2 = ClippedOptimizer(torch.optim.Adam(resumed.parameters(), lr=1e-2), WRAPPED[kind]())
    resumed.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    train(resumed, opt2, x, y, range(12, 20))
    assert opt2.steps == 20
    for a, b in zip(model.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(opt2.history()["threshold"], opt.history()["threshold"][12:],
                               equal_nan=True, rtol=0, atol=0)


# LR schedulers on the wrapper: (factory, closed form of the lr after k scheduler steps)
LR0 = 0.05
SCHEDULERS = {
    "step": (lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
             lambda k: LR0 * 0.5 ** (k // 3)),
    "cosine": (lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
               lambda k: LR0 * (1 + np.cos(np.pi * k / 10)) / 2),
    "lambda": (lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1 / (1 + e)),
               lambda k: LR0 / (1 + k)),
    "onecycle": (lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.2, total_steps=12, anneal_strategy="linear"), lambda k: one_cycle(k)),
}


def one_cycle(k, max_lr=0.2, total=12, pct_start=0.3):
    """OneCycleLR's documented linear schedule: from max_lr / 25 up to max_lr at step
    pct_start * total - 1, then down to max_lr / 25 / 1e4 at step total - 1."""
    start, peak, end = max_lr / 25, pct_start * total - 1, total - 1
    if k <= peak:
        return start + (max_lr - start) * k / peak
    return max_lr + (start / 1e4 - max_lr) * (k - peak) / (end - peak)


@pytest.mark.parametrize("name", SCHEDULERS)
@pytest.mark.parametrize("kind", ["fixed", "ema"])
def test_schedulers_drive_the_wrapped_optimizer(name, kind):
    """A scheduler on ClippedOptimizer sets the wrapped optimizer's lr, which the steps use:
    the same run by hand (clip, bare SGD step, scheduler on the bare SGD) is bit-identical."""
    make_scheduler, closed_form = SCHEDULERS[name]
    model, x, y = model_and_data()
    bare_model, _, _ = model_and_data()
    sgd = torch.optim.SGD(model.parameters(), lr=LR0, momentum=0.9)
    wrapped = ClippedOptimizer(sgd, WRAPPED[kind]())
    bare = torch.optim.SGD(bare_model.parameters(), lr=LR0, momentum=0.9)
    clipper = WRAPPED[kind]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "scheduler.step() before optimizer.step()"
        scheduler, bare_scheduler = make_scheduler(wrapped), make_scheduler(bare)
        lrs = []
        for t in range(11):
            lrs.append(sgd.param_groups[0]["lr"])
            assert lrs[-1] == bare.param_groups[0]["lr"] == scheduler.get_last_lr()[0]
            train(model, wrapped, x, y, [t])
            bare.zero_grad()
            torch.nn.functional.mse_loss(bare_model(x[t]), y[t]).backward()
            clipper(list(bare_model.parameters()))
            bare.step()
            scheduler.step()
            bare_scheduler.step()
            for a, b in zip(model.parameters(), bare_model.parameters(), strict=True):
                assert torch.equal(a, b)
    assert len(set(lrs)) > 3  # the schedule did change the learning rate
    np.testing.assert_allclose(lrs, [closed_form(k) for k in range(11)], rtol=1e-12)
    if name == "onecycle":  # it cycles the momentum too, found through wrapped.defaults
        assert sgd.param_groups[0]["momentum"] != 0.9


def test_wrapper_is_an_optimizer_sharing_the_wrapped_state():
    p = torch.nn.Parameter(torch.ones(3))
    adam = torch.optim.Adam([p], lr=0.1)
    opt = ClippedOptimizer(adam, EMAClipper(1.0, 0.5))
    assert isinstance(opt, torch.optim.Optimizer)
    assert opt.param_groups is adam.param_groups and opt.defaults is adam.defaults
    calls = []
    opt.register_step_post_hook(lambda optimizer, args, kwargs: calls.append(optimizer))
    p.grad = torch.full((3,), 10.0)
    assert opt.step(closure=lambda: torch.tensor(2.0)) == 2.0
    assert calls == [opt] and opt.state is adam.state and p in opt.state
    q = torch.nn.Parameter(torch.ones(2))
    opt.add_param_group({"params": [q]})
    assert opt.parameters == [p, q]
    twin = copy.deepcopy(opt)
    assert twin.steps == 1 and twin.optimizer is not adam and "ClippedOptimizer" in repr(twin)
    with pytest.raises(ValueError, match="optimizer must be a torch.optim.Optimizer"):
        ClippedOptimizer(object(), EMAClipper(1.0, 0.5))


@pytest.mark.parametrize("norm_type", [1.0, float("inf")])
def test_wrapper_records_post_norm_in_the_clippers_norm(norm_type):
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    clipper = functools.partial(clip_grad_norm_, max_norm=1.0, norm_type=norm_type)
    opt = ClippedOptimizer(torch.optim.SGD([p], lr=0.1), clipper)
    assert opt.norm_type == norm_type
    for g in ([3.0, -4.0, 0.5], [0.1, 0.2, -0.1]):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    h = opt.history()
    pre = [np.linalg.norm([3.0, -4.0, 0.5], norm_type), np.linalg.norm([0.1, 0.2, -0.1], norm_type)]
    np.testing.assert_allclose(h["pre_norm"], pre, rtol=1e-12)
    np.testing.assert_allclose(h["post_norm"], [1.0, pre[1]], rtol=1e-12)
    assert h["clipped"].tolist() == [True, False]
