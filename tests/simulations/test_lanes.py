"""The lane runner (:mod:`simulations.engine.lanes`) against the scalar kernel
(:func:`simulations.engine.kernel.run_block`), an independent per-path loop: every supported
law × rule × dtype × observer, a row count that is not a multiple of 8, blow-ups in the middle
of a block, dead rows, and 1 against 2 threads and one block against two."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from simulations.engine import kernel, lanes, sampling
from simulations.engine.problems import Law, Quadratic, RNNCliff
from simulations.engine.rules import ClipRule

RULES = {"none": {}, "classic": {"lam": 0.7}, "adaptive": {"lam": 0.5, "eps": 1e-3},
         "layerwise": {"lam": 0.5, "eps": 1e-3}, "unitwise": {"lam": 0.5, "eps": 1e-3},
         "value": {"lam": 0.6}, "projection": {"ball": 1.5}}
LAWS = {"normal": Law("normal", mean=0.3, sd=1.2), "t3": Law("student-t", df=3.0, sd=0.8),
        "point": Law("point", mean=0.8), "pm1": Law("discrete", values=(-1.0, 1.0),
                                                     probs=(0.5, 0.5)),
        "skewed": Law("discrete", values=(-3.0, 0.5, 2.0), probs=(0.1, 0.6, 0.3))}
RECORD = ("exits", "running_max", "checkpoints", "claim2", "clipped")
SEED = 7


def _inputs(problem, rule, dtype, rows, steps, guard=1e6, batch=1, record=RECORD, a0=0.4,
            scale=2.0, radii=(0.5, 1.0, 3.0)):
    """The kernel's inputs for rows 0 .. rows − 1 over steps [0, steps), with every observer
    of ``record`` at its initial fill (θ(0) ~ N(0, scale²) over rows, a few rows dead)."""
    dtype = np.dtype(dtype)
    p = problem.layout.size
    rng = np.random.default_rng(rows * 31 + steps)
    theta0 = rng.normal(0.0, scale, (rows, p)).astype(dtype)
    alive = np.ones(rows, np.bool_)
    alive[3::11] = False
    blown = np.where(alive, -1, 0).astype(np.int64)
    state = kernel.State(theta0.copy(), theta0, alive, blown)
    count = batch * problem.words_per_sample
    block = kernel.Block(a0 / (1.0 + np.arange(steps) / 10.0),
                         sampling.path_keys(SEED, np.arange(rows)).numpy(),
                         sampling.step_keys(SEED, range(steps)).numpy(),
                         sampling.word_keys(SEED, count).numpy() if count > 1
                         else np.zeros(0, np.int32), 0)
    radii, checks = np.array(radii), np.array([1, steps // 2, steps], np.int64)
    z = {"int64": np.int64, "float64": np.float64}
    arrays = {"first_exit": np.full((rows, 3), -1, np.int64),
              "first_exit_norm": np.full((rows, 3), -1, np.int64),
              "max_deviation": np.zeros(rows), "max_norm": np.zeros(rows),
              "claim2_ratio": np.zeros(rows), "clipped_steps": np.zeros(rows, np.int64),
              "norm_at": np.zeros((rows, 3)), "deviation_at": np.zeros((rows, 3))}
    names = {"exits": ("first_exit", "first_exit_norm"),
             "running_max": ("max_deviation", "max_norm"), "claim2": ("claim2_ratio",),
             "clipped": ("clipped_steps",), "checkpoints": ("norm_at", "deviation_at")}
    for name, keys in names.items():
        if name not in record:
            for key in keys:
                arrays[key] = np.zeros((0,) * arrays[key].ndim, arrays[key].dtype)
    empty = {k: np.zeros((0,) * n, z["float64"]) for k, n in
             (("xi", 2), ("xi_norm_at", 2), ("xi_at_anchor", 3), ("xi_sup_after", 2),
              ("xi_sum_sq", 1), ("xi_max", 1))}
    obs = kernel.ObserverArrays(
        **arrays, path=np.zeros((0, 0, 0), dtype), **empty, radii=radii, checkpoint_steps=checks,
        anchors=np.zeros(0, np.int64), field=0, atom_values=np.zeros(0),
        atom_weights=np.zeros(0), record=kernel.Observe.flags(record))
    return (state, block, kernel.problem_args(problem, batch, dtype),
            kernel.rule_args(rule, problem.layout), kernel.limits(guard, dtype), obs)


def _copy(inputs):
    state, block, pb, rule, limits, obs = inputs
    return (kernel.State(*(a.copy() for a in state)), block, pb, rule, limits,
            obs._replace(**{k: v.copy() for k, v in obs._asdict().items()
                            if isinstance(v, np.ndarray)}))


def _outputs(inputs):
    state, _, _, _, _, obs = inputs
    return {**state._asdict(), **{k: v for k, v in obs._asdict().items()
                                  if isinstance(v, np.ndarray) and v.size}}


def _assert_same(got, want, rtol=0.0):
    for key in want:
        if rtol == 0.0 or want[key].dtype.kind != "f":
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        else:
            finite = want[key][np.isfinite(want[key])]
            scale = np.abs(finite).max() if finite.size else 0.0  # ‖θ − θ(0)‖ may be ~0
            np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=rtol * scale,
                                       err_msg=key)


def _both(inputs, threads=2, split=None):
    """(scalar kernel's outputs, lanes' outputs), the lanes in two blocks at ``split``."""
    scalar, lane = _copy(inputs), _copy(inputs)
    kernel.run_block(*scalar)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        if split is None:
            lanes.run_block_lanes(*lane)
        else:
            state, block, *rest = lane
            for lo, hi in ((0, split), (split, block.a.shape[0])):
                part = kernel.Block(block.a[lo:hi], block.path, block.step[lo:hi], block.word,
                                    lo)
                lanes.run_block_lanes(state, part, *rest)
    finally:
        numba.set_num_threads(before)
    return _outputs(scalar), _outputs(lane)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("law", sorted(LAWS))
@pytest.mark.parametrize("rule", sorted(RULES))
def test_lanes_match_the_scalar_kernel_bit_for_bit_in_one_dimension(rule, law, dtype):
    """150 rows (two groups of 64 and a tail of 22), 40 steps, every observer; bit for bit, except
    the projection's rescaling, which LLVM may reassociate differently in the scalar loop
    (1 ulp: 1.5e-16 relative seen)."""
    problem = Quadratic(LAWS[law], dim=1, curvature=1.3)
    inputs = _inputs(problem, ClipRule(rule, **RULES[rule]), dtype, 150, 40)
    assert lanes.supports(*inputs[2:4], inputs[5].record)
    want, got = _both(inputs)
    assert np.all(want["alive"][3::11] == 0) and want["alive"].sum() > 100
    _assert_same(got, want, rtol=1e-14 if rule == "projection" else 0.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("law", ["normal", "t3", "skewed"])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_lanes_match_the_scalar_kernel_in_ten_dimensions(rule, law, dtype):
    """P = 10 (the norms are sums that LLVM may order differently in the scalar loop), B = 3:
    within 1e-13 relative, counts and exit steps equal."""
    problem = Quadratic(LAWS[law], dim=10, curvature=0.9)
    inputs = _inputs(problem, ClipRule(rule, **RULES[rule]), dtype, 19, 30, batch=3)
    want, got = _both(inputs)
    _assert_same(got, want, rtol=1e-13 if dtype == "float64" else 1e-6)


@pytest.mark.parametrize("rule", ["none", "classic", "value", "unitwise"])
def test_blow_ups_in_the_middle_of_a_block(rule):
    """L < 0 drives |θ| up geometrically: rows cross the guard at different steps inside the
    block (and keep θ at their last iterate, exits at that step, maxima +inf)."""
    problem = Quadratic(LAWS["pm1"], dim=1, curvature=-1.3)
    inputs = _inputs(problem, ClipRule(rule, **{**RULES[rule], "lam": 5.0}
                                       if "lam" in RULES[rule] else {}), "float64", 29, 40,
                     guard=20.0)
    want, got = _both(inputs)
    blown = want["blown"][want["alive"] == 0]
    assert 3 < len(blown) and len(set(blown.tolist())) > 3 and 2 < blown.max() < 40
    assert np.isinf(want["max_norm"]).sum() >= 3
    _assert_same(got, want)


def test_threads_and_blocks_change_no_bits():
    """64·300 + 3 rows (many tasks, a tail of 3): 1 thread against 2, one block against two."""
    problem = Quadratic(LAWS["skewed"], dim=2, curvature=1.1)
    inputs = _inputs(problem, ClipRule("adaptive", **RULES["adaptive"]), "float64",
                     64 * 300 + 3, 20)
    want, one = _both(inputs, threads=1)
    _, two = _both(inputs, threads=2, split=7)
    _assert_same(two, one)
    _assert_same(one, want, rtol=1e-13)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("record", [(), ("exits",), ("running_max",), ("claim2", "clipped"),
                                    ("checkpoints",)])
def test_each_observer_alone(record, rule, dtype):
    """Each observer without the others (the lanes skip the roots and ratios that no recorded
    observer reads): bit for bit (the projection within 1 ulp, as above)."""
    problem = Quadratic(LAWS["pm1"], dim=1, curvature=1.0)
    inputs = _inputs(problem, ClipRule(rule, **RULES[rule]), dtype, 70, 25, record=record)
    want, got = _both(inputs)
    _assert_same(got, want, rtol=1e-14 if rule == "projection" else 0.0)


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("size", ["tiny", "huge"])
def test_norms_whose_squares_under_or_overflow(size, rule):
    """float64, one coordinate, where the lanes' |x| for ‖x‖ and their tests on squares meet
    the ends of the range. tiny: θ ~ 1e-160 shrinking toward 0 (every square subnormal or
    zero; radii of that size). huge: θ ~ 1e153 driven outward (L < 0) with the guard at 1e300,
    past √max ≈ 1.3e154 where the squares overflow (blow-ups by the √max bound). Bit for bit
    with the scalar kernel, which takes every root."""
    tiny = size == "tiny"
    law = Law("point", mean=0.0)
    problem = Quadratic(law, dim=1, curvature=1.3 if tiny else -1.3)
    relative = rule in ("adaptive", "layerwise", "unitwise")  # λ scales ‖θ‖ already
    params = {k: (v * 1e-160 if tiny else v * 1e153) if k == "ball" or
              (k == "lam" and not relative) else (1e-170 if k == "eps" and tiny else v)
              for k, v in RULES[rule].items()}
    inputs = _inputs(problem, ClipRule(rule, **params), "float64", 70, 30,
                     guard=1e300, scale=1e-160 if tiny else 1e153,
                     radii=(1e-161, 1e-160, 3e-160) if tiny else (1e153, 1e154, 2e154))
    want, got = _both(inputs)
    live = want["alive"] == 1
    if tiny:
        assert np.all(want["blown"] <= 0) and (want["first_exit"] > 0).any()
        assert np.mean(want["max_deviation"][live] > 0) > 0.9
    elif rule in ("none", "adaptive", "layerwise", "unitwise"):
        assert ((want["blown"] > 1) & (want["blown"] < 30)).sum() >= 3
    _assert_same(got, want, rtol=1e-14 if rule == "projection" else 0.0)


def test_roots_of_one_coordinate_are_absolute_values_where_they_should_be():
    """lanes._roots_lanes against numpy's √(x·x), for x over the whole float64 range (the
    squares subnormal, zero, overflowing), ±0, ±inf and NaN, and the bound of
    lanes._sqrt_bound against its definition: the largest y with fl(√y) ≤ x."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.choice([-1.0, 1.0], 4000) * 10.0 ** rng.uniform(-170, 170, 4000),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1.5e-154, 1.34e154,
                         np.sqrt(np.finfo(float).max), 2.0 ** -511, 2.0 ** -537]])
    x = np.concatenate([x, np.zeros(-len(x) % lanes.W)]).reshape(-1, 1, lanes.W)
    with np.errstate(over="ignore", under="ignore"):
        want = np.sqrt(x * x)[:, 0, :]
    got = np.empty_like(want)
    for i in range(x.shape[0]):
        with np.errstate(over="ignore", under="ignore"):
            got[i] = x[i, 0] * x[i, 0]
        lanes._roots_lanes(x[i], got[i], got[i])
    np.testing.assert_array_equal(got, want)
    assert np.sum(np.abs(x[:, 0, :]) == want) > 3000  # most of the range: |x| itself
    for v in np.concatenate([10.0 ** rng.uniform(-170, 170, 2000), [0.0, 1.0, 4.0, np.inf]]):
        bound = lanes._sqrt_bound(v)
        assert np.sqrt(bound) <= v
        with np.errstate(over="ignore"):
            assert bound == np.inf or np.sqrt(np.nextafter(bound, np.inf)) > v
    assert lanes._sqrt_bound(-1.0) < 0 and lanes._sqrt_bound(np.nan) < 0


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_rnn_cliff_on_the_lanes_matches_the_scalar_kernel(rule, dtype, batch):
    """rnn-cliff (P = 2, length 50), 150 rows (a tail of 22), every observer, a(0) = 1 and a
    guard of 30 (unclipped rows blow up inside the block). float32: 30 steps, bit for bit.
    float64: the scalar kernel's compiled recurrence rounds differently (LLVM contracts and
    reorders its serial sums otherwise than in the lane loops: 1 ulp in the gradient, which
    the cliff then amplifies step by step), so 12 steps, within 1e-12 of each array's scale,
    counts, exit and blow-up steps equal."""
    steps = 30 if dtype == "float32" else 12
    inputs = _inputs(RNNCliff(n=32, length=50), ClipRule(rule, **RULES[rule]), dtype, 150,
                     steps, guard=30.0, batch=batch, a0=1.0)
    assert lanes.supports(*inputs[2:4], inputs[5].record)
    want, got = _both(inputs)
    assert want["alive"].sum() > 40
    if rule == "none":
        assert (want["blown"] > 0).sum() >= 3
    _assert_same(got, want, rtol=1e-12 if dtype == "float64" else
                 (1e-14 if rule == "projection" else 0.0))


