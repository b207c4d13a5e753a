"""Tests of seed 003's cumulative-average clipper against hand-computed sequences and a
pure-Python transcription of the seed's own code (``update_param_g_norm_info``)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_impl.averaged import (
    AveragedNormClipper,
    averaged_clip,
    averaged_clip_factor,
    averaged_threshold,
)

# Norms 3, 1, 10, 0, 4 worked by hand with lines 1-9:
# t=1: theta=3, no clip, theta'=3
# t=2: theta=(3*1+1)/2=2, |g|=1<=2, theta'=2
# t=3: theta=(2*2+10)/3=14/3, clipped to 14/3, theta'=(4+14/3)/3=26/9
# t=4: theta=(26/9*3+0)/4=13/6, |g|=0, theta'=13/6
# t=5: theta=(13/6*4+4)/5=38/15, clipped to 38/15, theta'=(26/3+38/15)/5=56/25
HAND_GRADS = [3.0, -1.0, 10.0, 0.0, -4.0]
HAND_THRESHOLDS = [Fraction(3), Fraction(2), Fraction(14, 3), Fraction(13, 6), Fraction(38, 15)]
HAND_CLIPPED = [Fraction(3), Fraction(-1), Fraction(14, 3), Fraction(0), Fraction(-38, 15)]
HAND_MEANS = [Fraction(3), Fraction(2), Fraction(26, 9), Fraction(13, 6), Fraction(56, 25)]


def f64(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def seed_reference(grads: list[list[float]]) -> tuple[list[list[float]], list[float]]:
    """The seed's ``update_param_g_norm_info(..., clip=True)`` in plain floats, for one tensor:
    a list of norms seen so far and their carried average; returns clipped grads and averages."""
    history: list[float] = []
    average = 0.0
    clipped_all, averages = [], []
    for g in grads:
        g_norm = math.sqrt(sum(x * x for x in g))
        count = len(history)
        new_average = (average * count + g_norm) / (count + 1)
        ratio = new_average / g_norm if g_norm > 0 else math.nan
        scale = 1.0 if not ratio < 1 else ratio  # python's min(1, nan) is 1
        g = [x * scale for x in g]
        g_norm = math.sqrt(sum(x * x for x in g))
        average = (average * count + g_norm) / (count + 1)
        history.append(g_norm)
        clipped_all.append(g)
        averages.append(average)
    return clipped_all, averages


def test_hand_computed_sequence_per_tensor() -> None:
    p = torch.zeros((), dtype=torch.float64, requires_grad=True)
    clipper = AveragedNormClipper()
    for g, theta, clipped, mean in zip(HAND_GRADS, HAND_THRESHOLDS, HAND_CLIPPED, HAND_MEANS,
                                       strict=True):
        p.grad = torch.tensor(g, dtype=torch.float64)
        total = clipper(p)
        assert total.item() == pytest.approx(abs(g), rel=1e-15)
        assert clipper.last_threshold.item() == pytest.approx(float(theta), rel=1e-14)
        assert p.grad.item() == pytest.approx(float(clipped), rel=1e-14, abs=1e-300)
        assert clipper.means[0].item() == pytest.approx(float(mean), rel=1e-14)


def test_hand_computed_sequence_pure_function() -> None:
    mean = torch.zeros((), dtype=torch.float64)
    for t, (g, theta, clipped, expected_mean) in enumerate(
        zip(HAND_GRADS, HAND_THRESHOLDS, HAND_CLIPPED, HAND_MEANS, strict=True), start=1
    ):
        out, threshold, mean = averaged_clip(torch.tensor(g, dtype=torch.float64), mean, t)
        assert threshold.item() == pytest.approx(float(theta), rel=1e-14)
        assert out.item() == pytest.approx(float(clipped), rel=1e-14, abs=1e-300)
        assert mean.item() == pytest.approx(float(expected_mean), rel=1e-14)


def test_first_zero_gradient_halves_the_second() -> None:
    """The seed's stacks feed a zero hypergradient at t=1, so t=2 is clipped to ||g_2|| / 2."""
    p = torch.zeros(3, requires_grad=True)
    clipper = AveragedNormClipper()
    p.grad = torch.zeros(3)
    clipper([p])
    assert torch.equal(p.grad, torch.zeros(3))
    assert clipper.last_threshold.item() == 0.0
    p.grad = torch.tensor([3.0, 0.0, 4.0])
    clipper([p])
    torch.testing.assert_close(p.grad, torch.tensor([1.5, 0.0, 2.0]))
    assert clipper.means[0].item() == pytest.approx(1.25)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3), min_size=1, max_size=12))
