"""Tests of theory.clipping against independent pure-Python references built from the paper.

The references loop over coordinates with ``math.sqrt`` and apply the paper's definitions
literally (``c = max(||g|| / lam, 1)``, then ``g / c``), so they share no code or formula
arrangement with the module under test.
"""

from __future__ import annotations

import ast
import itertools
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import theory.clipping as clipping
from theory.clipping import (
    adaptive_clip,
    adaptive_threshold,
    classic_clip,
    clip_factor,
    layerwise_clip,
    norm,
    project_ball,
    unitwise_norm,
    value_clip,
)

RTOL = 1e-12
ATOL = 1e-300  # only matters for results in the subnormal range

settings.register_profile("clipping", max_examples=60, deadline=None)
settings.load_profile("clipping")


# --------------------------------------------------------------------------------------------
# Independent pure-Python references (lists of floats, math.sqrt, the paper's c)
# --------------------------------------------------------------------------------------------


def ref_norm(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v * v
    return math.sqrt(total)


def ref_classic(g: list[float], lam: float) -> list[float]:
    """Eq. 11: c = max(||g|| / lam, 1), return g / c."""
    c = max(ref_norm(g) / lam, 1.0)
    return [gi / c for gi in g]


def ref_adaptive(g: list[float], theta: list[float], lam: float, eps: float) -> list[float]:
    """Eq. 17: c = max(||g|| / (lam * max(||theta||, eps)), 1), return g / c."""
    c = max(ref_norm(g) / (lam * max(ref_norm(theta), eps)), 1.0)
    return [gi / c for gi in g]


def ref_value(g: list[float], lam: float) -> list[float]:
    return [min(max(gi, -lam), lam) for gi in g]


def ref_project(theta: list[float], rho: float, centre: list[float]) -> list[float]:
    """Eq. 9: theta if ||theta - centre|| <= rho, else centre + rho (theta - centre) / dist."""
    diff = [t - c for t, c in zip(theta, centre, strict=True)]
    dist = ref_norm(diff)
    if dist <= rho:
        return list(theta)
    return [c + rho * d / dist for c, d in zip(centre, diff, strict=True)]


def flat(x: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(x).ravel()]


def ref_unitwise_layer(g: np.ndarray, theta: np.ndarray, lam: float, eps: float) -> np.ndarray:
    """AGC per unit, as timm's unitwise_norm: whole tensor if ndim <= 1, else per first index."""
    if g.ndim <= 1:
        return np.array(ref_adaptive(flat(g), flat(theta), lam, eps)).reshape(g.shape)
    out = np.empty_like(g)
    for i in range(g.shape[0]):
        out[i] = np.array(ref_adaptive(flat(g[i]), flat(theta[i]), lam, eps)).reshape(g[i].shape)
    return out


def assert_close(actual, expected, rtol: float = RTOL) -> None:
    if isinstance(actual, torch.Tensor):
        actual = actual.detach().cpu().numpy()
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=ATOL)


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)
positive = st.floats(1e-3, 1e3, allow_nan=False, allow_subnormal=False)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)


def arrays(shape=shapes):
    return hnp.arrays(np.float64, shape, elements=finite)


@st.composite
def pair_of_arrays(draw):
    shape = draw(shapes)
    return draw(arrays(shape)), draw(arrays(shape))


# --------------------------------------------------------------------------------------------
# Helpers: norm, unitwise_norm, clip_factor, adaptive_threshold
# --------------------------------------------------------------------------------------------


@given(arrays())
def test_norm_matches_reference(x):
    assert norm(x) == pytest.approx(ref_norm(flat(x)), rel=RTOL, abs=ATOL)
    assert norm(x, keepdims=True).shape == (1,) * x.ndim


