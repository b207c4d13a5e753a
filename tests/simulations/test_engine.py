"""Tests of simulations.engine.run against the slow, independent reference in tests/reference.py.

* Every problem of the catalog (all seven, several quadratic laws and the three stiff kinds) with
  every clip rule: endpoints and every observer array equal to the reference to 1e-12 (relative
  to the path's scale) in float64, integers exactly; both steps, the compiled kernel and the
  torch step, on every cell.
* Chunking: bit-identical arrays for chunk_size 1, 3, 7 and None.
* Blow-ups: blown_step, exits at the blow-up step, frozen iterates, no NaN anywhere.
* Checkpoints: an interrupted run resumed from its checkpoint is bit-identical to a run that was
  never interrupted.
* The deterministic radius of classic clipping (L1-det): max_s ‖θ(s) − θ(0)‖ ≤ λ·Σ_{t<T} a(t).
* Bad input raises ValueError.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from simulations.engine import run as engine
from simulations.engine.problems import make_problem
from simulations.engine.rules import ClipRule
from simulations.engine.spec import Execution, RunSpec
from tests import reference as ref
from theory.schedules import PowerSchedule

RTOL = 1e-12
T = 40  # steps
R = 6  # paths
KEEP = 8  # the default keep_paths (RunSpec's)

# name: (catalog name, parameters, settings). Settings: lam (classic), lam_a and eps (adaptive,
# layerwise, unitwise), lam_v (value), ball (projection), c (schedule c/(t+1)); the
# thresholds sit inside the range of the gradient norms, so that some steps are clipped and
# some are not.
PROBLEMS = {
    "quadratic-normal": ("quadratic", dict(noise="normal", mean=2.0, sd=1.5, dim=3, theta0=0.5),
                         dict(lam=3.5, lam_a=2.0, eps=0.5, lam_v=2.8, ball=1.5, c=0.5)),
    "quadratic-student-t": ("quadratic", dict(noise="student-t", df=3, mean=-1.0, sd=2.0, dim=2),
                            dict(lam=3.0, lam_a=2.0, eps=0.5, lam_v=3.0, ball=1.0, c=0.5)),
    "quadratic-discrete": ("quadratic", dict(noise="discrete", values=(-3.0, 1.0, 4.0),
                                             probs=(0.2, 0.5, 0.3), dim=2, curvature=2.0),
                           dict(lam=5.0, lam_a=2.0, eps=1.0, lam_v=4.0, ball=1.0, c=0.3)),
    "quadratic-point": ("quadratic", dict(noise="point", mean=3.0, dim=2, curvature=0.5,
                                          theta0=(1.0, -1.0)),
                        dict(lam=1.0, lam_a=0.5, eps=0.5, lam_v=0.8, ball=2.0, c=0.5)),
    "linear-regression": ("linear-regression", dict(n=50, dim=4),
                          dict(lam=300.0, lam_a=50.0, eps=1.0, lam_v=200.0, ball=20.0, c=0.05)),
    "logistic": ("logistic", dict(n=40, dim=3, separable=False),
                 dict(lam=0.9, lam_a=1.0, eps=0.5, lam_v=0.6, ball=1.0, c=1.0)),
    "mlp-regression": ("mlp-regression", dict(n=50, dim=4, hidden=5),
                       dict(lam=300.0, lam_a=100.0, eps=1.0, lam_v=200.0, ball=3.0, c=0.002)),
    "mlp-classification": ("mlp-classification", dict(n=60, dim=3, classes=3, hidden=4),
                           dict(lam=2.0, lam_a=1.0, eps=1.0, lam_v=0.7, ball=2.2, c=0.5)),
    "rnn-cliff": ("rnn-cliff", dict(length=20),
                  dict(lam=3.0, lam_a=1.5, eps=1.0, lam_v=1.5, ball=1.8, c=0.2)),
    "stiff-stiff": ("stiff", dict(kind="stiff"),
                    dict(lam=30.0, lam_a=30.0, eps=1.0, lam_v=30.0, ball=2.0, c=1.0)),
    "stiff-far": ("stiff", dict(kind="far", dim=2),
                  dict(lam=30.0, lam_a=30.0, eps=1.0, lam_v=30.0, ball=2.0, c=1.0)),
    "stiff-concave": ("stiff", dict(kind="concave", dim=2),
                      dict(lam=1.0, lam_a=1.0, eps=1.0, lam_v=1.0, ball=5.0, c=1.0)),
}
RULE_KINDS = ("none", "classic", "adaptive", "layerwise", "unitwise", "value", "projection")


@functools.cache
def problem(name: str):
    catalog, params, _ = PROBLEMS[name]
    return make_problem(catalog, **params)


def pspec(name: str) -> dict:
    """The problem ``name`` of PROBLEMS as a RunSpec's problem entry."""
    catalog, params, _ = PROBLEMS[name]
    return {"name": catalog, **params}