def test_supports_only_its_cells():
    """The paths and xi observers and the dataset problems but rnn-cliff stay on the scalar
    kernel; every law of the quadratic and rnn-cliff with every rule run on the lanes."""
    from simulations.engine.problems import make_problem

    rule = kernel.rule_args(ClipRule("classic", lam=1.0), Quadratic().layout)
    flags = kernel.Observe.flags
    for law in LAWS.values():
        pb = kernel.problem_args(Quadratic(law), 1, np.float64)
        assert lanes.supports(pb, rule, flags(RECORD))
        assert not lanes.supports(pb, rule, flags(("paths",)))
        assert not lanes.supports(pb, rule, flags(("xi",)))
    linear = make_problem("linear-regression")
    assert not lanes.supports(kernel.problem_args(linear, 1, np.float64), rule, flags(RECORD))
    rnn = kernel.problem_args(RNNCliff(), 3, np.float32)
    assert lanes.supports(rnn, rule, flags(RECORD))
    assert not lanes.supports(rnn, rule, flags(("xi",)))



@pytest.mark.parametrize("noise", [{"noise": "normal", "mean": 1.0},
                                   {"noise": "discrete", "values": [0.0, 10.0],
                                    "probs": [0.9, 0.1]}])
@pytest.mark.parametrize("extra, first", [(["xi"], 70), (["paths"], 90), (["xi", "paths"], 90)])
def test_xi_and_kept_rows_on_the_scalar_kernel_and_the_rest_on_the_lanes(monkeypatch, noise,
                                                                        extra, first):
    """With the xi or the paths observer, the first rows of a chunk (its ξ rows, its kept
    paths) run on the scalar kernel, which records them, and the others on the lanes: every
    array equals the run on the scalar kernel alone, over three chunks (the ξ and kept rows all
    in the first), and the lanes ran the rows they should."""
    from simulations.engine.run import simulate
    from simulations.engine.spec import Execution, RunSpec

    spec = RunSpec.from_dict({
        "problem": {"name": "quadratic", **noise}, "clip": {"rule": "classic", "lam": 1.0},
        "schedule": "1/(t+1)", "paths": 300, "steps": 60, "radii": [0.5, 2.0],
        "record": ["exits", "running_max", "checkpoints", "claim2", "clipped", *extra],
        "xi_paths": 70, "keep_paths": 90, "seed": 3})
    rows = []
    run_lanes = lanes.run_block_lanes
    monkeypatch.setattr(lanes, "run_block_lanes",
                        lambda state, *rest: (rows.append(len(state.alive)),
                                              run_lanes(state, *rest)))
    split = simulate(spec, Execution(progress=False, chunk_size=128))
    assert set(rows) == {128 - first, 128, 300 - 256}  # chunks [0, 128), [128, 256), [256, 300)
    monkeypatch.setattr(lanes, "supports", lambda *args: False)
    alone = simulate(spec, Execution(progress=False, chunk_size=128))
    assert set(split.arrays) == set(alone.arrays)
    for name, want in alone.arrays.items():
        np.testing.assert_array_equal(split.arrays[name], want, err_msg=name)
