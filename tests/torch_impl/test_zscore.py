"""ZScoreClipper (ZClip) against a slow float loop transcribed from ZClip's published ``step``
and against hand-computed fractions; non-finite norms; state_dict round trips and refusals;
attach_clipper."""

from __future__ import annotations

import copy
import functools
import math
import re
from fractions import Fraction

import numpy as np
import pytest
import torch

from tests.torch_impl.test_clip import no_host_sync  # noqa: F401  (a fixture)
from tests.torch_impl.test_stateful import load_or_refuse, param_with_norm, run
from torch_impl import ClipHook, Clipper, ZScoreClipper, attach_clipper


def zclip_reference(norms, alpha=0.97, z_thresh=2.5, max_grad_norm=1.0, eps=1e-6,
                    warmup_steps=25, mode="zscore", clip_option="adaptive_scaling"):
    """ZClip's ``step`` on python floats, one norm at a time, with the documented differences
    (a non-finite norm is left out of the warm-up and of the statistics). Returns the
    thresholds ``min(c_t, max_grad_norm)`` and the final ``(mean, var)``."""
    buffer, mean, var, taus = [], None, None, []
    for g in norms:
        finite = math.isfinite(g)
        if mean is None:  # warm-up: collect
            clip = g
            if finite:
                buffer.append(g)
            if len(buffer) == warmup_steps and finite:
                mean = sum(buffer) / len(buffer)
                var = sum((x - mean) ** 2 for x in buffer) / len(buffer)
        else:
            std = var ** 0.5
            clip = g
            if mode == "percentile":
                if g > mean + z_thresh * std:
                    clip = mean + z_thresh * std
            else:
                z = (g - mean) / (std + eps)
                if z > z_thresh:
                    eta = z / z_thresh
                    clip = mean + (z_thresh * std) / eta if clip_option == "adaptive_scaling" \
                        else mean
            if finite:
                mean = alpha * mean + (1 - alpha) * clip
                var = alpha * var + (1 - alpha) * (clip - mean) ** 2
        taus.append(clip if max_grad_norm is None else min(clip, max_grad_norm))
    return np.array(taus), (mean, var)


