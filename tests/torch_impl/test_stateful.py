"""Stateful clippers (EMA, percentile, seed 003's averaged norm) and ClippedOptimizer: threshold
sequences against hand and numpy computations and against a pure-Python transcription of the
seed's own code (``update_param_g_norm_info``), state_dict round trips, non-finite norms, bad
arguments."""

from __future__ import annotations

import copy
import functools
import math
import re
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.torch_impl.test_clip import no_host_sync  # noqa: F401  (a fixture)
from torch_impl.clip import clip_grad_norm_
from torch_impl.stateful import (
    AveragedNormClipper,
    Clipper,
    EMAClipper,
    NormClipper,
    PercentileClipper,
    averaged_clip,
    averaged_clip_factor,
    averaged_threshold,
)
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
# Empty parameters; load_state_dict checks every key, type and value
# --------------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
STATEFUL = {
    "ema": lambda: EMAClipper(1.2, 0.8),
    "percentile": lambda: PercentileClipper(25.0),
    "averaged": lambda: AveragedNormClipper(),
    "averaged-global": lambda: AveragedNormClipper(per_tensor=False),
}


@pytest.mark.parametrize("make", STATEFUL)
def test_empty_parameters_give_a_one_line_value_error(make):
    with pytest.raises(ValueError, match="^parameters is empty") as info:
        STATEFUL[make]()([])
    assert "\n" not in str(info.value)


def t64(x):
    return torch.tensor(x, dtype=torch.float64)


VALID = {
    "ema": lambda: {"alpha": 1.5, "beta": 0.9, "m": t64(2.0), "count": torch.tensor(3),
                    "last_threshold": t64(3.0)},
    "percentile": lambda: {"percentile": 50.0, "history": t64([1.0, NAN, 3.0]),
                           "last_threshold": t64(2.0)},
    "averaged": lambda: {"per_tensor": True, "means": [t64(2.0), None], "steps": [3, 0]},
}
DROP = object()
BAD = [  # (clipper, key, bad value or DROP to leave the key out)
    ("ema", "alpha", -1.0), ("ema", "alpha", 0.0), ("ema", "alpha", INF), ("ema", "alpha", NAN),
    ("ema", "alpha", "2"), ("ema", "alpha", True), ("ema", "beta", 1.0), ("ema", "beta", -0.1),
    ("ema", "beta", NAN), ("ema", "m", t64(-1.0)), ("ema", "m", t64(NAN)), ("ema", "m", t64(INF)),
    ("ema", "m", 2.0), ("ema", "m", t64([1.0, 2.0])), ("ema", "m", torch.tensor(2)),
    ("ema", "count", torch.tensor(-1)), ("ema", "count", t64(1.5)), ("ema", "count", 3),
    ("ema", "count", None), ("ema", "last_threshold", t64(-1.0)),
    ("ema", "last_threshold", t64(0.0)), ("ema", "last_threshold", None), ("ema", "beta", DROP),
    ("ema", "gamma", 0.5),
    ("percentile", "percentile", 101.0), ("percentile", "percentile", -1.0),
    ("percentile", "percentile", NAN), ("percentile", "history", t64([1.0, -2.0])),
    ("percentile", "history", t64([INF])), ("percentile", "history", t64(1.0)),
    ("percentile", "history", [1.0, 2.0]), ("percentile", "history", t64([[1.0], [2.0]])),
    ("percentile", "last_threshold", t64(-1.0)),
    ("percentile", "history", DROP),
    ("averaged", "per_tensor", False), ("averaged", "per_tensor", 1), ("averaged", "steps", [3]),
    ("averaged", "steps", [-1, 0]), ("averaged", "steps", [3.0, 0]),
    ("averaged", "steps", [True, 0]), ("averaged", "steps", (3, 0)),
    ("averaged", "means", [None, None]), ("averaged", "means", [t64(2.0), t64(1.0)]),
    ("averaged", "means", [t64(NAN), None]), ("averaged", "means", [t64(-1.0), None]),
    ("averaged", "means", [2.0, None]), ("averaged", "extra", 0),
]
MAKE = {"ema": lambda: EMAClipper(1.0, 0.5), "percentile": PercentileClipper,
        "averaged": AveragedNormClipper}