EXECUTION = {"device", "chunk_size", "backend", "compile", "checkpoint_dir", "checkpoint_every",
             "resume", "progress"}


def simulate(problem: dict, rule: ClipRule, schedule, **kwargs):
    """engine.simulate on the RunSpec of these settings (the keywords of RunSpec.from_dict and
    of Execution)."""
    execution = Execution(**{k: kwargs.pop(k) for k in list(kwargs) if k in EXECUTION})
    clip = {"rule": rule.kind, "lam": rule.lam, "eps": rule.eps, "ball": rule.ball}
    run = RunSpec.from_dict({"problem": problem, "clip": clip, "schedule": schedule, **kwargs})
    return engine.simulate(run, execution)


def rule_for(name: str, kind: str, **override) -> ClipRule:
    s = {**PROBLEMS[name][2], **override}
    if kind in ("none", "projection"):
        return ClipRule(kind, ball=s["ball"] if kind == "projection" else None)
    if kind == "classic":
        return ClipRule(kind, lam=s["lam"])
    if kind == "value":
        return ClipRule(kind, lam=s["lam_v"])
    return ClipRule(kind, lam=s["lam_a"], eps=s["eps"])


def schedule_for(name: str) -> PowerSchedule:
    return PowerSchedule(c=PROBLEMS[name][2]["c"], t0=1.0, p=1.0)


def steps_of(name: str, steps: int = T) -> np.ndarray:
    """a(t) = c/(t+1), computed here (not by the schedule object)."""
    return PROBLEMS[name][2]["c"] / (np.arange(steps, dtype=np.float64) + 1.0)


def as_ref_rule(rule: ClipRule) -> ref.Rule:
    return ref.Rule(rule.kind, rule.lam, rule.eps, rule.ball)


def pick_radii(want: dict) -> list[float]:
    """Radii well away from every ‖θ(s)‖ and ‖θ(s) − θ(0)‖ of the reference paths (so that an
    exit step cannot flip on rounding), spread over their range, plus one never reached."""
    values = np.concatenate([want["norms"].ravel(), want["deviations"].ravel()])
    values = np.unique(values[np.isfinite(values) & (values > 0)])
    radii = []
    if len(values) >= 2:
        for q in (0.1, 0.5, 0.9):
            i = int(q * (len(values) - 2))
            window = range(max(0, i - 5), min(len(values) - 1, i + 6))
            j = max(window, key=lambda k: (values[k + 1] - values[k]) / values[k + 1])
            if (values[j + 1] - values[j]) / values[j + 1] > 1e-6:
                radii.append(float(0.5 * (values[j] + values[j + 1])))
    top = float(values.max()) if len(values) else 1.0
    return sorted(set(radii)) + [4.0 * top + 1.0]


ENGINE_KEYS = {"endpoints", "blown_step", "first_exit", "first_exit_norm", "max_deviation",
               "max_norm", "claim2_ratio", "clipped_steps", "norm_at", "deviation_at", "path",
               "checkpoint_steps"}