def spiky_norms(seed, size=300):
    """Log-normal norms about 1 with a spike (x 5 to x 50) every 20 steps or so."""
    rng = np.random.default_rng(seed)
    norms = rng.lognormal(0.0, 0.3, size=size)
    spikes = rng.choice(np.arange(30, size), size=size // 20, replace=False)
    norms[spikes] *= rng.uniform(5.0, 50.0, size=len(spikes))
    return norms


SETTINGS = [
    {"mode": "zscore", "clip_option": "adaptive_scaling"},
    {"mode": "zscore", "clip_option": "mean"},
    {"mode": "percentile"},
    {"mode": "zscore", "z_thresh": 1.5, "alpha": 0.5, "eps": 0.0, "warmup_steps": 1},
    {"mode": "percentile", "z_thresh": 0.5, "alpha": 0.0, "warmup_steps": 5},
]


@pytest.mark.filterwarnings("ignore:divide by zero")
@pytest.mark.parametrize("max_grad_norm", [None, 1.5])
@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_matches_the_reference_loop(settings, max_grad_norm):
    norms = spiky_norms(len(str(settings)))
    clipper = ZScoreClipper(max_grad_norm=max_grad_norm, **settings)
    thresholds, returned, after = run(clipper, norms)
    expected, (mean, var) = zclip_reference(norms, max_grad_norm=max_grad_norm, **settings)
    np.testing.assert_allclose(thresholds, expected, rtol=1e-12)
    np.testing.assert_allclose(returned, norms, rtol=1e-12)
    np.testing.assert_allclose(after, np.minimum(norms, expected), rtol=1e-12)
    np.testing.assert_allclose([clipper.mean.item(), clipper.var.item()], [mean, var],
                               rtol=1e-12)
    clipped = after < norms * (1 - 1e-9)
    assert clipped.sum() >= 5 and (~clipped).sum() >= 5  # a test with clipping, and without


def test_hand_computed_sequence():
    # warm-up 1, 3: mu = 2, sigma^2 = 1; then 10: z = 8, c = 2 + 2.5^2 * 1 / 8 = 2.78125,
    # mu = 0.9 * 2 + 0.1 * c, sigma^2 = 0.9 * 1 + 0.1 * (c - mu)^2; then 2: no spike.
    c = Fraction(2) + Fraction(25, 4) / 8
    mu = Fraction(9, 10) * 2 + Fraction(1, 10) * c
    var = Fraction(9, 10) + Fraction(1, 10) * (c - mu) ** 2
    mu2 = Fraction(9, 10) * mu + Fraction(1, 10) * 2
    var2 = Fraction(9, 10) * var + Fraction(1, 10) * (2 - mu2) ** 2
    clipper = ZScoreClipper(alpha=0.9, max_grad_norm=None, eps=0.0, warmup_steps=2)
    thresholds, _, after = run(clipper, [1.0, 3.0, 10.0, 2.0])
    np.testing.assert_allclose(thresholds, [1.0, 3.0, float(c), 2.0], rtol=1e-15)
    np.testing.assert_allclose(after, [1.0, 3.0, float(c), 2.0], rtol=1e-15)
    np.testing.assert_allclose([clipper.mean.item(), clipper.var.item()],
                               [float(mu2), float(var2)], rtol=1e-15)
    # the same spike in the other modes: c = mu = 2, and c = mu + 2.5 sigma = 4.5
    for mode, option, value in [("zscore", "mean", 2.0), ("percentile", "mean", 4.5)]:
        clipper = ZScoreClipper(alpha=0.9, max_grad_norm=None, eps=0.0, warmup_steps=2,
                                mode=mode, clip_option=option)
        assert run(clipper, [1.0, 3.0, 10.0])[0][-1] == value


def test_warm_up_clips_to_max_grad_norm_only():
    thresholds, _, after = run(ZScoreClipper(max_grad_norm=2.0, warmup_steps=3),
                               [1.0, 50.0, 3.0, 1.0])
    np.testing.assert_allclose(after, [1.0, 2.0, 2.0, 1.0])
    np.testing.assert_allclose(thresholds, [1.0, 2.0, 2.0, 1.0])


@pytest.mark.parametrize("position", [1, 4])  # in the warm-up, after it
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_norm_does_not_enter_the_statistics(bad, position):
    norms = list(spiky_norms(3, size=60))
    clean, _, _ = run(ZScoreClipper(warmup_steps=3, max_grad_norm=None), norms)
    clipper = ZScoreClipper(warmup_steps=3, max_grad_norm=None)
    thresholds, _, _ = run(clipper, norms[:position] + [bad] + norms[position:])
    np.testing.assert_array_equal(np.delete(thresholds, position), clean)
    expected, _ = zclip_reference(norms[:position] + [bad] + norms[position:],
                                  warmup_steps=3, max_grad_norm=None)
    np.testing.assert_allclose(np.delete(thresholds, position), np.delete(expected, position),
                               rtol=1e-12)
    assert clipper.count.item() == len(norms)


def test_nonfinite_gradient_clipped_as_documented():
    clipper = ZScoreClipper(warmup_steps=2, max_grad_norm=None)
    run(clipper, [1.0, 2.0])
    p = param_with_norm(1.0)
    p.grad[0] = float("inf")
    assert clipper([p]).item() == float("inf")
    assert clipper.last_threshold.item() == 1.5  # the mean: the largest possible spike
    assert torch.isnan(p.grad[0]) and p.grad[1].item() == 0.0
    p.grad = torch.tensor([float("nan"), 1.0], dtype=torch.float64)
    assert torch.isnan(clipper([p])) and torch.isnan(p.grad).all()
    p.grad = torch.tensor([float("nan"), 1.0], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="non-finite"):
        ZScoreClipper(error_if_nonfinite=True)([p])
    assert p.grad[1].item() == 1.0


def test_zero_gradients_stay_zero():
    for eps in (0.0, 1e-6):
        _, _, after = run(ZScoreClipper(warmup_steps=2, eps=eps), [0.0, 0.0, 0.0, 0.5])
        np.testing.assert_array_equal(after, [0.0, 0.0, 0.0, 0.0])  # 0.5 is a spike on 0 +- 0


def test_float32_follows_the_reference():
    norms = spiky_norms(7, size=120)
    clipper = ZScoreClipper(warmup_steps=10, max_grad_norm=None)
    thresholds = []
    for n in norms:
        p = param_with_norm(n, torch.float32)
        clipper([p])
        assert clipper.last_threshold.dtype == torch.float32
        thresholds.append(clipper.last_threshold.item())
    expected, _ = zclip_reference(norms.astype(np.float32).astype(float), warmup_steps=10,
                                  max_grad_norm=None)
    np.testing.assert_allclose(thresholds, expected, rtol=1e-5)


@pytest.mark.parametrize("cut", [2, 40])  # in the warm-up, after it
def test_state_dict_round_trip(cut):
    norms = spiky_norms(4, size=80)
    whole, _, _ = run(ZScoreClipper(warmup_steps=10), norms)
    first = ZScoreClipper(warmup_steps=10)
    run(first, norms[:cut])
    resumed = ZScoreClipper()  # other settings: the state dict carries them
    resumed.load_state_dict(copy.deepcopy(first.state_dict()))
    rest, _, _ = run(resumed, norms[cut:])
    np.testing.assert_array_equal(rest, whole[cut:])


def t64(x):
    return torch.tensor(x, dtype=torch.float64)


def valid_state():
    return {"alpha": 0.9, "z_thresh": 2.0, "max_grad_norm": None, "eps": 0.0,
            "warmup_steps": 3, "mode": "percentile", "clip_option": "mean",
            "count": torch.tensor(5), "buffer": t64([1.0, 2.0, 3.0]), "mean": t64(2.5),
            "var": t64(0.5), "last_threshold": t64(2.0)}


NAN, INF = float("nan"), float("inf")
DROP = object()
BAD = [("alpha", 1.0), ("alpha", -0.1), ("alpha", NAN), ("alpha", "0.9"), ("z_thresh", 0.0),
       ("z_thresh", INF), ("z_thresh", True), ("max_grad_norm", 0.0), ("max_grad_norm", INF),
       ("eps", -1.0), ("eps", NAN), ("warmup_steps", 0), ("warmup_steps", 2.0),
       ("warmup_steps", True), ("mode", "ZSCORE"), ("mode", None), ("clip_option", "median"),
       ("count", torch.tensor(-1)), ("count", t64(1.0)), ("count", None), ("count", 5),
       ("buffer", t64([1.0, 2.0])), ("buffer", t64([1.0, -2.0, 3.0])),
       ("buffer", t64([1.0, INF, 3.0])), ("buffer", t64(1.0)), ("buffer", [1.0, 2.0, 3.0]),
       ("mean", t64(NAN)), ("mean", t64(-1.0)), ("mean", t64([2.5])), ("var", t64(INF)),
       ("var", 0.5), ("last_threshold", t64(0.0)), ("last_threshold", None),
       ("mean", DROP), ("gamma", 0.5)]


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BAD)])
def test_load_state_dict_refuses_a_bad_value_naming_its_key(key, value):
    state = valid_state()
    if value is DROP:
        del state[key]
    else:
        state[key] = value
    with pytest.raises(ValueError, match=re.escape(key)):
        ZScoreClipper().load_state_dict(state)
    clipper = ZScoreClipper(warmup_steps=2)
    run(clipper, [1.0, 2.0, 3.0])
    assert not load_or_refuse(clipper, state)  # one line, and nothing changed


