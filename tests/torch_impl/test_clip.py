"""torch_impl.clip against theory.clipping (on numpy copies), torch's clip_grad_norm_ and a
direct transcription of timm's adaptive_clip_grad."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from theory import clipping
from torch_impl.clip import (
    clip_grad_adaptive_,
    clip_grad_agc_,
    clip_grad_layerwise_,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)

SHAPES = {
    "mlp": [(7, 5), (7,), (3, 7), (3,)],
    "conv": [(4, 3, 3, 3), (4,), (10, 36), (10,)],
    "odd": [(), (1,), (2, 1, 1), (6, 2)],
}
DTYPES = [torch.float32, torch.float64]


def make_params(shapes, dtype, seed, grad_scale):
    """Parameters with random values and random gradients of typical size ``grad_scale``."""
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in shapes:
        p = torch.nn.Parameter(torch.randn(shape, generator=gen, dtype=dtype))
        p.grad = grad_scale * torch.randn(shape, generator=gen, dtype=dtype)
        params.append(p)
    return params


def np_grads(params):
    return [p.grad.detach().numpy().astype(np.float64) for p in params]


def np_values(params):
    return [p.detach().numpy().astype(np.float64) for p in params]


def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


def unflat(vector, like):
    out, start = [], 0
    for a in like:
        out.append(vector[start:start + a.size].reshape(a.shape))
        start += a.size
    return out


def tol(dtype):
    return {"rtol": 2e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-11, "atol": 0}


def assert_grads(params, expected, dtype):
    for p, e in zip(params, expected, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), e, **tol(dtype))


CASES = [(name, dtype, seed, scale) for name in SHAPES for dtype in DTYPES
         for seed in (0, 1) for scale in (0.01, 10.0)]


@pytest.mark.parametrize(("name", "dtype", "seed", "scale"), CASES)
def test_classic_matches_theory_and_torch(name, dtype, seed, scale):
    params = make_params(SHAPES[name], dtype, seed, scale)
    twin = make_params(SHAPES[name], dtype, seed, scale)
    grads = np_grads(params)
    lam = 1.5
    expected = unflat(clipping.classic_clip(flat(grads), lam), grads)
    total = clip_grad_norm_(params, lam)
    assert isinstance(total, torch.Tensor) and total.ndim == 0
    np.testing.assert_allclose(total.item(), np.linalg.norm(flat(grads)), **tol(dtype))
    assert_grads(params, expected, dtype)
    torch_total = torch.nn.utils.clip_grad_norm_(twin, lam)
    torch.testing.assert_close(total, torch_total)
    for p, q in zip(params, twin, strict=True):  # torch divides by norm + 1e-6
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)
    after = np.linalg.norm(flat(np_grads(params)))
    assert after <= min(lam, np.linalg.norm(flat(grads))) * (1 + 1e-6)


@pytest.mark.parametrize(("name", "dtype", "seed", "scale"), CASES)
def test_adaptive_matches_theory(name, dtype, seed, scale):
    params = make_params(SHAPES[name], dtype, seed, scale)
    grads, values = np_grads(params), np_values(params)
    lam, eps = 0.3, 1e-2
    expected = unflat(clipping.adaptive_clip(flat(grads), flat(values), lam, eps), grads)
    total = clip_grad_adaptive_(params, lam, eps)
    np.testing.assert_allclose(total.item(), np.linalg.norm(flat(grads)), **tol(dtype))
    assert_grads(params, expected, dtype)


def test_adaptive_uses_eps_for_small_weights():
    p = torch.nn.Parameter(torch.full((4,), 1e-6, dtype=torch.float64))
    p.grad = torch.tensor([3.0, 0.0, 4.0, 0.0], dtype=torch.float64)
    clip_grad_adaptive_([p], 2.0, 0.5)  # tau = 2 * max(2e-6, 0.5) = 1
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.0, 0.8, 0.0], dtype=torch.float64))


@pytest.mark.parametrize(("name", "dtype", "seed", "scale"), CASES)
def test_layerwise_matches_theory(name, dtype, seed, scale):
    params = make_params(SHAPES[name], dtype, seed, scale)
    grads, values = np_grads(params), np_values(params)
    lam, eps = 0.2, 1e-3
    expected = clipping.layerwise_clip(grads, values, lam, eps)
    clip_grad_layerwise_(params, lam, eps)
    assert_grads(params, expected, dtype)


def timm_adaptive_clip_grad(parameters, clip_factor=0.01, eps=1e-3):
    """timm.utils.agc.adaptive_clip_grad, transcribed (timm itself needs torchvision)."""

    def unitwise_norm(x):
        if x.ndim <= 1:
            return x.norm(2.0)
        return x.norm(2.0, dim=tuple(range(1, x.ndim)), keepdim=True)

    for p in parameters:
        g_data = p.grad.detach()
        max_norm = unitwise_norm(p.detach()).clamp_(min=eps).mul_(clip_factor)
        grad_norm = unitwise_norm(g_data)
        clipped_grad = g_data * (max_norm / grad_norm.clamp(min=1e-6))
        p.grad.detach().copy_(torch.where(grad_norm < max_norm, g_data, clipped_grad))


@pytest.mark.parametrize(("name", "dtype", "seed", "scale"), CASES)
def test_agc_matches_timm_formula_and_theory(name, dtype, seed, scale):
    params = make_params(SHAPES[name], dtype, seed, scale)
    twin = make_params(SHAPES[name], dtype, seed, scale)
    grads, values = np_grads(params), np_values(params)
    theory_result = clipping.layerwise_clip(grads, values, 0.01, 1e-3, unitwise=True)
    clip_grad_agc_(params)  # defaults: clip factor 0.01, eps 1e-3
    timm_adaptive_clip_grad(twin)
    for p, q in zip(params, twin, strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    assert_grads(params, theory_result, dtype)


def test_agc_clips_rows_separately():
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0], [0.3, 0.4]], dtype=torch.float64))
    w.grad = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    clip_grad_agc_([w], lam=0.1)  # row norms 5 and 0.5 -> max norms 0.5 and 0.05
    expected = torch.tensor([[0.5, 0.0], [0.0, 0.05]], dtype=torch.float64)
    torch.testing.assert_close(w.grad, expected)


def test_agc_skip_last_and_exclude():
    params = make_params(SHAPES["mlp"], torch.float64, 3, 10.0)
    before = [p.grad.clone() for p in params]
    clip_grad_agc_(params, skip_last=2)
    assert not torch.equal(params[0].grad, before[0])
    assert not torch.equal(params[1].grad, before[1])
    assert torch.equal(params[2].grad, before[2]) and torch.equal(params[3].grad, before[3])
    params = make_params(SHAPES["mlp"], torch.float64, 3, 10.0)
    total = clip_grad_agc_(params, exclude=[params[0]])
    assert torch.equal(params[0].grad, before[0])
    assert not torch.equal(params[2].grad, before[2])
    torch.testing.assert_close(total, get_total_norm(before))  # left-out grads count too


@pytest.mark.parametrize(("name", "dtype", "seed", "scale"), CASES)
def test_value_matches_theory(name, dtype, seed, scale):
    params = make_params(SHAPES[name], dtype, seed, scale)
    grads = np_grads(params)
    expected = [clipping.value_clip(g, 0.05) for g in grads]
    total = clip_grad_value_(params, 0.05)
    np.testing.assert_allclose(total.item(), np.linalg.norm(flat(grads)), **tol(dtype))
    assert_grads(params, expected, dtype)


CLIPPERS = {
    "norm": functools.partial(clip_grad_norm_, lam=1.0),
    "adaptive": functools.partial(clip_grad_adaptive_, lam=0.1, eps=1e-3),
    "layerwise": functools.partial(clip_grad_layerwise_, lam=0.1, eps=1e-3),
    "agc": functools.partial(clip_grad_agc_, lam=0.05, skip_last=1),
    "value": functools.partial(clip_grad_value_, lam=0.3),
}


@pytest.mark.parametrize("clipper", CLIPPERS)
@pytest.mark.parametrize("name", SHAPES)
def test_foreach_paths_agree(clipper, name):
    a = make_params(SHAPES[name], torch.float32, 5, 3.0)
    b = make_params(SHAPES[name], torch.float32, 5, 3.0)
    ta = CLIPPERS[clipper](a, foreach=True)
    tb = CLIPPERS[clipper](b, foreach=False)
    torch.testing.assert_close(ta, tb)
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def test_mixed_dtypes():
    params = make_params(SHAPES["mlp"], torch.float32, 0, 10.0)
    params += make_params(SHAPES["mlp"], torch.float64, 1, 10.0)
    grads = np_grads(params)
    total = clip_grad_norm_(params, 2.0)
    np.testing.assert_allclose(total.item(), np.linalg.norm(flat(grads)), rtol=1e-5)
    assert np.linalg.norm(flat(np_grads(params))) == pytest.approx(2.0, rel=1e-5)


@pytest.fixture
def no_host_sync(monkeypatch):
    """Make every tensor-to-python conversion raise, as a device-to-host sync would need."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("host sync")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, refuse)