def test_norm_batched_shapes_and_values():
    x = np.arange(24.0).reshape(2, 3, 4)
    n1 = norm(x, batch_ndim=1)
    assert n1.shape == (2,)
    assert_close(n1, [ref_norm(flat(x[i])) for i in range(2)])
    n2 = norm(x, batch_ndim=2, keepdims=True)
    assert n2.shape == (2, 3, 1)
    assert_close(n2[..., 0], [[ref_norm(flat(x[i, j])) for j in range(3)] for i in range(2)])
    # batch_ndim == ndim: one "norm" per coordinate, |x| (torch must not reduce everything)
    for arr in (x - 5.0, torch.tensor(x - 5.0)):
        assert_close(norm(arr, batch_ndim=3), np.abs(x - 5.0))


def test_unitwise_norm_follows_timm():
    w = np.arange(1.0, 25.0).reshape(4, 3, 2)
    expected = np.array([ref_norm(flat(w[i])) for i in range(4)]).reshape(4, 1, 1)
    assert_close(unitwise_norm(w), expected)
    b = np.array([3.0, 4.0])
    assert_close(unitwise_norm(b), [5.0])  # ndim <= 1: whole tensor
    assert_close(unitwise_norm(np.array(-2.0)), 2.0)
    # batched: (R, out, in) -> per (r, out) row
    wb = np.arange(1.0, 25.0).reshape(2, 3, 4)
    expected_b = [[ref_norm(flat(wb[r, i])) for i in range(3)] for r in range(2)]
    assert_close(unitwise_norm(wb, batch_ndim=1)[..., 0], expected_b)
    rows = wb[:, 0, :]  # (R, P): one non-batch axis -> whole-row norm
    expected_rows = [ref_norm(flat(wb[r, 0])) for r in range(2)]
    assert_close(unitwise_norm(rows, batch_ndim=1)[:, 0], expected_rows)


@given(st.floats(0.0, 1e6, allow_nan=False), positive)
def test_clip_factor_is_one_over_c(grad_norm, lam):
    c = max(grad_norm / lam, 1.0)
    assert float(clip_factor(np.array(grad_norm), lam)) == pytest.approx(1.0 / c, rel=RTOL)


def test_adaptive_threshold():
    assert_close(adaptive_threshold(np.array([0.0, 1e-5, 2.0]), 0.5, 1e-3), [5e-4, 5e-4, 1.0])


# --------------------------------------------------------------------------------------------
# Classic clipping (eq. 11)
# --------------------------------------------------------------------------------------------


@given(arrays(), positive)
def test_classic_matches_paper_definition(g, lam):
    expected = np.array(ref_classic(flat(g), lam)).reshape(g.shape)
    assert_close(classic_clip(g, lam), expected)


@given(arrays(), positive)
def test_classic_norm_is_min_and_direction_kept(g, lam):
    out = classic_clip(g, lam)
    g_norm, out_norm = ref_norm(flat(g)), ref_norm(flat(out))
    assert out_norm == pytest.approx(min(g_norm, lam), rel=1e-12, abs=ATOL)
    # same direction: equal signs and out parallel to g with a positive factor
    assert np.array_equal(np.sign(out), np.sign(g))
    if g_norm > 0:
        assert_close(out * g_norm, g * out_norm, rtol=1e-11)
    if g_norm <= lam:
        assert np.array_equal(out, g)  # no clipping: returned unchanged, bit for bit


def test_classic_simple_values():
    assert_close(classic_clip(np.array([3.0, 4.0]), 1.0), [0.6, 0.8])
    assert_close(classic_clip(np.array([3.0, 4.0]), 10.0), [3.0, 4.0])
    assert_close(classic_clip(np.array([[3.0, 0.0], [0.0, 4.0]]), 2.5), [[1.5, 0], [0, 2.0]])


@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 6)), elements=finite),
    st.data(),
)
def test_classic_batched_equals_row_by_row(g, data):
    lam = np.array(data.draw(st.lists(positive, min_size=g.shape[0], max_size=g.shape[0])))
    batched = classic_clip(g, lam, batch_ndim=1)
    for r in range(g.shape[0]):
        assert_close(batched[r], classic_clip(g[r], float(lam[r])))
        assert_close(batched[r], ref_classic(flat(g[r]), float(lam[r])))
    # scalar lam shared across the batch
    shared = classic_clip(g, 0.7, batch_ndim=1)
    for r in range(g.shape[0]):
        assert_close(shared[r], ref_classic(flat(g[r]), 0.7))


