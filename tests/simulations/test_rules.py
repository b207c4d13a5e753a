"""Tests of simulations.engine.rules (batched clip rules) against theory.clipping, the reference
definitions, applied row by row with numpy float64 and, for the layer-wise rules, with every
layer as its own array (``Layer.view``)."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations.engine.layout import Layout
from simulations.engine.problems import make_problem
from simulations.engine.rules import RULES, ClipRule
from theory import clipping
from theory.errors import BadArgument

RTOL = 1e-12


def _layouts():
    return {
        "mlp": make_problem("mlp-regression", hidden=5, n=50).layout,
        "mlp-cls": make_problem("mlp-classification", n=30, dim=4, classes=3, hidden=3).layout,
        "quadratic-1": make_problem("quadratic").layout,
        "quadratic-3": make_problem("quadratic", dim=3).layout,
        "rnn": make_problem("rnn-cliff", n=4).layout,
    }


LAYOUTS = _layouts()

PARAMS = {"lam": 0.7, "eps": 0.3, "ball": 1.5}


def make_rule(kind: str) -> ClipRule:
    if kind == "none":
        return ClipRule("none")
    if kind in ("classic", "value"):
        return ClipRule(kind, lam=PARAMS["lam"])
    if kind == "projection":
        return ClipRule(kind, ball=PARAMS["ball"])
    return ClipRule(kind, lam=PARAMS["lam"], eps=PARAMS["eps"])


def random_batch(p: int, rows: int, seed: int):
    """(g, θ) float64 with norms spread over many orders of magnitude, some θ tiny (the ε
    branch), some g zero, some single coordinates large (value clipping)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((rows, p)) * 10.0 ** rng.uniform(-3, 2, (rows, 1))
    g *= 10.0 ** rng.uniform(-1, 1, (1, p))  # groups of very different sizes
    theta = rng.standard_normal((rows, p)) * 10.0 ** rng.uniform(-3, 1, (rows, 1))
    g[0] = 0.0
    theta[1] = 0.0
    g[2, 0] = 50.0
    return g, theta