@pytest.mark.parametrize("clipper", CLIPPERS)
def test_no_host_sync(clipper, no_host_sync):
    params = make_params(SHAPES["conv"], torch.float32, 0, 10.0)
    total = CLIPPERS[clipper](params)
    assert isinstance(total, torch.Tensor) and total.ndim == 0


def test_sync_guard_works(no_host_sync):
    with pytest.raises(AssertionError, match="host sync"):
        bool(torch.tensor(1.0) > 0)


BAD = [0.0, -1.0, float("nan"), float("inf"), -float("inf")]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("clipper", [clip_grad_norm_, clip_grad_value_])
def test_bad_lam_rejected(clipper, bad):
    params = make_params(SHAPES["mlp"], torch.float64, 0, 10.0)
    before = [p.grad.clone() for p in params]
    with pytest.raises(ValueError, match="lam"):
        clipper(params, bad)
    assert all(torch.equal(p.grad, b) for p, b in zip(params, before, strict=True))


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("clipper", [clip_grad_adaptive_, clip_grad_layerwise_, clip_grad_agc_])
def test_bad_lam_and_eps_rejected(clipper, bad):
    params = make_params(SHAPES["mlp"], torch.float64, 0, 10.0)
    before = [p.grad.clone() for p in params]
    with pytest.raises(ValueError, match="lam"):
        clipper(params, bad, 1e-3)
    with pytest.raises(ValueError, match="eps"):
        clipper(params, 0.1, bad)
    assert all(torch.equal(p.grad, b) for p, b in zip(params, before, strict=True))