def test_classic_two_batch_axes_with_broadcast_lam():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(3, 4, 2, 5)) * 3.0
    lam = np.array([0.5, 1.0, 2.0, 50.0])  # broadcasts to the batch shape (3, 4)
    out = classic_clip(g, lam, batch_ndim=2)
    for i, j in itertools.product(range(3), range(4)):
        expected = np.array(ref_classic(flat(g[i, j]), float(lam[j]))).reshape(2, 5)
        assert_close(out[i, j], expected)


def test_per_batch_lam_with_too_many_axes_is_rejected():
    with pytest.raises(ValueError, match="lam"):
        classic_clip(np.ones((3, 4)), np.ones(4), batch_ndim=0)
    with pytest.raises(ValueError, match="batch_ndim"):
        classic_clip(np.ones((3, 4)), 1.0, batch_ndim=3)


# --------------------------------------------------------------------------------------------
# Adaptive clipping (eq. 17) and layer-wise / unit-wise (eq. 18)
# --------------------------------------------------------------------------------------------


@given(pair_of_arrays(), positive, st.floats(1e-6, 1.0))
def test_adaptive_matches_paper_definition(g_theta, lam, eps):
    g, theta = g_theta
    expected = np.array(ref_adaptive(flat(g), flat(theta), lam, eps)).reshape(g.shape)
    out = adaptive_clip(g, theta, lam, eps)
    assert_close(out, expected)
    tau = lam * max(ref_norm(flat(theta)), eps)
    assert ref_norm(flat(out)) == pytest.approx(min(ref_norm(flat(g)), tau), rel=1e-12, abs=ATOL)


def test_adaptive_eps_floor_when_theta_is_zero():
    out = adaptive_clip(np.array([3.0, 4.0]), np.zeros(2), 2.0, 0.1)
    assert_close(out, [0.12, 0.16])  # tau = 2 * 0.1 = 0.2


def test_adaptive_batched_equals_row_by_row():
    rng = np.random.default_rng(1)
    g, theta = rng.normal(size=(6, 3, 2)), rng.normal(size=(6, 3, 2))
    lam = rng.uniform(0.05, 2.0, size=6)
    eps = rng.uniform(1e-3, 1.0, size=6)
    theta[0] = 0.0  # eps floor active in one row
    out = adaptive_clip(g, theta, lam, eps, batch_ndim=1)
    for r in range(6):
        expected = ref_adaptive(flat(g[r]), flat(theta[r]), float(lam[r]), float(eps[r]))
        assert_close(out[r].ravel(), expected)


LAYER_SHAPES = [(4, 3), (4,), (2, 3, 2, 2), (), (5, 1)]


def make_layers(seed: int, batch: tuple[int, ...] = ()):
    rng = np.random.default_rng(seed)
    grads = [rng.normal(size=batch + s) * 5.0 for s in LAYER_SHAPES]
    params = [rng.normal(size=batch + s) for s in LAYER_SHAPES]
    params[1] = np.zeros(batch + LAYER_SHAPES[1])  # a zero bias: eps floor
    return grads, params


@pytest.mark.parametrize("seed", range(3))
def test_layerwise_matches_per_layer_reference(seed):
    grads, params = make_layers(seed)
    out = layerwise_clip(grads, params, 0.3, 1e-3)
    assert isinstance(out, list) and len(out) == len(grads)
    for o, g, p in zip(out, grads, params, strict=True):
        assert o.shape == g.shape
        assert_close(o, np.array(ref_adaptive(flat(g), flat(p), 0.3, 1e-3)).reshape(g.shape))


@pytest.mark.parametrize("seed", range(3))
def test_unitwise_matches_per_row_loop(seed):
    grads, params = make_layers(seed)
    out = layerwise_clip(grads, params, 0.3, 1e-3, unitwise=True)
    for o, g, p in zip(out, grads, params, strict=True):
        assert o.shape == g.shape
        assert_close(o, ref_unitwise_layer(g, p, 0.3, 1e-3))