def test_matches_seed_code_per_tensor(grads: list[list[float]]) -> None:
    expected, averages = seed_reference(grads)
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    clipper = AveragedNormClipper()
    for g, want, avg in zip(grads, expected, averages, strict=True):
        p.grad = torch.tensor(g, dtype=torch.float64)
        clipper([p])
        torch.testing.assert_close(p.grad, torch.tensor(want, dtype=torch.float64),
                                   rtol=1e-12, atol=1e-12)
        assert clipper.means[0].item() == pytest.approx(avg, rel=1e-12, abs=1e-12)
        # the applied gradient never exceeds the threshold
        assert torch.linalg.vector_norm(p.grad) <= clipper.last_threshold * (1 + 1e-12)


def test_per_tensor_keeps_separate_averages_and_global_one_average() -> None:
    a = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    seq_a = [[3.0, 4.0], [6.0, 8.0]]  # norms 5, 10
    seq_b = [[1.0], [1.0]]  # norms 1, 1
    per = AveragedNormClipper()
    for ga, gb in zip(seq_a, seq_b, strict=True):
        a.grad, b.grad = f64(ga), f64(gb)
        total = per([a, b])
    # per tensor: a's threshold (5 + 10) / 2 = 7.5 -> a scaled by 0.75; b untouched
    assert total.item() == pytest.approx(math.sqrt(101))
    torch.testing.assert_close(a.grad, torch.tensor([4.5, 6.0], dtype=torch.float64))
    torch.testing.assert_close(b.grad, torch.tensor([1.0], dtype=torch.float64))
    torch.testing.assert_close(per.last_thresholds, torch.tensor([7.5, 1.0], dtype=torch.float64))
    assert per.last_threshold.item() == pytest.approx(math.hypot(7.5, 1.0))

    glob = AveragedNormClipper(per_tensor=False)
    for ga, gb in zip(seq_a, seq_b, strict=True):
        a.grad, b.grad = f64(ga), f64(gb)
        glob([a, b])
    # global: norms sqrt(26), sqrt(101); threshold (sqrt(26) + sqrt(101)) / 2, both scaled alike
    theta = (math.sqrt(26) + math.sqrt(101)) / 2
    scale = theta / math.sqrt(101)
    assert glob.last_threshold.item() == pytest.approx(theta)
    torch.testing.assert_close(a.grad, torch.tensor([6.0 * scale, 8.0 * scale],
                                                    dtype=torch.float64))
    torch.testing.assert_close(b.grad, torch.tensor([scale], dtype=torch.float64))


def test_skips_missing_grads_without_advancing() -> None:
    a = torch.zeros(1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    clipper = AveragedNormClipper()
    a.grad = torch.tensor([2.0])
    clipper([a, b])
    assert clipper.steps == [1, 0]
    assert math.isnan(clipper.last_thresholds[1].item())
    assert clipper.last_threshold.item() == pytest.approx(2.0)


def test_state_dict_round_trip_continues_identically() -> None:
    torch.manual_seed(0)
    grads = [torch.randn(4) * (1 + 5 * (i % 3)) for i in range(8)]
    p = torch.zeros(4, requires_grad=True)
    full = AveragedNormClipper()
    for g in grads[:4]:
        p.grad = g.clone()
        full([p])
    resumed = AveragedNormClipper()
    resumed.load_state_dict(full.state_dict())
    for g in grads[4:]:
        p.grad = g.clone()
        full([p])
        expected = p.grad.clone()
        p.grad = g.clone()
        resumed([p])
        assert torch.equal(p.grad, expected)
        assert torch.equal(resumed.last_threshold, full.last_threshold)


def test_returns_tensor_total_norm() -> None:
    params = [torch.zeros(3, 2, requires_grad=True), torch.zeros(5, requires_grad=True)]
    params[0].grad = torch.arange(6.0).reshape(3, 2)
    params[1].grad = torch.ones(5)
    total = AveragedNormClipper()(params)
    assert isinstance(total, torch.Tensor) and total.ndim == 0
    assert total.item() == pytest.approx(math.sqrt(sum(i * i for i in range(6)) + 5))


def test_batched_pure_function_matches_rows() -> None:
    torch.manual_seed(1)
    grads = torch.randn(5, 4, 3, dtype=torch.float64)
    prev = torch.rand(4, dtype=torch.float64)
    out, theta, mean = averaged_clip(grads[0], prev, 3, batch_ndim=1)
    for r in range(4):
        row, theta_r, mean_r = averaged_clip(grads[0, r], prev[r], 3)
        torch.testing.assert_close(out[r], row)
        torch.testing.assert_close(theta[r], theta_r)
        torch.testing.assert_close(mean[r], mean_r)


def test_factor_formula_and_nonfinite() -> None:
    factor, theta, mean = averaged_clip_factor(torch.tensor(8.0), torch.tensor(2.0), 2)
    assert theta.item() == 5.0 and factor.item() == pytest.approx(5 / 8) and mean.item() == 3.5
    assert averaged_threshold(torch.tensor(7.0), torch.tensor(123.0), 1).item() == 7.0
    _, theta, mean = averaged_clip_factor(torch.tensor(float("inf")), torch.tensor(1.0), 2)
    assert not math.isfinite(mean.item())


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="step"):
        averaged_threshold(torch.tensor(1.0), torch.tensor(0.0), 0)
    clipper = AveragedNormClipper()
    p, q = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    p.grad, q.grad = torch.ones(1), torch.ones(1)
    clipper([p])
    with pytest.raises(ValueError, match="same number"):
        clipper([p, q])
    with pytest.raises(ValueError, match="per_tensor"):
        AveragedNormClipper(per_tensor=False).load_state_dict(clipper.state_dict())