def test_negative_lam_is_rejected_where_torch_flips():
    params = make_params(SHAPES["mlp"], torch.float64, 0, 10.0)
    before = params[0].grad.clone()
    torch.nn.utils.clip_grad_norm_(params, -1.0)
    assert (params[0].grad * before < 0).any()  # torch silently flips the sign
    with pytest.raises(ValueError, match="lam"):
        clip_grad_norm_(params, -1.0)


def test_bad_skip_last():
    with pytest.raises(ValueError, match="skip_last"):
        clip_grad_agc_(make_params(SHAPES["mlp"], torch.float64, 0, 1.0), skip_last=-1)


def test_empty_parameters():
    p = torch.nn.Parameter(torch.ones(3))  # no grad
    for clipper in CLIPPERS.values():
        total = clipper([p])
        assert total.item() == 0.0 and p.grad is None


def poisoned(value):
    params = make_params(SHAPES["mlp"], torch.float64, 0, 0.01)
    params[0].grad[0, 0] = value
    return params


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
@pytest.mark.parametrize("clipper", CLIPPERS)
def test_error_if_nonfinite_raises_and_leaves_grads(clipper, value):
    params = poisoned(value)
    before = [p.grad.clone() for p in params]
    with pytest.raises(RuntimeError, match="non-finite"):
        CLIPPERS[clipper](params, error_if_nonfinite=True)
    for p, b in zip(params, before, strict=True):
        torch.testing.assert_close(p.grad, b, equal_nan=True)