@pytest.mark.parametrize("unitwise", [False, True])
def test_layerwise_batched_equals_row_by_row(unitwise):
    grads, params = make_layers(7, batch=(3,))
    lam = np.array([0.1, 0.5, 5.0])
    out = layerwise_clip(grads, params, lam, 1e-3, unitwise=unitwise, batch_ndim=1)
    for r in range(3):
        row = layerwise_clip(
            [g[r] for g in grads], [p[r] for p in params], float(lam[r]), 1e-3, unitwise=unitwise
        )
        for o, expected in zip(out, row, strict=True):
            assert_close(o[r], expected)
    if unitwise:
        for o, g, p in zip(out, grads, params, strict=True):
            for r in range(3):
                assert_close(o[r], ref_unitwise_layer(g[r], p[r], float(lam[r]), 1e-3))


def test_layerwise_length_mismatch():
    with pytest.raises(ValueError, match="same number of layers"):
        layerwise_clip([np.ones(2)], [np.ones(2), np.ones(2)], 1.0, 1e-3)


# --------------------------------------------------------------------------------------------
# Value clipping
# --------------------------------------------------------------------------------------------


@given(arrays(), positive)
def test_value_clip_matches_reference(g, lam):
    assert_close(value_clip(g, lam), np.array(ref_value(flat(g), lam)).reshape(g.shape))


def test_value_clip_batched_lam():
    g = np.array([[-3.0, -0.5, 0.0, 2.0], [-3.0, -0.5, 0.0, 2.0]])
    out = value_clip(g, np.array([1.0, 2.5]), batch_ndim=1)
    assert_close(out, [[-1.0, -0.5, 0.0, 1.0], [-2.5, -0.5, 0.0, 2.0]])


# --------------------------------------------------------------------------------------------
# Projection onto a ball (eq. 9)
# --------------------------------------------------------------------------------------------


@given(pair_of_arrays(), st.floats(0.0, 1e3, allow_nan=False))
def test_projection_matches_reference(theta_centre, rho):
    theta, centre = theta_centre
    out = project_ball(theta, rho, centre)
    expected = np.array(ref_project(flat(theta), rho, flat(centre))).reshape(theta.shape)
    # on the sphere, centre + ρ·u rounds absolutely at the scale of the centre and of ρ
    scale = max(float(np.max(np.abs(centre))), rho, 1.0)
    np.testing.assert_allclose(out, expected, rtol=1e-11, atol=1e-12 * scale)
    dist = ref_norm(flat(theta - centre))
    if dist <= rho:
        assert np.array_equal(out, theta)  # inside the ball: unchanged, bit for bit
    else:
        assert ref_norm(flat(out - centre)) == pytest.approx(rho, rel=1e-11, abs=1e-12)
    again = project_ball(out, rho, centre)
    np.testing.assert_allclose(again, out, rtol=1e-11, atol=1e-12 * scale)  # idempotent


def test_projection_simple_values():
    assert_close(project_ball(np.array([3.0, 4.0]), 1.0), [0.6, 0.8])
    assert_close(project_ball(np.array([0.3, 0.4]), 1.0), [0.3, 0.4])
    assert_close(project_ball(np.array([4.0, 4.0]), 2.5, np.array([1.0, 0.0])), [2.5, 2.0])


def test_projection_zero_radius_gives_centre_without_nan():
    centre = np.array([1.0, -2.0])
    assert_close(project_ball(centre.copy(), 0.0, centre), centre)
    assert_close(project_ball(np.array([5.0, 5.0]), 0.0, centre), centre)
    assert_close(project_ball(np.zeros(3), 0.0), np.zeros(3))


def test_projection_batched_radius_equals_row_by_row():
    rng = np.random.default_rng(2)
    theta = rng.normal(size=(5, 4)) * 2.0
    centre = rng.normal(size=4)
    rho = np.array([0.0, 0.5, 1.0, 3.0, 100.0])
    out = project_ball(theta, rho, centre, batch_ndim=1)
    for r in range(5):
        assert_close(out[r], ref_project(flat(theta[r]), float(rho[r]), flat(centre)))
        assert_close(out[r], project_ball(theta[r], float(rho[r]), centre))