def test_follows_clipper_protocol() -> None:
    stateful = pytest.importorskip("torch_impl.stateful")
    assert isinstance(AveragedNormClipper(), stateful.Clipper)


def grads_list(seed: int, scale: float) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    return [[scale * (1 + 5 * (t % 3)) * torch.randn(s, generator=gen, dtype=torch.float64)
             for s in shapes] for t in range(6)]


@pytest.mark.parametrize("per_tensor", [True, False])
def test_foreach_paths_agree_with_the_pure_function(per_tensor: bool) -> None:
    """foreach None/True/False clip alike, and as averaged_clip applied by hand."""
    sequence = grads_list(3, 2.0)
    results = {}
    for foreach in (None, True, False):
        params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
                  for g in sequence[0]]
        clipper = AveragedNormClipper(per_tensor, foreach=foreach)
        out = []
        for step in sequence:
            for p, g in zip(params, step, strict=True):
                p.grad = g.clone()
            clipper(params)
            out.append([p.grad.clone() for p in params])
        results[foreach] = out
    # by hand: lines 1-9 per tensor (or on the concatenated gradient)
    means = [torch.zeros((), dtype=torch.float64) for _ in sequence[0]]
    for t, step in enumerate(sequence, start=1):
        if per_tensor:
            expected = []
            for i, g in enumerate(step):
                clipped, _, means[i] = averaged_clip(g, means[i], t)
                expected.append(clipped)
        else:
            flat = torch.cat([g.flatten() for g in step])
            clipped, _, means[0] = averaged_clip(flat, means[0], t)
            expected = list(clipped.split([g.numel() for g in step]))
            expected = [e.reshape(g.shape) for e, g in zip(expected, step, strict=True)]
        for foreach, out in results.items():
            for got, want in zip(out[t - 1], expected, strict=True):
                torch.testing.assert_close(got, want, rtol=1e-13, atol=0, msg=str(foreach))


@pytest.mark.parametrize("per_tensor", [True, False])
def test_error_if_nonfinite_raises_before_touching_anything(per_tensor: bool) -> None:
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    clipper = AveragedNormClipper(per_tensor, error_if_nonfinite=True)
    p.grad = f64([3.0, 0.0, 4.0])
    clipper([p])
    state = clipper.state_dict()
    p.grad = f64([1.0, float("inf"), 0.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clipper([p])
    assert torch.equal(p.grad, f64([1.0, float("inf"), 0.0]))
    assert clipper.state_dict()["steps"] == state["steps"] == [1]
    # without the flag the average turns non-finite, as in the seed
    lenient = AveragedNormClipper(per_tensor)
    lenient([p])
    assert not math.isfinite(lenient.means[0].item())


def test_is_a_stateful_norm_clipper() -> None:
    stateful = pytest.importorskip("torch_impl.stateful")
    assert isinstance(AveragedNormClipper(), stateful.NormClipper)
    q = torch.zeros(2, device="meta", requires_grad=True)  # meta tensors: no foreach kernels
    q.grad = torch.ones(2, device="meta")
    with pytest.raises(RuntimeError, match="foreach=True"):
        AveragedNormClipper(foreach=True)([q])