@pytest.mark.parametrize("clipper", ["norm", "adaptive"])
def test_infinite_norm_zeroes_finite_entries(clipper):
    params = poisoned(float("inf"))
    total = CLIPPERS[clipper](params)
    assert total.item() == float("inf")
    assert torch.isnan(params[0].grad[0, 0])
    assert (params[0].grad.flatten()[1:] == 0).all()
    assert all((p.grad == 0).all() for p in params[1:])


@pytest.mark.parametrize("clipper", ["norm", "adaptive"])
def test_nan_norm_makes_everything_nan(clipper):
    params = poisoned(float("nan"))
    assert torch.isnan(CLIPPERS[clipper](params))
    assert all(torch.isnan(p.grad).all() for p in params)


def test_layerwise_nonfinite_stays_in_its_layer():
    params = poisoned(float("inf"))
    before = [p.grad.clone() for p in params]
    clip_grad_layerwise_(params, 100.0, 1.0)  # large threshold: other layers unclipped
    assert (params[0].grad.flatten()[1:] == 0).all()
    assert all(torch.equal(p.grad, b) for p, b in zip(params[1:], before[1:], strict=True))


def test_value_clip_nonfinite():
    for value, expected in [(float("inf"), 0.3), (-float("inf"), -0.3)]:
        params = poisoned(value)
        clip_grad_value_(params, 0.3)
        assert params[0].grad[0, 0].item() == expected
    params = poisoned(float("nan"))
    clip_grad_value_(params, 0.3)
    assert torch.isnan(params[0].grad[0, 0])
    assert torch.isfinite(params[0].grad.flatten()[1:]).all()


# --------------------------------------------------------------------------------------------
# Drop-in for torch.nn.utils: torch's argument names and norm_type, against torch itself
# --------------------------------------------------------------------------------------------

NORM_TYPES = [2.0, 1.0, float("inf"), "inf", 3.0]


def np_order(norm_type):
    return np.inf if norm_type in ("inf", float("inf")) else float(norm_type)


@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("scale", [0.01, 10.0])
@pytest.mark.parametrize("name", list(SHAPES))
def test_clip_grad_norm_is_a_drop_in_for_torch(name, scale, norm_type):
    params = make_params(SHAPES[name], torch.float64, 5, scale)
    twin = make_params(SHAPES[name], torch.float64, 5, scale)
    grads = np_grads(params)
    ours = clip_grad_norm_(params, max_norm=0.7, norm_type=norm_type)
    theirs = torch.nn.utils.clip_grad_norm_(twin, max_norm=0.7, norm_type=norm_type)
    p = np_order(norm_type)
    np.testing.assert_allclose(ours.item(), np.linalg.norm(flat(grads), p), rtol=1e-12)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)
    for a, b in zip(params, twin, strict=True):  # torch divides by norm + 1e-6
        torch.testing.assert_close(a.grad, b.grad, rtol=2e-6, atol=1e-12)
    after = np.linalg.norm(flat(np_grads(params)), p)
    np.testing.assert_allclose(after, min(0.7, ours.item()), rtol=1e-12)


def test_clip_grad_norm_takes_torch_positional_arguments():
    params = make_params(SHAPES["mlp"], torch.float64, 2, 10.0)
    twin = make_params(SHAPES["mlp"], torch.float64, 2, 10.0)
    ours = clip_grad_norm_(params, 2.0, 1.0, False, False)  # max_norm, norm_type, eif, foreach
    theirs = torch.nn.utils.clip_grad_norm_(twin, 2.0, 1.0, False, False)
    torch.testing.assert_close(ours, theirs)
    for a, b in zip(params, twin, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=2e-6, atol=1e-12)