# --------------------------------------------------------------------------------------------
# Validation, zeros, non-finite input
# --------------------------------------------------------------------------------------------

BAD_POSITIVE = [0.0, -1.0, math.inf, math.nan, True]  # a bool is not a number here


@pytest.mark.parametrize("bad", BAD_POSITIVE)
def test_bad_lam_raises(bad):
    g = np.ones(3)
    for call in (
        lambda: classic_clip(g, bad),
        lambda: adaptive_clip(g, g, bad, 1e-3),
        lambda: layerwise_clip([g], [g], bad, 1e-3),
        lambda: layerwise_clip([g], [g], bad, 1e-3, unitwise=True),
        lambda: value_clip(g, bad),
    ):
        with pytest.raises(ValueError, match=r"^lam: expected a finite number with 0 < lam, got "):
            call()


@pytest.mark.parametrize("bad", BAD_POSITIVE)
def test_bad_eps_raises(bad):
    g = np.ones(3)
    for call in (
        lambda: adaptive_clip(g, g, 1.0, bad),
        lambda: layerwise_clip([g], [g], 1.0, bad),
        lambda: layerwise_clip([g], [g], 1.0, bad, unitwise=True),
    ):
        with pytest.raises(ValueError, match=r"^eps: expected a finite number with 0 < eps, got "):
            call()


@pytest.mark.parametrize("bad", [-1e-9, -1.0, math.inf, math.nan, True])
def test_bad_radius_raises(bad):
    with pytest.raises(ValueError, match=r"^radius: expected a finite number with 0 <= radius, "):
        project_ball(np.ones(3), bad)


def test_numpy_scalar_parameters_are_validated():
    with pytest.raises(ValueError, match="lam"):
        classic_clip(np.ones(2), np.float32(0.0))