def _close(got, want, scale, what):
    """|got − want| ≤ RTOL·scale elementwise, with the same non-finite entries."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert not np.isnan(got).any(), f"{what}: NaN in the engine's array"
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin], want[~fin], err_msg=f"{what}: non-finite entries")
    assert np.isfinite(got[fin]).all(), f"{what}: non-finite where the reference is finite"
    scale = np.broadcast_to(scale, want.shape)
    bad = np.abs(np.where(fin, got, 0.0) - np.where(fin, want, 0.0)) > RTOL * scale
    assert not bad.any(), (f"{what}: {int(bad.sum())} entries differ, e.g. got {got[bad][:3]} "
                           f"want {want[bad][:3]}")


def assert_matches(sim, want, steps: int = T, keep: int = KEEP):
    """Every array of the engine against the reference."""
    got = sim.arrays
    assert set(got) == ENGINE_KEYS
    for key in ("blown_step", "first_exit", "first_exit_norm", "clipped_steps"):
        assert got[key].dtype.kind == "i", key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # scale of a path: the largest ‖θ(s)‖ it reached (at least 1)
    norms = np.where(np.isfinite(want["norms"]), want["norms"], 0.0)
    scale = np.maximum(norms.max(axis=1), 1.0)
    _close(got["endpoints"], want["endpoints"], scale[:, None], "endpoints")
    _close(got["max_deviation"], want["max_deviation"], scale, "max_deviation")
    _close(got["max_norm"], want["max_norm"], scale, "max_norm")
    _close(got["claim2_ratio"], want["claim2_ratio"], np.maximum(want["claim2_ratio"], 1e-300),
           "claim2_ratio")
    ck = got["checkpoint_steps"]
    assert ck[0] == 0 and ck[-1] == steps and np.all(np.diff(ck) > 0)
    _close(got["norm_at"], want["norms"][:, ck], scale[:, None], "norm_at")
    _close(got["deviation_at"], want["deviations"][:, ck], scale[:, None], "deviation_at")
    _close(got["path"], want["trajectory"][:keep], scale[:keep, None, None], "path")


def run_both(name, rule, *, batch, seed, backend="auto", paths=R, steps=T, guard=None,
             radii=None):
    """The reference, then the engine on radii chosen from the reference's paths."""
    want = ref.reference(problem(name), as_ref_rule(rule), steps_of(name, steps), paths=paths,
                         batch=batch,
                         seed=seed, guard=1e100 if guard is None else guard)
    radii = pick_radii(want) if radii is None else radii
    want["first_exit"], want["first_exit_norm"] = ref.exits(
        want["norms"], want["deviations"], want["blown_step"], radii)
    sim = simulate(pspec(name), rule, schedule_for(name), paths=paths, steps=steps,
                   batch=batch, seed=seed, radii=radii, guard=guard, backend=backend,
                   progress=False)
    return sim, want


# ---------------------------------------------------------------------------------------------
# The engine against the reference
# ---------------------------------------------------------------------------------------------


def _cases():
    cases = []
    for i, name in enumerate(PROBLEMS):
        for kind in RULE_KINDS:
            batches = (1, 3) if kind in ("classic", "adaptive") else (2,)
            for batch in batches:
                backends = ("compiled", "torch")
                for backend in backends:
                    cases.append(pytest.param(name, kind, batch, backend, 7 * i + batch,
                                              id=f"{name}-{kind}-B{batch}-{backend}"))
    return cases


@pytest.mark.parametrize("name, kind, batch, backend, seed", _cases())
def test_engine_matches_reference(name, kind, batch, backend, seed):
    rule = rule_for(name, kind)
    sim, want = run_both(name, rule, batch=batch, seed=seed, backend=backend)
    assert sim.setting["backend"] == backend
    assert_matches(sim, want)


def test_reference_layout_and_words_match_the_problems():
    """The reference's own layout and word counts agree with the problems' (a sanity check of
    the reference itself, not of the engine)."""
    for name in PROBLEMS:
        pb = problem(name)
        shapes = [layer.shape for layer in pb.layout.layers]
        assert ref.layer_shapes(pb) == shapes, name
        assert ref.words_per_sample(pb) == pb.words_per_sample, name