@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("foreach", [None, False])
def test_get_total_norm_matches_torch(norm_type, foreach):
    tensors = [p.grad for p in make_params(SHAPES["conv"], torch.float64, 4, 3.0)]
    ours = get_total_norm(tensors, norm_type, False, foreach)
    theirs = torch.nn.utils.get_total_norm(tensors, norm_type, False, foreach)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)


def test_clip_grads_with_norm_matches_torch_and_takes_threshold_alias():
    params = make_params(SHAPES["mlp"], torch.float64, 6, 10.0)
    twin = make_params(SHAPES["mlp"], torch.float64, 6, 10.0)
    alias = make_params(SHAPES["mlp"], torch.float64, 6, 10.0)
    total = get_total_norm([p.grad for p in params])
    clip_grads_with_norm_(params, max_norm=1.0, total_norm=total)
    torch.nn.utils.clip_grads_with_norm_(twin, max_norm=1.0, total_norm=total)
    clip_grads_with_norm_(alias, 1.0, total)
    for a, b, c in zip(params, twin, alias, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=2e-6, atol=1e-12)
        assert torch.equal(a.grad, c.grad)
    with pytest.raises(ValueError, match="max_norm or its alias threshold"):
        clip_grads_with_norm_(params, 1.0, total, threshold=1.0)


@pytest.mark.parametrize("foreach", [None, False])
def test_clip_grad_value_matches_torch(foreach):
    params = make_params(SHAPES["conv"], torch.float64, 7, 1.0)
    twin = make_params(SHAPES["conv"], torch.float64, 7, 1.0)
    before = [p.grad.clone() for p in params]
    total = clip_grad_value_(params, clip_value=0.3, foreach=foreach)
    assert torch.nn.utils.clip_grad_value_(twin, 0.3, foreach) is None
    for a, b in zip(params, twin, strict=True):
        assert torch.equal(a.grad, b.grad)
    np.testing.assert_allclose(total.item(), np.linalg.norm(flat([b.numpy() for b in before])))
    assert clip_grad_value_(params, 0.3, norm_type=np.inf).item() <= 0.3


@pytest.mark.parametrize(("func", "canonical", "alias", "value"), [
    (clip_grad_norm_, "max_norm", "lam", 0.8),
    (clip_grad_value_, "clip_value", "lam", 0.05),
    (functools.partial(clip_grad_agc_, eps=1e-3), "lam", "clip_factor", 0.02),
])
def test_alias_gives_the_same_result_and_both_is_an_error(func, canonical, alias, value):
    params = make_params(SHAPES["conv"], torch.float64, 8, 10.0)
    twin = make_params(SHAPES["conv"], torch.float64, 8, 10.0)
    total = func(params, **{canonical: value})
    total_alias = func(twin, **{alias: value})
    assert torch.equal(total, total_alias)
    for a, b in zip(params, twin, strict=True):
        assert torch.equal(a.grad, b.grad)
    with pytest.raises(ValueError, match=f"{canonical} or its alias {alias}"):
        func(params, value, **{alias: value})
    with pytest.raises(ValueError, match=f"{canonical} or its alias {alias}"):
        func(params, **{canonical: value, alias: value})


@pytest.mark.parametrize("bad", [0.5, 0, -1.0, float("nan"), "two", True, None])
@pytest.mark.parametrize("clipper", [
    clip_grad_norm_,
    functools.partial(clip_grad_value_, clip_value=0.1),
    functools.partial(clip_grad_adaptive_, lam=0.1, eps=1e-3),
    functools.partial(clip_grad_layerwise_, lam=0.1, eps=1e-3),
])
def test_bad_norm_type_rejected(clipper, bad):
    params = make_params(SHAPES["mlp"], torch.float64, 0, 10.0)
    before = [p.grad.clone() for p in params]
    kwargs = {"max_norm": 1.0} if clipper is clip_grad_norm_ else {}
    with pytest.raises(ValueError, match="norm_type"):
        clipper(params, norm_type=bad, **kwargs)
    assert all(torch.equal(p.grad, b) for p, b in zip(params, before, strict=True))