@pytest.mark.parametrize("xp", ["numpy", "torch"])
def test_zero_gradient_gives_zero_without_nan(xp):
    def mk(x):
        return torch.tensor(x) if xp == "torch" else np.asarray(x)

    zero, one = mk(np.zeros((3, 2))), mk(np.ones((3, 2)))
    outs = [
        classic_clip(zero, 1.0),
        classic_clip(zero, 1.0, batch_ndim=1),
        adaptive_clip(zero, zero, 1.0, 1e-3),
        adaptive_clip(zero, one, 1.0, 1e-3, batch_ndim=1),
        *layerwise_clip([zero, zero[0]], [zero, zero[0]], 1.0, 1e-3),
        *layerwise_clip([zero, zero[0]], [zero, one[0]], 1.0, 1e-3, unitwise=True),
        value_clip(zero, 1.0),
    ]
    for out in outs:
        out = np.asarray(out)
        assert np.all(np.isfinite(out)) and np.all(out == 0.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_documented_non_finite_behaviour():
    g = np.array([np.inf, 1.0, -2.0])
    out = classic_clip(g, 1.0)  # ||g|| = inf -> factor 0: inf coordinate NaN, finite ones 0
    assert np.isnan(out[0]) and out[1] == 0.0 and out[2] == 0.0
    assert np.all(np.isnan(classic_clip(np.array([np.nan, 1.0]), 1.0)))
    huge = np.array([1e200, 1e200])  # squared norm overflows -> treated as infinite norm
    assert np.all(classic_clip(huge, 1.0) == 0.0)


# --------------------------------------------------------------------------------------------
# numpy / torch agreement
# --------------------------------------------------------------------------------------------


def _agreement_cases() -> dict:
    """Name -> function of an array constructor ``m``; each runs one rule on fixed inputs."""
    rng = np.random.default_rng(3)
    g, theta = rng.normal(size=(4, 3, 2)) * 4.0, rng.normal(size=(4, 3, 2))
    lam_rows = rng.uniform(0.1, 3.0, size=4)
    layers_g, layers_p = [g, g[0, 0]], [theta, theta[0, 0]]
    return {
        "classic": lambda m: classic_clip(m(g), 1.3),
        "classic_batched": lambda m: classic_clip(m(g), m(lam_rows), batch_ndim=1),
        "adaptive": lambda m: adaptive_clip(m(g), m(theta), 0.4, 1e-3),
        "adaptive_batched": lambda m: adaptive_clip(
            m(g), m(theta), m(lam_rows), 1e-2, batch_ndim=1
        ),
        "layerwise": lambda m: layerwise_clip(
            [m(x) for x in layers_g], [m(x) for x in layers_p], 0.4, 1e-3
        ),
        "unitwise": lambda m: layerwise_clip(
            [m(x) for x in layers_g], [m(x) for x in layers_p], 0.4, 1e-3, unitwise=True
        ),
        "unitwise_batched": lambda m: layerwise_clip(
            [m(g)], [m(theta)], m(lam_rows), 1e-3, unitwise=True, batch_ndim=1
        ),
        "value": lambda m: value_clip(m(g), 0.5),
        "value_batched": lambda m: value_clip(m(g), m(lam_rows), batch_ndim=1),
        "project": lambda m: project_ball(m(g), 2.0, m(theta)),
        "project_batched": lambda m: project_ball(m(g), m(lam_rows), batch_ndim=1),
        "norm": lambda m: norm(m(g), batch_ndim=1),
        "unitwise_norm": lambda m: unitwise_norm(m(g), batch_ndim=1),
    }


@pytest.mark.parametrize("name", sorted(_agreement_cases()))
def test_numpy_and_torch_agree(name):
    fn = _agreement_cases()[name]
    out_np = fn(np.asarray)
    out_t = fn(lambda a: torch.tensor(a, dtype=torch.float64))
    outs_np = out_np if isinstance(out_np, list) else [out_np]
    outs_t = out_t if isinstance(out_t, list) else [out_t]
    assert len(outs_np) == len(outs_t)
    for a, b in zip(outs_np, outs_t, strict=True):
        assert isinstance(a, np.ndarray)
        assert isinstance(b, torch.Tensor) and b.dtype == torch.float64
        assert tuple(b.shape) == a.shape
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_output_keeps_dtype(dtype):
    g = torch.tensor([[3.0, 4.0], [0.3, 0.4]], dtype=dtype)
    lam_rows = torch.tensor([1.0, 1.0], dtype=dtype)
    outs = [
        classic_clip(g, 1.0),
        classic_clip(g, lam_rows, batch_ndim=1),
        adaptive_clip(g, g, 0.5, 1e-3),
        *layerwise_clip([g, g[0]], [g, g[0]], 0.5, 1e-3, unitwise=True),
        value_clip(g, 1.0),
        project_ball(g, 1.0),
        project_ball(g, 0.0),
    ]
    for out in outs:
        assert isinstance(out, torch.Tensor) and out.dtype == dtype
    expected = np.array([[0.6, 0.8], [0.3, 0.4]])
    tol = 1e-6 if dtype == torch.float32 else 1e-15
    np.testing.assert_allclose(outs[1].double().numpy(), expected, rtol=tol)


@given(arrays(), positive)
def test_numpy_and_torch_agree_property(g, lam):
    t = torch.tensor(g, dtype=torch.float64)
    for rule in (classic_clip, value_clip, project_ball):
        out_t, out_np = rule(t, lam), rule(g, lam)
        assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float64
        np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-12, atol=ATOL)


# --------------------------------------------------------------------------------------------
# theory never imports torch
# --------------------------------------------------------------------------------------------


def test_module_source_does_not_import_torch():
    tree = ast.parse(pathlib.Path(clipping.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(not a.name.startswith("torch") for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert not (node.module or "").startswith("torch")


def test_importing_and_using_clipping_does_not_load_torch():
    code = (
        "import sys, numpy as np\n"
        "import theory.clipping as c\n"
        "c.classic_clip(np.ones(3), 1.0); c.project_ball(np.ones(3), 1.0)\n"
        "c.layerwise_clip([np.ones((2, 2))], [np.ones((2, 2))], 1.0, 1e-3, unitwise=True)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