def test_settings_exercise_clipping():
    """The thresholds are such that clipping is active on some steps and not on others for
    most problems, so that the comparisons above test both branches."""
    mixed = 0
    for name in PROBLEMS:
        want = ref.reference(problem(name), as_ref_rule(rule_for(name, "classic")),
                             steps_of(name), paths=R, batch=1, seed=1)
        mixed += bool(0 < want["clipped_steps"].sum() < R * T)
    assert mixed >= 8


@pytest.mark.parametrize("name", ["quadratic-normal", "mlp-regression", "rnn-cliff"])
def test_comparison_detects_a_wrong_lambda(name):
    """Non-vacuity: the reference with λ·(1 + 1e-6) is told apart from the engine."""
    rule = rule_for(name, "classic")
    sim, _ = run_both(name, rule, batch=2, seed=5)
    radii = sim.setting["radii"]
    wrong = ref.reference(problem(name), ref.Rule("classic", rule.lam * (1 + 1e-6)),
                          steps_of(name), paths=R, batch=2, seed=5)
    wrong["first_exit"], wrong["first_exit_norm"] = ref.exits(
        wrong["norms"], wrong["deviations"], wrong["blown_step"], radii)
    with pytest.raises(AssertionError):
        assert_matches(sim, wrong)


def test_comparison_detects_shifted_randomness():
    """Non-vacuity: the reference run with another seed is told apart from the engine."""
    name = "quadratic-discrete"
    sim, want = run_both(name, rule_for(name, "classic"), batch=1, seed=3)
    other = ref.reference(problem(name), as_ref_rule(rule_for(name, "classic")), steps_of(name),
                          paths=R, batch=1, seed=4)
    other["first_exit"], other["first_exit_norm"] = ref.exits(
        other["norms"], other["deviations"], other["blown_step"], sim.setting["radii"])
    with pytest.raises(AssertionError):
        assert_matches(sim, other)