def reference(kind: str, layout: Layout, g: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """g/c by theory.clipping, one row at a time (numpy float64)."""
    lam, eps = PARAMS["lam"], PARAMS["eps"]
    out = np.empty_like(g)
    for r in range(g.shape[0]):
        gr, tr = g[r], theta[r]
        if kind in ("none", "projection"):
            out[r] = gr
        elif kind == "classic":
            out[r] = clipping.classic_clip(gr, lam)
        elif kind == "adaptive":
            out[r] = clipping.adaptive_clip(gr, tr, lam, eps)
        elif kind == "value":
            out[r] = clipping.value_clip(gr, lam)
        else:
            gl = [layer.view(torch.from_numpy(gr)).numpy() for layer in layout.layers]
            tl = [layer.view(torch.from_numpy(tr)).numpy() for layer in layout.layers]
            clipped = clipping.layerwise_clip(gl, tl, lam, eps, unitwise=kind == "unitwise")
            out[r] = np.concatenate([c.ravel() for c in clipped])
    return out


def reference_clipped(kind: str, layout: Layout, g: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """c > 1 for some group, computed from the definitions by hand."""
    lam, eps = PARAMS["lam"], PARAMS["eps"]
    flags = []
    for gr, tr in zip(g, theta, strict=True):
        if kind in ("none", "projection"):
            flags.append(False)
        elif kind == "classic":
            flags.append(np.linalg.norm(gr) > lam)
        elif kind == "adaptive":
            flags.append(np.linalg.norm(gr) > lam * max(np.linalg.norm(tr), eps))
        elif kind == "value":
            flags.append(bool(np.any(np.abs(gr) > lam)))
        else:
            groups = []
            for layer in layout.layers:
                a, b = layer.offset, layer.stop
                if kind == "unitwise" and len(layer.shape) >= 2:
                    w = math.prod(layer.shape[1:])
                    groups += [(a + i * w, a + (i + 1) * w) for i in range(layer.shape[0])]
                else:
                    groups.append((a, b))
            flags.append(any(
                np.linalg.norm(gr[a:b]) > lam * max(np.linalg.norm(tr[a:b]), eps)
                for a, b in groups
            ))
    return np.array(flags)


def as_direction(out, g: torch.Tensor) -> torch.Tensor:
    assert (out.scale is None) != (out.direction is None)
    return out.direction if out.direction is not None else g * out.scale[:, None]


# --------------------------------------------------------------------------------------------


def test_rules_list():
    assert set(RULES) == {"none", "classic", "adaptive", "layerwise", "unitwise", "value",
                          "projection"}


@pytest.mark.parametrize("layout_name", list(LAYOUTS))
@pytest.mark.parametrize("kind", RULES)
def test_apply_matches_theory(kind, layout_name):
    layout = LAYOUTS[layout_name]
    g, theta = random_batch(layout.size, 64, seed=zlib.crc32(f"{kind}/{layout_name}".encode()))
    rule = make_rule(kind)
    gt, tt = torch.from_numpy(g), torch.from_numpy(theta)
    out = rule.apply(gt, tt, layout)
    got = as_direction(out, gt).numpy()
    expected = reference(kind, layout, g, theta)
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-300)
    # the flag and the norm of g/c
    np.testing.assert_array_equal(out.clipped.numpy(), reference_clipped(kind, layout, g, theta))
    assert out.norm.dtype == torch.float64
    np.testing.assert_allclose(out.norm.numpy(), np.linalg.norm(expected, axis=1), rtol=RTOL)
    # the test data really exercises both branches
    if kind not in ("none", "projection"):
        assert out.clipped.any() and not out.clipped.all()
    # the input is not modified
    np.testing.assert_array_equal(gt.numpy(), g)
    np.testing.assert_array_equal(tt.numpy(), theta)


@pytest.mark.parametrize("kind", ["adaptive", "classic"])
def test_apply_with_given_theta_norm(kind):
    layout = LAYOUTS["mlp"]
    g, theta = random_batch(layout.size, 32, seed=5)
    rule = make_rule(kind)
    tn = torch.from_numpy(np.linalg.norm(theta, axis=1))
    a = rule.apply(torch.from_numpy(g), torch.from_numpy(theta), layout, theta_norm=tn)
    np.testing.assert_allclose(as_direction(a, torch.from_numpy(g)).numpy(),
                               reference(kind, layout, g, theta), rtol=RTOL, atol=1e-300)
    # theta_norm is used as given (here: a different norm, so a different threshold)
    if kind == "adaptive":
        b = rule.apply(torch.from_numpy(g), torch.from_numpy(theta), layout, theta_norm=10 * tn)
        assert not torch.equal(b.scale, a.scale)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(RULES),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    lam=st.floats(min_value=1e-3, max_value=1e3),
    eps=st.floats(min_value=1e-4, max_value=1e2),
)
def test_apply_matches_theory_property(kind, seed, lam, eps):
    layout = LAYOUTS["mlp-cls"]
    g, theta = random_batch(layout.size, 8, seed=seed)
    old = dict(PARAMS)
    try:
        PARAMS.update(lam=lam, eps=eps)
        rule = make_rule(kind)
        out = rule.apply(torch.from_numpy(g), torch.from_numpy(theta), layout)
        got = as_direction(out, torch.from_numpy(g)).numpy()
        np.testing.assert_allclose(got, reference(kind, layout, g, theta), rtol=RTOL,
                                   atol=1e-300)
        # ‖g/c‖ never exceeds what the rule allows
        norms = out.norm.numpy()
        if kind == "classic":
            assert np.all(norms <= lam * (1 + 1e-12))
        if kind == "adaptive":
            assert np.all(norms <= lam * np.maximum(np.linalg.norm(theta, axis=1), eps)
                          * (1 + 1e-12))
    finally:
        PARAMS.clear()
        PARAMS.update(old)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_apply_keeps_dtype(dtype):
    layout = LAYOUTS["mlp"]
    g, theta = random_batch(layout.size, 8, seed=1)
    for kind in RULES:
        out = make_rule(kind).apply(torch.from_numpy(g).to(dtype),
                                    torch.from_numpy(theta).to(dtype), layout)
        d = as_direction(out, torch.from_numpy(g).to(dtype))
        assert d.dtype == dtype
        np.testing.assert_allclose(d.double().numpy(), reference(kind, layout, g, theta),
                                   rtol=1e-5 if dtype == torch.float32 else RTOL, atol=1e-30)


def test_unitwise_uses_rows_of_weight_matrices():
    """A weight matrix with one huge row: unitwise shrinks only that row, layerwise the whole
    layer."""
    layout = Layout.of(("W", (3, 2)), ("b", (3,)))
    theta = torch.ones(1, 9, dtype=torch.float64)
    g = torch.full((1, 9), 0.1, dtype=torch.float64)
    g[0, 0:2] = 100.0  # row 0 of W
    lam, eps = 1.0, 1e-3
    uw = ClipRule("unitwise", lam=lam, eps=eps).apply(g, theta, layout).direction[0]
    lw = ClipRule("layerwise", lam=lam, eps=eps).apply(g, theta, layout).direction[0]
    # unit 0 of W has ‖θ‖ = √2, so its clipped norm is λ√2; the other rows are untouched
    assert math.isclose(float(uw[0:2].norm()), math.sqrt(2), rel_tol=1e-12)
    assert torch.equal(uw[2:], g[0, 2:])
    # layerwise: the whole W (‖θ_W‖ = √6) is shrunk to norm λ√6; b untouched
    assert math.isclose(float(lw[0:6].norm()), math.sqrt(6), rel_tol=1e-12)
    assert float(lw[2]) < 0.1
    assert torch.equal(lw[6:], g[0, 6:])