def assert_same(a, b):
    """Equal state dicts: the same keys, tensors equal in dtype and value (NaN included),
    other values equal and of one type."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    else:  # an integer alpha or percentile comes back as a float
        assert a == b and (type(a) is type(b) or {type(a), type(b)} == {int, float})


def load_or_refuse(clipper, state):
    """``clipper.load_state_dict(state)``: True if accepted, False if refused with a one-line
    ValueError that left the clipper as it was; any other exception propagates."""
    before = copy.deepcopy(clipper.state_dict())
    try:
        clipper.load_state_dict(state)
    except ValueError as error:
        assert "\n" not in str(error)
        assert_same(clipper.state_dict(), before)
        return False
    return True


@pytest.mark.parametrize(("kind", "key", "value"), BAD,
                         ids=[f"{kind}-{key}-{i}" for i, (kind, key, _) in enumerate(BAD)])
def test_load_state_dict_refuses_a_bad_value_naming_its_key(kind, key, value):
    state = VALID[kind]()
    if value is DROP:
        del state[key]
    else:
        state[key] = value
    with pytest.raises(ValueError, match=re.escape(key)):
        MAKE[kind]().load_state_dict(state)
    assert not load_or_refuse(MAKE[kind](), state)


def test_refused_alpha_leaves_the_clipping_as_it_was():
    clipper = EMAClipper(1.0, 0.5)
    state = clipper.state_dict() | {"alpha": -1.0}
    assert not load_or_refuse(clipper, state)
    _, _, after = run(clipper, [3.0, 3.0])
    np.testing.assert_allclose(after, [3.0, 3.0])  # alpha = -1 would give about 2e-308


@pytest.mark.parametrize("kind", VALID)
def test_load_state_dict_accepts_and_round_trips_a_valid_state(kind):
    clipper = MAKE[kind]()
    assert load_or_refuse(clipper, VALID[kind]())
    assert_same(clipper.state_dict(), VALID[kind]())


# Random state dicts, each value drawn from valid or invalid ones and labelled so: the loader
# must accept exactly the all-valid ones (which then round-trip and clip), and refuse the rest.

JUNK = st.one_of(st.none(), st.booleans(), st.text(max_size=2), st.sampled_from([NAN, INF]))
NONNEG = st.floats(0.0, 1e6).map(t64)
BAD_TENSOR = st.one_of(st.floats(max_value=-1e-9).map(t64), st.sampled_from([NAN, INF]).map(t64),
                       st.floats(0.0, 1e6), st.integers(0, 5).map(torch.tensor),
                       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=2).map(t64),
                       st.just(torch.tensor(True)), st.just(t64([[1.0], [-2.0]])))
COUNT = st.integers(0, 10**6).map(torch.tensor)
BAD_COUNT = st.one_of(st.integers(-10**6, -1).map(torch.tensor), NONNEG, st.integers(0, 5),
                      st.just(torch.tensor(False)))
THRESHOLD = st.one_of(st.floats(1e-300, 1e6).map(t64), st.just(t64(NAN)))
BAD_THRESHOLD = st.one_of(st.floats(max_value=0.0).map(t64), st.none(), st.floats(1.0, 2.0))


def labelled(valid, invalid):
    """``(value, True)`` from ``valid`` or ``(value, False)`` from ``invalid``."""
    return st.one_of(valid.map(lambda v: (v, True)), invalid.map(lambda v: (v, False)))


def assemble(draw, pairs):
    """A state dict from ``{key: (value, valid)}``, sometimes with a key left out or one too
    many (invalid); returns ``(state, valid)``."""
    state = {key: value for key, (value, _) in pairs.items()}
    valid = all(ok for _, ok in pairs.values())
    change = draw(st.sampled_from(["none", "none", "drop", "extra"]))
    if change == "drop":
        del state[draw(st.sampled_from(sorted(state)))]
    elif change == "extra":
        state["extra"] = 0
    return state, valid and change == "none"


@st.composite
def ema_states(draw):
    m_count = draw(st.one_of(
        st.just(((None, True), (None, True))),
        st.tuples(labelled(NONNEG, BAD_TENSOR), labelled(COUNT, BAD_COUNT)),
        st.tuples(NONNEG.map(lambda m: (m, False)), st.just((None, False))),
        st.tuples(st.just((None, False)), COUNT.map(lambda c: (c, False)))))
    pairs = {
        "alpha": draw(labelled(st.one_of(st.floats(1e-6, 1e6), st.integers(1, 10)),
                               st.one_of(st.floats(max_value=0.0), JUNK))),
        "beta": draw(labelled(st.floats(0.0, 0.999), st.one_of(st.floats(min_value=1.0),
                                                                st.floats(max_value=-1e-9), JUNK))),
        "m": m_count[0], "count": m_count[1],
        "last_threshold": draw(labelled(THRESHOLD, BAD_THRESHOLD)),
    }
    return (lambda: EMAClipper(1.0, 0.5), *assemble(draw, pairs))


@st.composite
def percentile_states(draw):
    entry = st.one_of(st.floats(0.0, 1e6), st.just(NAN))
    bad_history = st.one_of(
        st.lists(st.floats(max_value=-1e-9) | st.just(INF), min_size=1, max_size=3).map(t64),
        st.floats(0.0, 1.0).map(t64), st.lists(entry, min_size=1, max_size=3),
        st.lists(st.integers(0, 5), min_size=1, max_size=3).map(torch.tensor))
    pairs = {
        "percentile": draw(labelled(st.one_of(st.floats(0.0, 100.0), st.integers(0, 100)),
                                    st.one_of(st.floats(min_value=100.0, exclude_min=True),
                                              st.floats(max_value=0.0, exclude_max=True),
                                              JUNK))),
        "history": draw(labelled(st.lists(entry, min_size=1, max_size=5).map(t64),
                                 bad_history)),
        "last_threshold": draw(labelled(THRESHOLD, BAD_THRESHOLD)),
    }
    return (PercentileClipper, *assemble(draw, pairs))


@st.composite
def averaged_states(draw):
    good_slot = st.one_of(st.just((0, None)), st.tuples(st.integers(1, 10**6), NONNEG))
    bad_slot = st.one_of(st.tuples(st.integers(max_value=-1), st.none()),
                         st.tuples(st.just(0), NONNEG), st.tuples(st.integers(1, 9), st.none()),
                         st.tuples(st.integers(1, 9), BAD_TENSOR),
                         st.tuples(st.floats(1.0, 9.0) | st.just(True), NONNEG))
    slots = draw(st.lists(labelled(good_slot, bad_slot), max_size=4))
    steps, means = [s for (s, _), _ in slots], [m for (_, m), _ in slots]
    lists_ok = draw(st.booleans()) or not slots
    if not lists_ok:  # one length apart, or a tuple instead of a list
        steps = steps[:-1] if draw(st.booleans()) else tuple(steps)
    pairs = {
        "per_tensor": draw(labelled(st.just(True), st.sampled_from([False, 1, None]))),
        "means": (means, True),
        "steps": (steps, lists_ok and all(ok for _, ok in slots)),
    }
    return (AveragedNormClipper, *assemble(draw, pairs))


@settings(max_examples=300, deadline=None)
@given(case=st.one_of(ema_states(), percentile_states(), averaged_states()))
def test_load_state_dict_accepts_exactly_the_valid_states(case):
    make, state, valid = case
    clipper = make()
    accepted = load_or_refuse(clipper, state)
    assert accepted == valid, f"{'accepted' if accepted else 'refused'}: {state!r}"
    if accepted:
        assert_same(clipper.state_dict(), state)
        slots = len(state.get("steps", ())) or 1
        params = [param_with_norm(3.0) for _ in range(slots)]
        clipper(params)
        for p in params:
            assert torch.isfinite(p.grad).all()
            assert torch.linalg.vector_norm(p.grad) <= 3.0 * (1 + 1e-12)


# --------------------------------------------------------------------------------------------
# AveragedNormClipper (seed 003)
# --------------------------------------------------------------------------------------------

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
    assert isinstance(AveragedNormClipper(), Clipper)


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
    assert isinstance(AveragedNormClipper(), NormClipper)
    q = torch.zeros(2, device="meta", requires_grad=True)  # meta tensors: no foreach kernels
    q.grad = torch.ones(2, device="meta")
    with pytest.raises(RuntimeError, match="foreach=True"):
        AveragedNormClipper(foreach=True)([q])


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