def test_float32_close_to_reference():
    """float32 runs track the float64 reference to float32 accuracy."""
    name = "quadratic-normal"
    rule = rule_for(name, "classic")
    want = ref.reference(problem(name), as_ref_rule(rule), steps_of(name), paths=R, batch=3,
                         seed=2)
    sim = simulate(pspec(name), rule, schedule_for(name), paths=R, steps=T, batch=3, seed=2,
                   dtype=torch.float32, progress=False)
    assert sim.arrays["endpoints"].dtype == np.float32
    np.testing.assert_allclose(sim.arrays["endpoints"], want["endpoints"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(sim.arrays["max_norm"], want["max_norm"], rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Chunking
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, kind, batch, backend", [
    ("mlp-classification", "unitwise", 3, "auto"),
    ("quadratic-student-t", "adaptive", 3, "auto"),
    ("rnn-cliff", "value", 2, "auto"),
    ("mlp-regression", "classic", 3, "torch"),
    ("mlp-regression", "adaptive", 3, "compiled"),
    ("linear-regression", "classic", 2, "compiled"),
    ("mlp-classification", "layerwise", 3, "compiled"),
    ("quadratic-normal", "projection", 2, "compiled"),
])
def test_chunk_size_does_not_change_anything(name, kind, batch, backend):
    runs = {}
    steps = 10 if name == "mlp-classification" else 25  # its float64 softmax is slow on CPU
    for chunk in (1, 3, 7, None):
        runs[chunk] = simulate(pspec(name), rule_for(name, kind), schedule_for(name), paths=10,
                               steps=steps, batch=batch, seed=9, radii=[0.5, 2.0, 50.0],
                               chunk_size=chunk, keep_paths=5, backend=backend, progress=False)
    base = runs[None].arrays
    assert base["path"].shape[0] == 5
    for chunk, sim in runs.items():
        assert set(sim.arrays) == set(base)
        for key, value in sim.arrays.items():
            assert value.dtype == base[key].dtype, (chunk, key)
            assert np.array_equal(value, base[key]), (chunk, key)


# ---------------------------------------------------------------------------------------------
# Blow-ups
# ---------------------------------------------------------------------------------------------


def _no_nan(sim):
    for key, value in sim.arrays.items():
        if value.dtype.kind == "f":
            assert not np.isnan(value).any(), f"NaN in {key}"


def _assert_frozen(sim):
    """A blown-up path's endpoint is θ(s−1), and its recorded path stays there."""
    arr = sim.arrays
    for r, s in enumerate(arr["blown_step"]):
        if s < 0:
            continue
        if r < arr["path"].shape[0]:
            assert np.array_equal(arr["endpoints"][r], arr["path"][r, s - 1])
            assert (arr["path"][r, s:] == arr["path"][r, s - 1]).all()
        assert np.all(arr["first_exit"][r] <= s) and np.all(arr["first_exit"][r] >= 0)
        assert np.all(arr["first_exit_norm"][r] <= s)
        assert arr["max_deviation"][r] == np.inf and arr["max_norm"][r] == np.inf
        ck = arr["checkpoint_steps"]
        assert np.all(arr["norm_at"][r, ck >= s] == np.inf)
        assert np.all(np.isfinite(arr["norm_at"][r, ck < s]))


def test_concave_blows_up_at_the_predicted_step():
    """ℓ = −½‖θ‖² with adaptive clipping (λ = 30) and a(t) = 1/(t+1): g = −θ is never clipped,
    so θ(s) = (s+1)·θ(0); with θ(0) = (1, 1) and guard 10, ‖θ(s)‖ = (s+1)√2 > 10 first at s = 7."""
    pb = {"name": "stiff", "kind": "concave", "dim": 2}
    sim = simulate(pb, ClipRule("adaptive", lam=30.0, eps=1.0), "1/(t+1)", paths=3, steps=20,
                   radii=[1.0, 5.0, 100.0], guard=10.0, progress=False)
    arr = sim.arrays
    np.testing.assert_array_equal(arr["blown_step"], [7, 7, 7])
    np.testing.assert_array_equal(arr["endpoints"], np.full((3, 2), 7.0))  # θ(6) = 7·θ(0)
    # ‖θ(s) − θ(0)‖ = s√2: > 1 at s = 1, > 5 at s = 4; 100 never, so the blow-up step 7
    np.testing.assert_array_equal(arr["first_exit"], np.tile([1, 4, 7], (3, 1)))
    # ‖θ(s)‖ = (s+1)√2: > 1 at s = 0, > 5 at s = 3, 100 never
    np.testing.assert_array_equal(arr["first_exit_norm"], np.tile([0, 3, 7], (3, 1)))
    np.testing.assert_array_equal(arr["clipped_steps"], [0, 0, 0])
    # ‖g/c‖/(1 + ‖θ(t)‖) = ‖θ(t)‖/(1 + ‖θ(t)‖), largest at t = 6, the step that blew up
    np.testing.assert_allclose(arr["claim2_ratio"], 7 * 2**0.5 / (1 + 7 * 2**0.5), rtol=1e-15)
    assert sim.blown_up == 3
    assert [row["exit_fraction"] for row in sim.radius_summary()] == [1.0, 1.0, 1.0]
    _no_nan(sim)
    _assert_frozen(sim)


def test_exits_are_strict_inequalities():
    """In 1-D the concave path is exact: θ(s) = s + 1, ‖θ(s) − θ(0)‖ = s. With M = 3 the first
    s with s > 3 is 4 (not 3), and the first with s + 1 > 3 is 3 (not 2)."""
    pb = {"name": "stiff", "kind": "concave", "dim": 1}
    sim = simulate(pb, ClipRule("classic", lam=100.0), "1/(t+1)", paths=2, steps=10,
                   radii=[3.0, 11.0], progress=False)
    arr = sim.arrays
    np.testing.assert_array_equal(arr["path"][:, :, 0], np.tile(np.arange(1.0, 12.0), (2, 1)))
    np.testing.assert_array_equal(arr["first_exit"], [[4, -1], [4, -1]])
    np.testing.assert_array_equal(arr["first_exit_norm"], [[3, -1], [3, -1]])
    np.testing.assert_array_equal(arr["max_deviation"], [10.0, 10.0])
    np.testing.assert_array_equal(arr["max_norm"], [11.0, 11.0])
    # ‖g/c‖/(1 + ‖θ(t)‖) = (t+1)/(t+2), largest at t = 9
    np.testing.assert_array_equal(arr["claim2_ratio"], [10.0 / 11.0] * 2)
    assert [row["exit_fraction"] for row in sim.radius_summary()] == [1.0, 0.0]


@pytest.mark.parametrize("name, kind, guard, batch", [
    ("stiff-stiff", "adaptive", 1e6, 1),  # the paper's λ = 30, a(t) = 1/(t+1)
    ("stiff-far", "adaptive", 1e6, 2),
    ("stiff-stiff", "none", 1e12, 1),
    ("mlp-classification", "none", 2.05, 2),  # some paths blow up, some do not
    ("mlp-regression", "adaptive", 2.25, 2),  # the compiled kernel's blow-up branch
    ("mlp-regression", "none", 3.3, 2),
    ("linear-regression", "none", 48.0, 2),
    ("mlp-regression", "layerwise", 2.25, 2),
    ("quadratic-normal", "projection", 1.2, 2),
])
def test_blow_ups_match_reference(name, kind, guard, batch):
    rule = rule_for(name, kind)
    sim, want = run_both(name, rule, batch=batch, seed=4, guard=guard)
    assert (want["blown_step"] >= 0).any()
    assert_matches(sim, want)
    _no_nan(sim)
    _assert_frozen(sim)


def test_paper_setting_adaptive_exceeds_while_classic_stays_within():
    """A3 with the paper's λ = 30, a(t) = 1/(t+1) on the stiff quadratic: adaptive clipping's
    running maximum passes 10^6, classic clipping stays below λ·Σa."""
    pb = pspec("stiff-stiff")
    adaptive = simulate(pb, ClipRule("adaptive", lam=30.0, eps=1.0), "1/(t+1)", paths=2,
                        steps=T, progress=False)
    classic = simulate(pb, ClipRule("classic", lam=30.0), "1/(t+1)", paths=2, steps=T,
                       progress=False)
    assert (adaptive.arrays["max_norm"] > 1e6).all()
    bound = 30.0 * np.sum(1.0 / (np.arange(T) + 1.0))
    assert (classic.arrays["max_deviation"] <= bound).all()


@pytest.mark.parametrize("kind", ["none", "classic", "adaptive", "layerwise", "unitwise",
                                  "projection"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_infinite_gradient_blows_up_without_nan(kind, dtype):
    """A gradient with infinite entries (g = L·θ(0) with L·θ(0) = 1e300·1e10 in float64,
    1e30·1e10 in float32) is a blow-up at step 1: the path stays at θ(0), it exits every radius
    at step 1, and no array gets a NaN (although the clip factor λ/‖g‖ = 0 makes
    ‖g/c‖ = inf·0 = NaN)."""
    pb = {"name": "quadratic", "noise": "point", "mean": 0.0, "dim": 2, "theta0": 1e10,
          "curvature": 1e300 if dtype == torch.float64 else 1e30}
    rule = {"none": ClipRule("none"), "projection": ClipRule("projection", ball=1e12)}.get(
        kind) or ClipRule(kind, lam=1.0, eps=None if kind == "classic" else 1.0)
    sim = simulate(pb, rule, "0.1/(t+1)", paths=3, steps=10, radii=[1.0, 1e15], dtype=dtype,
                   progress=False)
    arr = sim.arrays
    np.testing.assert_array_equal(arr["blown_step"], [1, 1, 1])
    np.testing.assert_array_equal(arr["endpoints"], np.full((3, 2), 1e10, dtype=np.float32 if (
        dtype == torch.float32) else np.float64))
    np.testing.assert_array_equal(arr["first_exit"], np.ones((3, 2)))
    np.testing.assert_array_equal(arr["first_exit_norm"], [[0, 1]] * 3)
    _assert_frozen(sim)
    _no_nan(sim)


def test_backends_agree_when_the_gradient_norm_overflows():
    """An MLP whose gradient norm overflows (entries ~1e200, ‖g‖² > 1.8e308): the compiled
    kernel and the torch path give the same arrays (both count it as a blow-up at step 1)."""
    pb = {"name": "mlp-regression", "n": 20, "dim": 3, "hidden": 2,
          "theta0": np.r_[np.full(8, 0.5), 1e100, 1e100, 0.0]}
    for rule in (ClipRule("none"), ClipRule("classic", lam=1.0),
                 ClipRule("adaptive", lam=1.0, eps=1.0)):
        runs = [simulate(pb, rule, "0.1/(t+1)", paths=3, steps=10, radii=[1.0], guard=1e308,
                         backend=backend, progress=False).arrays
                for backend in ("torch", "compiled")]
        assert set(runs[0]) == set(runs[1])
        for key in runs[0]:
            np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=f"{rule} {key}")
        np.testing.assert_array_equal(runs[0]["blown_step"], [1, 1, 1])


# ---------------------------------------------------------------------------------------------
# Checkpoints and resume
# ---------------------------------------------------------------------------------------------


class Interrupt(Exception):
    pass


def _interrupt_after(monkeypatch, steps_done: int):
    """Make the engine raise once ``steps_done`` steps (summed over chunks) have been run, in
    the middle of whatever block it is running."""
    count = {"steps": 0}
    for cls in (engine._TorchBlocks, engine._CompiledBlocks):
        original = cls.__call__

        def wrapped(self, theta, alive, blown, t, stop, _original=original):
            if count["steps"] + (stop - t) > steps_done:
                # run part of the block, then die: the partial work must not be kept
                part = steps_done - count["steps"]
                if part > 0:
                    _original(self, theta, alive, blown, t, t + part)
                raise Interrupt
            count["steps"] += stop - t
            return _original(self, theta, alive, blown, t, stop)

        monkeypatch.setattr(cls, "__call__", wrapped)


@pytest.mark.parametrize("name, kind, backend, crash_at", [
    ("quadratic-normal", "layerwise", "auto", 45),  # chunk 1 (steps 30..59), mid-block
    ("quadratic-normal", "layerwise", "torch", 45),
    ("quadratic-normal", "classic", "auto", 14),  # right at a checkpoint of chunk 0
    ("mlp-regression", "adaptive", "compiled", 75),  # chunk 2, mid-block
    ("rnn-cliff", "classic", "auto", 3),  # before the first checkpoint
])
def test_resume_is_bit_identical(tmp_path, monkeypatch, name, kind, backend, crash_at):
    kwargs = dict(paths=10, steps=30, batch=2, seed=6, radii=[0.5, 3.0], chunk_size=4,
                  backend=backend, progress=False)
    pb, rule, sched = pspec(name), rule_for(name, kind), schedule_for(name)
    whole = simulate(pb, rule, sched, **kwargs)
    ckdir = tmp_path / "ck"
    with monkeypatch.context() as m:
        _interrupt_after(m, crash_at)
        with pytest.raises(Interrupt):
            simulate(pb, rule, sched, checkpoint_dir=ckdir, checkpoint_every=7, **kwargs)
    assert (ckdir / "state.pt").exists() or crash_at < 7
    resumed = simulate(pb, rule, sched, checkpoint_dir=ckdir, checkpoint_every=7, resume=True,
                       **kwargs)
    assert set(resumed.arrays) == set(whole.arrays)
    for key, value in whole.arrays.items():
        assert np.array_equal(resumed.arrays[key], value), key
    assert resumed.setting == whole.setting


def test_resume_refuses_a_different_setting(tmp_path, monkeypatch):
    name = "quadratic-normal"
    kwargs = dict(paths=6, steps=30, seed=1, chunk_size=3, progress=False,
                  checkpoint_dir=tmp_path, checkpoint_every=5)
    with monkeypatch.context() as m:
        _interrupt_after(m, 12)
        with pytest.raises(Interrupt):
            simulate(pspec(name), rule_for(name, "classic"), schedule_for(name), **kwargs)
    with pytest.raises(ValueError, match="different"):
        simulate(pspec(name), rule_for(name, "classic", lam=1.0), schedule_for(name),
                 resume=True, **kwargs)


# ---------------------------------------------------------------------------------------------
# L1-det: the deterministic radius of classic clipping
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_classic_clipping_stays_within_lambda_sum_a(name):
    rule = rule_for(name, "classic")
    sched = schedule_for(name)
    sim = simulate(pspec(name), rule, sched, paths=R, steps=T, batch=2, seed=8,
                   progress=False)
    bound = rule.lam * sched.partial_sum(T)
    assert bound == pytest.approx(rule.lam * steps_of(name).sum(), rel=1e-12)
    dev = sim.arrays["max_deviation"]
    assert (sim.arrays["blown_step"] < 0).all()
    assert (dev <= bound * (1 + 1e-9)).all(), (dev.max(), bound)
    if name == "stiff-far":  # always clipped, straight towards the target: the bound is sharp
        np.testing.assert_allclose(dev, bound, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def _sim(**kw):
    name = "quadratic-normal"
    args = dict(paths=2, steps=3, progress=False)
    args.update(kw)
    return simulate(pspec(name), rule_for(name, "classic"), schedule_for(name), **args)


@pytest.mark.parametrize("kwargs", [
    dict(paths=0), dict(paths=-1), dict(paths=2.5), dict(paths=True), dict(steps=-1),
    dict(batch=0), dict(seed=-1), dict(chunk_size=0), dict(radii=[-1.0]), dict(radii=[0.0]),
    dict(radii=[float("inf")]), dict(radii=[float("nan")]), dict(record=["exits", "nope"]),
    dict(dtype=torch.float16), dict(backend="gpu"),
])
def test_bad_simulate_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        _sim(**kwargs)


def test_compiled_backend_refuses_what_it_cannot_run():
    # Norm clipping in 3-D: H has no closed form, so ξ needs the torch step's Monte Carlo H.
    with pytest.raises(ValueError, match="xi"):
        simulate(pspec("quadratic-normal"), rule_for("quadratic-normal", "classic"), "0.1",
                 paths=2, steps=3, backend="compiled", record=("xi",), progress=False)
    with pytest.raises(ValueError, match="compiled"):
        simulate(pspec("mlp-regression"), rule_for("mlp-regression", "value"), "0.1",
                 paths=2, steps=3, backend="fused", progress=False)


@pytest.mark.parametrize("schedule", ["1/t", "-1/(t+1)", "t+q", 0.0, -1.0])
def test_bad_schedule_raises(schedule):
    with pytest.raises(ValueError):
        simulate(pspec("quadratic-normal"), rule_for("quadratic-normal", "classic"),
                 schedule, paths=2, steps=3, progress=False)


@pytest.mark.parametrize("kwargs", [
    dict(kind="classic", lam=0.0), dict(kind="classic", lam=-1.0),
    dict(kind="classic", lam=float("inf")), dict(kind="classic", lam=float("nan")),
    dict(kind="classic"), dict(kind="value", lam=0.0), dict(kind="adaptive", lam=1.0),
    dict(kind="adaptive", lam=0.0, eps=1.0), dict(kind="layerwise", lam=1.0, eps=0.0),
    dict(kind="unitwise", lam=-2.0, eps=1.0), dict(kind="projection"),
    dict(kind="projection", ball=-1.0), dict(kind="clip-all", lam=1.0),
])
def test_bad_clip_rules_raise(kwargs):
    with pytest.raises(ValueError):
        ClipRule(**kwargs)


@pytest.mark.parametrize("name, params", [
    ("no-such-problem", {}), ("quadratic", dict(noise="cauchy")),
    ("quadratic", dict(noise="discrete", values=(1.0, 2.0), probs=(0.5, 0.6))),
    ("quadratic", dict(dim=0)), ("quadratic", dict(curvature=0.0)),
    ("linear-regression", dict(n=0)), ("stiff", dict(kind="convex")),
    ("mlp-classification", dict(dataset="cifar")), ("logistic", dict(bogus=1)),
])
def test_bad_problems_raise(name, params):
    with pytest.raises(ValueError):
        make_problem(name, **params)