@pytest.mark.parametrize("layout_name", ["mlp", "quadratic-3"])
def test_projection(layout_name):
    layout = LAYOUTS[layout_name]
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((40, layout.size)) * 10.0 ** rng.uniform(-2, 1, (40, 1))
    rule = ClipRule("projection", ball=1.5)
    got = rule.project(torch.from_numpy(theta)).numpy()
    for r in range(theta.shape[0]):
        np.testing.assert_allclose(got[r], clipping.project_ball(theta[r], 1.5), rtol=RTOL)
        expected = theta[r] if np.linalg.norm(theta[r]) <= 1.5 else \
            1.5 * theta[r] / np.linalg.norm(theta[r])
        np.testing.assert_allclose(got[r], expected, rtol=1e-12)
    assert np.all(np.linalg.norm(got, axis=1) <= 1.5 * (1 + 1e-12))
    # every other rule leaves θ alone
    for kind in RULES:
        if kind != "projection":
            assert torch.equal(make_rule(kind).project(torch.from_numpy(theta)),
                               torch.from_numpy(theta))


@pytest.mark.parametrize("kind", ["classic", "adaptive", "layerwise", "unitwise"])
def test_float32_overflowing_norm_is_reported_not_finite(kind):
    """Norms are taken in the data's dtype (rules.norms): a float32 gradient whose squared norm
    overflows gets a non-finite ‖g/c‖, which the engine counts as a blow-up (test_engine)."""
    layout = LAYOUTS["mlp"]
    g = torch.full((3, layout.size), 1e25, dtype=torch.float32)
    out = make_rule(kind).apply(g, torch.ones_like(g), layout)
    assert not torch.isfinite(out.norm).any()


def test_float32_huge_value_clip_is_finite():
    layout = LAYOUTS["mlp"]
    g = torch.full((2, layout.size), 1e25, dtype=torch.float32)
    out = make_rule("value").apply(g, torch.zeros_like(g), layout)
    assert torch.all(out.direction == torch.tensor(PARAMS["lam"], dtype=torch.float32))
    np.testing.assert_allclose(out.norm.numpy(), PARAMS["lam"] * math.sqrt(layout.size),
                               rtol=1e-6)


def test_zero_gradient_gives_zero_and_unclipped():
    layout = LAYOUTS["mlp"]
    g = torch.zeros(3, layout.size, dtype=torch.float64)
    theta = torch.zeros_like(g)
    for kind in RULES:
        out = make_rule(kind).apply(g, theta, layout)
        assert torch.equal(as_direction(out, g), g)
        assert not out.clipped.any()
        assert torch.equal(out.norm, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kind="classic", lam=0.0),
        dict(kind="classic", lam=-1.0),
        dict(kind="classic", lam=math.inf),
        dict(kind="classic", lam=math.nan),
        dict(kind="classic"),
        dict(kind="value", lam=0.0),
        dict(kind="value"),
        dict(kind="adaptive", lam=1.0, eps=0.0),
        dict(kind="adaptive", lam=1.0, eps=-0.1),
        dict(kind="adaptive", lam=1.0),
        dict(kind="adaptive", lam=0.0, eps=1.0),
        dict(kind="layerwise", lam=1.0, eps=0.0),
        dict(kind="unitwise", lam=1.0, eps=0.0),
        dict(kind="unitwise", lam=-2.0, eps=1.0),
        dict(kind="projection", ball=0.0),
        dict(kind="projection", ball=-1.0),
        dict(kind="projection"),
        dict(kind="clip-by-value"),
        dict(kind="Classic", lam=1.0),
        dict(kind="", lam=1.0),
    ],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        ClipRule(**kwargs)


def test_parameters_stored_as_float_and_described():
    rule = ClipRule("adaptive", lam=2, eps=np.float32(0.5))
    assert isinstance(rule.lam, float) and isinstance(rule.eps, float)
    assert rule.to_dict() == {"clip": "adaptive", "lam": 2.0, "eps": 0.5, "ball": None}
    assert rule.describe() == "adaptive clipping, λ = 2, ε = 0.5"


@pytest.mark.parametrize(("rule", "text"), [
    (ClipRule("none"), "no clipping"),
    (ClipRule("classic", lam=1), "classic clipping, λ = 1"),
    (ClipRule("value", lam=0.25), "value clipping, λ = 0.25"),
    (ClipRule("layerwise", lam=3, eps=1e-3), "layerwise clipping, λ = 3, ε = 0.001"),
    (ClipRule("projection", ball=2), "projection onto the ball ‖θ‖ ≤ 2"),
])
def test_describe_is_one_line(rule, text):
    assert rule.describe() == text


@pytest.mark.parametrize(("kwargs", "param", "words"), [
    (dict(kind="classic", lam=1.0, eps=0.5), "eps", "the classic rule does not take it"),
    (dict(kind="none", lam=1.0), "lam", "the none rule does not take it"),
    (dict(kind="projection", ball=1.0, lam=1.0), "lam", "the projection rule does not take it"),
    (dict(kind="value", lam=1.0, ball=1.0), "ball", "only projection"),
    (dict(kind="adaptive", lam=1.0), "eps", "the adaptive rule needs it"),
])
def test_parameters_a_rule_does_not_take_are_refused_by_name(kwargs, param, words):
    with pytest.raises(BadArgument) as error:
        ClipRule(**kwargs)
    assert error.value.param == param and words in error.value.message