@pytest.mark.parametrize("norm_type", [1.0, float("inf")])
def test_adaptive_and_layerwise_with_other_norms(norm_type):
    """tau = lam * max(||theta||_p, eps), g <- g * tau / max(||g||_p, tau), in numpy."""
    params = make_params(SHAPES["mlp"], torch.float64, 9, 10.0)
    grads, values = np_grads(params), np_values(params)
    lam, eps = 0.3, 1e-2
    tau = lam * max(np.linalg.norm(flat(values), norm_type), eps)
    factor = tau / max(np.linalg.norm(flat(grads), norm_type), tau)
    total = clip_grad_adaptive_(params, lam, eps, norm_type=norm_type)
    np.testing.assert_allclose(total.item(), np.linalg.norm(flat(grads), norm_type))
    assert_grads(params, [g * factor for g in grads], torch.float64)
    params = make_params(SHAPES["mlp"], torch.float64, 9, 10.0)
    clip_grad_layerwise_(params, lam, eps, norm_type=norm_type)
    expected = []
    for g, v in zip(grads, values, strict=True):
        tau_l = lam * max(np.linalg.norm(v.ravel(), norm_type), eps)
        expected.append(g * tau_l / max(np.linalg.norm(g.ravel(), norm_type), tau_l))
    assert_grads(params, expected, torch.float64)


def mixed_params(seed, scale):
    """float64 and float32 parameters of every shape above, interleaved, so that torch's
    grouping by dtype reorders them."""
    shapes = [shape for name in SHAPES for shape in SHAPES[name]]
    params = []
    for i, shape in enumerate(shapes):
        dtype = torch.float64 if i % 3 else torch.float32
        params += make_params([shape], dtype, seed + i, scale)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("foreach", [None, True, False])
@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_mixed_dtypes_and_shapes_match_torch(foreach, norm_type, scale):
    params, twin = mixed_params(11, scale), mixed_params(11, scale)
    grads = np_grads(params)
    ours = clip_grad_norm_(params, 0.7, norm_type, foreach=foreach)
    theirs = torch.nn.utils.clip_grad_norm_(twin, 0.7, norm_type, foreach=foreach)
    assert ours.dtype == theirs.dtype == torch.float64
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)
    # the float32 gradients' norms are taken in float32
    np.testing.assert_allclose(ours.item(), np.linalg.norm(flat(grads), np_order(norm_type)),
                               rtol=1e-6)
    factor = min(1.0, 0.7 / ours.item())
    for p, q, g in zip(params, twin, grads, strict=True):
        exact = {"rtol": 1e-12, "atol": 0} if p.dtype == torch.float64 else {"rtol": 1e-6}
        np.testing.assert_allclose(p.grad.numpy(), g * factor, **exact)
        torch.testing.assert_close(p.grad, q.grad, rtol=2e-6, atol=1e-12)  # torch's + 1e-6


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
@pytest.mark.parametrize("foreach", [None, True, False])
def test_mixed_dtypes_nonfinite_as_torch(foreach, value):
    params, twin = mixed_params(12, 1.0), mixed_params(12, 1.0)
    for ps in (params, twin):
        ps[3].grad[0] = value  # a float32 gradient
    before = [p.grad.clone() for p in params]
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 0.7, error_if_nonfinite=True, foreach=foreach)
    for p, b in zip(params, before, strict=True):
        torch.testing.assert_close(p.grad, b, equal_nan=True, rtol=0, atol=0)
    ours = clip_grad_norm_(params, 0.7, foreach=foreach)
    theirs = torch.nn.utils.clip_grad_norm_(twin, 0.7, foreach=foreach)
    torch.testing.assert_close(ours, theirs, equal_nan=True)
    for p, q in zip(params, twin, strict=True):
        torch.testing.assert_close(p.grad, q.grad, equal_nan=True, rtol=0, atol=0)
    if value == float("inf"):  # the module docstring: finite entries 0, the infinite one NaN
        assert torch.isnan(params[3].grad[0])
        assert all((p.grad == 0).all() for i, p in enumerate(params) if i != 3)