def test_load_state_dict_accepts_a_valid_state_and_clips_with_it():
    clipper = ZScoreClipper()
    assert load_or_refuse(clipper, valid_state())
    assert clipper.warmup_steps == 3 and clipper.mode == "percentile"
    # mu = 2.5, sigma = sqrt(0.5): the percentile limit is 2.5 + 2 sqrt(0.5)
    thresholds, _, _ = run(clipper, [10.0])
    np.testing.assert_allclose(thresholds, [2.5 + 2 * math.sqrt(0.5)], rtol=1e-15)
    fresh = ZScoreClipper()
    assert load_or_refuse(fresh, ZScoreClipper(warmup_steps=4).state_dict())  # all None
    assert fresh.warmup_steps == 4 and fresh.count is None


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"alpha": 1.0}, "alpha"), ({"z_thresh": -1.0}, "z_thresh"), ({"eps": -1e-9}, "eps"),
    ({"warmup_steps": 0}, "warmup_steps"), ({"max_grad_norm": -1.0}, "max_grad_norm"),
    ({"mode": "median"}, "mode"), ({"clip_option": "max"}, "clip_option"),
])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}(:| must)") as info:
        ZScoreClipper(**kwargs)
    assert "\n" not in str(info.value)


def test_is_a_clipper_without_host_sync(no_host_sync):  # noqa: F811
    clipper = ZScoreClipper(warmup_steps=2)
    assert isinstance(clipper, Clipper)
    for n in (1.0, 2.0, 30.0, float("inf"), 1.0):
        assert isinstance(clipper([param_with_norm(n)]), torch.Tensor)


def test_attach_clipper_equals_clipping_by_hand():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    twin = copy.deepcopy(model)
    x, y = torch.randn(40, 4), torch.randn(40, 1)
    y[[17, 31]] *= 100  # two spikes
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    twin_opt = torch.optim.SGD(twin.parameters(), lr=0.05)
    hook = ClipHook(ZScoreClipper(warmup_steps=5, max_grad_norm=None))
    attach_clipper(opt, hook)
    by_hand = ZScoreClipper(warmup_steps=5, max_grad_norm=None)
    loss = functools.partial(torch.nn.functional.mse_loss)
    for t in range(40):
        for m, o in ((model, opt), (twin, twin_opt)):
            o.zero_grad()
            loss(m(x[t:t + 1]), y[t:t + 1]).backward()
            if m is twin:
                by_hand(list(twin.parameters()))
            o.step()
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters(),
                                                     strict=True))
    history = hook.history()
    assert history["clipped"][[17, 31]].all()
    torch.testing.assert_close(history["threshold"][-1], by_hand.last_threshold)
